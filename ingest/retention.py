"""Retention: each zone of each dataset keeps its date partitions for as long as its contract says.

Partitions are dropped whole, by event date. Ledger entries stay: they are what tells landing that those offsets
were landed, so expired data is never landed again from a topic that still holds it.
"""

from __future__ import annotations

import logging
import shutil
from dataclasses import dataclass, field
from datetime import date, timedelta

from catalog.contract import Contract
from infra.settings import Settings
from ingest import kanon_reports, lake

log = logging.getLogger(__name__)


@dataclass
class RetentionResult:
    dataset: str
    removed: list[str] = field(default_factory=list)  # lake-relative partition folders


def apply_retention(settings: Settings, contract: Contract, today: date) -> RetentionResult:
    result = RetentionResult(contract.id)
    for zone, keep in contract.retention:
        if keep is None:
            continue
        oldest_kept = today - timedelta(days=keep.days)
        for folder in sorted(lake.dataset_dir(settings.lake, zone, contract.id).glob("date=*")):
            day = lake.partition_date(folder)
            if day is not None and day < oldest_kept:  # None: not a partition of ours
                shutil.rmtree(folder)
                if zone == "clean":  # the partition's k-anonymity report goes with it
                    kanon_reports.remove_report(settings, contract.id, day.isoformat())
                result.removed.append(str(folder.relative_to(settings.lake)))
                log.info("retention: removed %s (kept %d days)", folder.relative_to(settings.lake), keep.days)
    return result
