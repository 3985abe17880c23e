"""``cityhub ingest``: the landing path in a loop over datasets, until caught up or forever."""

from __future__ import annotations

import logging
import time

from catalog import all_contracts, get_contract
from infra.settings import Settings
from ingest.landing import land_once, new_run_id

log = logging.getLogger(__name__)


def ingest_loop(
    settings: Settings, dataset_ids: list[str], until_idle: bool = True, interval_s: float = 5.0
) -> dict[str, tuple[int, int]]:
    contracts = [get_contract(d) for d in dataset_ids] if dataset_ids else all_contracts()
    totals = {c.id: (0, 0) for c in contracts}
    while True:
        landed_any = False
        for contract in contracts:
            result = land_once(settings, contract, new_run_id())
            if result.clean_rows or result.quarantined_rows:
                landed_any = True
                clean, quarantined = totals[contract.id]
                totals[contract.id] = (clean + result.clean_rows, quarantined + result.quarantined_rows)
        if until_idle and not landed_any:
            return totals
        if not landed_any:
            time.sleep(interval_s)
