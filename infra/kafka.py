"""Kafka clients (kafka-python) and the few broker operations cityhub needs: topics and true end offsets."""

from __future__ import annotations

import contextlib
import logging
import socket
import time
from collections.abc import Iterable

from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer, TopicPartition
from kafka.admin import NewTopic
from kafka.errors import KafkaError, TopicAlreadyExistsError

from infra.errors import BrokerError
from infra.settings import Settings

log = logging.getLogger(__name__)


def _unreachable(settings: Settings, exc: Exception) -> BrokerError:
    hint = (
        "start it with `cityhub broker` (or `cityhub demo`)"
        if settings.uses_embedded_broker
        else "check CITYHUB_KAFKA_BOOTSTRAP and that the cluster is up"
    )
    return BrokerError(
        f"Kafka at {settings.bootstrap} is unreachable: {exc}",
        hint=hint,
        status=503,
        code="broker_unreachable",
    )


def check_reachable(settings: Settings, timeout_s: float = 2.0) -> None:
    """Fail in seconds, not after kafka-python's 30 s bootstrap timeout, when no bootstrap server answers."""
    errors = []
    for server in settings.bootstrap.split(","):
        host, _, port = server.strip().rpartition(":")
        try:
            socket.create_connection((host.strip("[]") or "localhost", int(port)), timeout=timeout_s).close()
            return
        except (OSError, ValueError) as exc:
            errors.append(f"{server.strip()}: {exc}")
    raise _unreachable(settings, Exception("; ".join(errors)))


def admin(settings: Settings) -> KafkaAdminClient:
    check_reachable(settings)
    try:
        return KafkaAdminClient(
            bootstrap_servers=settings.bootstrap, client_id="cityhub-admin", request_timeout_ms=15_000
        )
    except KafkaError as exc:
        raise _unreachable(settings, exc) from exc


def producer(settings: Settings) -> KafkaProducer:
    check_reachable(settings)
    try:
        return KafkaProducer(
            bootstrap_servers=settings.bootstrap,
            acks="all",
            linger_ms=20,
            batch_size=256 * 1024,
            retries=5,
            client_id="cityhub-producer",
        )
    except KafkaError as exc:
        raise _unreachable(settings, exc) from exc


def consumer(settings: Settings, group: str | None = None) -> KafkaConsumer:
    """A consumer for ``assign()`` use: joins no group (joining takes ~20 s on tansu), commits explicitly."""
    check_reachable(settings)
    try:
        return KafkaConsumer(
            bootstrap_servers=settings.bootstrap,
            group_id=group or settings.consumer_group,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            max_partition_fetch_bytes=8 * 1024 * 1024,
            fetch_max_bytes=64 * 1024 * 1024,
            client_id="cityhub-landing",
        )
    except KafkaError as exc:
        raise _unreachable(settings, exc) from exc


def ensure_topics(settings: Settings, topics: Iterable[str]) -> list[str]:
    """Create the topics that do not exist yet; returns the ones created."""
    client = admin(settings)
    try:
        existing = set(client.list_topics())
        wanted = [t for t in topics if t not in existing]
        if wanted:
            with contextlib.suppress(TopicAlreadyExistsError):  # another process created it meanwhile
                client.create_topics([NewTopic(t, settings.topic_partitions, 1) for t in wanted])
        return wanted
    finally:
        client.close()


def existing_topics(settings: Settings) -> set[str]:
    """The cluster's topics, from an admin client: a fresh consumer's ``topics()`` waits out kafka-python's
    100 ms metadata back-off after its bootstrap (twice a landing run: ~10 % of a 200k-message run's time)."""
    client = admin(settings)
    try:
        return set(client.list_topics())
    except KafkaError as exc:
        raise _unreachable(settings, exc) from exc
    finally:
        client.close()


def partitions_of(kafka_consumer: KafkaConsumer, topic: str, wait_s: float = 10.0) -> list[TopicPartition]:
    deadline = time.monotonic() + wait_s
    while True:
        parts = kafka_consumer.partitions_for_topic(topic)
        if parts:
            return [TopicPartition(topic, p) for p in sorted(parts)]
        if time.monotonic() > deadline:
            raise BrokerError(
                f"topic {topic} does not exist on the broker",
                hint="create it with `cityhub topics` or produce to it first",
                code="unknown_topic",
            )
        time.sleep(0.2)


def true_end_offsets(kafka_consumer: KafkaConsumer, tps: list[TopicPartition]) -> dict[TopicPartition, int]:
    """End offsets as the log really has them.

    tansu answers ListOffsets with the last *batch's* base offset + 1, which under-reports when that batch
    holds several records. Reading from ``end - 1`` returns the whole last batch, so the true end is one past
    the highest offset seen there. On a real Kafka cluster the probe finds exactly ``end - 1`` and changes
    nothing.
    """
    reported = kafka_consumer.end_offsets(tps)
    result: dict[TopicPartition, int] = {}
    for tp in tps:
        end = reported[tp]
        if end > 0:
            kafka_consumer.assign([tp])
            kafka_consumer.seek(tp, end - 1)
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline:
                records = kafka_consumer.poll(timeout_ms=500, max_records=100_000).get(tp, [])
                if records:
                    end = max(end, records[-1].offset + 1)
                    break
        result[tp] = end
    return result
