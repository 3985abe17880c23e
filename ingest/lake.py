"""The lake on disk: where each zone's files live, how they are named, and how they are written durably.

``HOME/lake/<zone>/<dataset>/date=YYYY-MM-DD/<topic>+<partition>+<first>-<end>.parquet`` where
``[first, end)`` is the offset range the file covers. A rerun of the same range writes the same name with the
same bytes, so it adds no rows.

A chunk of offsets may produce several files (clean and quarantine, one per event date). It counts as landed
only once its ledger entry ``HOME/lake/_ledger/<dataset>/<topic>+<partition>+<first>-<end>.json`` is durable,
written after all of its files: a worker killed half-way through a chunk leaves no ledger entry, so the chunk
is landed again (same names, same bytes) instead of being skipped with rows missing.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from infra.errors import LandingError

ZONES = ("clean", "quarantine")
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
    """Durably record a landed chunk (temp file, fsync, rename, fsync the folder)."""
    import json

    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(tmp, "w") as handle:
        json.dump(payload, handle, sort_keys=True)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)
    _fsync_dir(path.parent)


def _fsync_dir(path: Path) -> None:
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
        _fsync_dir(target.parent)
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
