"""Compaction: the many small chunk files of a closed date partition merged into one large file.

A partition (zone, dataset, event date) is *closed* once its date has ended in UTC; late readings may still land
in it later as new chunk files, and the next compaction merges them into a new generation. The compacted file
``compacted+<generation>+<digest>.parquet`` holds the rows of the files it replaced, clean ones sorted by the
API's default order (:attr:`Contract.order_columns`: event time, then ``_topic``, ``_partition``, ``_offset``)
and quarantined ones by Kafka position alone (their times may be what made them bad). Either order is unique per
row, so the output is deterministic. Clustering on event time gives every row group (122 880 rows, DuckDB's own
size, which its sort hands back in batches of exactly that) a narrow time range, so a time filter or the
first page of records reads one or two of a day's row groups. In Kafka order a busy day's row groups each held
one Kafka partition's stretch of offsets, which on a dataset landing ~100 k rows a partition a day spans the
whole day: measured on the serve benchmark's lake, a one-day page 44 -> 25 ms, a bbox page 51 -> 40 ms in a
fresh DuckDB.

The partition's manifest (``_compaction.json``, :mod:`ingest.lake`) is the commit point. It names the live
compacted file, every chunk it covers with its offset range and row count, and the files it retired with the
time they were retired. Steps: the merged file is written (temp file, fsync, rename) under a name no reader
lists yet; then, under the dataset's compaction lock and only if no input changed meanwhile, the manifest is
replaced in one rename. Retired files stay where they are — a query that listed them before the manifest
changed can still open them — and :func:`delete_retired` deletes them once ``CITYHUB_COMPACTION_GRACE_S`` has
passed. A crash before the manifest leaves the partition as it was (the unnamed file is deleted after the grace
period, or rewritten by the next run); a crash after it leaves it compacted.

Exactly-once is unchanged: ledger entries stay the record of what landed (landing, ``/metrics`` and the quality
reports read them). A rerun that lands a covered chunk again writes nothing (its rows are in the compacted
file); a replay first puts the chunks it re-lands back as plain chunk files (:func:`uncompact`), atomically per
partition, and then rewrites them as any replay does.
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from catalog.contract import Contract
from infra.crash import crash_hook
from infra.errors import CompactionError, ConfigError
from infra.settings import Settings
from ingest import lake

log = logging.getLogger(__name__)

ROW_GROUP_ROWS = 122_880
MIN_FILES = 2  # a partition already held in one file gains nothing from being rewritten
ORDER = ("_topic", "_partition", "_offset")  # Kafka position: unique per landed row


def cluster_order(contract: Contract, zone: str) -> tuple[str, ...]:
    """The order of a compacted file's rows: the API's default sort in the clean zone, Kafka order in quarantine."""
    return contract.order_columns if zone == "clean" else ORDER


NO_MANIFEST = {"file": None, "covers": [], "retired": {}, "generation": 0}


@dataclass
class CompactionResult:
    dataset: str
    compacted: list[dict] = field(default_factory=list)  # one per partition: zone, date, file, merged, rows
    deleted: list[str] = field(default_factory=list)  # lake-relative files deleted after the grace period


@contextmanager
def locked(settings: Settings, dataset_id: str) -> Iterator[None]:
    """The dataset's compaction lock: manifests change under it only (compaction's commit, a replay's
    uncompaction, the deletion of retired files). Plain landing never takes it."""
    path = settings.state / "locks" / f"compaction.{dataset_id}.lock"
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def compact_dataset(
    settings: Settings, contract: Contract, today: date, only: date | None = None, now: datetime | None = None
) -> CompactionResult:
    """Compact every closed partition (date before ``today``) of both zones, or only the one of ``only``; then
    delete the files retired longer than the grace period ago."""
    check_grace(settings)
    if only is not None and only >= today:
        raise CompactionError(
            f"{contract.id}: date {only} is not closed yet (today is {today} in UTC)",
            hint="a date partition is compacted once its day has ended in UTC; give an earlier --date",
        )
    now = now or datetime.now(UTC)
    result = CompactionResult(contract.id)
    for zone, folder in closed_partitions(settings, contract, today, only):
        done = compact_partition(settings, contract, zone, folder, now)
        if done:
            result.compacted.append(done)
    result.deleted = delete_retired(settings, contract, now)
    return result


def closed_partitions(
    settings: Settings, contract: Contract, today: date, only: date | None = None
) -> Iterator[tuple[str, Path]]:
    """(zone, folder) of each partition whose day is over — except those retention is about to drop, which are
    not worth rewriting."""
    kept = dict(contract.retention)
    for zone in lake.ZONES:
        oldest = today - timedelta(days=kept[zone].days) if kept.get(zone) is not None else date.min
        for folder in _partitions(settings, zone, contract.id):
            day = lake.partition_date(folder)
            if day is not None and oldest <= day < today and only in (None, day):
                yield zone, folder


def check_grace(settings: Settings) -> None:
    if settings.compaction_grace_s <= settings.query_timeout_s:
        raise ConfigError(
            f"CITYHUB_COMPACTION_GRACE_S ({settings.compaction_grace_s:g}) must be longer than "
            f"CITYHUB_QUERY_TIMEOUT_S ({settings.query_timeout_s:g})",
            hint="replaced files must outlive every query that may have listed them; the default is 3600",
        )


def _partitions(settings: Settings, zone: str, dataset_id: str) -> list[Path]:
    return sorted(lake.dataset_dir(settings.lake, zone, dataset_id).glob("date=*"))


def compact_partition(settings: Settings, contract: Contract, zone: str, folder: Path, now: datetime) -> dict | None:
    """Merge the partition's landed chunk files (and its compacted file, if any) into a new generation."""
    manifest = lake.read_manifest(folder)
    state = manifest or NO_MANIFEST
    chunks = _landed_chunk_files(settings, contract, folder)
    current = [folder / state["file"]] if state["file"] else []
    if not chunks or len(current) + len(chunks) < MIN_FILES:
        return None
    inputs = current + chunks
    seen = {f: _identity(f) for f in inputs}
    covers = [*state["covers"], *(_cover(f) for f in chunks)]
    generation = state["generation"] + 1
    target = folder / lake.compacted_name(generation, covers)
    rows = _merge(settings, inputs, target, cluster_order(contract, zone))
    crash_hook(settings, "compact_after_file")
    retired = {**state["retired"], **{f.name: now.isoformat() for f in inputs}}
    new = {"file": target.name, "covers": covers, "retired": retired, "generation": generation, "rows": rows}
    if not _commit(settings, contract.id, folder, manifest, new, seen):
        return None
    crash_hook(settings, "compact_after_manifest")
    log.info(
        "compacted %d files of %s into %s (%d rows)", len(inputs), folder.relative_to(settings.lake), target.name, rows
    )
    return {
        "zone": zone,
        "date": folder.name.removeprefix("date="),
        "file": target.name,
        "merged": len(inputs),
        "rows": rows,
    }


def _commit(
    settings: Settings, dataset_id: str, folder: Path, read: dict | None, new: dict, inputs: dict[Path, tuple | None]
) -> bool:
    """Replace the partition's manifest by ``new`` in one rename — unless it, or any input file, changed since
    they were read (a replay or another compaction got there first): then the merged file goes and the next run
    tries again."""
    with locked(settings, dataset_id):
        if lake.read_manifest(folder) != read or any(_identity(f) != before for f, before in inputs.items()):
            _discard(folder, folder / new["file"])
            log.warning("compaction of %s skipped: it changed while being merged", folder.relative_to(settings.lake))
            return False
        lake.write_json_atomically(folder / lake.MANIFEST, new)
    return True


def _landed_chunk_files(settings: Settings, contract: Contract, folder: Path) -> list[Path]:
    """Live chunk files of the partition whose chunk is completely landed (its ledger entry lists the file), in
    Kafka order. A chunk still being landed, or half-landed by a crashed run, is left alone."""
    chunks = []
    for path in lake.live_files(folder):
        parsed = lake.parse_name(path.name)
        if parsed is None:
            continue
        entry = lake.ledger_entry(settings.lake, contract.id, *parsed)
        try:
            files = json.loads(entry.read_text())["files"]
        except FileNotFoundError:
            continue
        if str(path.relative_to(settings.lake)) in files:
            chunks.append(path)
    return sorted(chunks, key=lambda p: lake.parse_name(p.name))


def _identity(path: Path) -> tuple[int, int, int] | None:
    """What changes when a file is rewritten (every rewrite renames a new inode into place) or removed."""
    try:
        stat = path.stat()
    except FileNotFoundError:
        return None
    return stat.st_ino, stat.st_size, stat.st_mtime_ns


def _cover(path: Path) -> dict:
    topic, partition, first, end = lake.parse_name(path.name)
    rows = pq.ParquetFile(path).metadata.num_rows
    return {"file": path.name, "topic": topic, "partition": partition, "first": first, "end": end, "rows": rows}


def _discard(folder: Path, target: Path) -> None:
    """Remove a merged file that was not committed — unless a concurrent compaction committed the very name."""
    if (lake.read_manifest(folder) or NO_MANIFEST)["file"] != target.name:
        target.unlink(missing_ok=True)


def _merge(settings: Settings, inputs: list[Path], target: Path, order: tuple[str, ...]) -> int:
    """Write the rows of ``inputs`` sorted by ``order`` to ``target`` (atomically); returns the rows written.

    DuckDB sorts (spilling to disk past its memory limit) and hands back Arrow batches, cast back to the lake's
    own schema — lineage columns NOT NULL, ``_kafka_ts`` in ms — so that the file reads like the ones it
    replaces."""
    schema = pa.unify_schemas([pq.read_schema(f) for f in inputs]).remove_metadata()
    spill = settings.state / "tmp" / "compaction"
    spill.mkdir(parents=True, exist_ok=True)
    con = duckdb.connect(config={"threads": 2, "temp_directory": str(spill)})
    try:
        con.execute("SET TimeZone = 'UTC'")
        sql = "SELECT * FROM read_parquet(?, union_by_name = true, hive_partitioning = false) ORDER BY " + ", ".join(
            f'"{name}"' for name in order
        )
        reader = con.sql(sql, params=[[str(f) for f in inputs]]).to_arrow_reader(ROW_GROUP_ROWS)
        batches = (pa.Table.from_batches([b]).select(schema.names).cast(schema) for b in reader)
        rows = write_atomically(batches, schema, target)
    finally:
        con.close()
    expected = sum(pq.ParquetFile(f).metadata.num_rows for f in inputs)
    if rows != expected:
        target.unlink(missing_ok=True)
        raise CompactionError(
            f"merging {len(inputs)} files into {target} gave {rows} rows instead of {expected}",
            hint="a file changed while it was read; run the compaction again",
        )
    return rows


def write_atomically(tables: Iterable[pa.Table], schema: pa.Schema, target: Path) -> int:
    """Row groups of at most ROW_GROUP_ROWS, to a temp file, fsync, rename, fsync the folder."""
    tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    rows = 0
    try:
        with pq.ParquetWriter(tmp, schema, compression="zstd", write_statistics=True) as writer:
            for table in tables:
                writer.write_table(table, row_group_size=ROW_GROUP_ROWS)
                rows += table.num_rows
        with open(tmp, "rb+") as handle:
            os.fsync(handle.fileno())
        os.replace(tmp, target)
        lake.fsync_dir(target.parent)
    except OSError as exc:
        raise CompactionError(f"could not write {target}: {exc}", hint="check free disk space and permissions") from exc
    finally:
        tmp.unlink(missing_ok=True)
    return rows


def release(settings: Settings, contract: Contract, chunks: Iterable[tuple[str, int, int, int]]) -> list[str]:
    """Before a replay re-lands these chunks (topic, partition, first, end): put them back as plain chunk files
    in every partition whose compacted file covers them, one rewrite per partition."""
    names = {lake.file_name(*chunk) for chunk in chunks}
    if not names:
        return []
    folders = [
        f for zone in lake.ZONES for f in _partitions(settings, zone, contract.id) if (f / lake.MANIFEST).exists()
    ]
    with locked(settings, contract.id):
        return uncompact(settings, names, folders)


def uncompact(settings: Settings, names: set[str], folders: Iterable[Path], now: datetime | None = None) -> list[str]:
    """Take the chunks named ``names`` out of the compacted files of ``folders``: each comes back as its own
    chunk file (its rows, in its order) and the compacted file is replaced by a new generation without them —
    swapped in by one manifest rename, so readers see every row once throughout. The caller holds the lock.
    Returns the lake-relative chunk files put back."""
    restored: list[str] = []
    stamp = (now or datetime.now(UTC)).isoformat()
    for folder in folders:
        manifest = lake.read_manifest(folder)
        taken = [c for c in (manifest or NO_MANIFEST)["covers"] if c["file"] in names]
        if taken:
            restored += _uncompact_partition(settings, folder, manifest, taken, stamp)
    return restored


def _uncompact_partition(settings: Settings, folder: Path, manifest: dict, taken: list[dict], stamp: str) -> list[str]:
    compacted = pq.read_table(folder / manifest["file"])
    for cover in taken:  # hidden until the manifest below stops covering them
        # in Kafka order again: the chunk file as landing wrote it
        rows = compacted.filter(_rows_of(compacted, [cover])).sort_by([(name, "ascending") for name in ORDER])
        if rows.num_rows != cover["rows"]:
            raise CompactionError(
                f"{folder / manifest['file']} holds {rows.num_rows} rows of {cover['file']}, not {cover['rows']}",
                hint="the compacted file does not match its manifest; restore the partition from a backup",
            )
        lake.write_parquet_atomically(rows, folder / cover["file"], replace=True)
    names = {cover["file"] for cover in taken}
    remaining = [c for c in manifest["covers"] if c["file"] not in names]
    generation = manifest["generation"] + 1
    name = lake.compacted_name(generation, remaining) if remaining else None
    if name:
        rest = compacted.filter(pc.invert(_rows_of(compacted, taken)))
        write_atomically([rest], rest.schema, folder / name)
    retired = {k: v for k, v in manifest["retired"].items() if k not in names} | {manifest["file"]: stamp}
    rows = sum(c["rows"] for c in remaining)
    lake.write_json_atomically(
        folder / lake.MANIFEST,
        {"file": name, "covers": remaining, "retired": retired, "generation": generation, "rows": rows},
    )
    crash_hook(settings, "uncompact_after_manifest")
    log.info("put %d chunk file(s) of %s back for a replay", len(taken), folder.relative_to(settings.lake))
    return [str((folder / n).relative_to(settings.lake)) for n in sorted(names)]


def _rows_of(table: pa.Table, covers: list[dict]) -> pa.ChunkedArray:
    """Which rows of a compacted file belong to the chunks ``covers`` (one vectorised test per chunk)."""
    mask = None
    for cover in covers:
        same = pc.and_(pc.equal(table["_topic"], cover["topic"]), pc.equal(table["_partition"], cover["partition"]))
        inside = pc.and_(pc.greater_equal(table["_offset"], cover["first"]), pc.less(table["_offset"], cover["end"]))
        mask = pc.and_(same, inside) if mask is None else pc.or_(mask, pc.and_(same, inside))
    return mask


def delete_retired(settings: Settings, contract: Contract, now: datetime | None = None) -> list[str]:
    """Delete the files retired longer than the grace period ago (and merged files no manifest ever named, from
    a compaction that crashed); returns them lake-relative."""
    check_grace(settings)
    now = now or datetime.now(UTC)
    cutoff = now - timedelta(seconds=settings.compaction_grace_s)
    deleted: list[str] = []
    for zone in lake.ZONES:
        for folder in _partitions(settings, zone, contract.id):
            if (folder / lake.MANIFEST).exists() or any(folder.glob(f"{lake.COMPACTED}*.parquet")):
                with locked(settings, contract.id):
                    deleted += _delete_retired_in(settings, folder, cutoff)
    return deleted


def _delete_retired_in(settings: Settings, folder: Path, cutoff: datetime) -> list[str]:
    found = lake.read_manifest(folder)
    manifest = found or NO_MANIFEST
    due = [name for name, when in manifest["retired"].items() if datetime.fromisoformat(when) <= cutoff]
    orphans = [
        f.name
        for f in folder.glob(f"{lake.COMPACTED}*.parquet")
        if f.name != manifest["file"]
        and f.name not in manifest["retired"]
        and datetime.fromtimestamp(f.stat().st_mtime, UTC) <= cutoff
    ]
    if not due and not orphans:
        return []
    # files first, then the manifest that forgets them: a crash in between only leaves names to forget again
    for name in due + orphans:
        (folder / name).unlink(missing_ok=True)
    if due:
        retired = {k: v for k, v in manifest["retired"].items() if k not in due}
        lake.write_json_atomically(folder / lake.MANIFEST, {**manifest, "retired": retired})
    for name in due + orphans:
        log.info("deleted %s (retired by compaction)", (folder / name).relative_to(settings.lake))
    return [str((folder / name).relative_to(settings.lake)) for name in due + orphans]
