"""The k-anonymity report stored with every landed date partition of a dataset with quasi-identifiers.

``HOME/lake/_kanon/<dataset>/date=YYYY-MM-DD/report.json``: the partition's equivalence-class sizes over its
generalised quasi-identifiers, in distinct persons (:mod:`transforms.kanon`) — counts only, never a value.
The publish step of every run recomputes the report of each date the run landed rows on (clean or
quarantine: a replay may have moved rows out of a partition), from all of the partition's clean files, since
equivalence classes span chunks. The report holds no time of its own, so a rerun rewrites the same bytes.

A report that cannot be computed is removed and the failure logged, never a reason to stop landing: a
partition without a report allows no row-level extract, which is the safe default.
"""

from __future__ import annotations

import json
import logging
import re
from pathlib import Path

from catalog.contract import KEY_VERSION, Contract
from infra.settings import Settings
from ingest import lake
from transforms.kanon import kanon_report
from transforms.pseudonymise import read_pseudonymised

log = logging.getLogger(__name__)
_DATE = re.compile(r"^date=(\d{4}-\d\d-\d\d)$")


def report_path(settings: Settings, dataset_id: str, date: str) -> Path:
    return settings.lake / "_kanon" / dataset_id / f"date={date}" / "report.json"


def partition_report(settings: Settings, contract: Contract, date: str) -> dict | None:
    """The report of one clean date partition; None when the partition holds no file."""
    files = lake.zone_files(settings.lake, "clean", contract.id, [date])  # live files: compaction-safe
    if not files:
        return None
    table = read_pseudonymised(files, contract, _needed_columns(contract))
    return {"dataset": contract.id, "date": date, **kanon_report(table, contract, settings.min_persons)}


def update_reports(settings: Settings, contract: Contract, files: list[str]) -> list[Path]:
    """Recompute the reports of the dates ``files`` (a run's landed files) lie in; returns the reports written."""
    if not contract.quasi_identifiers:
        return []
    written = []
    for date in sorted({m[1] for f in files if (m := _DATE.match(Path(f).parent.name))}):
        path = report_path(settings, contract.id, date)
        try:
            report = partition_report(settings, contract, date)
            if report is not None:
                _write(path, report)
                written.append(path)
                continue
        except Exception as exc:  # noqa: BLE001 - any Arrow, DuckDB or disk error: no report, no extract
            log.warning("k-anonymity report of %s %s not stored: %s", contract.id, date, exc)
        path.unlink(missing_ok=True)  # none, rather than one that describes other rows
    return written


def read_reports(settings: Settings, dataset_id: str) -> list[dict]:
    """Every stored report of a dataset, newest date first."""
    folder = settings.lake / "_kanon" / dataset_id
    paths = sorted(folder.glob("date=*/report.json"), reverse=True)
    return [json.loads(p.read_text()) for p in paths]


def remove_report(settings: Settings, dataset_id: str, date: str) -> None:
    """Forget a partition's report (its clean partition was dropped by retention)."""
    path = report_path(settings, dataset_id, date)
    path.unlink(missing_ok=True)
    if path.parent.exists() and not any(path.parent.iterdir()):
        path.parent.rmdir()


def _needed_columns(contract: Contract) -> list[str]:
    """Quasi-identifiers (as stored), the person column and the key version: all the report reads."""
    names = [c.name for c in contract.quasi_identifiers]
    names += [contract.person_column] if contract.person_column else []
    names += [KEY_VERSION] if contract.personal_columns else []
    return names


def _write(path: Path, report: dict) -> None:
    """Durably, whole or not at all; Korean group values stay readable."""
    lake.write_json_atomically(path, report, indent=2, ensure_ascii=False)
