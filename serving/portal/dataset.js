/* cityhub portal, dataset page: metadata, schema, freshness, quality; for open datasets also a preview,
 * a time-series chart, a map of the locations in the data and the downloads. */
(function () {
  "use strict";
  var ch = window.cityhub;
  var t = ch.t;
  var el = ch.el;
  var fmt = ch.fmt;

  var PREVIEW_ROWS = 20;
  // The chart and the map draw at most this many rows, from the start (UTC) of the day before the newest event
  // date with clean rows in the quality report: the latest one to two days rather than the oldest rows.
  var SAMPLE_ROWS = 5000;
  var NUMERIC = /^(double|float|halffloat|int\d*|uint\d*|decimal.*)$/;
  /* Every format /download serves; csv thrice (plain, BOM for Excel, CP949). */
  var FORMATS = [
    ["csv", "format=csv"],
    ["csv_bom", "format=csv&bom=true"],
    ["csv_cp949", "format=csv&encoding=cp949"],
    ["parquet", "format=parquet"],
    ["jsonl", "format=jsonl"],
    ["geojson", "format=geojson"],
    ["arrow", "format=arrow"],
    ["ngsi_ld", "format=ngsi-ld"],
  ];
  /* UN/CEFACT common codes of the catalog's units, as people read them. */
  var UNITS = {
    GQ: "µg/m³", GP: "mg/m³", CEL: "°C", FAH: "°F", KEL: "K", C62: "1", P1: "%", MTS: "m/s", KMH: "km/h",
    SEC: "s", MIN: "min", MTR: "m", KTM: "km", CMT: "cm", MMT: "mm", KWH: "kWh", WHR: "Wh", KWT: "kW", WTT: "W",
    A97: "hPa", HPA: "hPa", PAL: "Pa", "2N": "dB", LUX: "lx", DD: "°", KGM: "kg", LTR: "L", M1: "mg/L",
    D10: "S/m", MQH: "m³/h", 59: "ppm", 61: "ppb", KRW: "₩", VLT: "V",
  };

  var id = decodeURIComponent(location.pathname.replace(/\/+$/, "").split("/").pop());
  var base = "/api/v1/datasets/" + encodeURIComponent(id);
  var state = { meta: null, quality: null, preview: null, sample: null, chartColumn: null };

  var status = document.getElementById("dataset-status");
  var article = document.getElementById("dataset");
  var chartSelect = document.getElementById("chart-column");

  function unitLabel(code) {
    if (!code) return "";
    return UNITS[code] ? UNITS[code] : code;
  }

  function columnsOf(meta) {
    return meta.columns.filter(function (c) {
      return c.name.charAt(0) !== "_";
    });
  }

  function fact(dl, key, value) {
    dl.appendChild(el("dt", { text: t(key) }));
    dl.appendChild(typeof value === "string" ? el("dd", { text: value }) : el("dd", {}, value));
  }

  function renderAbout(meta) {
    var names = fmt.title(meta);
    document.title = names.main + " · " + t("site.name");
    document.getElementById("dataset-title").textContent = names.main;
    ch.clear(document.getElementById("dataset-tier")).appendChild(ch.tierBadge(meta.tier));
    document.getElementById("dataset-subtitle").textContent = names.other;
    document.getElementById("dataset-description").textContent = meta.description;
    var dl = ch.clear(document.getElementById("about-facts"));
    fact(dl, "field.id", el("code", { text: meta.id }));
    fact(dl, "field.tier", ch.tierBadge(meta.tier));
    fact(dl, "field.cadence", fmt.cadence(meta.cadence));
    fact(dl, "field.licence", meta.licence);
    fact(dl, "field.last_update", fmt.dateTime(meta.last_update));
    if (typeof meta.row_count === "number") fact(dl, "field.rows", fmt.number(meta.row_count, 0));
    fact(dl, "field.entity_type", meta.entity_type || "–");
    fact(dl, "field.event_time", el("code", { text: meta.event_time }));
    fact(dl, "field.topic", el("code", { text: meta.topic }));
    fact(dl, "field.keywords", (meta.keywords || []).join(", "));
  }

  function renderFreshness(meta) {
    var body = ch.clear(document.getElementById("freshness-body"));
    if (!meta.last_update) {
      body.appendChild(el("p", { class: "freshness", "data-state": "none", text: t("fresh.none") }));
      return;
    }
    var age = Date.now() - new Date(meta.last_update).getTime();
    var limit = fmt.cadenceMs(meta.cadence);
    var late = limit !== null && age > 2 * limit;
    body.appendChild(
      el(
        "p",
        { class: "freshness", "data-state": late ? "late" : "fresh" },
        el("span", { class: "badge " + (late ? "badge-late" : "badge-fresh"), text: t(late ? "fresh.stale" : "fresh.ok") }),
        " ",
        t("fresh.detail", { when: fmt.dateTime(meta.last_update), ago: fmt.ago(meta.last_update), cadence: fmt.cadence(meta.cadence) })
      )
    );
  }

  function table(headers, rows, attrs) {
    var thead = el("thead", {}, el("tr", {}));
    headers.forEach(function (h) {
      thead.firstChild.appendChild(el("th", { scope: "col", text: h }));
    });
    var tbody = el("tbody", {});
    rows.forEach(function (cells) {
      var tr = el("tr", {});
      cells.forEach(function (c) {
        tr.appendChild(c instanceof Node ? el("td", {}, c) : el("td", { text: c === null || c === undefined ? "" : String(c) }));
      });
      tbody.appendChild(tr);
    });
    return el("table", attrs || {}, thead, tbody);
  }

  function renderSchema(meta) {
    var rows = columnsOf(meta).map(function (c) {
      var flags = [];
      if (c.personal) flags.push(t("schema.personal"));
      if (c.quasi_identifier) flags.push(t("schema.quasi") + (c.generalise ? ": " + c.generalise : ""));
      return [
        el("code", { text: c.name }),
        c.type,
        c.unit ? unitLabel(c.unit) + (UNITS[c.unit] ? " (" + c.unit + ")" : "") : "",
        c.description || "",
        flags.join("; "),
      ];
    });
    var head = ["schema.column", "schema.type", "schema.unit", "schema.description", "schema.flags"].map(t);
    ch.clear(document.getElementById("schema-body")).appendChild(table(head, rows, { id: "schema-table", class: "data" }));
  }

  function failures(part) {
    var names = Object.keys(part.failures || {}).concat(Object.keys(part.problems || {}));
    var all = Object.assign({}, part.problems || {}, part.failures || {});
    return names
      .filter(function (n, i) { return names.indexOf(n) === i; })
      .map(function (n) { return n + " × " + all[n]; })
      .join(", ");
  }

  function renderQuality() {
    var body = ch.clear(document.getElementById("quality-body"));
    if (state.quality instanceof ch.ApiError) {
      body.appendChild(ch.errorBox(state.quality));
      return;
    }
    var q = state.quality;
    if (!q) return;
    var parts = q.partitions || [];
    var totals = parts.reduce(
      function (acc, p) {
        acc.rows += p.rows; acc.clean += p.clean; acc.quarantined += p.quarantined;
        return acc;
      },
      { rows: 0, clean: 0, quarantined: 0 }
    );
    if (!parts.length) {
      body.appendChild(el("p", { class: "empty", text: t("quality.none") }));
    } else {
      body.appendChild(el("p", {
        class: "quality-summary",
        text: t("quality.summary", {
          rows: fmt.number(totals.rows, 0), clean: fmt.number(totals.clean, 0),
          quarantined: fmt.number(totals.quarantined, 0), share: fmt.percent(totals.clean, totals.rows),
        }),
      }));
      var head = ["quality.date", "quality.rows", "quality.clean", "quality.quarantined", "quality.share", "quality.failures"].map(t);
      body.appendChild(el("div", { class: "scroll" }, table(head, parts.map(function (p) {
        return [p.date, fmt.number(p.rows, 0), fmt.number(p.clean, 0), fmt.number(p.quarantined, 0),
          fmt.percent(p.clean, p.rows), failures(p)];
      }), { id: "quality-table", class: "data" })));
    }
    if (q.k_anonymity && q.k_anonymity.length) {
      body.appendChild(el("h3", { text: t("quality.kanon") }));
      body.appendChild(el("div", { class: "scroll" }, table(
        ["kanon.date", "kanon.k", "kanon.threshold", "kanon.classes", "kanon.below"].map(t),
        q.k_anonymity.map(function (r) { return [r.date, r.k, r.threshold, r.classes, r.classes_below_threshold]; }),
        { class: "data" }
      )));
    }
    var suite = el("details", {}, el("summary", { text: t("quality.suite", { n: (q.suite || []).length }) }));
    var list = el("ul", { class: "suite" });
    (q.suite || []).forEach(function (name) { list.appendChild(el("li", {}, el("code", { text: name }))); });
    suite.appendChild(list);
    body.appendChild(suite);
    body.appendChild(el("p", {}, el("a", { href: "/quality/", text: t("quality.docs") }), " · ",
      el("a", { href: base + "/quality", text: "JSON" })));
  }

  function cell(value, type) {
    if (value === null || value === undefined) return el("span", { class: "null", text: "–" });
    if (typeof value === "number") return NUMERIC.test(type || "") ? fmt.number(value, 6) : String(value);
    if (typeof value === "object") return JSON.stringify(value);
    return String(value);
  }

  function sampleSince() {
    var parts = state.quality && !(state.quality instanceof ch.ApiError) ? state.quality.partitions || [] : [];
    var newest = parts.find(function (p) { return p.clean > 0; });
    var day = newest ? Date.parse(newest.date + "T00:00:00Z") : NaN;
    return isFinite(day) ? new Date(day - 86400e3).toISOString().slice(0, 10) : null;
  }

  function sampleRows() {
    var n = fmt.number(state.sample.count, 0);
    return state.sampleSince ? t("sample.since", { n: n, since: state.sampleSince }) : t("sample.first", { n: n });
  }

  function sampleNote(page) {
    if (!page.truncated) return null;
    return el("p", { class: "note-small", text: t("sample.truncated", { n: fmt.number(page.count, 0) }) });
  }

  function renderPreview(meta) {
    var body = ch.clear(document.getElementById("preview-body"));
    if (state.preview instanceof ch.ApiError) {
      body.appendChild(ch.errorBox(state.preview, loadRows));
      return;
    }
    if (!state.preview) {
      body.appendChild(el("p", { class: "loading", text: t("loading") }));
      return;
    }
    var rows = state.preview.rows || [];
    if (!rows.length) {
      body.appendChild(el("p", { class: "empty", text: t("preview.none") }));
      return;
    }
    var cols = columnsOf(meta);
    var types = {};
    cols.forEach(function (c) { types[c.name] = c.type; });
    var names = cols.map(function (c) { return c.name; }).filter(function (n) { return n in rows[0]; });
    var tbl = table(names, rows.map(function (r) {
      return names.map(function (n) { return cell(r[n], types[n]); });
    }), { id: "preview-table", class: "data" });
    tbl.insertBefore(el("caption", { text: t("preview.caption", { n: rows.length }) }), tbl.firstChild);
    body.appendChild(tbl);
  }

  function numericColumns(meta) {
    return columnsOf(meta).filter(function (c) {
      return NUMERIC.test(c.type) && !/(^|_)(lon|lat|longitude|latitude)$/.test(c.name);
    });
  }

  function renderChart(meta) {
    var body = ch.clear(document.getElementById("chart-body"));
    if (state.sample instanceof ch.ApiError) {
      body.appendChild(ch.errorBox(state.sample, loadRows));
      return;
    }
    if (!state.sample) {
      body.appendChild(el("p", { class: "loading", text: t("loading") }));
      return;
    }
    var column = state.chartColumn;
    var col = meta.columns.find(function (c) { return c.name === column; });
    var drawn = column && ch.plots.timeSeries(state.sample.rows, meta.event_time, column, col ? unitLabel(col.unit) : "");
    if (!drawn) {
      body.appendChild(el("p", { class: "empty", text: t("chart.none") }));
      return;
    }
    drawn.id = "chart-svg";
    if (state.sampleSince) drawn.setAttribute("data-since", state.sampleSince);
    body.appendChild(drawn);
    var tz = Intl.DateTimeFormat().resolvedOptions().timeZone || "local time";
    body.appendChild(el("p", { class: "caption", text: t("chart.caption", { col: column, rows: sampleRows(), tz: tz }) }));
    var note = sampleNote(state.sample);
    if (note) body.appendChild(note);
  }

  function locationColumns(meta) {
    var names = meta.columns.map(function (c) { return c.name; });
    var pairs = [["lon", "lat"], ["longitude", "latitude"]];
    names.forEach(function (n) {
      var m = /^(.*)_lon$/.exec(n);
      if (m && names.indexOf(m[1] + "_lat") !== -1) pairs.push([n, m[1] + "_lat"]);
    });
    return pairs.find(function (p) { return names.indexOf(p[0]) !== -1 && names.indexOf(p[1]) !== -1; }) || null;
  }

  function renderMap(meta) {
    var body = ch.clear(document.getElementById("map-body"));
    var lonlat = locationColumns(meta);
    if (!lonlat) {
      body.appendChild(el("p", { class: "empty", id: "map-none", text: t("map.none") }));
      return;
    }
    if (state.sample instanceof ch.ApiError) {
      body.appendChild(ch.errorBox(state.sample, loadRows));
      return;
    }
    if (!state.sample) {
      body.appendChild(el("p", { class: "loading", text: t("loading") }));
      return;
    }
    var names = meta.columns.map(function (c) { return c.name; });
    var label = ["station_name", "name", "street_address"].find(function (n) { return names.indexOf(n) !== -1; }) ||
      (meta.key_columns || [])[0] || null;
    var col = meta.columns.find(function (c) { return c.name === state.chartColumn; });
    var drawn = ch.plots.locations(state.sample.rows, lonlat[0], lonlat[1], label, state.chartColumn, col ? unitLabel(col.unit) : "");
    if (!drawn) {
      body.appendChild(el("p", { class: "empty", text: t("map.empty") }));
      return;
    }
    drawn.svg.id = "map-svg";
    drawn.svg.setAttribute("data-points", drawn.count);
    if (state.sampleSince) drawn.svg.setAttribute("data-since", state.sampleSince);
    body.appendChild(drawn.svg);
    body.appendChild(el("p", { class: "caption", text: t("map.caption", { points: drawn.count, rows: sampleRows() }) }));
    var note = sampleNote(state.sample);
    if (note) body.appendChild(note);
  }

  function renderDownloads(meta) {
    var list = ch.clear(document.getElementById("download-list"));
    FORMATS.forEach(function (f) {
      var href = base + "/download?" + f[1];
      list.appendChild(el(
        "li",
        {},
        el("a", { class: "download button", href: href, download: "", "data-format": f[0] }, t("fmt." + f[0])),
        " ",
        el("span", { class: "format-desc", text: t("fmt." + f[0] + ".desc") })
      ));
    });
  }

  function renderChartChoices(meta) {
    var numeric = numericColumns(meta);
    ch.clear(chartSelect);
    numeric.forEach(function (c) {
      chartSelect.appendChild(el("option", { value: c.name, text: c.name + (c.unit ? " (" + unitLabel(c.unit) + ")" : "") }));
    });
    if (!state.chartColumn || !numeric.some(function (c) { return c.name === state.chartColumn; })) {
      var withUnit = numeric.find(function (c) { return c.unit; });
      state.chartColumn = (withUnit || numeric[0] || {}).name || null;
    }
    if (state.chartColumn) chartSelect.value = state.chartColumn;
    chartSelect.disabled = !numeric.length;
  }

  function render() {
    var meta = state.meta;
    if (!meta) return;
    var open = meta.tier === "open";
    renderAbout(meta);
    document.getElementById("safezone-note").hidden = open;
    article.querySelectorAll("[data-open-only]").forEach(function (s) { s.hidden = !open; });
    renderFreshness(meta);
    renderQuality();
    renderSchema(meta);
    if (open) {
      renderDownloads(meta);
      renderPreview(meta);
      renderChart(meta);
      renderMap(meta);
    }
    ch.applyLabels(article);
  }

  function captured(promise) {
    return promise.then(null, function (error) { return error instanceof ch.ApiError ? error : new ch.ApiError(0, "error", String(error), ""); });
  }

  function loadRows() {
    state.preview = null;
    state.sample = null;
    state.sampleSince = sampleSince();
    var since = state.sampleSince ? "&since=" + state.sampleSince + "T00:00:00Z" : "";
    render();
    Promise.all([
      captured(ch.api(base + "/records?limit=" + PREVIEW_ROWS)),
      captured(ch.api(base + "/records?limit=" + SAMPLE_ROWS + since)),
    ]).then(function (got) {
      state.preview = got[0];
      state.sample = got[1];
      render();
      article.setAttribute("data-rows-loaded", "true");
    });
  }

  function load() {
    ch.clear(status).appendChild(el("p", { class: "loading", text: t("loading") }));
    Promise.all([ch.api(base), captured(ch.api(base + "/quality"))]).then(
      function (got) {
        state.meta = got[0];
        state.quality = got[1];
        ch.clear(status);
        article.hidden = false;
        renderChartChoices(state.meta);
        render();
        article.setAttribute("data-loaded", "true");
        if (state.meta.tier === "open") loadRows();
      },
      function (error) {
        article.hidden = true;
        ch.clear(status).appendChild(ch.errorBox(error, load));
        status.setAttribute("data-loaded", "error");
      }
    );
  }

  chartSelect.addEventListener("change", function () {
    state.chartColumn = chartSelect.value;
    renderChart(state.meta);
    renderMap(state.meta);
  });
  ch.onLang(function () {
    if (state.meta) {
      renderChartChoices(state.meta);
      render();
    } else if (status.querySelector(".error")) {
      load();
    }
  });
  ch.setupHeader();
  load();
})();
