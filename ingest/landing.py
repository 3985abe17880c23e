"""The one landing path, used by the Airflow DAGs and by ``cityhub ingest`` alike.

1. :func:`plan_slice` fixes, per partition, the offsets ``[start, end)`` this run will land — from what is
   committed (or already in the lake, whichever is further) to the end of the log seen now — and records the
   slice *before* reading. A retry or rerun of the same run id re-reads exactly its recorded slice.
2. :func:`stage` fetches the slice in fixed-size chunks, decodes each whole chunk into Arrow and pseudonymises
   personal columns, writing one staging file per chunk.
3. :func:`validate_staged` runs the dataset's GX suite on each staging file and records every row's verdict.
4. :func:`land_validated` writes clean and quarantine Parquet durably under names derived from the offsets, and
   only then commits the offsets to the consumer group.
"""

from __future__ import annotations

import json
import logging
import os
import re
import time
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from kafka import TopicPartition
from kafka.structs import OffsetAndMetadata

from catalog.contract import Contract
from infra import kafka as kafka_io
from infra.errors import BrokerError, BrokerLogWentBackwards
from infra.settings import Settings
from ingest import lake
from ingest.decode import SOURCE_TZ_HEADER, Message, decode_messages
from quality.suite import validate
from transforms.pseudonymise import pseudonymise

log = logging.getLogger(__name__)


@dataclass
class PartitionSlice:
    partition: int
    start: int
    end: int

    def chunks(self, size: int) -> list[tuple[int, int]]:
        return [(a, min(a + size, self.end)) for a in range(self.start, self.end, size)]


@dataclass
class Slice:
    dataset: str
    topic: str
    run_id: str
    chunk_size: int
    partitions: list[PartitionSlice] = field(default_factory=list)

    @property
    def message_count(self) -> int:
        return sum(p.end - p.start for p in self.partitions)

    def describe(self) -> str:
        return ", ".join(f"p{p.partition}[{p.start},{p.end})" for p in self.partitions) or "nothing new"


@dataclass
class LandResult:
    dataset: str
    run_id: str
    clean_rows: int = 0
    quarantined_rows: int = 0
    files: list[str] = field(default_factory=list)


def _safe(run_id: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", run_id)


def run_dir(settings: Settings, dataset_id: str, run_id: str) -> Path:
    return settings.state / "runs" / dataset_id / _safe(run_id)


def _write_json(path: Path, payload: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(payload, indent=2, sort_keys=True))
    with open(tmp, "rb+") as handle:
        os.fsync(handle.fileno())
    os.replace(tmp, path)


def load_slice(path: Path) -> Slice:
    data = json.loads(path.read_text())
    return Slice(
        data["dataset"],
        data["topic"],
        data["run_id"],
        data["chunk_size"],
        [PartitionSlice(**p) for p in data["partitions"]],
    )


def plan_slice(settings: Settings, contract: Contract, run_id: str) -> Path:
    """Record the offsets this run lands; an existing record for ``run_id`` is reused unchanged."""
    path = run_dir(settings, contract.id, run_id) / "slice.json"
    if path.exists():
        log.info("reusing recorded slice", extra={"dataset": contract.id, "run_id": run_id})
        return path
    topic = settings.topic_for(contract.id)
    consumer = kafka_io.consumer(settings)
    try:
        tps = kafka_io.partitions_of(consumer, topic)
        begins = consumer.beginning_offsets(tps)
        ends = kafka_io.true_end_offsets(consumer, tps)
        landed = lake.landed_ends(settings.lake, contract.id, topic)
        parts = []
        for tp in tps:
            landed_end = landed.get(tp.partition, 0)
            if ends[tp] < landed_end:
                raise BrokerLogWentBackwards(
                    f"topic {topic} partition {tp.partition} ends at offset {ends[tp]}, but the lake already "
                    f"holds offsets up to {landed_end}: the broker's log went backwards",
                    hint="the broker lost its log (the embedded broker keeps it in memory and starts again at 0 "
                    "after a restart). Landed files are never overwritten: point CITYHUB_KAFKA_BOOTSTRAP at the "
                    "broker that holds this data, or use a fresh CITYHUB_HOME for the new log",
                )
            committed = consumer.committed(tp) or 0
            start = max(committed, landed_end, begins[tp])
            if ends[tp] > start:
                parts.append(PartitionSlice(tp.partition, start, ends[tp]))
    finally:
        consumer.close()
    recorded = Slice(contract.id, topic, run_id, settings.fetch_max_records, parts)
    _write_json(path, asdict(recorded))
    log.info("planned slice %s", recorded.describe(), extra={"dataset": contract.id, "run_id": run_id})
    return path


def _fetch_range(consumer, tp: TopicPartition, first: int, end: int, timeout_s: float = 60.0) -> list[Message]:
    """Exactly the records ``[first, end)`` of one partition."""
    consumer.assign([tp])
    consumer.seek(tp, first)
    messages: list[Message] = []
    next_offset = first
    deadline = time.monotonic() + timeout_s
    while next_offset < end:
        records = consumer.poll(timeout_ms=1000, max_records=end - next_offset).get(tp, [])
        if not records:
            if time.monotonic() > deadline:
                raise BrokerError(
                    f"{tp.topic} partition {tp.partition}: no records after offset {next_offset} for "
                    f"{timeout_s:.0f}s although the recorded slice ends at {end}",
                    hint="the broker may be down or its log truncated; retry the run once it is back",
                )
            continue
        deadline = time.monotonic() + timeout_s
        for record in records:
            if record.offset >= end:
                break
            zone = next((v.decode() for k, v in record.headers or [] if k == SOURCE_TZ_HEADER), None)
            messages.append(
                Message(record.topic, record.partition, record.offset, record.timestamp, record.value, zone)
            )
            next_offset = record.offset + 1
    return messages


def stage(settings: Settings, contract: Contract, slice_path: Path) -> list[Path]:
    """Fetch, decode and pseudonymise each chunk of the recorded slice into a staging Parquet file."""
    recorded = load_slice(slice_path)
    out_dir = slice_path.parent / "staged"
    out_dir.mkdir(parents=True, exist_ok=True)
    key = settings.pseudonym_key() if contract.personal_columns else b""
    paths = []
    consumer = kafka_io.consumer(settings)
    try:
        for part in recorded.partitions:
            tp = TopicPartition(recorded.topic, part.partition)
            for first, end in part.chunks(recorded.chunk_size):
                messages = _fetch_range(consumer, tp, first, end)
                table = pseudonymise(decode_messages(messages, contract), contract, key, settings.hmac_key_version)
                path = out_dir / f"{part.partition}-{first}-{end}.parquet"
                _write_scratch(table, path)
                paths.append(path)
    finally:
        consumer.close()
    return paths


def _write_scratch(table: pa.Table, path: Path) -> None:
    """Staging files are scratch: a retry of the task simply rewrites them."""
    path.unlink(missing_ok=True)
    lake.write_parquet_atomically(table, path)


def validate_staged(contract: Contract, staged: list[Path]) -> list[Path]:
    """GX-validate each staging file; write it back with a ``_reason`` column (null = clean)."""
    out = []
    for path in staged:
        table = pq.read_table(path)
        verdict = validate(table, contract)
        reasons = verdict.reasons(table.num_rows, table.column("_decode_error"))
        target = path.with_suffix(".validated.parquet")
        _write_scratch(table.append_column("_reason", reasons), target)
        out.append(target)
    return out


def _dates(times: pa.ChunkedArray) -> pa.ChunkedArray:
    return pc.strftime(times, format="%Y-%m-%d")


def _write_zone(
    settings: Settings,
    zone: str,
    contract: Contract,
    rows: pa.Table,
    schema: pa.Schema,
    date_column: pa.ChunkedArray,
    topic: str,
    partition: int,
    first: int,
    end: int,
    result: LandResult,
) -> None:
    if rows.num_rows == 0:
        return
    for date in sorted(set(date_column.to_pylist())):
        part = rows.filter(pc.equal(date_column, date))
        target = (
            lake.dataset_dir(settings.lake, zone, contract.id)
            / f"date={date}"
            / lake.file_name(topic, partition, first, end)
        )
        lake.write_parquet_atomically(part.select(schema.names).cast(schema), target)
        result.files.append(str(target))


def land_validated(settings: Settings, contract: Contract, slice_path: Path, validated: list[Path]) -> LandResult:
    """Write clean and quarantine files durably, then commit each chunk's end offset."""
    recorded = load_slice(slice_path)
    result = LandResult(contract.id, recorded.run_id)
    consumer = kafka_io.consumer(settings)
    try:
        for path in validated:
            partition, first, end = (int(x) for x in path.name.split(".")[0].split("-"))
            table = pq.read_table(path)
            bad = pc.is_valid(table.column("_reason"))
            clean, quarantined = table.filter(pc.invert(bad)), table.filter(bad)
            event = contract.event_time
            _write_zone(
                settings,
                "clean",
                contract,
                clean,
                contract.schema,
                _dates(clean.column(event)),
                recorded.topic,
                partition,
                first,
                end,
                result,
            )
            q_time = pc.coalesce(
                quarantined.column(event), quarantined.column("_kafka_ts").cast(pa.timestamp("us", tz="UTC"))
            )
            _write_zone(
                settings,
                "quarantine",
                contract,
                quarantined,
                contract.quarantine_schema,
                _dates(q_time),
                recorded.topic,
                partition,
                first,
                end,
                result,
            )
            result.clean_rows += clean.num_rows
            result.quarantined_rows += quarantined.num_rows
            _commit(consumer, TopicPartition(recorded.topic, partition), end)
            log.info(
                "landed offsets [%d,%d): %d clean, %d quarantined",
                first,
                end,
                clean.num_rows,
                quarantined.num_rows,
                extra={"dataset": contract.id, "run_id": recorded.run_id, "partition": partition},
            )
    finally:
        consumer.close()
    _write_json(slice_path.parent / "landed.json", asdict(result))
    return result


def _commit(consumer, tp: TopicPartition, end: int) -> None:
    """Commit ``end`` unless the group is already further (a rerun of an old run never moves it back)."""
    consumer.assign([tp])
    if (consumer.committed(tp) or 0) < end:
        consumer.commit({tp: OffsetAndMetadata(end, "", -1)})


def publish(settings: Settings, contract: Contract, result: LandResult) -> Path:
    """Record the dataset's last update for the API (the data itself is read from the lake by DuckDB)."""
    path = settings.state / "published" / f"{contract.id}.json"
    _write_json(
        path,
        {
            "dataset": contract.id,
            "run_id": result.run_id,
            "published_at": datetime.now(UTC).isoformat(),
            "clean_rows": result.clean_rows,
            "quarantined_rows": result.quarantined_rows,
        },
    )
    return path


def land_once(settings: Settings, contract: Contract, run_id: str) -> LandResult:
    """consume → validate → land → publish in one process (what ``cityhub ingest`` does per dataset)."""
    slice_path = plan_slice(settings, contract, run_id)
    if not load_slice(slice_path).partitions:
        return LandResult(contract.id, run_id)
    result = land_validated(
        settings, contract, slice_path, validate_staged(contract, stage(settings, contract, slice_path))
    )
    publish(settings, contract, result)
    return result


def new_run_id(prefix: str = "ingest") -> str:
    return f"{prefix}__{datetime.now(UTC).strftime('%Y%m%dT%H%M%S%f')}_{os.getpid()}"
