"""Keyset cursors pinned to a snapshot: paging while new readings land and while compaction rewrites the day
neither skips nor repeats a row — on a real broker, real landing and compaction, real DuckDB and the API."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import duckdb
import pytest
from fastapi.testclient import TestClient

from catalog import get_contract
from infra.settings import Settings
from ingest import lake
from ingest.compaction import compact_dataset
from ingest.landing import land_once
from ingest.produce import send
from ingest.simulate import simulate
from serving.app import create_app

DATASET = "air_quality"
URL = f"/api/v1/datasets/{DATASET}/records"
DAY = (datetime.now(UTC) - timedelta(days=2)).replace(hour=0, minute=0, second=0, microsecond=0)
TODAY = datetime.now(UTC).date()
QUERIES = {  # params, and the same order written out for DuckDB
    "event time": ({"limit": 23}, "observed_at, _topic, _partition, _offset"),
    "pm10 down": (
        {"limit": 17, "sort": "-pm10,station_id", "since": DAY.isoformat()},
        "pm10 DESC NULLS FIRST, station_id ASC NULLS LAST, _topic, _partition, _offset",
    ),
    "level is good": (
        {"limit": 9, "eq": "air_quality_level:good", "fields": "observed_at,pm10,_topic,_partition,_offset"},
        "observed_at, _topic, _partition, _offset",
    ),
}


@pytest.fixture
def hub(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> Settings:
    """240 readings of a closed day, landed in chunks of 40: many small files for compaction to merge."""
    monkeypatch.setenv("CITYHUB_FETCH_MAX_RECORDS", "40")
    small = Settings()
    contract = get_contract(DATASET)
    send(small, contract, simulate(contract, 240, seed=5, bad_ratio=0.02, start=DAY)[0])
    land_once(small, contract, "manual__first")
    return small


def lineage(page: dict) -> list[tuple]:
    return [(r["_topic"], r["_partition"], r["_offset"]) for r in page["rows"]]


def snapshot_order(settings: Settings, snapshot_id: str, params: dict, order: str) -> list[tuple]:
    """The snapshot's full ordered set, straight from its files (what the pages must add up to)."""
    snapshot = json.loads((settings.state / "snapshots" / DATASET / f"{snapshot_id}.json").read_text())
    files = [str(settings.lake / f) for f in snapshot["files"]]
    where = ["observed_at >= ?"] if "since" in params else []
    args: list = [datetime.fromisoformat(params["since"])] if "since" in params else []
    if "eq" in params:
        where.append("air_quality_level = ?")
        args.append(params["eq"].split(":", 1)[1])
    sql = (
        "SELECT _topic, _partition, _offset FROM read_parquet(?, union_by_name = true) "
        f"{'WHERE ' + ' AND '.join(where) if where else ''} ORDER BY {order}"
    )
    with duckdb.connect() as con:
        return [tuple(r) for r in con.execute(sql, [files, *args]).fetchall()]


def test_pages_neither_skip_nor_repeat_while_data_lands_and_compaction_runs(hub):
    contract = get_contract(DATASET)
    runs = iter(range(100))

    def land_more(start: datetime, count: int) -> None:
        seed = 100 + next(runs)
        send(hub, contract, simulate(contract, count, seed=seed, bad_ratio=0.0, start=start)[0])
        land_once(hub, contract, f"manual__more{seed}")

    with TestClient(create_app(hub)) as client:
        state = {}
        for name, (params, _) in QUERIES.items():
            page = client.get(URL, params=params).json()
            assert page["truncated"], name
            state[name] = {"seen": lineage(page), "cursor": page["next_cursor"], "snapshot": page["snapshot"]}
        snapshot_counts = {name: len(snapshot_order(hub, s["snapshot"], *QUERIES[name])) for name, s in state.items()}

        step = 0
        while any(s["cursor"] for s in state.values()):
            step += 1
            if step == 1:
                land_more(DAY + timedelta(hours=2, minutes=13), 60)  # more readings of the closed day: new chunk files
            elif step == 2:
                done = compact_dataset(hub, contract, TODAY)  # the day's chunk files replaced by one file
                assert done.compacted, "compaction merged nothing"
            elif step == 3:
                land_more(DAY + timedelta(hours=5, minutes=7), 40)  # late readings beside the compacted file
                land_more(datetime.now(UTC) - timedelta(minutes=30), 40)  # and today's
            elif step == 4:
                assert compact_dataset(hub, contract, TODAY).compacted  # the next generation
            for name, s in state.items():
                if not s["cursor"]:
                    continue
                page = client.get(URL, params={**QUERIES[name][0], "cursor": s["cursor"]})
                assert page.status_code == 200, page.text
                body = page.json()
                assert body["snapshot"] == s["snapshot"]
                s["seen"] += lineage(body)
                s["cursor"] = body["next_cursor"]
        assert step >= 4, "too few pages to land and compact in between"

        for name, s in state.items():
            expected = snapshot_order(hub, s["snapshot"], *QUERIES[name])
            assert len(expected) == snapshot_counts[name]  # the snapshot's files still hold the same rows
            assert len(s["seen"]) == len(set(s["seen"])), f"{name}: a row repeated"
            assert s["seen"] == expected, f"{name}: pages differ from the snapshot's ordered set"

        # the lake did change underneath: a manifest names the compacted file, and a new first page sees more
        day_folder = lake.dataset_dir(hub.lake, "clean", DATASET) / f"date={DAY.date().isoformat()}"
        assert lake.read_manifest(day_folder)["generation"] == 2
        live = {str(f.relative_to(hub.lake)) for f in lake.zone_files(hub.lake, "clean", DATASET)}
        for s in state.values():
            pinned = set(json.loads((hub.state / "snapshots" / DATASET / f"{s['snapshot']}.json").read_text())["files"])
            assert pinned - live, "every file the snapshot pinned is still live: compaction replaced none of them"
        fresh = client.get(URL, params={"limit": 10_000}).json()
        assert fresh["count"] > snapshot_counts["event time"]
