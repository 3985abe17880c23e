"""Replays: land offsets again with today's parser and contract, rewriting the same files.

Both operations re-land *whole landed chunks* (the ledger knows their exact bounds), so every file is
rewritten under its own name: a row that now passes moves from quarantine to clean once and only once, and a
replay that changes nothing rewrites identical bytes. Chunks merged into a compacted file are first put back as
chunk files of their own (:func:`ingest.compaction.release`), so a replay after compaction adds nothing either.
The records are read again from Kafka, so a replay works as far back as the topic's retention.
"""

from __future__ import annotations

import json
from dataclasses import asdict
from datetime import datetime

import duckdb

from catalog.contract import Contract
from infra import kafka as kafka_io
from infra.errors import BadRequest
from infra.settings import Settings
from ingest import compaction, lake
from ingest.landing import (
    LandResult,
    PartitionSlice,
    Slice,
    _write_json,
    land_validated,
    new_run_id,
    publish,
    run_dir,
    stage,
    validate_staged,
)


def landed_chunks(settings: Settings, contract: Contract) -> list[tuple[int, int, int, dict]]:
    """(partition, first, end, ledger entry) of every landed chunk of the dataset's topic."""
    chunks = lake.ledger_chunks(settings.lake, contract.id, settings.topic_for(contract.id))
    return [(p, first, end, json.loads(path.read_text())) for p, first, end, path in chunks]


def reland(settings: Settings, contract: Contract, chunks: list[tuple[int, int, int]], prefix: str) -> LandResult:
    """Land exactly these chunks again in replace mode, as one recorded (and resumable) run."""
    run_id = new_run_id(prefix)
    if not chunks:
        return LandResult(contract.id, run_id)
    parts: dict[int, list[list[int]]] = {}
    for partition, first, end in chunks:
        parts.setdefault(partition, []).append([first, end])
    recorded = Slice(
        contract.id,
        settings.topic_for(contract.id),
        run_id,
        settings.fetch_max_records,
        [PartitionSlice(p, b[0][0], b[-1][1], b) for p, b in sorted(parts.items())],
        replace=True,
    )
    path = run_dir(settings, contract.id, run_id) / "slice.json"
    _write_json(path, asdict(recorded))
    # chunks merged into compacted files come back as chunk files first, one rewrite per compacted partition
    compaction.release(settings, contract, [(recorded.topic, p, first, end) for p, first, end in chunks])
    result = land_validated(
        settings, contract, path, validate_staged(contract, stage(settings, contract, path), settings)
    )
    publish(settings, contract, result)
    return result


def replay_from_time(settings: Settings, contract: Contract, when: datetime) -> LandResult:
    """Re-land every landed chunk holding records Kafka received at or after ``when``."""
    if when.tzinfo is None:
        raise BadRequest("--from-time needs a time zone", hint="e.g. 2026-11-21T09:00:00+09:00 or …Z")
    consumer = kafka_io.consumer(settings)
    try:
        tps = kafka_io.partitions_of(consumer, settings.topic_for(contract.id))
        found = consumer.offsets_for_times({tp: int(when.timestamp() * 1000) for tp in tps})
    finally:
        consumer.close()
    starts = {tp.partition: (meta.offset if meta else None) for tp, meta in found.items()}
    chunks = [
        (p, first, end)
        for p, first, end, _ in landed_chunks(settings, contract)
        if starts.get(p) is not None and end > starts[p]
    ]
    return reland(settings, contract, chunks, "replay")


def replay_quarantine(settings: Settings, contract: Contract) -> LandResult:
    """Re-land every chunk that quarantined rows, e.g. after a parser or contract fix."""
    chunks = [
        (p, first, end)
        for p, first, end, entry in landed_chunks(settings, contract)
        if entry.get("quarantined_rows", 0) > 0
    ]
    return reland(settings, contract, chunks, "quarantine-replay")


def quarantine_summary(settings: Settings, contract: Contract) -> list[tuple[str, int]]:
    """Quarantined rows per reason, most frequent first."""
    files = lake.zone_files(settings.lake, "quarantine", contract.id)
    if not files:
        return []
    con = duckdb.connect()
    try:
        return con.execute(
            "SELECT _reason, count(*) AS n FROM read_parquet(?, hive_partitioning = false) "
            "GROUP BY _reason ORDER BY n DESC, _reason",
            [[str(f) for f in files]],
        ).fetchall()
    finally:
        con.close()
