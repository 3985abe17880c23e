"""The portal as a visitor sees it: Debian's headless Chromium (through chromedriver and selenium) against a
real uvicorn server over a lake with landed data.

``make test`` installs Debian's ``chromium`` and ``chromium-driver`` when ``/usr/bin/chromium`` is missing; these
tests skip, saying why, only if either is still not there.
"""

from __future__ import annotations

import contextlib
import json
import shutil
import tempfile
import threading
import time
from collections.abc import Iterator
from datetime import date, timedelta
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest
import uvicorn

from catalog import all_contracts, get_contract
from infra.broker import free_port
from infra.settings import Settings
from ingest.produce import send
from ingest.runner import ingest_loop
from ingest.simulate import simulate
from serving.app import create_app

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
# How this machine's Chromium runs headless: without the background-networking flags it keeps trying Google's
# hosts, which the tests below would (rightly) count as requests to another host.
CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
    "--window-size=1280,1600",
)
OPEN, SAFE = "air_quality", "mobility_trips"
FORMATS = {
    "csv": "format=csv",
    "csv_bom": "format=csv&bom=true",
    "csv_cp949": "format=csv&encoding=cp949",
    "parquet": "format=parquet",
    "jsonl": "format=jsonl",
    "geojson": "format=geojson",
    "arrow": "format=arrow",
    "ngsi_ld": "format=ngsi-ld",
}
SAMPLE_ROWS = 5000  # dataset.js draws the chart and the map from this many first rows

selenium = pytest.importorskip("selenium", reason="selenium is a dev dependency: run `make setup`")
from selenium import webdriver  # noqa: E402
from selenium.common.exceptions import TimeoutException  # noqa: E402
from selenium.webdriver.chrome.service import Service  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.support.ui import Select, WebDriverWait  # noqa: E402


class _Server(uvicorn.Server):
    def install_signal_handlers(self) -> None:  # pytest's main thread keeps its own signal handlers
        pass


@pytest.fixture(scope="module")
def portal(chromium_available, broker, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A lake with landed air-quality readings and safe-zone trips, served by uvicorn on a free port."""
    home = tmp_path_factory.mktemp("portal") / "home"
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("CITYHUB_HOME", str(home))
        mp.setenv("CITYHUB_BROKER_PORT", str(broker.port))
        mp.setenv("CITYHUB_TOPIC_PREFIX", f"portal{free_port()}.")
        mp.delenv("CITYHUB_KAFKA_BOOTSTRAP", raising=False)
        settings = Settings()
        for dataset_id, count in ((OPEN, 250), (SAFE, 100)):
            contract = get_contract(dataset_id)
            send(settings, contract, simulate(contract, count, seed=11, bad_ratio=0.04)[0])
        ingest_loop(settings, [OPEN, SAFE])
        port = free_port()
        server = _Server(uvicorn.Config(create_app(settings), host="127.0.0.1", port=port, log_level="warning"))
        thread = threading.Thread(target=server.run, daemon=True)
        thread.start()
        deadline = time.monotonic() + 30
        while not server.started:
            assert thread.is_alive() and time.monotonic() < deadline, "uvicorn did not start"
            time.sleep(0.05)
        try:
            yield f"http://127.0.0.1:{port}"
        finally:
            server.should_exit = True
            thread.join(10)


def _chromium_missing() -> str | None:
    for path in (CHROMIUM, CHROMEDRIVER):
        if not shutil.which(path):
            return f"{path} is missing: `make test` installs Debian's chromium and chromium-driver (apt-get)"
    return None


@contextlib.contextmanager
def _started_browser(lang: str) -> Iterator[webdriver.Chrome]:
    """Chromium with a profile of its own, removed after it quits (each one is ~10 MB under /tmp)."""
    with tempfile.TemporaryDirectory(prefix="cityhub-chromium-") as profile:
        driver = _start_browser(lang, Path(profile))
        try:
            yield driver
        finally:
            driver.quit()


def _start_browser(lang: str, profile: Path) -> webdriver.Chrome:
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in CHROMIUM_FLAGS:
        options.add_argument(flag)
    options.add_argument(f"--lang={lang}")
    options.add_experimental_option("prefs", {"intl.accept_languages": lang})
    options.add_argument(f"--user-data-dir={profile}")
    # every request the page makes, from the DevTools network events
    options.set_capability("goog:loggingPrefs", {"performance": "ALL"})
    return webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)


@pytest.fixture(scope="module")
def chromium_available() -> None:
    reason = _chromium_missing()
    if reason:
        pytest.skip(reason)


@pytest.fixture
def browser(chromium_available) -> Iterator[webdriver.Chrome]:
    """A fresh English-speaking Chromium per test (a new profile: nothing remembered from another test)."""
    with _started_browser("en-US") as driver:
        yield driver


def _requested_urls(driver: webdriver.Chrome) -> list[str]:
    urls = []
    for entry in driver.get_log("performance"):
        message = json.loads(entry["message"])["message"]
        if message["method"] == "Network.requestWillBeSent":
            urls.append(message["params"]["request"]["url"])
    return urls


def _assert_only_local(driver: webdriver.Chrome, base: str) -> list[str]:
    """No request of the page went to another host, by DevTools' network log and the page's Resource Timing."""
    host = urlsplit(base).netloc
    seen = _requested_urls(driver)
    seen += driver.execute_script("return performance.getEntriesByType('resource').map(e => e.name)")
    seen += [driver.current_url]
    # chrome:// (the browser's own new-tab page), data: and blob: URLs never leave the machine
    network = [u for u in seen if urlsplit(u).scheme in ("http", "https", "ws", "wss", "ftp")]
    foreign = [u for u in network if urlsplit(u).netloc != host]
    assert network and not foreign, f"requests to other hosts: {foreign}"
    errors = [e for e in driver.get_log("browser") if e["level"] == "SEVERE" and e.get("source") != "network"]
    assert not errors, f"script errors: {errors}"
    return network


def _wait(driver: webdriver.Chrome, css: str, timeout: float = 20):
    try:
        return WebDriverWait(driver, timeout).until(lambda d: d.find_element(By.CSS_SELECTOR, css))
    except TimeoutException:
        logs = driver.get_log("browser")
        raise AssertionError(f"{css} never appeared; browser console: {logs}") from None


def _open_dataset(driver: webdriver.Chrome, base: str, dataset_id: str, rows: bool = True) -> None:
    driver.get(f"{base}/datasets/{dataset_id}")
    _wait(driver, "#dataset[data-rows-loaded]" if rows else "#dataset[data-loaded]")


def _all_rows(base: str, dataset_id: str, **filters: str) -> list[dict]:
    rows, cursor = [], None
    while True:
        params = {"limit": 1000, **filters, **({"cursor": cursor} if cursor else {})}
        page = httpx.get(f"{base}/api/v1/datasets/{dataset_id}/records", params=params).json()
        rows += page["rows"]
        cursor = page["next_cursor"]
        if not cursor:
            return rows


def _visible_ids(driver: webdriver.Chrome) -> list[str]:
    return [card.get_attribute("data-id") for card in driver.find_elements(By.CSS_SELECTOR, "#catalog .dataset-card")]


def test_catalog_lists_every_dataset_and_search_filters_them(portal, browser):
    browser.get(portal + "/")
    _wait(browser, "#catalog .dataset-card")
    api = httpx.get(f"{portal}/api/v1/datasets").json()["datasets"]
    assert _visible_ids(browser) == [d["id"] for d in api] == [c.id for c in all_contracts()]

    card = browser.find_element(By.CSS_SELECTOR, f'.dataset-card[data-id="{OPEN}"]')
    meta = next(d for d in api if d["id"] == OPEN)
    assert meta["title"]["en"] in card.text and meta["title"]["ko"] in card.text
    assert card.find_element(By.CSS_SELECTOR, ".badge").text == "Open"
    assert card.find_element(By.CSS_SELECTOR, ".cadence").text == "every 1 h"
    assert card.find_element(By.CSS_SELECTOR, ".licence").text == meta["licence"]
    assert card.find_element(By.CSS_SELECTOR, ".last-update").get_attribute("title") == meta["last_update"]
    safe = browser.find_element(By.CSS_SELECTOR, f'.dataset-card[data-id="{SAFE}"]')
    assert safe.find_element(By.CSS_SELECTOR, ".badge").text == "Safe zone"
    never = browser.find_element(By.CSS_SELECTOR, '.dataset-card[data-id="water_quality"] .last-update')
    assert never.text == "not yet"  # nothing landed for it in this lake

    search = browser.find_element(By.ID, "search")
    for query, expected in (
        ("미세먼지", {"air_quality", "kr_air_quality"}),  # a Korean keyword
        ("Shared mobility", {SAFE, "mobility_od_daily", "mobility_od_hourly"}),  # English title, two words
        ("streetlights", {"streetlights"}),  # the id
        ("AMI smart meters", {"energy_usage"}),  # the description
        ("no such dataset here", set()),
    ):
        search.clear()
        search.send_keys(query)
        assert set(_visible_ids(browser)) == expected, query
        count = browser.find_element(By.ID, "catalog-count").text
        assert count == f"{len(expected)} of {len(api)} datasets"
    assert browser.find_element(By.CSS_SELECTOR, "#catalog-status .empty").text == "No dataset matches the search."
    search.clear()
    search.send_keys("air")
    assert "q=air" in browser.current_url  # the search is in the address, so it can be linked
    Select(browser.find_element(By.ID, "tier-filter")).select_by_value("safezone")
    assert _visible_ids(browser) == []
    search.clear()
    search.send_keys(" ")
    assert set(_visible_ids(browser)) == {c.id for c in all_contracts() if not c.is_open}

    browser.get(portal + "/?q=traffic")
    _wait(browser, "#catalog .dataset-card")
    assert _visible_ids(browser) == ["traffic_flow"]
    browser.find_element(By.CSS_SELECTOR, ".dataset-card .dataset-link").click()
    _wait(browser, "#dataset[data-loaded]")
    assert urlsplit(browser.current_url).path == "/datasets/traffic_flow"
    _assert_only_local(browser, portal)


def test_dataset_page_shows_schema_preview_chart_map_and_every_download(portal, browser):
    _open_dataset(browser, portal, OPEN)
    meta = httpx.get(f"{portal}/api/v1/datasets/{OPEN}").json()
    assert browser.find_element(By.ID, "dataset-title").text == meta["title"]["en"]
    assert browser.find_element(By.ID, "dataset-description").text == meta["description"]
    assert not browser.find_element(By.ID, "safezone-note").is_displayed()

    # schema: every column, with its type, unit and description
    schema = browser.find_elements(By.CSS_SELECTOR, "#schema-table tbody tr")
    columns = [c for c in meta["columns"] if not c["name"].startswith("_")]
    assert [r.find_element(By.CSS_SELECTOR, "td").text for r in schema] == [c["name"] for c in columns]
    pm10 = next(r for r in schema if r.find_element(By.CSS_SELECTOR, "td").text == "pm10")
    assert "double" in pm10.text and "µg/m³" in pm10.text
    assert next(c for c in columns if c["name"] == "pm10")["description"] in pm10.text

    # freshness and quality
    assert browser.find_element(By.CSS_SELECTOR, "#freshness-body .freshness").get_attribute("data-state") == "fresh"
    quality = httpx.get(f"{portal}/api/v1/datasets/{OPEN}/quality").json()
    quality_rows = browser.find_elements(By.CSS_SELECTOR, "#quality-table tbody tr")
    dates = [r.find_element(By.CSS_SELECTOR, "td").text for r in quality_rows]
    assert dates == [p["date"] for p in quality["partitions"]] and dates
    summary = browser.find_element(By.CSS_SELECTOR, ".quality-summary").text
    assert f"{sum(p['quarantined'] for p in quality['partitions'])} quarantined" in summary

    # preview: the first 20 rows, the values the API gives
    first = httpx.get(f"{portal}/api/v1/datasets/{OPEN}/records", params={"limit": 20}).json()["rows"]
    head = [th.text for th in browser.find_elements(By.CSS_SELECTOR, "#preview-table thead th")]
    rows = browser.find_elements(By.CSS_SELECTOR, "#preview-table tbody tr")
    assert len(rows) == 20 == len(first)
    for row, api_row in zip(rows, first, strict=True):
        cells = dict(zip(head, [td.text for td in row.find_elements(By.CSS_SELECTOR, "td")], strict=True))
        assert cells["station_id"] == api_row["station_id"]
        assert cells["observed_at"] == api_row["observed_at"]
        assert cells["station_name"] == api_row["station_name"]
        if api_row["air_quality_index"] is not None:
            assert cells["air_quality_index"] == str(api_row["air_quality_index"])

    # chart and map: from the day before the newest event date with clean rows (UTC) on
    chart = browser.find_element(By.ID, "chart-svg")
    newest = next(p["date"] for p in quality["partitions"] if p["clean"])
    since = (date.fromisoformat(newest) - timedelta(days=1)).isoformat()
    assert chart.get_attribute("data-since") == since
    every = _all_rows(portal, OPEN, since=f"{since}T00:00:00Z")
    assert 0 < len(every) < SAMPLE_ROWS  # so the chart and the map show every row of that range
    column = chart.get_attribute("data-column")
    assert column == "pm10"
    points = chart.find_elements(By.CSS_SELECTOR, "circle.point")
    assert len(points) == sum(1 for r in every if r[column] is not None) > 0
    assert chart.find_element(By.CSS_SELECTOR, "path.mean").get_attribute("d").startswith("M")
    Select(browser.find_element(By.ID, "chart-column")).select_by_value("no2")
    chart = browser.find_element(By.ID, "chart-svg")
    assert chart.get_attribute("data-column") == "no2"
    assert len(chart.find_elements(By.CSS_SELECTOR, "circle.point")) == sum(1 for r in every if r["no2"] is not None)

    # map: one point per distinct location in the data, where the data says
    locations = {(r["lon"], r["lat"]) for r in every if r["lon"] is not None and r["lat"] is not None}
    assert browser.find_element(By.ID, "map-svg").get_attribute("data-since") == since
    dots = browser.find_elements(By.CSS_SELECTOR, "#map-svg circle.point")
    assert len(dots) == len(locations) > 1
    assert {(float(d.get_attribute("data-lon")), float(d.get_attribute("data-lat"))) for d in dots} == locations
    # projected: east is right, north is up
    west = min(dots, key=lambda d: float(d.get_attribute("data-lon")))
    east = max(dots, key=lambda d: float(d.get_attribute("data-lon")))
    north = max(dots, key=lambda d: float(d.get_attribute("data-lat")))
    south = min(dots, key=lambda d: float(d.get_attribute("data-lat")))
    assert float(west.get_attribute("cx")) < float(east.get_attribute("cx"))
    assert float(north.get_attribute("cy")) < float(south.get_attribute("cy"))

    # downloads: all eight formats
    links = browser.find_elements(By.CSS_SELECTOR, "#download-list a.download")
    hrefs = {a.get_attribute("data-format"): a.get_attribute("href") for a in links}
    assert hrefs == {f: f"{portal}/api/v1/datasets/{OPEN}/download?{q}" for f, q in FORMATS.items()}
    assert all(a.is_displayed() and a.text for a in links)
    for fmt in ("csv", "parquet", "jsonl"):  # the formats the API serves on this branch
        response = httpx.get(hrefs[fmt])
        assert response.status_code == 200 and response.content, fmt

    urls = _assert_only_local(browser, portal)
    assert any("/records?limit=20" in u for u in urls)


def test_language_toggle_switches_every_label_and_is_remembered(portal, browser):
    _open_dataset(browser, portal, OPEN)
    labels = browser.execute_script("return window.cityhub.LABELS")
    assert set(labels["ko"]) == set(labels["en"])  # every label in both languages
    assert all(labels["ko"][k].strip() and labels["en"][k].strip() for k in labels["en"])

    def heading(section: str) -> str:
        return browser.find_element(By.CSS_SELECTOR, f"#{section} h2").text

    assert browser.find_element(By.TAG_NAME, "html").get_attribute("lang") == "en"
    assert (heading("schema"), heading("downloads"), heading("map")) == ("Schema", "Downloads", "Sensor locations")
    toggle = browser.find_element(By.ID, "lang-toggle")
    assert toggle.text == "한국어"
    toggle.click()
    assert browser.find_element(By.TAG_NAME, "html").get_attribute("lang") == "ko"
    assert (heading("schema"), heading("downloads"), heading("map")) == ("스키마", "내려받기", "센서 위치 지도")
    assert browser.find_element(By.ID, "lang-toggle").text == "English"
    assert browser.find_element(By.ID, "dataset-title").text == "대기질 관측"
    bom = browser.find_element(By.CSS_SELECTOR, 'a.download[data-format="csv_bom"]')
    assert bom.text == "CSV (엑셀용, BOM)"
    assert browser.find_element(By.CSS_SELECTOR, "#schema-table thead th").text == "열"

    def untranslated() -> list[str]:
        text = browser.find_element(By.TAG_NAME, "body").text
        return [key for key in labels["en"] if key in text]

    assert untranslated() == []
    browser.refresh()  # remembered
    _wait(browser, "#dataset[data-rows-loaded]")
    assert heading("schema") == "스키마"
    browser.get(portal + "/")
    _wait(browser, "#catalog .dataset-card")
    assert browser.find_element(By.TAG_NAME, "h1").text == "데이터 목록"
    assert browser.find_element(By.CSS_SELECTOR, f'.dataset-card[data-id="{SAFE}"] .badge').text == "데이터안심구역"
    assert "개" in browser.find_element(By.ID, "catalog-count").text
    assert untranslated() == []
    browser.find_element(By.ID, "lang-toggle").click()
    assert browser.find_element(By.TAG_NAME, "h1").text == "Datasets"
    assert untranslated() == []
    _assert_only_local(browser, portal)


def test_default_language_follows_the_browser(portal, chromium_available):
    with _started_browser("ko-KR") as driver:
        driver.get(portal + "/")
        _wait(driver, "#catalog .dataset-card")
        assert driver.execute_script("return navigator.language").startswith("ko")
        assert driver.find_element(By.TAG_NAME, "html").get_attribute("lang") == "ko"
        assert driver.find_element(By.ID, "search").get_attribute("placeholder") == "제목, ID, 설명, 키워드로 검색"


def test_safe_zone_dataset_page_shows_metadata_and_quality_only(portal, browser):
    _open_dataset(browser, portal, SAFE, rows=False)
    note = browser.find_element(By.ID, "safezone-note")
    assert note.is_displayed() and "data safe zone" in note.text
    assert browser.find_element(By.CSS_SELECTOR, "#dataset-tier .badge").text == "Safe zone"
    meta = httpx.get(f"{portal}/api/v1/datasets/{SAFE}").json()
    schema = browser.find_elements(By.CSS_SELECTOR, "#schema-table tbody tr")
    assert len(schema) == len([c for c in meta["columns"] if not c["name"].startswith("_")])
    assert "personal (pseudonymised)" in browser.find_element(By.ID, "schema-table").text
    assert browser.find_elements(By.CSS_SELECTOR, "#quality-table tbody tr")
    for section in ("preview", "chart", "map", "downloads"):
        assert not browser.find_element(By.ID, section).is_displayed(), section
    assert browser.find_elements(By.CSS_SELECTOR, "a.download") == []
    assert browser.find_elements(By.CSS_SELECTOR, "#preview-table, #chart-svg, #map-svg") == []
    urls = _assert_only_local(browser, portal)
    assert not [u for u in urls if "/records" in u or "/download" in u]


def test_api_errors_are_shown_readably(portal, browser):
    browser.get(portal + "/datasets/no_such_dataset")
    box = _wait(browser, "#dataset-status .error")
    api = httpx.get(f"{portal}/api/v1/datasets/no_such_dataset")
    error = api.json()["error"]
    assert box.get_attribute("data-status") == str(error["status"]) == "404"
    assert error["code"] in box.find_element(By.CSS_SELECTOR, ".error-head").text
    assert box.find_element(By.CSS_SELECTOR, ".error-message").text == error["message"]
    if error["hint"]:
        assert error["hint"] in box.find_element(By.CSS_SELECTOR, ".error-hint").text
    assert not browser.find_element(By.ID, "dataset").is_displayed()
    assert box.find_element(By.CSS_SELECTOR, "button.retry").is_displayed()
    _assert_only_local(browser, portal)


def test_a_server_out_of_reach_is_said_so_and_the_rest_of_a_page_still_shows(portal, browser):
    browser.execute_cdp_cmd("Network.enable", {})
    browser.execute_cdp_cmd("Network.setBlockedURLs", {"urls": ["*/api/v1/datasets"]})
    browser.get(portal + "/")
    box = _wait(browser, "#catalog-status .error")
    assert "Could not reach the server" in box.text and box.find_element(By.CSS_SELECTOR, ".error-hint").text
    assert _visible_ids(browser) == []
    browser.execute_cdp_cmd("Network.setBlockedURLs", {"urls": []})
    box.find_element(By.CSS_SELECTOR, "button.retry").click()
    _wait(browser, "#catalog .dataset-card")
    assert len(_visible_ids(browser)) == len(all_contracts())

    # the rows failing leaves the metadata, schema and quality in place, and says so where the rows would be
    browser.execute_cdp_cmd("Network.setBlockedURLs", {"urls": ["*/records?*"]})
    _open_dataset(browser, portal, OPEN)
    assert browser.find_elements(By.CSS_SELECTOR, "#schema-table tbody tr")
    assert browser.find_elements(By.CSS_SELECTOR, "#quality-table tbody tr")
    for section in ("preview", "chart", "map"):
        assert "Could not reach the server" in browser.find_element(By.CSS_SELECTOR, f"#{section} .error").text
    assert len(browser.find_elements(By.CSS_SELECTOR, "#download-list a.download")) == len(FORMATS)
