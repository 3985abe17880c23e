"""Several `cityhub ingest --group` processes split the partitions; rebalances in the middle of a run — one
process joining, another killed with -9 — lose and duplicate nothing while readings keep arriving."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import duckdb

from catalog import get_contract
from infra import kafka as kafka_io
from ingest.produce import send
from ingest.simulate import simulate

WAVES, PER_WAVE = 12, 8_000


def _ingest(env: dict, log: Path) -> subprocess.Popen:
    cli = Path(sys.executable).with_name("cityhub")
    return subprocess.Popen(
        [str(cli), "ingest", "traffic_flow", "--group", "--interval", "1"],
        env=env,
        stdout=log.open("w"),
        stderr=subprocess.STDOUT,
    )


def _landers(settings) -> dict[int, int]:
    """pid of the ingest process -> chunks it landed, from the ledger's run ids (``ingest__<time>_<pid>``)."""
    counts: dict[int, int] = {}
    for entry in (settings.lake / "_ledger" / "traffic_flow").glob("*.json"):
        pid = int(json.loads(entry.read_text())["run_id"].rsplit("_", 1)[1])
        counts[pid] = counts.get(pid, 0) + 1
    return counts


def _wait(condition, timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.5)


def _caught_up(settings, topic: str) -> bool:
    consumer = kafka_io.consumer(settings)
    try:
        tps = kafka_io.partitions_of(consumer, topic)
        ends = kafka_io.true_end_offsets(consumer, tps)
        return all((consumer.committed(tp) or 0) >= ends[tp] for tp in tps)
    finally:
        consumer.close()


def test_a_rebalance_mid_run_loses_and_duplicates_nothing(settings, tmp_path):
    contract = get_contract("traffic_flow")
    records, planted = simulate(contract, WAVES * PER_WAVE, seed=5, bad_ratio=0.01)
    positions: list[tuple[int, int]] = []
    positions += send(settings, contract, records[:PER_WAVE])  # the topic exists before anyone subscribes

    def keep_producing():
        for wave in range(1, WAVES):
            time.sleep(4)
            positions.extend(send(settings, contract, records[wave * PER_WAVE : (wave + 1) * PER_WAVE]))

    env = {**os.environ, "CITYHUB_FETCH_MAX_RECORDS": "2000"}
    first = _ingest(env, tmp_path / "first.log")
    producer = threading.Thread(target=keep_producing)
    producer.start()
    second = None
    try:
        _wait(lambda: _landers(settings).get(first.pid, 0) > 0, 120, "the first process to land")
        second = _ingest(env, tmp_path / "second.log")  # joins: the group rebalances mid-run
        _wait(lambda: _landers(settings).get(second.pid, 0) > 0, 120, "the second process to land")
        first.kill()  # and dies without a goodbye: its partitions move to the second after its session
        first.wait()
        producer.join()
        topic = settings.topic_for("traffic_flow")
        _wait(lambda: _caught_up(settings, topic), 240, "every produced record to be landed and committed")
    finally:
        producer.join()
        for proc in (first, second):
            if proc and proc.poll() is None:
                proc.terminate()
                proc.wait(timeout=30)

    landers = _landers(settings)
    assert landers.get(first.pid) and landers.get(second.pid), landers  # both did part of the work
    con = duckdb.connect()
    rows = con.sql(
        "SELECT _partition, _offset, _reason IS NOT NULL AS bad FROM read_parquet(["
        f"'{settings.lake}/clean/traffic_flow/*/*.parquet', '{settings.lake}/quarantine/traffic_flow/*/*.parquet'"
        "], union_by_name=true, hive_partitioning=false)"
    ).fetchall()
    landed = [(p, o) for p, o, _ in rows]
    assert len(landed) == len(set(landed)) == WAVES * PER_WAVE  # nothing twice
    assert set(landed) == set(positions)  # nothing lost
    assert sum(bad for _, _, bad in rows) == sum(planted.values())
