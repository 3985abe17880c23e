"""Rollups served through the API: open datasets only, a date range, the same rows as the lake's files."""

from __future__ import annotations

from datetime import timedelta

import pyarrow.parquet as pq
import pytest
from fastapi.testclient import TestClient

from catalog import get_contract
from infra.settings import Settings
from ingest.rollups import refresh_rollups, rollup_dir
from serving.app import create_app
from tests.ingest.test_rollups import START, _clean, _land


@pytest.fixture
def client(tmp_path, monkeypatch):
    monkeypatch.setenv("CITYHUB_HOME", str(tmp_path / "home"))
    settings = Settings()
    _land(settings.lake, _clean(40 * 48, START, seed=1), "a.parquet")
    refresh_rollups(settings.lake, get_contract("air_quality"))
    with TestClient(create_app(settings)) as test_client:
        test_client.lake = settings.lake
        yield test_client


def test_rollups_are_served_by_date_range(client):
    url = "/api/v1/datasets/air_quality/rollups/day/district"
    every = client.get(url).json()
    files = pq.read_table(rollup_dir(client.lake, "air_quality", "day", "district"))
    assert every["count"] == files.num_rows and not every["truncated"]
    assert sum(r["rows"] for r in every["rows"]) == 40 * 48
    day = (START + timedelta(days=1)).date().isoformat()
    one = client.get(url, params={"since": day, "until": (START + timedelta(days=2)).date().isoformat()}).json()
    assert {r["day"] for r in one["rows"]} == {day} and 0 < one["count"] < every["count"]
    hours = client.get("/api/v1/datasets/air_quality/rollups/hour/cell", params={"limit": 5}).json()
    assert hours["count"] == 5 and hours["truncated"] and hours["rows"][0]["hour"].endswith("Z")


def test_rollups_of_other_datasets_and_shapes_are_refused(client):
    assert client.get("/api/v1/datasets/mobility_trips/rollups/day/district").status_code == 403  # safe zone
    assert client.get("/api/v1/datasets/kr_air_quality/rollups/day/district").status_code == 404  # no places
    assert client.get("/api/v1/datasets/traffic_flow/rollups/day/cell").json()["rows"] == []  # nothing landed
    assert client.get("/api/v1/datasets/air_quality/rollups/week/district").status_code == 400
