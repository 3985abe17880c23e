/* cityhub portal: every label in Korean and English, and the language toggle.
 *
 * The language is the one the visitor chose last (localStorage "cityhub.lang"), else navigator.language
 * (Korean for ko-*, English otherwise). Elements with data-i18n="key" get their text from LABELS, and
 * data-i18n-placeholder / data-i18n-title / data-i18n-aria their attribute; scripts call cityhub.t(key).
 */
(function () {
  "use strict";
  var LABELS = {
    ko: {
      "site.name": "cityhub 열린데이터",
      "site.tagline": "스마트시티 데이터 허브의 공개 데이터셋과 데이터안심구역 카탈로그",
      "nav.catalog": "데이터 목록",
      "nav.api": "API 문서",
      "nav.quality": "품질 보고서",
      "lang.toggle": "English",
      "lang.toggle.title": "Switch to English",
      "loading": "불러오는 중…",
      "noscript": "이 포털은 JavaScript가 필요합니다. API는 /api/v1/datasets 에서 바로 쓸 수 있습니다.",
      "catalog.title": "데이터 목록",
      "catalog.search": "검색",
      "catalog.search.placeholder": "제목, ID, 설명, 키워드로 검색",
      "catalog.count": "데이터셋 {shown}개 / 전체 {total}개",
      "catalog.empty": "검색어와 맞는 데이터셋이 없습니다.",
      "catalog.tier.all": "전체",
      "catalog.tier.filter": "구분",
      "field.id": "ID",
      "field.tier": "구분",
      "field.cadence": "갱신 주기",
      "field.licence": "이용 조건",
      "field.last_update": "최근 갱신",
      "field.rows": "행 수",
      "field.topic": "Kafka 토픽",
      "field.entity_type": "NGSI-LD 엔터티 유형",
      "field.event_time": "이벤트 시각 열",
      "field.keywords": "키워드",
      "tier.open": "공개",
      "tier.safezone": "데이터안심구역",
      "never": "아직 없음",
      "cadence.every": "{n}{unit}마다",
      "unit.min": "분",
      "unit.hour": "시간",
      "unit.day": "일",
      "ago.now": "방금",
      "ago.min": "{n}분 전",
      "ago.hour": "{n}시간 전",
      "ago.day": "{n}일 전",
      "dataset.back": "← 데이터 목록",
      "dataset.about": "개요",
      "dataset.schema": "스키마",
      "dataset.freshness": "최신성",
      "dataset.quality": "품질",
      "dataset.preview": "미리 보기",
      "dataset.chart": "시계열 차트",
      "dataset.map": "센서 위치 지도",
      "dataset.downloads": "내려받기",
      "schema.column": "열",
      "schema.type": "유형",
      "schema.unit": "단위",
      "schema.description": "설명",
      "schema.flags": "비고",
      "schema.personal": "개인정보(가명처리)",
      "schema.quasi": "준식별자(일반화)",
      "fresh.ok": "최신",
      "fresh.stale": "지연",
      "fresh.none": "아직 적재된 데이터가 없습니다.",
      "fresh.detail": "최근 갱신 {when} ({ago}). 갱신 주기 {cadence}: 주기의 두 배보다 오래되면 지연으로 표시합니다.",
      "quality.date": "날짜(이벤트)",
      "quality.rows": "검사한 행",
      "quality.clean": "정상",
      "quality.quarantined": "격리",
      "quality.share": "정상 비율",
      "quality.failures": "실패한 검사",
      "quality.none": "아직 검사 결과가 없습니다.",
      "quality.suite": "Great Expectations 검사 {n}개",
      "quality.summary": "전체 {rows}행 중 {clean}행 정상, {quarantined}행 격리 ({share})",
      "quality.docs": "GX 데이터 문서",
      "quality.kanon": "k-익명성 (준식별자 조합의 최소 크기)",
      "kanon.date": "날짜",
      "kanon.k": "k (최소 동질 집합 크기)",
      "kanon.threshold": "기준값",
      "kanon.classes": "동질 집합 수",
      "kanon.below": "기준 미만 집합",
      "preview.caption": "처음 {n}행",
      "preview.none": "아직 행이 없습니다.",
      "chart.column": "숫자 열",
      "chart.none": "그릴 숫자 열이나 행이 없습니다.",
      "chart.caption": "{col}: {rows}의 측정값(점)과 시각별 평균(선), 시각은 {tz}",
      "chart.mean": "평균",
      "map.none": "이 데이터셋에는 경도·위도 열이 없습니다.",
      "map.empty": "위치가 있는 행이 없습니다.",
      "map.caption": "{rows}에 나오는 위치 {points}곳 (WGS84, 등장방형 투영, 배경 지도 없음)",
      "sample.since": "{since}(UTC) 이후 {n}행",
      "sample.first": "처음 {n}행",
      "sample.truncated": "이 범위의 처음 {n}행만 그렸습니다.",
      "downloads.intro": "전체 데이터를 스트리밍으로 내려받습니다. 형식마다 같은 행이 담깁니다.",
      "fmt.csv": "CSV (UTF-8)",
      "fmt.csv.desc": "RFC 4180, 첫 줄은 열 이름",
      "fmt.csv_bom": "CSV (엑셀용, BOM)",
      "fmt.csv_bom.desc": "UTF-8 BOM: 엑셀에서 한글이 깨지지 않습니다",
      "fmt.csv_cp949": "CSV (CP949)",
      "fmt.csv_cp949.desc": "옛 한글 윈도 프로그램용 인코딩",
      "fmt.parquet": "Parquet",
      "fmt.parquet.desc": "열 지향, 압축, 형 정보 포함",
      "fmt.jsonl": "JSON Lines",
      "fmt.jsonl.desc": "한 줄에 JSON 객체 하나",
      "fmt.geojson": "GeoJSON",
      "fmt.geojson.desc": "RFC 7946 FeatureCollection, GIS용",
      "fmt.arrow": "Arrow IPC",
      "fmt.arrow.desc": "Apache Arrow 스트림",
      "fmt.ngsi_ld": "NGSI-LD",
      "fmt.ngsi_ld.desc": "FIWARE keyValues 엔터티",
      "safezone.title": "데이터안심구역 데이터셋",
      "safezone.note":
        "이 데이터셋은 개인을 알아볼 수 있는 정보를 담고 있어 데이터안심구역(데이터 안심 구역) 안에서만 분석할 수 있습니다. " +
        "공개되는 것은 메타데이터와 품질 집계뿐이며, 행 미리 보기·차트·지도·내려받기는 제공하지 않습니다. " +
        "분석하려면 안심구역 이용을 신청하세요. 결과는 심사를 거친 집계로만 반출됩니다.",
      "error.title": "오류",
      "error.network": "서버에 연결하지 못했습니다",
      "error.network.hint": "서버가 실행 중인지, 네트워크가 연결되어 있는지 확인하세요.",
      "error.status": "HTTP {status}",
      "error.hint": "도움말",
      "error.retry": "다시 시도",
    },
    en: {
      "site.name": "cityhub open data",
      "site.tagline": "Open datasets of the smart-city data hub, and the catalog of its data safe zone",
      "nav.catalog": "Datasets",
      "nav.api": "API docs",
      "nav.quality": "Quality reports",
      "lang.toggle": "한국어",
      "lang.toggle.title": "한국어로 보기",
      "loading": "Loading…",
      "noscript": "This portal needs JavaScript. The API itself is at /api/v1/datasets.",
      "catalog.title": "Datasets",
      "catalog.search": "Search",
      "catalog.search.placeholder": "Search by title, id, description or keyword",
      "catalog.count": "{shown} of {total} datasets",
      "catalog.empty": "No dataset matches the search.",
      "catalog.tier.all": "All",
      "catalog.tier.filter": "Tier",
      "field.id": "ID",
      "field.tier": "Tier",
      "field.cadence": "Cadence",
      "field.licence": "Licence",
      "field.last_update": "Last update",
      "field.rows": "Rows",
      "field.topic": "Kafka topic",
      "field.entity_type": "NGSI-LD entity type",
      "field.event_time": "Event-time column",
      "field.keywords": "Keywords",
      "tier.open": "Open",
      "tier.safezone": "Safe zone",
      "never": "not yet",
      "cadence.every": "every {n} {unit}",
      "unit.min": "min",
      "unit.hour": "h",
      "unit.day": "d",
      "ago.now": "just now",
      "ago.min": "{n} min ago",
      "ago.hour": "{n} h ago",
      "ago.day": "{n} d ago",
      "dataset.back": "← Datasets",
      "dataset.about": "About",
      "dataset.schema": "Schema",
      "dataset.freshness": "Freshness",
      "dataset.quality": "Quality",
      "dataset.preview": "Preview",
      "dataset.chart": "Time series",
      "dataset.map": "Sensor locations",
      "dataset.downloads": "Downloads",
      "schema.column": "Column",
      "schema.type": "Type",
      "schema.unit": "Unit",
      "schema.description": "Description",
      "schema.flags": "Notes",
      "schema.personal": "personal (pseudonymised)",
      "schema.quasi": "quasi-identifier (generalised)",
      "fresh.ok": "fresh",
      "fresh.stale": "late",
      "fresh.none": "Nothing has landed yet.",
      "fresh.detail": "Last update {when} ({ago}). Cadence {cadence}: shown as late once older than twice the cadence.",
      "quality.date": "Date (event)",
      "quality.rows": "Rows checked",
      "quality.clean": "Clean",
      "quality.quarantined": "Quarantined",
      "quality.share": "Clean share",
      "quality.failures": "Failed checks",
      "quality.none": "No quality results yet.",
      "quality.suite": "{n} Great Expectations checks",
      "quality.summary": "{clean} of {rows} rows clean, {quarantined} quarantined ({share})",
      "quality.docs": "GX Data Docs",
      "quality.kanon": "k-anonymity (smallest class over the quasi-identifiers)",
      "kanon.date": "Date",
      "kanon.k": "k (smallest class)",
      "kanon.threshold": "Threshold",
      "kanon.classes": "Classes",
      "kanon.below": "Classes below threshold",
      "preview.caption": "First {n} rows",
      "preview.none": "No rows yet.",
      "chart.column": "Numeric column",
      "chart.none": "No numeric column or no rows to draw.",
      "chart.caption": "{col}: readings of {rows} (points) and their mean per time (line), times in {tz}",
      "chart.mean": "mean",
      "map.none": "This dataset has no longitude/latitude columns.",
      "map.empty": "No row has a location.",
      "map.caption": "{points} locations in {rows} (WGS84, equirectangular projection, no base map)",
      "sample.since": "the {n} rows since {since} (UTC)",
      "sample.first": "the first {n} rows",
      "sample.truncated": "Only the first {n} rows of this range are drawn.",
      "downloads.intro": "The whole dataset, streamed. Every format holds the same rows.",
      "fmt.csv": "CSV (UTF-8)",
      "fmt.csv.desc": "RFC 4180, header row",
      "fmt.csv_bom": "CSV for Excel (BOM)",
      "fmt.csv_bom.desc": "UTF-8 with BOM, so Excel shows Korean text",
      "fmt.csv_cp949": "CSV (CP949)",
      "fmt.csv_cp949.desc": "legacy Korean Windows encoding",
      "fmt.parquet": "Parquet",
      "fmt.parquet.desc": "columnar, compressed, typed",
      "fmt.jsonl": "JSON Lines",
      "fmt.jsonl.desc": "one JSON object per line",
      "fmt.geojson": "GeoJSON",
      "fmt.geojson.desc": "RFC 7946 FeatureCollection, for GIS",
      "fmt.arrow": "Arrow IPC",
      "fmt.arrow.desc": "Apache Arrow stream",
      "fmt.ngsi_ld": "NGSI-LD",
      "fmt.ngsi_ld.desc": "FIWARE entities, keyValues",
      "safezone.title": "A data safe zone dataset",
      "safezone.note":
        "This dataset holds information that could identify people, so it can only be analysed inside the data " +
        "safe zone (데이터안심구역). Only its metadata and quality counts are public: there is no row preview, " +
        "chart, map or download. Apply for a safe-zone project to analyse it; results leave only as reviewed aggregates.",
      "error.title": "Error",
      "error.network": "Could not reach the server",
      "error.network.hint": "Check that the server is running and the network is up.",
      "error.status": "HTTP {status}",
      "error.hint": "Hint",
      "error.retry": "Try again",
    },
  };

  var KEY = "cityhub.lang";
  var listeners = [];

  function stored() {
    try {
      return window.localStorage.getItem(KEY);
    } catch (e) {
      return null;
    }
  }

  function initial() {
    var saved = stored();
    if (saved === "ko" || saved === "en") return saved;
    var nav = (navigator.languages && navigator.languages[0]) || navigator.language || "en";
    return /^ko\b/i.test(nav) ? "ko" : "en";
  }

  var lang = initial();

  function t(key, vars) {
    var text = LABELS[lang][key];
    if (text === undefined) text = LABELS.en[key];
    if (text === undefined) return key;
    if (vars && typeof vars === "object") {
      text = text.replace(/\{(\w+)\}/g, function (m, name) {
        return name in vars ? String(vars[name]) : m;
      });
    }
    return text;
  }

  function apply(root) {
    root = root || document;
    document.documentElement.lang = lang;
    root.querySelectorAll("[data-i18n]").forEach(function (el) {
      el.textContent = t(el.getAttribute("data-i18n"));
    });
    [["data-i18n-placeholder", "placeholder"], ["data-i18n-title", "title"], ["data-i18n-aria", "aria-label"]].forEach(
      function (pair) {
        root.querySelectorAll("[" + pair[0] + "]").forEach(function (el) {
          el.setAttribute(pair[1], t(el.getAttribute(pair[0])));
        });
      }
    );
  }

  function setLang(next) {
    if (next !== "ko" && next !== "en") return;
    lang = next;
    try {
      window.localStorage.setItem(KEY, next);
    } catch (e) {
      /* private mode: the choice lasts for this page only */
    }
    apply();
    listeners.forEach(function (fn) {
      fn(lang);
    });
  }

  window.cityhub = window.cityhub || {};
  window.cityhub.LABELS = LABELS;
  window.cityhub.t = t;
  window.cityhub.lang = function () {
    return lang;
  };
  window.cityhub.setLang = setLang;
  window.cityhub.onLang = function (fn) {
    listeners.push(fn);
  };
  window.cityhub.applyLabels = apply;
})();
