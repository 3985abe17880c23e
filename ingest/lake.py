"""The lake on disk: where each zone's files live, how they are named, and how they are written durably.

``HOME/lake/<zone>/<dataset>/date=YYYY-MM-DD/<topic>+<partition>+<first>-<end>.parquet`` where
``[first, end)`` is the offset range the file covers. A rerun of the same range writes the same name with the
same bytes, so it adds no rows.

A chunk of offsets may produce several files (clean and quarantine, one per event date). It counts as landed
only once its ledger entry ``HOME/lake/_ledger/<dataset>/<topic>+<partition>+<first>-<end>.json`` is durable,
written after all of its files: a worker killed half-way through a chunk leaves no ledger entry, so the chunk
is landed again (same names, same bytes) instead of being skipped with rows missing.

A closed date partition may be *compacted* (:mod:`ingest.compaction`): its chunk files are merged into one
``compacted+<generation>+<digest>.parquet``, and the partition's manifest ``_compaction.json`` names that file,
the chunk files (and their offset ranges) it covers, and the files it retired. The manifest is the one commit
point: a reader lists a partition with :func:`live_files` (the manifest's file, plus every chunk file it neither
covers nor retired), never with a bare ``*.parquet`` glob, so it sees the partition either wholly before or
wholly after a compaction. Ledger entries are not touched: they stay the record of what landed.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import threading
from collections.abc import Iterable
from datetime import date
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from infra.errors import LandingError

ZONES = ("clean", "quarantine")
MANIFEST = "_compaction.json"  # not matched by ``*.parquet``; dropped with its partition by retention
COMPACTED = "compacted+"
_NAME = re.compile(r"^(?P<topic>.+)\+(?P<partition>\d+)\+(?P<first>\d+)-(?P<end>\d+)\.parquet$")


def file_name(topic: str, partition: int, first: int, end: int) -> str:
    return f"{topic}+{partition}+{first:012d}-{end:012d}.parquet"


def parse_name(name: str) -> tuple[str, int, int, int] | None:
    """(topic, partition, first, end) of a lake file or ledger entry name; None for any other file."""
    match = _NAME.match(name.replace(".json", ".parquet"))
    if not match:
        return None
    return match["topic"], int(match["partition"]), int(match["first"]), int(match["end"])


def dataset_dir(lake: Path, zone: str, dataset_id: str) -> Path:
    return lake / zone / dataset_id


def ledger_dir(lake: Path, dataset_id: str) -> Path:
    return lake / "_ledger" / dataset_id


def ledger_entry(lake: Path, dataset_id: str, topic: str, partition: int, first: int, end: int) -> Path:
    return ledger_dir(lake, dataset_id) / file_name(topic, partition, first, end).replace(".parquet", ".json")


def ledger_chunks(lake: Path, dataset_id: str, topic: str) -> list[tuple[int, int, int, Path]]:
    """(partition, first, end, ledger entry) of every completely landed chunk of ``topic``, in offset order."""
    chunks = []
    for path in ledger_dir(lake, dataset_id).glob("*.json"):
        match = _NAME.match(path.name.replace(".json", ".parquet"))
        if match and match["topic"] == topic:
            chunks.append((int(match["partition"]), int(match["first"]), int(match["end"]), path))
    return sorted(chunks)


def landed_ends(lake: Path, dataset_id: str, topic: str) -> dict[int, int]:
    """Per partition, one past the highest offset of a completely landed chunk."""
    ends: dict[int, int] = {}
    for partition, _, end, _ in ledger_chunks(lake, dataset_id, topic):
        ends[partition] = max(ends.get(partition, 0), end)
    return ends


def write_ledger_entry(path: Path, payload: dict) -> None:
    """Durably record a landed chunk."""
    write_json_atomically(path, payload)


def write_json_atomically(path: Path, payload: dict, indent: int | None = None, ensure_ascii: bool = True) -> None:
    """Temp file, fsync, rename, fsync the folder: a reader sees the old file or the new one, never a part.

    The temp file is this process's and thread's own: two ingest processes sharing ``CITYHUB_HOME`` publish the
    same dataset's record at the same moment, and with one shared temp name the second rename found the file
    already moved (``FileNotFoundError``). A failed write (a full disk) leaves no temp file behind."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    try:
        with open(tmp, "w") as handle:
            json.dump(payload, handle, sort_keys=True, indent=indent, ensure_ascii=ensure_ascii)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    fsync_dir(path.parent)


def is_compacted(name: str) -> bool:
    return name.startswith(COMPACTED)


def compacted_name(generation: int, covers: Iterable[dict]) -> str:
    """``compacted+<generation>+<digest of the covered chunk names>.parquet``: a new generation never reuses
    the name of a file an open query may still be reading."""
    digest = hashlib.sha256("\n".join(sorted(c["file"] for c in covers)).encode()).hexdigest()[:16]
    return f"{COMPACTED}{generation:06d}+{digest}.parquet"


def partition_date(folder: Path) -> date | None:
    """The date of a date partition folder ``date=YYYY-MM-DD``; None for a folder that is not one of ours."""
    try:
        return date.fromisoformat(folder.name.removeprefix("date="))
    except ValueError:
        return None


def read_manifest(folder: Path) -> dict | None:
    """The compaction manifest of a date partition, or None if it was never compacted."""
    try:
        return json.loads((folder / MANIFEST).read_text())
    except FileNotFoundError:
        return None


def live_files(folder: Path) -> list[Path]:
    """The files of one date partition that hold its rows now, each row in exactly one of them.

    The manifest is read *before* the folder is listed: a compaction writes its file before its manifest and
    leaves the files it replaced in place until a grace period has passed, so whichever manifest was read, the
    files it makes live are all on disk when the folder is listed."""
    manifest = read_manifest(folder)
    live, hidden = [], set()
    if manifest:
        hidden = {cover["file"] for cover in manifest["covers"]} | set(manifest["retired"])
        if manifest["file"]:
            live.append(folder / manifest["file"])
    # a compacted file its manifest does not name is a crashed compaction's, or retired
    live += [f for f in folder.glob("*.parquet") if not is_compacted(f.name) and f.name not in hidden]
    return sorted(live)


def zone_files(lake: Path, zone: str, dataset_id: str, dates: Iterable[str] | None = None) -> list[Path]:
    """Live files of a dataset's zone, on every date partition or on ``dates`` (``YYYY-MM-DD``)."""
    base = dataset_dir(lake, zone, dataset_id)
    folders = sorted(base.glob("date=*")) if dates is None else [base / f"date={d}" for d in dates]
    return [f for folder in folders for f in live_files(folder)]


def covering(target: Path) -> dict | None:
    """The manifest entry of chunk file ``target`` if its partition's compacted file holds its rows."""
    manifest = read_manifest(target.parent)
    if manifest is None:
        return None
    return next((cover for cover in manifest["covers"] if cover["file"] == target.name), None)


def fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_parquet_atomically(table: pa.Table, target: Path, replace: bool = False) -> bool:
    """Write ``table`` to ``target`` durably: temp file, fsync, rename, fsync the folder.

    A reader never sees a partial file. If ``target`` exists with the same bytes nothing changes (a rerun);
    if it exists with other bytes the write is refused: landed data is never replaced by different data —
    unless ``replace`` says this is a deliberate replay of the same offsets (after a parser or contract fix).
    Returns True when a new file was written.
    """
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    try:
        pq.write_table(table, tmp, compression="zstd", write_statistics=True)
        with open(tmp, "rb+") as handle:
            os.fsync(handle.fileno())
        if target.exists() and not replace:
            if target.read_bytes() == tmp.read_bytes():
                tmp.unlink()
                return False
            raise LandingError(
                f"refusing to overwrite {target} with different data for the same offsets",
                hint="the broker's log for this topic changed since it was landed (an in-memory broker restarted?)."
                " Land into a fresh CITYHUB_HOME, or move the dataset's lake folder aside after checking it",
                code="landed_data_differs",
            )
        os.replace(tmp, target)
        fsync_dir(target.parent)
        return True
    except OSError as exc:
        raise LandingError(
            f"could not write {target}: {exc}",
            hint="check free disk space and permissions",
            code="lake_write_failed",
        ) from exc
    finally:
        if tmp.exists():
            tmp.unlink()
