"""The public API over real DuckDB and real HTTP (FastAPI's TestClient speaks ASGI to the real app)."""

from __future__ import annotations

import csv
import io
import json
import re

import pyarrow.parquet as pq
import pytest
from fastapi.testclient import TestClient

from catalog import all_contracts, get_contract
from ingest.produce import send
from ingest.runner import ingest_loop
from ingest.simulate import simulate
from serving.app import create_app
from transforms.rollup import rollup_spec

ERROR_KEYS = {"status", "code", "message", "hint"}


@pytest.fixture
def client(settings):
    for dataset_id, count in (("air_quality", 250), ("mobility_trips", 100)):
        contract = get_contract(dataset_id)
        send(settings, contract, simulate(contract, count, seed=11, bad_ratio=0.04)[0])
    ingest_loop(settings, ["air_quality", "mobility_trips"])
    with TestClient(create_app(settings)) as test_client:
        yield test_client


def assert_error(response, status: int, code: str) -> dict:
    assert response.status_code == status
    body = response.json()
    assert set(body) == {"error"} and set(body["error"]) == ERROR_KEYS
    assert body["error"]["status"] == status and body["error"]["code"] == code
    assert body["error"]["message"] and body["error"]["hint"]
    return body["error"]


def test_catalog_lists_every_dataset_with_columns(client):
    listed = client.get("/api/v1/datasets").json()["datasets"]
    assert [d["id"] for d in listed] == [c.id for c in all_contracts()]
    detail = client.get("/api/v1/datasets/air_quality").json()
    assert {"pm10", "observed_at", "station_id"} <= {c["name"] for c in detail["columns"]}
    assert detail["title"] == {"ko": "대기질 관측", "en": "Air quality observations"}
    assert detail["row_count"] > 200 and detail["last_update"]
    safe = client.get("/api/v1/datasets/mobility_trips").json()
    assert safe["tier"] == "safezone" and "row_count" not in safe


def test_records_page_through_every_row_once_with_cursors(client):
    seen, cursor = [], None
    while True:
        page = client.get(
            "/api/v1/datasets/air_quality/records",
            params={"limit": 37, **({"cursor": cursor} if cursor else {})},
        ).json()
        seen += [(r["_partition"], r["_offset"]) for r in page["rows"]]
        cursor = page["next_cursor"]
        assert page["truncated"] == (cursor is not None)
        if not cursor:
            break
    total = client.get("/api/v1/datasets/air_quality").json()["row_count"]
    assert len(seen) == len(set(seen)) == total


def test_time_filters_bound_the_rows(client):
    rows = client.get("/api/v1/datasets/air_quality/records", params={"limit": 10000}).json()["rows"]
    times = sorted({r["observed_at"] for r in rows})
    since, until = times[1], times[-1]
    page = client.get(
        "/api/v1/datasets/air_quality/records", params={"since": since, "until": until, "limit": 10000}
    ).json()
    assert page["rows"] and all(since <= r["observed_at"] < until for r in page["rows"])


def test_downloads_stream_every_row_in_each_format(client, tmp_path):
    total = client.get("/api/v1/datasets/air_quality").json()["row_count"]
    response = client.get("/api/v1/datasets/air_quality/download", params={"format": "csv"})
    assert response.headers["content-type"].startswith("text/csv")
    assert len(list(csv.DictReader(io.StringIO(response.text)))) == total
    lines = client.get("/api/v1/datasets/air_quality/download", params={"format": "jsonl"}).text.splitlines()
    assert len(lines) == total and "pm10" in json.loads(lines[0])
    (tmp_path / "a.parquet").write_bytes(
        client.get("/api/v1/datasets/air_quality/download", params={"format": "parquet"}).content
    )
    assert pq.read_table(tmp_path / "a.parquet").num_rows == total


def test_errors_share_one_json_shape(client):
    assert_error(client.get("/api/v1/datasets/nope"), 404, "unknown_dataset")
    assert_error(client.get("/api/v1/datasets/air_quality/records", params={"limit": 10001}), 400, "bad_request")
    assert_error(client.get("/api/v1/datasets/air_quality/records", params={"cursor": "garbage"}), 400, "bad_request")
    assert_error(
        client.get("/api/v1/datasets/air_quality/records", params={"since": "2026-01-01T00:00:00"}),
        400,
        "bad_request",
    )
    assert_error(client.get("/api/v1/datasets/air_quality/download", params={"format": "xls"}), 400, "bad_request")
    assert_error(client.get("/no/such/route"), 404, "not_found")


def test_every_dataset_route_refuses_safe_zone_data(client):
    """Walk /openapi.json: every route under a dataset except its metadata answers 403 for safe-zone data."""
    spec = client.get("/openapi.json").json()
    public_counts = {"/api/v1/datasets/{dataset_id}/quality"}  # counts and names only: tested on its own
    routes = [p for p in spec["paths"] if p.startswith("/api/v1/datasets/{dataset_id}/") and p not in public_counts]
    assert {"/api/v1/datasets/{dataset_id}/records", "/api/v1/datasets/{dataset_id}/download"} <= set(routes)
    for contract in all_contracts():
        for route in routes:
            for method in spec["paths"][route]:
                path = route.replace("{dataset_id}", contract.id).replace("{grain}", "day").replace("{by}", "district")
                response = client.request(method.upper(), path)
                if contract.is_open and "/rollups/" in route and rollup_spec(contract) is None:
                    assert_error(response, 404, "not_found")  # no coordinates or no measures: no rollups
                elif contract.is_open and route.endswith("/changes") and contract.is_derived:
                    assert_error(response, 404, "not_found")  # recomputed per release: no landing order
                elif contract.is_open:
                    assert response.status_code == 200, route
                else:
                    assert_error(response, 403, "forbidden")
                    assert "rider" not in response.text


def test_healthz(client):
    assert client.get("/healthz").json()["status"] == "ok"


def test_quality_results_per_partition_name_expectations_and_never_values(client, settings):
    report = client.get("/api/v1/datasets/air_quality/quality").json()
    assert "ExpectColumnValuesToBeBetween(pm10)" in report["suite"]
    assert report["partitions"] and all(p["rows"] == p["clean"] + p["quarantined"] for p in report["partitions"])
    landed = client.get("/api/v1/datasets/air_quality").json()
    assert sum(p["clean"] for p in report["partitions"]) == landed["row_count"]
    assert any(p["failures"] for p in report["partitions"])
    safe = client.get("/api/v1/datasets/mobility_trips/quality")
    assert safe.status_code == 200
    body = safe.json()
    assert body["tier"] == "safezone" and sum(p["quarantined"] for p in body["partitions"]) > 0
    for part in body["partitions"]:  # names and counts only: no value of any row
        assert all(name.startswith("Expect") for name in part["failures"])
        assert all(re.fullmatch(r"[a-z_]+(:[a-z_0-9]+)?", problem) for problem in part["problems"])
    assert "rider" not in safe.text.replace("rider_id", "")
