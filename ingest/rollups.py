"""Rollups as lake datasets: ``HOME/lake/rollup/<dataset>/<grain>_<by>/date=YYYY-MM-DD/rollup.parquet``.

Derived from the clean zone by :func:`transforms.rollup.rollup` for every open dataset with coordinates and
numeric measures (:func:`rollup_contracts`); safe-zone datasets get none — their aggregates are not published
openly, and small groups would need the safe zone's own disclosure checks.

A run compares each clean date partition's file list (names, sizes, modification times) with what the last
run rolled up (``HOME/lake/rollup/<dataset>/_sources.json``) and recomputes only the rollup dates those
partitions feed: the same UTC date for hourly rollups, and for daily ones the two Seoul days a UTC date
overlaps (a Seoul day is 15:00 UTC the day before to 15:00 UTC). It reads nothing else, so landing, late
readings, replays, compaction and retention are all picked up the same way, and a rerun with nothing new
changes nothing. Each date's file is written whole (temp file, fsync, rename) with the same bytes for the
same rows; a date whose readings are all gone loses its file. The record is written last: a run that dies
half-way is simply redone.
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from catalog import all_contracts
from catalog.contract import Contract
from ingest import lake
from transforms.rollup import BYS, GRAINS, By, Grain, RollupSpec, rollup, rollup_spec

log = logging.getLogger(__name__)

ROLLUPS: tuple[tuple[Grain, By], ...] = tuple((grain, by) for grain in GRAINS for by in BYS)
FILE_NAME = "rollup.parquet"
DATES_PER_PASS = 31  # rollup dates computed together: a backfill is read a month at a time, not all at once


@dataclass
class RollupRun:
    dataset: str
    changed_dates: list[str] = field(default_factory=list)  # clean partitions that changed since the last run
    written: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)


def rollup_contracts() -> list[Contract]:
    """Open datasets with coordinates and at least one numeric measure: the ones that get rollups."""
    return [c for c in all_contracts() if c.is_open and rollup_spec(c) is not None]


def rollup_root(lake_dir: Path, dataset_id: str) -> Path:
    return lake_dir / "rollup" / dataset_id


def rollup_dir(lake_dir: Path, dataset_id: str, grain: Grain, by: By) -> Path:
    return rollup_root(lake_dir, dataset_id) / f"{grain}_{by}"


def refresh_rollups(lake_dir: Path, contract: Contract) -> RollupRun:
    """Recompute the rollup dates fed by clean partitions that changed since the last run."""
    spec = rollup_spec(contract)
    run = RollupRun(contract.id)
    if spec is None or not contract.is_open:
        return run
    current = source_fingerprints(lake_dir, contract.id)
    record = rollup_root(lake_dir, contract.id) / "_sources.json"
    recorded = json.loads(record.read_text()) if record.exists() else {}
    run.changed_dates = sorted(d for d in current.keys() | recorded.keys() if current.get(d) != recorded.get(d))
    if not run.changed_dates:
        return run
    changed = [date.fromisoformat(d) for d in run.changed_dates]
    for grain, by in ROLLUPS:
        targets = sorted(set(changed) | ({d + timedelta(days=1) for d in changed} if grain == "day" else set()))
        for i in range(0, len(targets), DATES_PER_PASS):
            _rollup_dates(lake_dir, spec, grain, by, targets[i : i + DATES_PER_PASS], run)
    lake.write_ledger_entry(record, current)  # last: a run that dies before this is redone in full
    log.info(
        "rollups: %d clean date(s) changed, %d file(s) written, %d removed",
        len(run.changed_dates),
        len(run.written),
        len(run.removed),
        extra={"dataset": contract.id},
    )
    return run


def source_fingerprints(lake_dir: Path, dataset_id: str) -> dict[str, str]:
    """Per clean date partition, a hash of its files' names, sizes and modification times."""
    found = {}
    for folder in sorted(lake.dataset_dir(lake_dir, "clean", dataset_id).glob("date=*")):
        files = sorted(lake.live_files(folder))  # a compaction changes the listing: the day is recomputed once
        if files:
            listing = [(f.name, f.stat().st_size, f.stat().st_mtime_ns) for f in files]
            found[folder.name.removeprefix("date=")] = hashlib.sha256(json.dumps(listing).encode()).hexdigest()
    return found


def _rollup_dates(lake_dir: Path, spec: RollupSpec, grain: Grain, by: By, targets: list[date], run: RollupRun) -> None:
    """Rewrite the rollup files of ``targets`` (rollup dates) from the clean partitions they depend on."""
    sources = set(targets) | ({d - timedelta(days=1) for d in targets} if grain == "day" else set())
    table = read_clean(lake_dir, spec, sorted(sources))
    result = rollup(table, spec, grain, by)
    dates = _partition_dates(result, grain)
    folder = rollup_dir(lake_dir, spec.dataset, grain, by)
    for day in targets:
        target = folder / f"date={day.isoformat()}" / FILE_NAME
        part = result.filter(pc.equal(dates, pa.scalar(day, pa.date32())))
        if part.num_rows:
            lake.write_parquet_atomically(part, target, replace=True)
            run.written.append(str(target.relative_to(lake_dir)))
        elif target.exists():
            target.unlink()
            run.removed.append(str(target.relative_to(lake_dir)))


def read_clean(lake_dir: Path, spec: RollupSpec, dates: list[date]) -> pa.Table:
    """The rollup's columns of every clean file of ``dates`` (UTC date partitions)."""
    # live files only: during a compaction's grace period the replaced chunk files are still on disk
    files = lake.zone_files(lake_dir, "clean", spec.dataset, [d.isoformat() for d in dates])
    tables = [pq.read_table(f, columns=spec.columns) for f in files]
    if not tables:
        return _input_schema(spec).empty_table()
    return pa.concat_tables(tables, promote_options="permissive")


def _input_schema(spec: RollupSpec) -> pa.Schema:
    return pa.schema(
        [pa.field(spec.time, pa.timestamp("us", tz="UTC"))] + [pa.field(c, pa.float64()) for c in spec.columns[1:]]
    )


def _partition_dates(result: pa.Table, grain: Grain) -> pa.Array:
    """The date partition of each rollup row: the hour's UTC date, or the (Seoul) day itself."""
    if grain == "day":
        return result.column("day")
    return pc.cast(result.column("hour"), pa.date32())
