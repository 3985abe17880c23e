"""``cityhub ingest``: the landing path in a loop over datasets, until caught up or forever.

Alone, a process lands every partition. With ``group=True`` (``cityhub ingest --group``) it joins the
landing consumer group and lands only the partitions the group gives it, so several processes split the
work; a rebalance in the middle of a run loses and duplicates nothing (see :mod:`ingest.group`).

When the broker is paused or unreachable the loop does not crash and restart: it logs one clear line per
attempt and retries with exponential backoff. ``--until-idle`` gives up after ``CITYHUB_BROKER_WAIT_S``;
a long-running ingest keeps trying. Whatever a failed attempt had recorded is resumed by the next one.
"""

from __future__ import annotations

import contextlib
import ctypes
import gc
import logging
import time
from collections.abc import Iterator

import pyarrow as pa
from kafka import KafkaConsumer
from kafka.errors import KafkaError

from catalog import get_contract, landed_contracts
from infra import kafka as kafka_io
from infra.errors import BrokerError, LandingError, PartitionRevoked
from infra.logs import landing_context
from infra.settings import Settings
from ingest.group import GroupMember
from ingest.landing import LandResult, new_run_id
from ingest.stream import land_streaming

log = logging.getLogger(__name__)
MAX_BACKOFF_S = 30.0
DECAY_MS = 100  # how long Arrow's jemalloc keeps freed pages before returning them (see _use_jemalloc)


class _PassClients:
    """The Kafka clients one pass over the datasets shares: the cluster's topics, listed once, and one
    kafka-python consumer that reads the offsets of every slice the pass plans (and, outside a consumer group,
    commits what it lands). A client of each per dataset
    (each with its connections and its network thread) made an idle pass over the 14 datasets cost ~0.17 s of
    CPU, against ~0.06 s shared: a service polling every 5 s spent ~4 % of a core doing nothing."""

    def __init__(self, settings: Settings):
        self.settings = settings
        self._topics: set[str] | None = None
        self._consumer: KafkaConsumer | None = None

    def topics(self) -> set[str]:
        if self._topics is None:
            self._topics = kafka_io.existing_topics(self.settings)
        return self._topics

    def planner(self) -> KafkaConsumer:
        if self._consumer is None:
            self._consumer = kafka_io.consumer(self.settings)
        return self._consumer

    def close(self) -> None:
        """Drop both (after a Kafka error, so that the retry starts afresh; and at the end of the pass)."""
        consumer, self._consumer, self._topics = self._consumer, None, None
        if consumer is not None:
            with contextlib.suppress(KafkaError, OSError):
                consumer.close()


def _land(settings: Settings, contract, clients: _PassClients, member: GroupMember | None) -> LandResult:
    """Land the dataset's topic, then its dead-letter topic if there is one."""
    result = LandResult(contract.id, "")
    topics = clients.topics()
    for topic in (settings.topic_for(contract.id), settings.dead_letter_topic_for(contract.id)):
        if topic not in topics:
            continue
        owned = member.owned(topic) if member else None
        if owned is not None and not owned:
            continue
        run_id = new_run_id("dlq" if topic != settings.topic_for(contract.id) else "ingest")
        try:
            commit = member.commit if member else None
            landed = land_streaming(settings, contract, run_id, topic, owned, commit, clients.planner())
        except PartitionRevoked as exc:
            # Not an error: the partition's new owner lands the rest of the recorded slice.
            log.info("%s; its new owner lands the rest", exc.message)
            continue
        result.clean_rows += landed.clean_rows
        result.quarantined_rows += landed.quarantined_rows
    return result


def _land_with_retry(
    settings: Settings, contract, until_idle: bool, member: GroupMember | None, clients: _PassClients
) -> LandResult:
    delay, waited = 1.0, 0.0
    while True:
        try:
            return _land(settings, contract, clients, member)
        except LandingError as exc:
            # Disk full or unwritable: nothing was committed; a one-shot run reports it, a service waits.
            if until_idle or exc.code != "lake_write_failed":
                raise
            log.error("cannot write the lake while landing %s: %s; retrying in %.0fs", contract.id, exc, delay)
            time.sleep(delay)
            delay = min(delay * 2, MAX_BACKOFF_S)
        except (BrokerError, KafkaError) as exc:
            clients.close()
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
    settings: Settings,
    dataset_ids: list[str],
    until_idle: bool = True,
    interval_s: float = 5.0,
    group: bool = False,
) -> dict[str, tuple[int, int]]:
    contracts = [get_contract(d) for d in dataset_ids] if dataset_ids else landed_contracts()
    _use_jemalloc()
    with _quiet_gc(), _small_pages():
        member = _join(settings, contracts) if group else None
        try:
            return _loop(settings, contracts, until_idle, interval_s, member)
        finally:
            if member:
                member.close()


def _use_jemalloc() -> None:
    """A landing process allocates and frees ~30 MB Arrow batches in turn; jemalloc hands freed pages back where
    Arrow's default mimalloc keeps them (2M messages: 629 MB peak against 718 MB, 200k: ~80 MB less, at the same
    speed, measured with no decay)."""
    with contextlib.suppress(NotImplementedError, pa.ArrowNotImplementedError):  # a pyarrow built without it
        pa.set_memory_pool(pa.jemalloc_memory_pool())
        # Freed pages go back to the system after 100 ms: with jemalloc's default (10 s) a 2M backfill peaked far
        # higher, but with none at all (0 ms) every chunk faulted its ~30 MB batches in afresh, the kernel zeroing
        # each page (2M messages: 152-157 k msg/s and 552-562 MB peak at 100 ms, 133-136 k msg/s and 520-544 MB
        # at 0 ms, 151 k msg/s and 579-590 MB at 1 s).
        pa.jemalloc_set_decay_ms(DECAY_MS)


@contextlib.contextmanager
def _quiet_gc() -> Iterator[None]:
    """Python's cyclic GC walked every object of the process — the imported Airflow, GX, DuckDB and pyarrow
    modules among them — many times a chunk, as fetching makes and drops tens of thousands of objects: ~5 % of
    landing's CPU. While landing runs, what was loaded before stays out of its walks (``gc.freeze``) and young
    objects are collected every 50 000 allocations instead of 700 (landing makes no reference cycles of its own
    that need collecting sooner). Afterwards both are undone: objects left frozen are never freed, and DuckDB's
    bindings then report them as leaks when the interpreter exits."""
    thresholds = gc.get_threshold()
    gc.freeze()
    gc.set_threshold(50_000, 20, 100)
    try:
        yield
    finally:
        gc.set_threshold(*thresholds)
        gc.unfreeze()


_PR_SET_THP_DISABLE, _PR_GET_THP_DISABLE = 41, 42  # <linux/prctl.h>


@contextlib.contextmanager
def _small_pages() -> Iterator[None]:
    """Landing allocates ~30 MB of fresh buffers a chunk and the allocators hand them back between chunks; with
    transparent huge pages the kernel zeroes a whole 2 MB page at the first touch of any byte in it (Arrow's
    mimalloc and DuckDB ask for huge pages with ``madvise``), which was ~10 % of landing's CPU. With them off
    for the process while it lands: 200k messages 8 % faster and 40 MB smaller at peak, 2M 5 % faster and
    30 MB smaller (perf record showed ``clear_page_erms`` under ``do_huge_pmd_anonymous_page`` before)."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        before = libc.prctl(_PR_GET_THP_DISABLE, 0, 0, 0, 0)
        changed = before == 0 and libc.prctl(_PR_SET_THP_DISABLE, 1, 0, 0, 0) == 0
    except (OSError, AttributeError):  # not Linux, or a libc without prctl
        changed = False
    try:
        yield
    finally:
        if changed:
            libc.prctl(_PR_SET_THP_DISABLE, 0, 0, 0, 0)


def _join(settings: Settings, contracts) -> GroupMember:
    existing = kafka_io.existing_topics(settings)
    topics = [
        t for c in contracts for t in (settings.topic_for(c.id), settings.dead_letter_topic_for(c.id)) if t in existing
    ]
    member = GroupMember(settings, topics)
    member.wait_for_assignment(timeout_s=max(60.0, settings.broker_wait_s))
    return member


def _loop(settings: Settings, contracts, until_idle: bool, interval_s: float, member) -> dict[str, tuple[int, int]]:
    totals = {c.id: (0, 0) for c in contracts}
    while True:
        landed_any = False
        clients = _PassClients(settings)
        try:
            for contract in contracts:
                with landing_context(dataset=contract.id):
                    result = _land_with_retry(settings, contract, until_idle, member, clients)
                if result.clean_rows or result.quarantined_rows:
                    landed_any = True
                    clean, quarantined = totals[contract.id]
                    totals[contract.id] = (clean + result.clean_rows, quarantined + result.quarantined_rows)
        finally:
            clients.close()
        if until_idle and not landed_any:
            return totals
        if not landed_any:
            time.sleep(interval_s)
