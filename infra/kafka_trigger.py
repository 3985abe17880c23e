"""Event-driven scheduling of the dataset DAGs: an Airflow trigger that watches a topic's backlog.

:class:`KafkaBacklogTrigger` runs in Airflow's triggerer as the :class:`~airflow.sdk.AssetWatcher` of the Asset
``cityhub.kafka.<dataset>`` (see ``dags/cityhub_datasets.py``). Every ``poll_interval`` seconds it compares,
per partition, the end of the log with where landing stands (the consumer group's committed offset, or the
log's start when retention went past it) and fires when something is not landed yet. It only asks for
offsets: it never joins the group, never commits, and never consumes. On tansu (the embedded broker) it
reads the last record batch of a partition to find its true end (see :func:`infra.kafka.true_end_offsets`),
only when the reported end looks landed, and once per new batch.

It does not fire endlessly while a run is landing: once it announced offsets, it waits until the group's
committed offsets reach them before it announces again (new data meanwhile is announced as soon as they
do), and announces a backlog again after ``rearm_after`` seconds without progress (a failed run). Between
the two, the DAG's own cadence runs it anyway. The apache-kafka provider's ``AwaitMessageTrigger`` would
instead consume (and commit) the messages with confluent-kafka, taking them from landing.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import time
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from airflow.triggers.base import BaseEventTrigger, TriggerEvent

# partition -> (first offset not landed, end of the log); only partitions with something to land
Backlog = dict[int, tuple[int, int]]


def _check_reachable(bootstrap_servers: str, timeout_s: float = 2.0) -> None:
    """Fail in seconds when no bootstrap server answers: kafka-python's constructor would block for 30 s and
    leave its I/O thread running after it gives up (as :func:`infra.kafka.check_reachable` does)."""
    errors = []
    for server in bootstrap_servers.split(","):
        host, _, port = server.strip().rpartition(":")
        try:
            socket.create_connection((host.strip("[]") or "localhost", int(port)), timeout=timeout_s).close()
            return
        except (OSError, ValueError) as exc:
            errors.append(f"{server.strip()}: {exc}")
    raise ConnectionError(f"no Kafka bootstrap server answers: {'; '.join(errors)}")


class BacklogProbe:
    """The blocking side, used from one thread: offsets only, through one kafka-python client kept open."""

    def __init__(
        self, bootstrap_servers: str, topic: str, group_id: str, timeout_ms: int = 10_000, probe_timeout_s: float = 3.0
    ):
        self.bootstrap_servers = bootstrap_servers
        self.topic = topic
        self.group_id = group_id
        self.timeout_ms = timeout_ms
        self.probe_timeout_s = probe_timeout_s
        self._consumer = None
        self._true_ends: dict[int, tuple[int, int]] = {}  # partition -> (reported end, true end)

    def _client(self):
        if self._consumer is None:
            from kafka import KafkaConsumer

            _check_reachable(self.bootstrap_servers)
            self._consumer = KafkaConsumer(
                bootstrap_servers=self.bootstrap_servers,
                group_id=self.group_id,  # only to read its committed offsets: assign() mode never joins
                enable_auto_commit=False,
                allow_auto_create_topics=False,
                auto_offset_reset="latest",
                client_id="cityhub-watch",
                request_timeout_ms=max(self.timeout_ms, 1_000),
                metadata_max_age_ms=60_000,
            )
        return self._consumer

    def backlog(self) -> Backlog:
        """Partitions with offsets beyond what landing committed, as ``{partition: (start, end)}``."""
        from kafka import TopicPartition

        consumer = self._client()
        partitions = consumer.partitions_for_topic(self.topic)
        if not partitions:  # not created yet: nothing to land
            return {}
        tps = [TopicPartition(self.topic, p) for p in sorted(partitions)]
        ends = consumer.end_offsets(tps, timeout_ms=self.timeout_ms)
        begins = consumer.beginning_offsets(tps, timeout_ms=self.timeout_ms)
        found: Backlog = {}
        for tp in tps:
            end = ends[tp]
            if end <= begins[tp]:  # empty, or retention removed everything
                continue
            start = max(consumer.committed(tp, timeout_ms=self.timeout_ms) or 0, begins[tp])
            if end <= start:  # looks landed; tansu may under-report the end of the last batch
                end = self._true_end(tp, end)
            if end > start:
                found[tp.partition] = (start, end)
        return found

    def exact(self, backlog: Backlog) -> Backlog:
        """``backlog`` with tansu's reported ends replaced by the true ones (for the event's payload)."""
        from kafka import TopicPartition

        return {p: (start, self._true_end(TopicPartition(self.topic, p), end)) for p, (start, end) in backlog.items()}

    def _true_end(self, tp, reported: int) -> int:
        """One past the last offset of the batch holding ``reported - 1`` (cached: a new batch moves the
        reported end). A real Kafka cluster reports the exact end, and the probe finds nothing past it."""
        cached = self._true_ends.get(tp.partition)
        if cached and cached[0] == reported:
            return cached[1]
        consumer = self._client()
        consumer.assign([tp])
        consumer.seek(tp, reported - 1)
        end = reported
        deadline = time.monotonic() + self.probe_timeout_s
        while time.monotonic() < deadline:
            records = consumer.poll(timeout_ms=250, max_records=1_000_000).get(tp, [])
            if records:
                end = max(end, records[-1].offset + 1)
                break
        # cached even when nothing came back (a compacted-away record): a new batch moves the reported end
        self._true_ends[tp.partition] = (reported, end)
        return end

    def close(self) -> None:
        if self._consumer is not None:
            try:
                self._consumer.close(autocommit=False)
            finally:
                self._consumer = None


@dataclass
class Announcer:
    """Decides when a backlog is worth an event (pure: the trigger's only state)."""

    rearm_after: float
    announced: dict[int, int] = field(default_factory=dict)  # partition -> end offset last announced
    announced_at: float = 0.0

    def should_fire(self, backlog: Backlog, now: float) -> bool:
        if not backlog:
            self.announced = {}
            return False
        waiting = any(start < self.announced.get(p, 0) for p, (start, _) in backlog.items())
        if waiting and now - self.announced_at < self.rearm_after:
            return False  # a run is (or will be) landing what was announced; new offsets are announced after
        self.announced = {p: end for p, (_, end) in backlog.items()}
        self.announced_at = now
        return True


class KafkaBacklogTrigger(BaseEventTrigger):
    """Fires when ``topic`` holds offsets beyond ``group_id``'s committed offsets; never consumes or commits.

    :param bootstrap_servers: Kafka bootstrap servers, ``host:port[,host:port…]``.
    :param topic: The topic to watch.
    :param group_id: The consumer group whose committed offsets say what is landed.
    :param poll_interval: Seconds between two looks at the offsets.
    :param rearm_after: Seconds after which a backlog that did not move is announced again.
    """

    def __init__(
        self,
        *,
        bootstrap_servers: str,
        topic: str,
        group_id: str,
        poll_interval: float = 5.0,
        rearm_after: float = 600.0,
        **kwargs: Any,
    ):
        super().__init__(**kwargs)
        self.bootstrap_servers = bootstrap_servers
        self.topic = topic
        self.group_id = group_id
        self.poll_interval = poll_interval
        self.rearm_after = rearm_after

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return (
            f"{type(self).__module__}.{type(self).__qualname__}",
            {
                "bootstrap_servers": self.bootstrap_servers,
                "topic": self.topic,
                "group_id": self.group_id,
                "poll_interval": self.poll_interval,
                "rearm_after": self.rearm_after,
            },
        )

    def payload(self, backlog: Backlog) -> dict[str, Any]:
        return {
            "topic": self.topic,
            "group_id": self.group_id,
            "backlog": sum(end - start for start, end in backlog.values()),
            "partitions": {str(p): [start, end] for p, (start, end) in sorted(backlog.items())},
        }

    async def run(self) -> AsyncIterator[TriggerEvent]:
        loop = asyncio.get_running_loop()
        # One thread of its own: the client is used from one thread only, and a broker that hangs does not
        # starve the event loop's shared pool (other triggers) of workers.
        executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"cityhub-watch-{self.topic}")
        probe = BacklogProbe(self.bootstrap_servers, self.topic, self.group_id)
        announcer = Announcer(self.rearm_after)
        failures, last_error = 0, ""
        self.log.info("watching %s for offsets beyond group %s", self.topic, self.group_id)
        try:
            while True:
                try:
                    backlog = await loop.run_in_executor(executor, probe.backlog)
                except Exception as exc:  # the broker is away: keep watching, say so once per kind of error
                    failures += 1
                    error = f"{type(exc).__name__}: {exc}"
                    if error != last_error:
                        self.log.warning("cannot read offsets of %s (will retry): %s", self.topic, error)
                        last_error = error
                    executor.submit(probe.close)
                    await asyncio.sleep(min(self.poll_interval * 2 ** min(failures, 4), 60.0))
                    continue
                if failures:
                    self.log.info("reading offsets of %s again", self.topic)
                    failures, last_error = 0, ""
                if announcer.should_fire(backlog, time.monotonic()):
                    with contextlib.suppress(Exception):  # the reported ends will do
                        backlog = await loop.run_in_executor(executor, probe.exact, backlog)
                    payload = self.payload(backlog)
                    self.log.info("%s: %d offsets not landed yet, %s", self.topic, payload["backlog"], backlog)
                    yield TriggerEvent(payload)
                await asyncio.sleep(self.poll_interval)
        finally:
            executor.submit(probe.close)
            executor.shutdown(wait=False)
