"""Catalog search, aggregates, the changes feed, conditional GETs, gzip and rate limits, over real DuckDB + HTTP."""

from __future__ import annotations

import statistics
from collections import defaultdict
from datetime import UTC, datetime

import pyarrow as pa
import pytest
from fastapi.testclient import TestClient

from catalog import all_contracts, get_contract
from ingest.produce import send
from ingest.runner import ingest_loop
from ingest.simulate import simulate
from serving.app import create_app
from serving.http import TokenBuckets
from tests.serving.test_api import assert_error
from transforms import geo

API = "/api/v1/datasets"


@pytest.fixture
def landed(settings):
    for dataset_id, count in (("air_quality", 300), ("mobility_trips", 100)):
        contract = get_contract(dataset_id)
        send(settings, contract, simulate(contract, count, seed=5, bad_ratio=0.03)[0])
    ingest_loop(settings, ["air_quality", "mobility_trips"])
    return settings


@pytest.fixture
def client(landed):
    with TestClient(create_app(landed)) as test_client:
        yield test_client


def _all_rows(client, dataset_id: str) -> list[dict]:
    return client.get(f"{API}/{dataset_id}/records", params={"limit": 10000}).json()["rows"]


def test_catalog_search_finds_by_korean_and_english_words_and_tier(client):
    assert client.get(API).json()["count"] == len(all_contracts())
    for query in ("대기질", "AIR quality", "air_quality"):
        found = [d["id"] for d in client.get(API, params={"q": query}).json()["datasets"]]
        assert "air_quality" in found and "parking_spots" not in found, query
    assert client.get(API, params={"q": "no such words anywhere"}).json() == {"count": 0, "datasets": []}
    safe = client.get(API, params={"tier": "safezone"}).json()["datasets"]
    assert {d["id"] for d in safe} == {c.id for c in all_contracts() if not c.is_open}
    assert_error(client.get(API, params={"tier": "secret"}), 400, "bad_request")


def test_catalog_metadata_carries_quality_row_counts_and_dcat(client):
    air = next(d for d in client.get(API).json()["datasets"] if d["id"] == "air_quality")
    rows = _all_rows(client, "air_quality")
    assert air["row_count"] == len(rows) == air["quality"]["clean_rows"]
    assert air["quality"]["quarantined_rows"] > 0 and 0 < air["quality"]["clean_ratio"] < 1
    assert air["dcat"]["dct:identifier"] == "air_quality" and air["dcat"]["dcat:distribution"]
    assert {t["@language"] for t in air["dcat"]["dct:title"]} == {"ko", "en"}
    safe = next(d for d in client.get(API).json()["datasets"] if d["id"] == "mobility_trips")
    assert "row_count" not in safe and safe["dcat"]["dcat:distribution"] == []


def test_hourly_aggregate_by_district_matches_an_independent_computation(client):
    rows = _all_rows(client, "air_quality")
    places = geo.district(pa.array([r["lon"] for r in rows], pa.float64()), pa.array([r["lat"] for r in rows]))
    expected: dict[tuple, list[float]] = defaultdict(list)
    counts: dict[tuple, int] = defaultdict(int)
    for row, place in zip(rows, places.to_pylist(), strict=True):
        hour = datetime.fromisoformat(row["observed_at"]).replace(minute=0, second=0, microsecond=0)
        counts[hour, place] += 1
        if row["pm10"] is not None:
            expected[hour, place].append(row["pm10"])
    answer = client.get(
        f"{API}/air_quality/aggregate", params={"bucket": "hour", "by": "district", "columns": "pm10"}
    ).json()
    assert answer["truncated"] is False and answer["columns"] == ["pm10"]
    got = {(datetime.fromisoformat(r["hour"]), r["district"]): r for r in answer["rows"]}
    assert set(got) == set(counts)
    for group, row in got.items():
        assert row["rows"] == counts[group]
        values = expected[group]
        assert row["pm10_count"] == len(values)
        if values:
            assert row["pm10_mean"] == pytest.approx(statistics.fmean(values))
            assert (row["pm10_min"], row["pm10_max"]) == (min(values), max(values))


def test_daily_aggregate_uses_seoul_days_and_totals_add_up(client):
    rows = _all_rows(client, "air_quality")
    days = client.get(f"{API}/air_quality/aggregate", params={"bucket": "day"}).json()["rows"]
    assert sum(d["rows"] for d in days) == len(rows)
    whole = client.get(f"{API}/air_quality/aggregate", params={"bucket": "none"}).json()["rows"]
    assert len(whole) == 1 and whole[0]["rows"] == len(rows)
    seoul_days = {datetime.fromisoformat(r["observed_at"]).astimezone(geo_tz()).date().isoformat() for r in rows}
    assert {d["day"] for d in days} == seoul_days


def geo_tz():
    from zoneinfo import ZoneInfo

    return ZoneInfo("Asia/Seoul")


def test_aggregate_refuses_what_it_cannot_compute(client):
    error = assert_error(
        client.get(f"{API}/air_quality/aggregate", params={"columns": "station_id"}), 400, "bad_request"
    )
    assert "pm10" in error["hint"]
    assert_error(client.get(f"{API}/air_quality/aggregate", params={"bucket": "week"}), 400, "bad_request")
    assert_error(client.get(f"{API}/mobility_trips/aggregate"), 403, "forbidden")
    capped = client.get(f"{API}/air_quality/aggregate", params={"bucket": "15min", "by": "district", "limit": 2})
    assert capped.json()["count"] == 2 and capped.json()["truncated"] is True


def test_changes_feed_syncs_every_row_once_and_then_only_new_ones(client, landed):
    seen, after = [], None
    while True:
        page = client.get(f"{API}/air_quality/changes", params={"limit": 50, **({"after": after} if after else {})})
        body = page.json()
        seen += [(r["_topic"], r["_partition"], r["_offset"]) for r in body["rows"]]
        after = body["next_after"]
        if not body["truncated"]:
            break
    assert len(seen) == len(set(seen)) == len(_all_rows(client, "air_quality"))
    assert client.get(f"{API}/air_quality/changes", params={"after": after}).json()["count"] == 0
    # a late reading for an old hour: an event-time filter could miss it, the feed does not
    contract = get_contract("air_quality")
    send(landed, contract, simulate(contract, 40, seed=99, bad_ratio=0.0)[0])
    ingest_loop(landed, ["air_quality"])
    new = client.get(f"{API}/air_quality/changes", params={"after": after}).json()
    positions = {(r["_topic"], r["_partition"], r["_offset"]) for r in new["rows"]}
    assert new["count"] == len(_all_rows(client, "air_quality")) - len(seen) > 0
    assert not positions & set(seen)
    assert_error(client.get(f"{API}/air_quality/changes", params={"after": "not-a-token"}), 400, "bad_request")


def test_conditional_get_answers_304_with_the_same_etag_and_last_modified(client):
    first = client.get(f"{API}/air_quality")
    etag, modified = first.headers["etag"], first.headers["last-modified"]
    assert etag.startswith('W/"')
    datetime.strptime(modified, "%a, %d %b %Y %H:%M:%S GMT").replace(tzinfo=UTC)
    again = client.get(f"{API}/air_quality", headers={"If-None-Match": etag})
    assert again.status_code == 304 and again.content == b"" and again.headers["etag"] == etag
    assert client.get(f"{API}/air_quality", headers={"If-Modified-Since": modified}).status_code == 304
    assert client.get(f"{API}/air_quality", headers={"If-None-Match": 'W/"other"'}).status_code == 200
    assert client.get(f"{API}/air_quality/records", headers={"If-None-Match": etag}).status_code == 200


def test_json_is_gzipped_for_clients_that_ask_and_downloads_are_not(client):
    listing = client.get(API, headers={"Accept-Encoding": "gzip"})
    assert listing.headers["content-encoding"] == "gzip" and listing.json()["count"] == len(all_contracts())
    download = client.get(f"{API}/air_quality/download", params={"format": "csv"}, headers={"Accept-Encoding": "gzip"})
    assert download.status_code == 200 and "content-encoding" not in download.headers


def test_rate_limit_answers_429_per_key_with_headers(landed):
    limited = landed.model_copy(update={"rate_limit_per_min": 5})
    with TestClient(create_app(limited)) as client:
        answers = [client.get(API, headers={"X-API-Key": "alice"}) for _ in range(6)]
        assert [a.status_code for a in answers] == [200] * 5 + [429]
        assert [int(a.headers["x-ratelimit-remaining"]) for a in answers[:5]] == [4, 3, 2, 1, 0]
        assert answers[0].headers["x-ratelimit-limit"] == "5"
        error = assert_error(answers[5], 429, "rate_limited")
        assert int(answers[5].headers["retry-after"]) >= 1 and "X-API-Key" in error["hint"]
        assert client.get(API, headers={"X-API-Key": "bob"}).status_code == 200  # a limit of its own
        assert client.get("/healthz").status_code == 200  # outside /api/: not limited


def test_token_buckets_refill_continuously():
    buckets = TokenBuckets(per_minute=60)
    assert all(buckets.take("a", now=0.0)[0] for _ in range(60))
    allowed, remaining, reset, retry = buckets.take("a", now=0.0)
    assert (allowed, remaining, retry) == (False, 0, 1) and reset == 60
    assert buckets.take("a", now=1.0)[0] and not buckets.take("a", now=1.0)[0]


def test_aggregate_by_district_finds_the_location_records_and_rollups_use(settings):
    """bike_stations keeps its coordinates in float columns named lon/lat: by=district places them like bbox does."""
    contract = get_contract("bike_stations")
    send(settings, contract, simulate(contract, 200, seed=2, bad_ratio=0.0)[0])
    ingest_loop(settings, ["bike_stations"])
    with TestClient(create_app(settings)) as client:
        answer = client.get(f"{API}/bike_stations/aggregate", params={"bucket": "none", "by": "district"})
        assert answer.status_code == 200, answer.text
        rows = answer.json()["rows"]
        assert sum(r["rows"] for r in rows) == len(_all_rows(client, "bike_stations"))
        assert any(r["district"] for r in rows)
