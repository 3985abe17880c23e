"""The one landing path, used by the Airflow DAGs and by ``cityhub ingest`` alike.

1. :func:`plan_slice` fixes, per partition, the offsets ``[start, end)`` this run will land — from what is
   committed (or already in the lake, whichever is further) to the end of the log seen now — and records the
   slice *before* reading. A retry or rerun of the same run id re-reads exactly its recorded slice.
2. :func:`stage` fetches the slice in fixed-size chunks, decodes each whole chunk into Arrow and pseudonymises
   personal columns, writing one staging file per chunk.
3. :func:`validate_staged` runs the dataset's GX suite on each staging file and records every row's verdict
   (and, given the settings, GX's results in the dataset's Data Docs).
4. :func:`land_validated` writes clean and quarantine Parquet durably under names derived from the offsets, and
   only then commits the offsets to the consumer group.
"""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds
import pyarrow.parquet as pq
from kafka import KafkaConsumer, TopicPartition
from kafka.structs import OffsetAndMetadata

from catalog.contract import Contract
from infra import kafka as kafka_io
from infra.crash import crash_hook
from infra.errors import BrokerLogWentBackwards, LandingError
from infra.settings import Settings
from ingest import compaction, kanon_reports, lake
from ingest.decode import decode_batch, raw_batch
from ingest.fetch import range_fetcher
from quality import docs
from quality.report import chunk_report
from quality.suite import validate
from transforms.dedupe import DUPLICATE, first_copies, mark_duplicates
from transforms.pseudonymise import pseudonymise

if TYPE_CHECKING:
    from great_expectations.core import ExpectationSuiteValidationResult

log = logging.getLogger(__name__)


@dataclass
class PartitionSlice:
    partition: int
    start: int
    end: int
    bounds: list[list[int]] | None = None  # explicit chunks (a replay re-lands exactly the landed ones)

    def chunks(self, size: int) -> list[tuple[int, int]]:
        if self.bounds is not None:
            return [(a, b) for a, b in self.bounds]
        return [(a, min(a + size, self.end)) for a in range(self.start, self.end, size)]


@dataclass
class Slice:
    dataset: str
    topic: str
    run_id: str
    chunk_size: int
    partitions: list[PartitionSlice] = field(default_factory=list)
    resumed_from: str | None = None  # run id of an unfinished run whose offsets this run completes
    replace: bool = False  # a replay: landed chunks are rewritten with what the current code makes of them

    def describe(self) -> str:
        return ", ".join(f"p{p.partition}[{p.start},{p.end})" for p in self.partitions) or "nothing new"


@dataclass
class LandResult:
    dataset: str
    run_id: str
    clean_rows: int = 0
    quarantined_rows: int = 0
    files: list[str] = field(default_factory=list)

    def add(self, other: LandResult) -> None:
        self.clean_rows += other.clean_rows
        self.quarantined_rows += other.quarantined_rows
        self.files += other.files


def _safe(run_id: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", run_id)


def run_dir(settings: Settings, dataset_id: str, run_id: str) -> Path:
    return settings.state / "runs" / dataset_id / _safe(run_id)


def _write_json(path: Path, payload: dict) -> None:
    """A run's records (slice, landed, published), indented for the engineer who reads them."""
    lake.write_json_atomically(path, payload, indent=2)


def load_slice(path: Path) -> Slice:
    data = json.loads(path.read_text())
    return Slice(
        data["dataset"],
        data["topic"],
        data["run_id"],
        data["chunk_size"],
        [PartitionSlice(**p) for p in data["partitions"]],
        data.get("resumed_from"),
        data.get("replace", False),
    )


def plan_slice(
    settings: Settings,
    contract: Contract,
    run_id: str,
    topic: str | None = None,
    partitions: set[int] | None = None,
    optional: bool = False,
    kafka_consumer: KafkaConsumer | None = None,
) -> Path:
    """Record the offsets this run lands (of the dataset's topic, or ``topic`` such as its dead-letter topic);
    an existing record for ``run_id`` is reused unchanged. ``partitions`` limits the run to the partitions
    this process owns in its consumer group (default: all of them). An ``optional`` topic that does not exist
    (a dead-letter topic nobody wrote to) records an empty slice instead of failing. ``kafka_consumer`` reads
    the offsets (it is left open; default: a consumer of its own, closed afterwards)."""
    path = run_dir(settings, contract.id, run_id) / "slice.json"
    if path.exists():
        log.info("reusing recorded slice", extra={"dataset": contract.id, "run_id": run_id})
        return path
    topic = topic or settings.topic_for(contract.id)
    pending = [p for p in pending_slices(settings, contract.id) if _adoptable(load_slice(p), topic, partitions)]
    if pending:
        # An earlier run died before it finished: land exactly its offsets first, so that the chunks it may
        # have half-written are rewritten under the same names rather than covered by differently cut ones.
        earlier = load_slice(pending[0])
        adopted = Slice(
            contract.id, earlier.topic, run_id, earlier.chunk_size, earlier.partitions, earlier.run_id, earlier.replace
        )
        _write_json(path, asdict(adopted))
        _write_json(pending[0].parent / "superseded.json", {"by": run_id})
        log.warning(
            "resuming the unfinished slice of run %s: %s",
            earlier.run_id,
            adopted.describe(),
            extra={"dataset": contract.id, "run_id": run_id},
        )
        return path
    parts = _unlanded(settings, contract, topic, partitions, optional, kafka_consumer)
    recorded = Slice(contract.id, topic, run_id, settings.fetch_max_records, parts)
    _write_json(path, asdict(recorded))
    log.info("planned slice %s", recorded.describe(), extra={"dataset": contract.id, "run_id": run_id})
    return path


def _adoptable(earlier: Slice, topic: str, partitions: set[int] | None) -> bool:
    """Whether an unfinished slice is this run's to finish: same topic (a DAG run records its dead-letter slice
    beside its topic's, and neither may take the other's offsets over) and partitions this process owns."""
    owned = partitions is None or bool({part.partition for part in earlier.partitions} & partitions)
    return earlier.topic == topic and owned


def dead_letter_run_id(run_id: str) -> str:
    """Where a DAG run records its dead-letter topic's slice: a run folder of its own beside the topic's."""
    return f"dlq__{run_id}"


def plan_run(settings: Settings, contract: Contract, run_id: str) -> list[Path]:
    """A DAG run's recorded slices: the dataset's topic, then its dead-letter topic (empty while it does not
    exist). A retry or rerun of the run gets the same two records back."""
    dead_letters = settings.dead_letter_topic_for(contract.id)
    return [
        plan_slice(settings, contract, run_id),
        plan_slice(settings, contract, dead_letter_run_id(run_id), dead_letters, optional=True),
    ]


def _unlanded(
    settings: Settings,
    contract: Contract,
    topic: str,
    partitions: set[int] | None,
    optional: bool,
    kafka_consumer: KafkaConsumer | None = None,
) -> list[PartitionSlice]:
    """Per partition, the offsets from what is committed or landed (whichever is further) to the log's end."""
    consumer = kafka_consumer if kafka_consumer is not None else kafka_io.consumer(settings)
    try:
        if optional and topic not in consumer.topics():
            return []
        tps = kafka_io.partitions_of(consumer, topic)
        begins = consumer.beginning_offsets(tps)
        ends = kafka_io.true_end_offsets(consumer, tps)
        landed = lake.landed_ends(settings.lake, contract.id, topic)
        parts = []
        for tp in tps:
            if partitions is not None and tp.partition not in partitions:
                continue
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
        return parts
    finally:
        if kafka_consumer is None:
            consumer.close()


def pending_slices(settings: Settings, dataset_id: str) -> list[Path]:
    """Recorded slices whose run never finished landing, oldest first."""
    runs = settings.state / "runs" / dataset_id
    found = [
        p
        for p in runs.glob("*/slice.json")
        if not (p.parent / "landed.json").exists() and not (p.parent / "superseded.json").exists()
    ]
    return sorted(found, key=lambda p: p.stat().st_mtime)


def stage(settings: Settings, contract: Contract, slice_path: Path) -> list[Path]:
    """Fetch, decode and pseudonymise each chunk of the recorded slice into a staging Parquet file."""
    recorded = load_slice(slice_path)
    out_dir = slice_path.parent / "staged"
    out_dir.mkdir(parents=True, exist_ok=True)
    key = settings.pseudonym_key() if contract.personal_columns else b""
    identity = reading_identity(contract)
    staged_keys: list[pa.Table] = []  # readings of this run's earlier chunks, not landed yet
    paths = []
    fetcher = range_fetcher(settings)
    try:
        for part in recorded.partitions:
            tp = TopicPartition(recorded.topic, part.partition)
            for first, end in part.chunks(recorded.chunk_size):
                ledger = lake.ledger_entry(settings.lake, contract.id, recorded.topic, part.partition, first, end)
                if recorded.resumed_from and _landed_by(ledger, recorded):
                    continue  # the crashed run landed this chunk completely before it died
                records = fetcher.fetch(tp, first, end)
                decoded = decode_batch(raw_batch(records, contract, settings.max_message_bytes), contract)
                if recorded.topic == settings.dead_letter_topic_for(contract.id):
                    decoded = _mark_dead_letters(decoded)
                table = pseudonymise(decoded, contract, key, settings.hmac_key_version)
                name = lake.file_name(recorded.topic, part.partition, first, end)
                seen = pa.concat_tables([*staged_keys, landed_readings(settings, contract, table, name)])
                table = mark_duplicates(table, identity, seen)
                staged_keys.append(first_copies(table, identity))
                path = out_dir / f"{part.partition}-{first}-{end}.parquet"
                _write_scratch(table, path)
                paths.append(path)
                crash_hook(settings, "after_stage")
    finally:
        fetcher.close()
    return paths


def _mark_dead_letters(table: pa.Table) -> pa.Table:
    """Records from the dead-letter topic are quarantined whatever they contain; their own problems stay named."""
    errors = table.column("_decode_error")
    marked = pc.if_else(pc.is_null(errors), "dead_letter", pc.binary_join_element_wise("dead_letter", errors, ";"))
    return table.set_column(table.column_names.index("_decode_error"), "_decode_error", marked)


def _landed_by(ledger: Path, recorded: Slice) -> bool:
    """Whether the chunk's ledger entry exists — for a replay, whether this replay (or the one it resumes)
    wrote it, since every replayed chunk had an entry before the replay began."""
    if not ledger.exists():
        return False
    return not recorded.replace or json.loads(ledger.read_text()).get("run_id") in (
        recorded.run_id,
        recorded.resumed_from,
    )


def reading_identity(contract: Contract) -> list[str]:
    """What makes two rows the same reading: the contract's key columns and its event time."""
    return list(contract.identity)


def landed_readings(settings: Settings, contract: Contract, table: pa.Table, chunk_name: str) -> pa.Table:
    """Identities of clean rows already in the lake that could repeat a row of ``table`` — on the dates it
    touches and within its range of observation times — except the files of this very chunk and of later
    offsets of its partition: a retry, or a new owner of the partition after a rebalance, must reach the same
    verdicts the first time did, whichever later chunks exist by now.

    The time range is pushed down to Parquet (row-group statistics, then rows), so a long backfill reads only
    the files whose times overlap the chunk and holds no growing memory of what it landed. A compacted file
    holds many chunks' rows: those of this chunk and of later offsets of its partition are left out by their
    lineage columns instead of by file name."""
    identity = reading_identity(contract)
    this = lake.parse_name(chunk_name)
    schema = contract.schema
    # as the pipeline holds them (pseudonyms as plain strings), not as stored (dictionary-encoded)
    empty = pa.schema([pa.field(c, contract.column(c).arrow_type) for c in identity]).empty_table()
    times = table.column(contract.event_time).drop_null()
    if len(times) == 0:
        return empty
    dates = pc.unique(_dates(times)).drop_null().to_pylist()
    files = [
        f
        for f in lake.zone_files(settings.lake, "clean", contract.id, dates)
        if not _same_or_later(lake.parse_name(f.name), this)
    ]
    if not files:
        return empty
    bounds = pc.min_max(times)
    event = contract.event_time
    window = (pc.field(event) >= bounds["min"]) & (pc.field(event) <= bounds["max"])
    found = ds.dataset([str(f) for f in files], schema=schema, format="parquet").to_table(
        columns=identity + LINEAGE, filter=window, use_threads=False
    )
    return _earlier(found, this, identity).cast(empty.schema)


LINEAGE = ["_topic", "_partition", "_offset"]


def _earlier(readings: pa.Table, this: tuple[str, int, int, int] | None, identity: list[str]) -> pa.Table:
    """Readings minus those of this chunk and later offsets of its partition (only a compacted file holds
    any: chunk files were already chosen by name)."""
    if this is None:
        return readings.select(identity)
    topic, partition, first, _ = this
    same = pc.and_(pc.equal(readings["_topic"], topic), pc.equal(readings["_partition"], partition))
    later = pc.and_(same, pc.greater_equal(readings["_offset"], first))
    return readings.filter(pc.invert(later)).select(identity)


def _same_or_later(other: tuple[str, int, int, int] | None, this: tuple[str, int, int, int] | None) -> bool:
    if other is None or this is None:
        return False
    return other[:2] == this[:2] and other[2] >= this[2]


def _write_scratch(table: pa.Table, path: Path) -> None:
    """Staging files are scratch: a retry of the task simply rewrites them."""
    path.unlink(missing_ok=True)
    lake.write_parquet_atomically(table, path)


VALIDATE_MAX_ROWS = 250_000  # GX costs ~0.7 s per validation whatever the size: validate chunks together


def _validation_groups(staged: list[Path]) -> list[list[Path]]:
    groups: list[list[Path]] = []
    rows = VALIDATE_MAX_ROWS
    for path in staged:
        n = pq.ParquetFile(path).metadata.num_rows
        if rows + n > VALIDATE_MAX_ROWS:
            groups.append([])
            rows = 0
        groups[-1].append(path)
        rows += n
    return groups


def validate_staged(contract: Contract, staged: list[Path], settings: Settings | None = None) -> list[Path]:
    """GX-validate the staging files (several chunks per GX run); write each back with a ``_reason`` column
    (null = clean). With ``settings``, GX's results also go to the dataset's Data Docs (:mod:`quality.docs`),
    under the run that staged the files."""
    out: list[Path] = []
    results: docs.Results = []
    try:
        for group in _validation_groups(staged):
            out += _validate_group(contract, group, results if settings is not None else None)
    finally:
        # Once per run, after its last batch — or the batch that failed the run, so the docs show why.
        if settings is not None and results:
            _record_docs(settings, contract, staged[0], results)
    return out


def _validate_group(contract: Contract, group: list[Path], results: docs.Results | None) -> list[Path]:
    tables = [pq.read_table(path) for path in group]
    combined = pa.concat_tables(tables)
    keep = None
    if results is not None:
        markers = docs.batch_markers(contract, combined.num_rows, _later_copies(combined))
        name = _batch_name(group)

        def keep(result: ExpectationSuiteValidationResult) -> None:
            # the publishable copy only: GX's own holds every failing row's id and value
            results.append((name, docs.publishable(result, contract, markers)))

    verdict = validate(combined, contract, record=keep)
    reasons = verdict.reasons(combined.num_rows, combined.column("_decode_error"))
    out, offset = [], 0
    for path, table in zip(group, tables, strict=True):
        target = path.with_suffix(".validated.parquet")
        _write_scratch(table.append_column("_reason", reasons.slice(offset, table.num_rows)), target)
        offset += table.num_rows
        out.append(target)
    return out


def _later_copies(table: pa.Table) -> int:
    if DUPLICATE not in table.column_names:
        return 0
    return pc.sum(pc.fill_null(table.column(DUPLICATE), False)).as_py() or 0


def _batch_name(group: list[Path]) -> str:
    """The chunks a GX batch holds, e.g. ``chunks_0-0-500_to_2-1000-1500`` (partition-first-end)."""
    first, last = (p.name.split(".")[0] for p in (group[0], group[-1]))
    return f"chunks_{first}" + (f"_to_{last}" if last != first else "")


def _record_docs(settings: Settings, contract: Contract, staged: Path, results: docs.Results) -> None:
    slice_path = staged.parent.parent / "slice.json"  # stage() writes a run's files beside its slice
    # The slice's recording time: a retried validate task stores its results under the same keys again.
    run_time = datetime.fromtimestamp(slice_path.stat().st_mtime, UTC)
    started = time.monotonic()
    docs.record_safely(settings, contract, load_slice(slice_path).run_id, run_time, results)
    log.info("Data Docs updated in %.2f s", time.monotonic() - started, extra={"dataset": contract.id})


def _dates(times: pa.ChunkedArray | pa.Array) -> pa.Array:
    """The UTC date of each time as ``YYYY-MM-DD``: formatted once per distinct day (a chunk spans a few days;
    formatting 50k timestamps one by one cost more than writing their Parquet)."""
    days = pc.cast(times, pa.date32())
    if isinstance(days, pa.ChunkedArray):
        days = days.combine_chunks()
    encoded = pc.dictionary_encode(days)
    labels = pc.strftime(pc.cast(encoded.dictionary, pa.timestamp("s")), format="%Y-%m-%d")
    return labels.take(encoded.indices)


def _write_zone(
    settings: Settings,
    zone: str,
    contract: Contract,
    rows: pa.Table,
    schema: pa.Schema,
    times: pa.ChunkedArray,
    name: str,
    replace: bool = False,
) -> list[str]:
    """One file per UTC event date under ``zone``; returns the paths written (or already compacted)."""
    written = []
    dates = _dates(times)
    for date in sorted(pc.unique(dates).drop_null().to_pylist()) if rows.num_rows else []:
        target = lake.dataset_dir(settings.lake, zone, contract.id) / f"date={date}" / name
        part = rows.filter(pc.equal(dates, date)).select(schema.names).cast(schema)
        if replace or not _compacted_already(target, part.num_rows):
            lake.write_parquet_atomically(part, target, replace=replace)
        written.append(str(target))
    return written


def _compacted_already(target: Path, rows: int) -> bool:
    """Whether a rerun's chunk file is one whose rows its partition's compacted file already holds: it is not
    written again (the manifest would hide it anyway). Its row count is checked as a landed file's bytes are."""
    cover = lake.covering(target)
    if cover is None:
        return False
    if cover["rows"] != rows:
        raise LandingError(
            f"refusing to land {rows} rows as {target}: the compacted file of its partition holds {cover['rows']} "
            "rows for the same offsets",
            hint="the broker's log for this topic changed since it was landed (an in-memory broker restarted?); "
            "to re-land these offsets with changed code use `cityhub offsets replay`",
            code="landed_data_differs",
        )
    return True


def _chunk_of(staged: Path) -> tuple[int, int, int]:
    """(partition, first, end) from a staging file's name ``<partition>-<first>-<end>[.validated].parquet``."""
    partition, first, end = (int(x) for x in staged.name.split(".")[0].split("-"))
    return partition, first, end


def _land_chunk(settings: Settings, contract: Contract, recorded: Slice, path: Path) -> tuple[int, int, list[str]]:
    """Land one validated staging file: both zones' files, then its ledger entry."""
    partition, first, end = _chunk_of(path)
    return land_table(settings, contract, recorded, partition, first, end, pq.read_table(path))


def land_table(
    settings: Settings, contract: Contract, recorded: Slice, partition: int, first: int, end: int, table: pa.Table
) -> tuple[int, int, list[str]]:
    """Land the validated rows of offsets ``[first, end)`` (a ``_reason`` column, null = clean): both zones'
    files, then the chunk's ledger entry. Returns (clean, quarantined, files)."""
    bad = pc.is_valid(table.column("_reason"))
    # each zone's columns are picked before filtering: the payloads (``_raw``) are copied for quarantine only
    clean = table.select(contract.schema.names).filter(pc.invert(bad))
    quarantined = table.select(contract.quarantine_schema.names).filter(bad)
    name = lake.file_name(recorded.topic, partition, first, end)
    event = contract.event_time
    replace = recorded.replace
    ledger = lake.ledger_entry(settings.lake, contract.id, recorded.topic, partition, first, end)
    # A quarantined row may have no event time: file it under the day Kafka received it.
    q_time = pc.coalesce(quarantined.column(event), quarantined.column("_kafka_ts").cast(pa.timestamp("us", "UTC")))
    with _replacing(settings, contract, recorded, ledger, name):
        files = _write_zone(settings, "clean", contract, clean, contract.schema, clean.column(event), name, replace)
        crash_hook(settings, "after_file")
        files += _write_zone(
            settings, "quarantine", contract, quarantined, contract.quarantine_schema, q_time, name, replace
        )
        relative = [str(Path(f).relative_to(settings.lake)) for f in files]
        if replace and ledger.exists():
            # A replayed row may now belong to another zone or date: the chunk's files it no longer needs go.
            for stale in set(_ledger_files(ledger)) - set(relative):
                (settings.lake / stale).unlink(missing_ok=True)
    quality = chunk_report(_dates(clean.column(event)), _dates(q_time), quarantined.column("_reason"))
    lake.write_ledger_entry(
        ledger,
        {
            "run_id": recorded.run_id,
            "clean_rows": clean.num_rows,
            "quarantined_rows": quarantined.num_rows,
            "files": relative,
            "quality": quality,  # per event date: counts and expectation names, never values
        },
    )
    return clean.num_rows, quarantined.num_rows, files


@contextmanager
def _replacing(settings: Settings, contract: Contract, recorded: Slice, ledger: Path, name: str) -> Iterator[None]:
    """A replay rewrites a chunk under the dataset's compaction lock, after taking the chunk out of any compacted
    file that holds its rows (a compaction committed meanwhile would otherwise hide what the replay writes)."""
    if not recorded.replace:
        yield
        return
    with compaction.locked(settings, contract.id):
        if ledger.exists():
            folders = {(settings.lake / f).parent for f in _ledger_files(ledger)}
            compaction.uncompact(settings, {name}, sorted(folders))
        yield


def _ledger_files(ledger: Path) -> list[str]:
    return json.loads(ledger.read_text())["files"]


def land_validated(settings: Settings, contract: Contract, slice_path: Path, validated: list[Path]) -> LandResult:
    """Land each chunk durably, then commit its end offset: a crash anywhere loses and duplicates nothing."""
    recorded = load_slice(slice_path)
    result = LandResult(contract.id, recorded.run_id)
    consumer = kafka_io.consumer(settings)
    try:
        for path in validated:
            clean, quarantined, files = _land_chunk(settings, contract, recorded, path)
            crash_hook(settings, "after_ledger")
            partition, first, end = _chunk_of(path)
            _commit(consumer, TopicPartition(recorded.topic, partition), end)
            crash_hook(settings, "after_commit")
            result.clean_rows += clean
            result.quarantined_rows += quarantined
            result.files += files
            log.info(
                "landed offsets [%d,%d): %d clean, %d quarantined",
                first,
                end,
                clean,
                quarantined,
                extra={"dataset": contract.id, "run_id": recorded.run_id, "partition": partition},
            )
    finally:
        consumer.close()
    _write_json(slice_path.parent / "landed.json", asdict(result))
    return result


def land_run(
    settings: Settings, contract: Contract, run_id: str, validated: list[tuple[Path, list[Path]]]
) -> LandResult:
    """Land each of a DAG run's recorded slices (its topic's, its dead-letter topic's) with their validated
    files; the total is the run's."""
    result = LandResult(contract.id, run_id)
    for slice_path, paths in validated:
        result.add(land_validated(settings, contract, slice_path, paths))
    return result


def _commit(consumer, tp: TopicPartition, end: int) -> None:
    """Commit ``end`` unless the group is already further (a rerun of an old run never moves it back)."""
    consumer.assign([tp])
    if (consumer.committed(tp) or 0) < end:
        consumer.commit({tp: OffsetAndMetadata(end, "", -1)})


def publish(settings: Settings, contract: Contract, result: LandResult) -> Path:
    """Record the dataset's last update for the API (the data itself is read from the lake by DuckDB), and
    store the k-anonymity report of every date partition the run landed on (datasets with quasi-identifiers)."""
    kanon_reports.update_reports(settings, contract, result.files)
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


def land_once(settings: Settings, contract: Contract, run_id: str, topic: str | None = None) -> LandResult:
    """consume → validate → land → publish in one process (what ``cityhub ingest`` does per dataset).

    Unlike a DAG run, nobody reruns these tasks one by one, so the run's scratch files go once it landed and
    an empty run leaves nothing behind (a long-running ingest polls every few seconds).
    """
    slice_path = plan_slice(settings, contract, run_id, topic)
    if not load_slice(slice_path).partitions:
        shutil.rmtree(slice_path.parent)
        return LandResult(contract.id, run_id)
    staged = stage(settings, contract, slice_path)
    result = land_validated(settings, contract, slice_path, validate_staged(contract, staged, settings))
    publish(settings, contract, result)
    shutil.rmtree(slice_path.parent / "staged", ignore_errors=True)
    return result


def new_run_id(prefix: str = "ingest") -> str:
    return f"{prefix}__{datetime.now(UTC).strftime('%Y%m%dT%H%M%S%f')}_{os.getpid()}"
