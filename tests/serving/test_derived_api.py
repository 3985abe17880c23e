"""Derived open datasets served like any open dataset: listed with their provenance, paged, filtered and
downloaded with the same rows as their lake files; the safe-zone sources still answer 403 for rows."""

from __future__ import annotations

import csv
import io
import json

import pyarrow.parquet as pq
import pytest
from fastapi.testclient import TestClient

from catalog import get_contract
from infra.settings import Settings
from ingest.derived import derived_dir, refresh_derived
from serving.app import create_app
from tests.ingest.test_derived import land
from tests.transforms.test_suppress import simulated_clean

DERIVED = ("energy_district_daily", "energy_district_hourly", "mobility_od_daily", "mobility_od_hourly")


@pytest.fixture(scope="module")
def client(tmp_path_factory):
    home = tmp_path_factory.mktemp("derived-api") / "home"
    settings = Settings(home=home)
    for source in ("mobility_trips", "energy_usage"):
        contract = get_contract(source)
        land(settings, contract, simulated_clean(source), "a.parquet")
        refresh_derived(settings, contract)
    with TestClient(create_app(settings)) as test_client:
        test_client.lake = settings.lake
        yield test_client


def lake_rows(client, dataset_id: str) -> list[dict]:
    table = pq.read_table(derived_dir(client.lake, dataset_id), partitioning=None)
    contract = get_contract(dataset_id)
    rows = table.sort_by([(c, "ascending") for c in contract.order_columns]).to_pylist()
    for row in rows:
        row["day"] = row["day"].isoformat()
        if "hour" in row:
            row["hour"] = row["hour"].strftime("%Y-%m-%dT%H:%M:%S.%fZ")  # as the API formats every time
    return rows


def test_derived_datasets_are_listed_as_open_with_their_provenance(client):
    listed = {d["id"]: d for d in client.get("/api/v1/datasets").json()["datasets"]}
    for dataset_id in DERIVED:
        meta = listed[dataset_id]
        assert meta["tier"] == "open" and meta["topic"] is None and meta["last_update"]
        assert meta["derived_from"] == get_contract(dataset_id).derived_from
        assert meta["suppression"]["min_persons"] == 10 and meta["links"]["records"].endswith("/records")
        assert {"suppressed", "suppression"} <= {c["name"] for c in meta["columns"]}
    detail = client.get("/api/v1/datasets/mobility_od_hourly").json()
    rows = lake_rows(client, "mobility_od_hourly")
    assert detail["row_count"] == len(rows)
    withheld = {}
    for row in rows:
        if row["suppressed"]:
            withheld[row["suppression"]] = withheld.get(row["suppression"], 0) + 1
    assert detail["suppression"]["suppressed_cells"] == withheld
    assert set(withheld) == {"persons_below_min", "complementary"}


def test_records_page_through_every_cell_once(client):
    for dataset_id in ("mobility_od_hourly", "mobility_od_daily", "energy_district_daily"):
        seen, cursor = [], None
        while True:
            params = {"limit": 97, **({"cursor": cursor} if cursor else {})}
            page = client.get(f"/api/v1/datasets/{dataset_id}/records", params=params).json()
            seen += page["rows"]
            cursor = page["next_cursor"]
            if not page["truncated"]:
                break
        assert seen == lake_rows(client, dataset_id), dataset_id
    suppressed = [r for r in seen if r["suppressed"]]
    assert suppressed and all(r["readings"] is None and r["energy_kwh_sum"] is None for r in suppressed)


def test_time_ranges_select_hours_and_seoul_days(client):
    hours = client.get(
        "/api/v1/datasets/mobility_od_hourly/records",
        params={"since": "2026-03-03T08:00:00Z", "until": "2026-03-03T10:00:00Z", "limit": 10000},
    ).json()
    assert hours["count"] > 0 and {r["hour"] for r in hours["rows"]} == {
        "2026-03-03T08:00:00.000000Z",
        "2026-03-03T09:00:00.000000Z",
    }
    days = client.get(  # 00:00 KST on 4 March onwards: the Seoul day 2026-03-04
        "/api/v1/datasets/mobility_od_daily/records", params={"since": "2026-03-04T00:00:00+09:00", "limit": 10000}
    ).json()
    assert days["count"] > 0 and {r["day"] for r in days["rows"]} == {"2026-03-04"}


def test_downloads_hold_every_cell(client):
    rows = lake_rows(client, "energy_district_hourly")
    text = client.get("/api/v1/datasets/energy_district_hourly/download", params={"format": "csv"}).text
    assert len(list(csv.DictReader(io.StringIO(text)))) == len(rows)
    lines = client.get("/api/v1/datasets/mobility_od_daily/download", params={"format": "jsonl"}).text.splitlines()
    assert [json.loads(line) for line in lines] == lake_rows(client, "mobility_od_daily")


def test_the_safe_zone_sources_still_refuse_rows(client):
    for source in ("mobility_trips", "energy_usage"):
        for route in ("records", "download"):
            response = client.get(f"/api/v1/datasets/{source}/{route}")
            assert response.status_code == 403 and response.json()["error"]["code"] == "forbidden"


def test_quality_of_a_derived_dataset_names_its_source_and_no_suite(client):
    body = client.get("/api/v1/datasets/mobility_od_hourly/quality").json()
    assert body == {
        "dataset": "mobility_od_hourly",
        "tier": "open",
        "derived_from": "mobility_trips",
        "suite": [],
        "partitions": [],
    }
