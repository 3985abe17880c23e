"""Open datasets derived from safe-zone data, as lake datasets: ``HOME/lake/derived/<dataset>/date=D/part.parquet``.

Each safe-zone dataset with a derivation (:data:`transforms.derive.DERIVATIONS`) gets an hourly and a daily
release, declared in the catalog (``derived_from=``) and built here from its clean zone with small-cell and
complementary suppression (:mod:`transforms.suppress`, ``CITYHUB_MIN_PERSONS``). Both releases are partitioned
by the **Seoul day** — the hourly one too, unlike the rollups' UTC dates — because a day's hourly and daily cells
are suppressed together: they are always computed and written together, from the same rows.

**A day is released once it is over** in Seoul (and twice the source's cadence later, so its last readings have
landed): both releases of a day appear together, once. The derive DAG runs after every landing, so if the
current day were published it would be republished every 15 minutes, and two versions of the same daily cell
would differ by exactly the newest quarter hour — a subtraction attack no suppression within one version can
stop; and an hour published in the morning could not become a complementary cell in the evening. Whether a day
is over depends on the run's clock (``now``); what a released day holds depends only on its rows.

Like the rollups (:mod:`ingest.rollups`), a run fingerprints the source's clean date partitions (live file
lists). A Seoul day D reads UTC dates D−1 and D, so its input's fingerprint is theirs; the last run's are kept in
``HOME/lake/derived/_sources/<source>.json`` with the threshold and the rule, and a run recomputes the released
days whose input changed (late readings, replays, compaction) or that are newly over, and every day when
``CITYHUB_MIN_PERSONS`` or the rule changed. Each day's file is written whole (temp file, fsync, rename) with the
same bytes for the same rows; a day left without rows loses its file; the record is written last, so a run that
dies half-way is redone. A rerun with nothing new changes nothing.
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pyarrow as pa
import pyarrow.compute as pc

from catalog import derived_contracts, derived_sources, get_contract, landed_contracts  # noqa: F401 - re-exported
from catalog.contract import Contract
from infra.settings import Settings
from ingest import lake
from ingest.rollups import source_fingerprints
from transforms.derive import CITY_TZ, DERIVATIONS, Derivation, derive
from transforms.pseudonymise import read_pseudonymised

log = logging.getLogger(__name__)

FILE_NAME = "part.parquet"
DATES_PER_PASS = 31  # Seoul days computed together: a backfill is read a month at a time
RULE = (
    "closed-days+complementary-v1"  # recorded with the sources: a change of the suppression rule recomputes every day
)


@dataclass
class DerivedRun:
    source: str
    days: list[str] = field(default_factory=list)  # Seoul days recomputed by this run
    pending: list[str] = field(default_factory=list)  # Seoul days with rows that are not over yet
    written: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    # per derived dataset, cells written by this run: {"cells": n, "persons_below_min": n, "complementary": n}
    cells: dict[str, dict[str, int]] = field(default_factory=dict)


def derived_dir(lake_dir: Path, dataset_id: str) -> Path:
    return lake_dir / "derived" / dataset_id


def derived_files(lake_dir: Path, dataset_id: str) -> list[Path]:
    """Every day's file of a derived dataset, in date order."""
    return sorted(derived_dir(lake_dir, dataset_id).glob(f"date=*/{FILE_NAME}"))


def _record_path(lake_dir: Path, source_id: str) -> Path:
    return lake_dir / "derived" / "_sources" / f"{source_id}.json"


def released_after(day: date, source: Contract) -> datetime:
    """When Seoul day ``day`` is released: its end in Asia/Seoul, plus twice the source's cadence."""
    end = datetime.combine(day + timedelta(days=1), time(0), tzinfo=ZoneInfo(CITY_TZ))
    return end.astimezone(UTC) + 2 * source.cadence


def refresh_derived(settings: Settings, source: Contract, now: datetime | None = None) -> DerivedRun:
    """Recompute the Seoul days of ``source``'s derived datasets that are over (at ``now``, default: the clock)
    and whose input changed since the last run, or that were not released yet."""
    run = DerivedRun(source.id)
    derivation = DERIVATIONS.get(source.id)
    if derivation is None:
        return run
    now = now or datetime.now(UTC)
    lake_dir = settings.lake
    partitions = source_fingerprints(lake_dir, source.id)
    inputs = {}  # Seoul day → fingerprint of the UTC date partitions it reads (D−1 and D)
    for d in sorted({d + timedelta(days=k) for d in map(date.fromisoformat, partitions) for k in (0, 1)}):
        if released_after(d, source) > now:
            run.pending.append(d.isoformat())
            continue
        listing = [partitions.get((d - timedelta(days=k)).isoformat()) for k in (1, 0)]
        inputs[d.isoformat()] = hashlib.sha256(json.dumps(listing).encode()).hexdigest()
    current = {"rule": RULE, "min_persons": settings.min_persons, "days": inputs}
    path = _record_path(lake_dir, source.id)
    recorded = json.loads(path.read_text()) if path.exists() else {}
    before = recorded.get("days", {})
    same_rule = all(recorded.get(k) == current[k] for k in ("rule", "min_persons"))
    run.days = sorted(d for d in inputs if not same_rule or inputs[d] != before.get(d))
    gone = sorted(d for d in before if d not in inputs and d not in run.pending)  # its source partitions went
    if not run.days and not gone:
        return run
    targets = sorted(date.fromisoformat(d) for d in run.days + gone)
    for i in range(0, len(targets), DATES_PER_PASS):
        _derive_days(settings, source, derivation, targets[i : i + DATES_PER_PASS], run)
    lake.write_ledger_entry(path, current)  # last: a run that dies before this is redone in full
    if run.written or run.removed:
        for contract in derived_contracts(source.id):
            _mark_published(settings, contract, run)
    log.info(
        "derived open data: %d Seoul day(s) recomputed, %d file(s) written, %d removed, %d day(s) not over yet",
        len(run.days),
        len(run.written),
        len(run.removed),
        len(run.pending),
        extra={"dataset": source.id},
    )
    return run


def _derive_days(settings: Settings, source: Contract, derivation: Derivation, days: list[date], run: DerivedRun):
    """Rewrite both releases of the Seoul ``days`` from the UTC date partitions they lie in."""
    sources = sorted(set(days) | {d - timedelta(days=1) for d in days})
    files = lake.zone_files(settings.lake, "clean", source.id, [d.isoformat() for d in sources])
    clean = read_pseudonymised(files, source, list(derivation.columns))
    contracts = (get_contract(derivation.hourly), get_contract(derivation.daily))
    if clean.num_rows:
        releases = derive(clean, derivation, *contracts, settings.min_persons)
    else:
        releases = tuple(c.schema.empty_table() for c in contracts)
    for contract, table in zip(contracts, releases, strict=True):
        counts = run.cells.setdefault(contract.id, {"cells": 0, "persons_below_min": 0, "complementary": 0})
        for day in days:
            target = derived_dir(settings.lake, contract.id) / f"date={day.isoformat()}" / FILE_NAME
            part = table.filter(pc.equal(table.column("day"), pa.scalar(day, pa.date32())))
            if part.num_rows:
                lake.write_parquet_atomically(part, target, replace=True)
                run.written.append(str(target.relative_to(settings.lake)))
                counts["cells"] += part.num_rows
                for reason in ("persons_below_min", "complementary"):
                    counts[reason] += pc.sum(pc.equal(part.column("suppression"), reason)).as_py() or 0
            elif target.exists():
                target.unlink()
                run.removed.append(str(target.relative_to(settings.lake)))


def _mark_published(settings: Settings, contract: Contract, run: DerivedRun) -> None:
    """The derived dataset's last update for the API (as landing records a landed dataset's)."""
    lake.write_json_atomically(
        settings.state / "published" / f"{contract.id}.json",
        {
            "dataset": contract.id,
            "derived_from": contract.derived_from,
            "published_at": datetime.now(UTC).isoformat(),
            "cells": run.cells.get(contract.id, {}),
        },
    )
