"""``cityhub ingest``: the landing path in a loop over datasets, until caught up or forever.

When the broker is paused or unreachable the loop does not crash and restart: it logs one clear line per
attempt and retries with exponential backoff. ``--until-idle`` gives up after ``CITYHUB_BROKER_WAIT_S``;
a long-running ingest keeps trying. Whatever a failed attempt had recorded is resumed by the next one.
"""

from __future__ import annotations

import logging
import time

from kafka.errors import KafkaError

from catalog import all_contracts, get_contract
from infra import kafka as kafka_io
from infra.errors import BrokerError, LandingError
from infra.settings import Settings
from ingest.landing import LandResult, land_once, new_run_id

log = logging.getLogger(__name__)
MAX_BACKOFF_S = 30.0


def _land_with_retry(settings: Settings, contract, until_idle: bool) -> LandResult:
    delay, waited = 1.0, 0.0
    while True:
        try:
            result = land_once(settings, contract, new_run_id())
            dead_letters = settings.dead_letter_topic_for(contract.id)
            if dead_letters in kafka_io.existing_topics(settings):
                extra = land_once(settings, contract, new_run_id("dlq"), topic=dead_letters)
                result.clean_rows += extra.clean_rows
                result.quarantined_rows += extra.quarantined_rows
            return result
        except LandingError as exc:
            # Disk full or unwritable: nothing was committed; a one-shot run reports it, a service waits.
            if until_idle or exc.code != "lake_write_failed":
                raise
            log.error("cannot write the lake while landing %s: %s; retrying in %.0fs", contract.id, exc, delay)
            time.sleep(delay)
            delay = min(delay * 2, MAX_BACKOFF_S)
        except (BrokerError, KafkaError) as exc:
            if until_idle and waited >= settings.broker_wait_s:
                raise BrokerError(
                    f"gave up on {contract.id} after waiting {waited:.0f}s for Kafka at {settings.bootstrap}: {exc}",
                    hint="start the broker (`cityhub broker`) or fix CITYHUB_KAFKA_BOOTSTRAP; nothing was lost, "
                    "the next run resumes where this one stopped",
                ) from exc
            log.warning(
                "Kafka at %s unavailable while landing %s (%s); retrying in %.0fs",
                settings.bootstrap,
                contract.id,
                getattr(exc, "message", exc),
                delay,
            )
            time.sleep(delay)
            waited += delay
            delay = min(delay * 2, MAX_BACKOFF_S)


def ingest_loop(
    settings: Settings, dataset_ids: list[str], until_idle: bool = True, interval_s: float = 5.0
) -> dict[str, tuple[int, int]]:
    contracts = [get_contract(d) for d in dataset_ids] if dataset_ids else all_contracts()
    totals = {c.id: (0, 0) for c in contracts}
    while True:
        landed_any = False
        for contract in contracts:
            result = _land_with_retry(settings, contract, until_idle)
            if result.clean_rows or result.quarantined_rows:
                landed_any = True
                clean, quarantined = totals[contract.id]
                totals[contract.id] = (clean + result.clean_rows, quarantined + result.quarantined_rows)
        if until_idle and not landed_any:
            return totals
        if not landed_any:
            time.sleep(interval_s)
