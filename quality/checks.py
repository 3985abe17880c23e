"""Run-level checks of a DAG run, after it landed: freshness and volume.

* **Freshness**: the newest event time in the clean zone is not older than 2 × the contract's cadence at the
  end of the run's data interval. During a backfill (an interval that ended long ago) a breach is a warning.
* **Volume**: the rows this run landed are within ``contract.volume_bounds`` (default 50 %–200 %) of the
  trailing mean of the previous ``contract.volume_window`` runs (judged once at least 3 runs exist).

A breach that is not a warning fails the run with a message saying what to look at (GX records failures and
carries on; here the run must say so).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pyarrow.parquet as pq

from catalog.contract import Contract
from infra.errors import QualityError
from infra.settings import Settings
from ingest import lake

FRESHNESS_FACTOR = 2
MIN_HISTORY = 3


@dataclass
class RunCheck:
    name: str  # "freshness" | "volume"
    ok: bool
    severity: str  # "error" | "warning"
    message: str


def newest_event_time(settings: Settings, contract: Contract) -> datetime | None:
    """From the Parquet statistics of the newest date partition that has files (no data is read)."""
    base = lake.dataset_dir(settings.lake, "clean", contract.id)
    for date_dir in sorted(base.glob("date=*"), reverse=True):
        newest = None
        for path in lake.live_files(date_dir):
            meta = pq.ParquetFile(path).metadata
            column = meta.schema.to_arrow_schema().get_field_index(contract.event_time)
            for group in range(meta.num_row_groups):
                stats = meta.row_group(group).column(column).statistics
                if stats is not None and stats.has_min_max:
                    value = stats.max
                    value = value if value.tzinfo else value.replace(tzinfo=UTC)
                    newest = value if newest is None or value > newest else newest
        if newest is not None:
            return newest
    return None


def freshness(contract: Contract, newest: datetime | None, interval_end: datetime, backfill: bool) -> RunCheck:
    allowed = FRESHNESS_FACTOR * contract.cadence
    severity = "warning" if backfill else "error"  # a backfill's interval ended long ago
    if newest is None:
        return RunCheck("freshness", False, "warning", f"no {contract.id} readings landed yet")
    age = timedelta(seconds=round((interval_end - newest).total_seconds()))
    if age <= allowed:
        return RunCheck("freshness", True, severity, f"newest reading {newest.isoformat()} is {age} old")
    return RunCheck(
        "freshness",
        False,
        severity,
        f"newest {contract.id} reading is {newest.isoformat()}, {age} before the end of the run's interval "
        f"({interval_end.isoformat()}); at most {allowed} ({FRESHNESS_FACTOR} × cadence) is expected — are the "
        "sensors or the producer sending?",
    )


def volume(contract: Contract, history: list[int], rows: int) -> RunCheck:
    recent = history[-contract.volume_window :]
    if len(recent) < MIN_HISTORY:
        return RunCheck("volume", True, "error", f"{rows} rows; too few earlier runs ({len(recent)}) to judge")
    mean = sum(recent) / len(recent)
    low, high = contract.volume_bounds
    if mean == 0 or low * mean <= rows <= high * mean:
        return RunCheck("volume", True, "error", f"{rows} rows against a trailing mean of {mean:.0f}")
    return RunCheck(
        "volume",
        False,
        "error",
        f"{contract.id} run landed {rows} rows against a trailing mean of {mean:.0f} over the last {len(recent)} "
        f"runs (expected {low:.0%}–{high:.0%} of it): check the feed, or the quarantine for a new failure mode",
    )


def run_checks(
    settings: Settings, contract: Contract, rows: int, run_id: str, interval_end: datetime, backfill: bool
) -> list[RunCheck]:
    """Check the run, append it to the dataset's run history, and raise if a check failed as an error."""
    history_path = settings.state / "published" / f"{contract.id}.runs.jsonl"
    history = _history(history_path)
    checks = [
        freshness(contract, newest_event_time(settings, contract), interval_end, backfill),
        volume(contract, [h["rows"] for h in history if h["run_id"] != run_id], rows),
    ]
    if run_id not in {h["run_id"] for h in history}:  # a rerun of the same run is not a new data point
        history_path.parent.mkdir(parents=True, exist_ok=True)
        with history_path.open("a") as handle:
            entry = {"run_id": run_id, "rows": rows, "checks": [asdict(c) for c in checks]}
            handle.write(json.dumps(entry) + "\n")
    failed = [c for c in checks if not c.ok and c.severity == "error"]
    if failed:
        raise QualityError("; ".join(c.message for c in failed), hint="see the run's quality checks in the log")
    return checks


def _history(path: Path) -> list[dict]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
