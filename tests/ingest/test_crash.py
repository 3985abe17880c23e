"""kill -9 of an ingest worker at any moment — including between the file rename and the offset commit —
loses and duplicates nothing: a 200k-record run is killed over and over, then checked by key and checksum."""

from __future__ import annotations

import hashlib
import os
import random
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import duckdb

from catalog import get_contract
from ingest.produce import send
from ingest.simulate import simulate

RECORDS = 200_000
HOOKS = ["after_stage:3", "after_file:1", "after_file:4", "after_ledger:2", "after_commit:1", "after_commit:5"]


def _ingest(env: dict) -> subprocess.Popen:
    cli = Path(sys.executable).with_name("cityhub")
    return subprocess.Popen(
        [str(cli), "ingest", "traffic_flow", "--until-idle"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def test_kill_9_at_any_moment_loses_and_duplicates_nothing(settings):
    contract = get_contract("traffic_flow")
    records, planted = simulate(contract, RECORDS, seed=9, bad_ratio=0.01)
    positions = send(settings, contract, records)
    produced = {pos: rec for pos, rec in zip(positions, records, strict=True)}
    env = {**os.environ, "CITYHUB_FETCH_MAX_RECORDS": "4000"}

    kills = 0
    for hook in HOOKS:  # the exact dangerous moments, reached through the test hook
        proc = _ingest({**env, "CITYHUB_CRASH_POINT": hook})
        out, _ = proc.communicate(timeout=300)
        assert proc.returncode == -signal.SIGKILL, f"{hook} did not fire: {out[-2000:]}"
        kills += 1
    rng = random.Random(9)
    ledger = settings.lake / "_ledger" / "traffic_flow"
    while kills < 12:  # and plain kill -9 at random moments, each once the worker is landing again
        proc = _ingest(env)
        landed = len(list(ledger.glob("*.json")))
        deadline = time.monotonic() + 120
        while proc.poll() is None and len(list(ledger.glob("*.json"))) == landed and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(rng.uniform(0, 0.3))
        if proc.poll() is not None:
            break  # it finished: everything is landed
        proc.kill()
        kills += 1
        proc.communicate(timeout=60)
    final = _ingest(env)
    out, _ = final.communicate(timeout=600)
    assert final.returncode == 0, out[-3000:]
    assert kills >= 10

    con = duckdb.connect()
    lake = settings.lake
    clean = con.sql(
        f"SELECT _partition, _offset, segment_id FROM read_parquet('{lake}/clean/traffic_flow/*/*.parquet', "
        "hive_partitioning=false)"
    ).fetchall()
    quarantined = con.sql(
        f"SELECT _partition, _offset, _raw FROM read_parquet("
        f"'{lake}/quarantine/traffic_flow/*/*.parquet', hive_partitioning=false)"
    ).fetchall()
    landed_positions = [(p, o) for p, o, _ in clean + quarantined]
    assert len(landed_positions) == len(set(landed_positions)) == RECORDS  # nothing lost, nothing twice
    assert set(landed_positions) == set(produced)
    assert len(quarantined) == sum(planted.values())
    # by key: every clean row carries the key of the record Kafka holds at its offset
    assert Counter(k for _, _, k in clean) == Counter(produced[(p, o)].key.decode() for p, o, _ in clean)
    # by checksum: every quarantined row keeps the exact bytes that were produced
    for p, o, raw in quarantined:
        assert hashlib.sha256(raw.encode()).digest() == hashlib.sha256(produced[(p, o)].value).digest()
