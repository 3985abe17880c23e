"""Compaction of closed date partitions: one file instead of many, and nothing a reader, a replay or a rerun
sees changes — on a real broker, real files, real DuckDB and the real API."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import re
import signal
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from fastapi.testclient import TestClient

from catalog import get_contract
from infra import cli
from infra.settings import Settings
from ingest import compaction, lake
from ingest.compaction import compact_dataset, delete_retired
from ingest.landing import land_once
from ingest.produce import send
from ingest.replay import replay_from_time, replay_quarantine
from ingest.runner import ingest_loop
from ingest.simulate import Record, simulate
from serving.app import create_app
from serving.db import Lake

DATASET = "air_quality"
RUN = "manual__first"
DAY = (datetime.now(UTC) - timedelta(days=2)).replace(hour=0, minute=0, second=0, microsecond=0)
TODAY = datetime.now(UTC).date()


def _dusty(i: int) -> Record:
    """A reading the contract quarantines (PM10 over its bound) until the fix below."""
    entity = {
        "id": f"urn:ngsi-ld:AirQualityObserved:dusty-{i}",
        "type": "AirQualityObserved",
        "dateObserved": (DAY + timedelta(hours=3, minutes=i)).isoformat(),
        "location": {"type": "Point", "coordinates": [128.6, 35.87]},
        "pm10": 1500.0,
    }
    return Record(entity["id"].encode(), json.dumps(entity).encode())


@pytest.fixture
def hub(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> Settings:
    """300 readings of a closed day (and 7 dusty ones), landed by one run in chunks of 40: many small files."""
    monkeypatch.setenv("CITYHUB_FETCH_MAX_RECORDS", "40")
    small = Settings()
    contract = get_contract(DATASET)
    send(small, contract, simulate(contract, 300, seed=3, bad_ratio=0.05, start=DAY)[0] + [_dusty(i) for i in range(7)])
    land_once(small, contract, RUN)
    return small


def _rows(settings: Settings, zone: str) -> list[dict]:
    """Every live row of the zone in Kafka order, each (topic, partition, offset) once."""
    files = lake.zone_files(settings.lake, zone, DATASET)
    table = pa.concat_tables(pq.read_table(f) for f in files)
    rows = table.sort_by([(c, "ascending") for c in ("_topic", "_partition", "_offset")]).to_pylist()
    assert len({(r["_topic"], r["_partition"], r["_offset"]) for r in rows}) == len(rows)
    return rows


def _api(settings: Settings) -> dict:
    """What readers of the API see: the record count, the quality report and the landing metrics."""
    with TestClient(create_app(settings)) as client:
        count = client.get(f"/api/v1/datasets/{DATASET}").json()["row_count"]
        quality = client.get(f"/api/v1/datasets/{DATASET}/quality").json()
        metrics = [
            line
            for line in client.get("/metrics").text.splitlines()
            if re.match(rf'cityhub_(rows|chunks)_landed_total\{{dataset="{DATASET}"', line)
        ]
    return {"count": count, "quality": quality, "metrics": metrics}


def _seen(settings: Settings) -> dict:
    topic = settings.topic_for(DATASET)
    return {
        "clean": _rows(settings, "clean"),
        "quarantine": _rows(settings, "quarantine"),
        "landed_ends": lake.landed_ends(settings.lake, DATASET, topic),
        "api": _api(settings),
    }


def _digest(settings: Settings) -> dict[str, str]:
    return {
        str(p.relative_to(settings.lake)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(settings.lake.rglob("*"))
        if p.is_file() and "/_ledger/" not in str(p)
    }


def _closed(settings: Settings, zone: str) -> Path:
    return lake.dataset_dir(settings.lake, zone, DATASET) / f"date={DAY.date().isoformat()}"


def test_compaction_merges_a_closed_days_chunk_files_and_readers_see_the_same(hub: Settings):
    contract = get_contract(DATASET)
    before = _seen(hub)
    clean = _closed(hub, "clean")
    chunks = lake.live_files(clean)
    assert len(chunks) >= 6 and before["api"]["count"] == len(before["clean"]) > 250
    today = lake.dataset_dir(hub.lake, "quarantine", DATASET) / f"date={TODAY.isoformat()}"
    open_day = lake.live_files(today)  # the malformed readings, filed under the day Kafka got them

    result = compact_dataset(hub, contract, TODAY)

    assert {(p["zone"], p["date"]) for p in result.compacted} == {(z, DAY.date().isoformat()) for z in lake.ZONES}
    [compacted] = lake.live_files(clean)
    rows = sum(pq.ParquetFile(c).metadata.num_rows for c in chunks)
    assert lake.is_compacted(compacted.name) and pq.ParquetFile(compacted).metadata.num_rows == rows
    manifest = lake.read_manifest(clean)
    assert [c["file"] for c in manifest["covers"]] == [c.name for c in chunks]
    for cover in manifest["covers"]:  # the exact offset ranges, as the ledger has them
        assert (cover["topic"], cover["partition"], cover["first"], cover["end"]) == lake.parse_name(cover["file"])
        assert lake.ledger_entry(hub.lake, DATASET, *lake.parse_name(cover["file"])).exists()
    assert all(c.exists() for c in chunks)  # retired in place until the grace period has passed
    assert lake.live_files(today) == open_day  # a day not over yet is left alone
    assert _seen(hub) == before  # same rows, quality, metrics, landed offsets, API count

    lake_files = _digest(hub)
    assert compact_dataset(hub, contract, TODAY).compacted == []  # twice: nothing changes
    assert _digest(hub) == lake_files


def test_a_compacted_day_is_clustered_on_event_time_and_a_chunk_put_back_is_in_kafka_order(hub: Settings):
    contract = get_contract(DATASET)
    kafka_order = [(name, "ascending") for name in compaction.ORDER]
    compact_dataset(hub, contract, TODAY)

    [clean] = lake.live_files(_closed(hub, "clean"))
    rows = pq.read_table(clean)
    # the API's default sort, so a day's row groups each span a short stretch of time
    assert rows.equals(rows.sort_by([(name, "ascending") for name in contract.order_columns]))
    assert not rows.equals(rows.sort_by(kafka_order))  # several partitions interleave: the order is a real choice
    [bad] = lake.live_files(_closed(hub, "quarantine"))
    quarantined = pq.read_table(bad)
    assert quarantined.equals(quarantined.sort_by(kafka_order))  # a bad reading's time may be what is wrong

    first = lake.read_manifest(_closed(hub, "clean"))["covers"][0]
    [restored] = compaction.release(hub, contract, [lake.parse_name(first["file"])])
    chunk = pq.read_table(hub.lake / restored)
    assert chunk.num_rows == first["rows"] and chunk.equals(chunk.sort_by(kafka_order))


def test_a_replay_after_compaction_adds_nothing(hub: Settings):
    contract = get_contract(DATASET)
    compact_dataset(hub, contract, TODAY)
    before = _seen(hub)

    replayed = replay_from_time(hub, contract, DAY - timedelta(days=1))  # every landed chunk, again

    assert replayed.clean_rows == len(before["clean"])
    assert _seen(hub) == before
    assert ingest_loop(hub, [DATASET])[DATASET] == (0, 0)
    # the replayed chunks came back as chunk files; the next compaction merges them again
    assert len(lake.live_files(_closed(hub, "clean"))) > 1
    assert compact_dataset(hub, contract, TODAY).compacted
    assert len(lake.live_files(_closed(hub, "clean"))) == 1
    assert _seen(hub) == before


def test_a_rerun_of_the_landing_run_after_compaction_writes_nothing_back(hub: Settings):
    contract = get_contract(DATASET)
    compact_dataset(hub, contract, TODAY)
    delete_retired(hub, contract, datetime.now(UTC) + timedelta(seconds=hub.compaction_grace_s + 1))
    before, files = _seen(hub), _digest(hub)

    rerun = land_once(hub, contract, RUN)  # the same run id: its recorded slice, landed again

    assert rerun.clean_rows == len(before["clean"])
    assert _digest(hub) == files  # no chunk file came back beside the compacted one
    assert _seen(hub) == before


def test_a_quarantine_replay_after_compaction_moves_fixed_rows_to_clean_once(hub: Settings):
    contract = get_contract(DATASET)
    compact_dataset(hub, contract, TODAY)
    clean, quarantined = _rows(hub, "clean"), _rows(hub, "quarantine")
    dusty = [r for r in quarantined if r["pm10"] == 1500.0]
    assert len(dusty) == 7 and {r["_reason"] for r in dusty} == {"ExpectColumnValuesToBeBetween(pm10)"}
    fixed = dataclasses.replace(
        contract,
        columns=tuple(dataclasses.replace(c, maximum=2000) if c.name == "pm10" else c for c in contract.columns),
    )

    replay_quarantine(hub, fixed)

    after = _rows(hub, "clean")
    assert len(after) == len(clean) + 7 and sum(r["pm10"] == 1500.0 for r in after) == 7
    assert len(_rows(hub, "quarantine")) == len(quarantined) - 7
    assert _api(hub)["count"] == len(after)
    compact_dataset(hub, fixed, TODAY)
    assert _rows(hub, "clean") == after and len(lake.live_files(_closed(hub, "clean"))) == 1


def test_replaced_files_stay_readable_for_the_grace_period_then_go(hub: Settings):
    contract = get_contract(DATASET)
    serving = Lake(hub)
    listed_before = serving.source(contract)  # a query that listed the chunk files before the compaction
    chunks = lake.live_files(_closed(hub, "clean"))
    now = datetime.now(UTC)
    compact_dataset(hub, contract, TODAY, now=now)

    with serving.cursor() as cur:
        assert cur.execute(f"SELECT count(*) FROM {listed_before}").fetchone()[0] == len(_rows(hub, "clean"))
    grace = timedelta(seconds=hub.compaction_grace_s)
    assert delete_retired(hub, contract, now + grace - timedelta(seconds=1)) == []
    assert all(c.exists() for c in chunks)
    deleted = delete_retired(hub, contract, now + grace)
    assert {str(c.relative_to(hub.lake)) for c in chunks} <= set(deleted) and not any(c.exists() for c in chunks)
    assert delete_retired(hub, contract, now + 2 * grace) == []
    with serving.cursor() as cur:
        assert cur.execute(f"SELECT count(*) FROM {serving.source(contract)}").fetchone()[0] == len(_rows(hub, "clean"))
    serving.close()


def test_a_compaction_whose_input_changed_while_merging_commits_nothing(hub: Settings, monkeypatch: pytest.MonkeyPatch):
    from ingest import compaction

    clean = _closed(hub, "clean")
    chunks = lake.live_files(clean)
    merge = compaction._merge

    def merge_then_replay(settings: Settings, inputs: list[Path], target: Path, order: tuple[str, ...]) -> int:
        rows = merge(settings, inputs, target, order)
        # what a replay does to a chunk meanwhile: the same name, a new file renamed into place
        lake.write_parquet_atomically(pq.read_table(chunks[0]), chunks[0].with_suffix(".new"))
        os.replace(chunks[0].with_suffix(".new"), chunks[0])
        return rows

    monkeypatch.setattr(compaction, "_merge", merge_then_replay)
    result = compact_dataset(hub, get_contract(DATASET), TODAY)

    assert {p["zone"] for p in result.compacted} == {"quarantine"}  # the clean day is left for the next run
    assert lake.read_manifest(clean) is None and lake.live_files(clean) == chunks
    assert not list(clean.glob(f"{lake.COMPACTED}*"))


def _cityhub(*args: str, crash: str | None = None) -> subprocess.CompletedProcess:
    env = {**os.environ, **({"CITYHUB_CRASH_POINT": crash} if crash else {})}
    cityhub = Path(sys.executable).with_name("cityhub")
    return subprocess.run([str(cityhub), *args], env=env, capture_output=True, text=True, timeout=300)


def test_kill_9_during_compaction_or_a_replay_leaves_the_lake_before_or_after(hub: Settings):
    before = _seen(hub)
    clean = _closed(hub, "clean")
    chunks = lake.live_files(clean)

    died = _cityhub("compact", DATASET, crash="compact_after_file")  # merged file written, manifest not
    assert died.returncode == -signal.SIGKILL, died.stderr
    assert lake.live_files(clean) == chunks and lake.read_manifest(clean) is None
    assert _seen(hub) == before

    died = _cityhub("compact", DATASET, crash="compact_after_manifest")
    assert died.returncode == -signal.SIGKILL, died.stderr
    assert len(lake.live_files(clean)) == 1
    assert _seen(hub) == before

    died = _cityhub("offsets", "replay", DATASET, "--from-time", DAY.isoformat(), crash="uncompact_after_manifest")
    assert died.returncode == -signal.SIGKILL, died.stderr
    assert _seen(hub) == before
    done = _cityhub("offsets", "replay", DATASET, "--from-time", DAY.isoformat())
    assert done.returncode == 0, done.stderr
    assert _seen(hub) == before
    done = _cityhub("compact", DATASET)
    assert done.returncode == 0 and "files -> compacted+" in done.stdout, done.stderr
    assert len(lake.live_files(clean)) == 1 and _seen(hub) == before


def test_the_compact_command_explains_a_bad_date_an_open_date_and_a_short_grace(
    settings: Settings, capsys: pytest.CaptureFixture, monkeypatch: pytest.MonkeyPatch
):
    assert cli.main(["compact", DATASET, "--date", "yesterday"]) == 2
    assert "hint: give it as YYYY-MM-DD" in capsys.readouterr().err
    assert cli.main(["compact", DATASET, "--date", TODAY.isoformat()]) == 1
    err = capsys.readouterr().err
    assert "is not closed yet" in err and "hint:" in err
    assert cli.main(["compact", DATASET, "--date", DAY.date().isoformat()]) == 0  # nothing landed: nothing to do
    monkeypatch.setenv("CITYHUB_COMPACTION_GRACE_S", "5")  # shorter than a query may run
    assert cli.main(["compact", DATASET]) == 1
    assert "CITYHUB_COMPACTION_GRACE_S" in capsys.readouterr().err
