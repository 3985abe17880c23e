"""Consumer-group membership for ``cityhub ingest --group``: several ingest processes split the partitions.

The member consumer only takes part in the group — it owns partitions, heartbeats, and commits as a member of
the current generation. It never fetches (its partitions stay paused): records are read by the landing path's
own assign()-consumer, at offsets fixed by the recorded slice. When a rebalance moves a partition away in the
middle of a slice, the member's next commit for it is refused; the slice stays recorded, and the partition's
new owner lands exactly its remaining chunks under the same names — nothing is lost or landed twice.
"""

from __future__ import annotations

import logging
import os
import socket
import time

from kafka import ConsumerRebalanceListener, KafkaConsumer, TopicPartition
from kafka.errors import (
    CommitFailedError,
    IllegalGenerationError,
    KafkaError,
    RebalanceInProgressError,
    UnknownMemberIdError,
)
from kafka.structs import OffsetAndMetadata

from infra import kafka as kafka_io
from infra.errors import BrokerError, PartitionRevoked
from infra.settings import Settings

log = logging.getLogger(__name__)


class _Listener(ConsumerRebalanceListener):
    def __init__(self, member: GroupMember):
        self.member = member

    def on_partitions_revoked(self, revoked):
        self.member.rebalancing = True
        if revoked:
            log.info("rebalance: giving up %s", _describe(revoked))

    def on_partitions_assigned(self, assigned):
        self.member.consumer.pause(*assigned)  # membership only: the landing path fetches by offset
        self.member.rebalancing = False
        log.info("rebalance: now landing %s", _describe(assigned) or "no partitions")


def _describe(tps) -> str:
    return ", ".join(f"{tp.topic}[{tp.partition}]" for tp in sorted(tps))


class GroupMember:
    def __init__(self, settings: Settings, topics: list[str]):
        kafka_io.check_reachable(settings)
        try:
            self.consumer = KafkaConsumer(
                bootstrap_servers=settings.bootstrap,
                group_id=settings.consumer_group,
                enable_auto_commit=False,
                client_id=f"cityhub-ingest-{socket.gethostname()}-{os.getpid()}",
                # Also the rebalance timeout: how long a rebalance waits for a member that stopped polling
                # (one that died mid-rebalance). A member polls at every chunk, so 30 s is plenty.
                max_poll_interval_ms=30_000,
                session_timeout_ms=10_000,
            )
        except KafkaError as exc:
            raise BrokerError(f"cannot join group {settings.consumer_group}: {exc}") from exc
        self.rebalancing = True
        self.consumer.subscribe(topics=topics, listener=_Listener(self))
        self.topics = topics

    def wait_for_assignment(self, timeout_s: float) -> None:
        """Join the group, or finish a rebalance (on the embedded broker a join takes ~20 s); the join only
        makes progress while ``poll()`` runs, so it is polled until done."""
        deadline = time.monotonic() + timeout_s
        while self.rebalancing and time.monotonic() < deadline:
            self.consumer.poll(timeout_ms=500)

    def owned(self, topic: str) -> set[int]:
        """Partitions of ``topic`` this process owns now, after any rebalance under way.

        The poll only lets the client act on what the coordinator said (a rebalance begun); with every
        partition paused it returns no records, so any timeout was waited out in full (100 ms a call)."""
        self.consumer.poll(timeout_ms=0)
        if self.rebalancing:
            self.wait_for_assignment(timeout_s=60)
        if self.rebalancing:
            return set()
        return {tp.partition for tp in self.consumer.assignment() if tp.topic == topic}

    def commit(self, tp: TopicPartition, end: int) -> None:
        """Commit as a member of the current generation.

        A chunk of a partition this process no longer owns is not committed here: it was landed because the
        slice it belongs to was recorded before the rebalance (or adopted from a process that died), and the
        partition's owner commits it when it reaches it — landing it twice writes the same names and bytes."""
        self.consumer.poll(timeout_ms=0)
        if self.rebalancing:
            raise PartitionRevoked(f"{tp.topic}[{tp.partition}]: the group is rebalancing")
        if tp not in self.consumer.assignment():
            log.debug("not committing %s[%d]: owned by another member now", tp.topic, tp.partition)
            return
        try:
            self.consumer.commit({tp: OffsetAndMetadata(end, "", -1)})
        except (CommitFailedError, RebalanceInProgressError, IllegalGenerationError, UnknownMemberIdError) as exc:
            # The group moved on (a member joined or left): this slice stops here and its chunks not yet
            # committed are landed by whoever owns the partition after the rebalance — possibly this process.
            raise PartitionRevoked(f"{tp.topic}[{tp.partition}]: commit refused during a rebalance ({exc})") from exc

    def close(self) -> None:
        self.consumer.close()
