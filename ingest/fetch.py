"""Fetching a recorded offset range ``[first, end)`` of one partition, as columns.

Landing reads exactly the offsets its slice recorded, chunk by chunk; how the bytes come off the wire is a
choice of client (``CITYHUB_KAFKA_CLIENT``):

* ``librdkafka`` (default) — the C client of the confluent-kafka wheel. It fetches and parses record batches
  on its own threads, outside the GIL, at ~2.5 µs per message here against kafka-python's ~16 µs: landing's
  decoding and writing then run while the next chunk arrives instead of taking turns with the fetch.
* ``kafka-python`` — the pure-Python client the rest of cityhub uses (topics, offsets, group membership).

Both return the same :class:`~ingest.decode.RawRecords` for the same range (a test holds them equal), and
neither commits anything: offsets are committed by landing, after the files are durable.
"""

from __future__ import annotations

import bisect
import logging
import time
from typing import Protocol

from kafka import TopicPartition

from infra import kafka as kafka_io
from infra.errors import BrokerError
from infra.settings import Settings
from ingest.decode import SOURCE_TZ_HEADER, RawRecords

log = logging.getLogger(__name__)
NO_RECORDS_TIMEOUT_S = 60.0


class RangeFetcher(Protocol):
    def fetch(self, tp: TopicPartition, first: int, end: int) -> RawRecords: ...

    def close(self) -> None: ...


def range_fetcher(settings: Settings) -> RangeFetcher:
    if settings.kafka_client == "kafka-python":
        return KafkaPythonFetcher(settings)
    return LibrdkafkaFetcher(settings)


def _zone(headers) -> str | None:
    for key, value in headers:
        if key == SOURCE_TZ_HEADER:
            return value.decode() if isinstance(value, bytes) else value
    return None


def _stalled(tp: TopicPartition, next_offset: int, end: int) -> BrokerError:
    return BrokerError(
        f"{tp.topic} partition {tp.partition}: no records after offset {next_offset} for "
        f"{NO_RECORDS_TIMEOUT_S:.0f}s although the recorded slice ends at {end}",
        hint="the broker may be down or its log truncated; retry once it is back",
    )


class KafkaPythonFetcher:
    """kafka-python: assign, seek, poll until the range is complete."""

    def __init__(self, settings: Settings):
        self.consumer = kafka_io.consumer(settings)

    def fetch(self, tp: TopicPartition, first: int, end: int) -> RawRecords:
        consumer = self.consumer
        consumer.assign([tp])
        consumer.seek(tp, first)
        out = RawRecords([], [], [], [], [], [])
        next_offset = first
        deadline = time.monotonic() + NO_RECORDS_TIMEOUT_S
        while next_offset < end:
            records = consumer.poll(timeout_ms=1000, max_records=end - next_offset).get(tp, [])
            if not records:
                if time.monotonic() > deadline:
                    raise _stalled(tp, next_offset, end)
                continue
            deadline = time.monotonic() + NO_RECORDS_TIMEOUT_S
            offsets = [r.offset for r in records]
            keep = bisect.bisect_left(offsets, end)
            records = records[:keep]
            out.offsets += offsets[:keep]
            out.values += [r.value for r in records]
            out.timestamps_ms += [r.timestamp for r in records]
            out.zones += [_zone(r.headers) if r.headers else None for r in records]
            next_offset = offsets[keep - 1] + 1 if keep else end
        out.topics = [tp.topic] * len(out)
        out.partitions = [tp.partition] * len(out)
        return out

    def close(self) -> None:
        self.consumer.close()


class LibrdkafkaFetcher:
    """librdkafka: the partition stays assigned while its chunks are read in order, so the client's prefetch
    of chunk k+1 overlaps landing chunk k; a jump (another partition, a resumed slice) re-assigns."""

    def __init__(self, settings: Settings):
        from confluent_kafka import Consumer

        kafka_io.check_reachable(settings)
        self.consumer = Consumer(
            {
                "bootstrap.servers": settings.bootstrap,
                # required by the client, but never used: it neither subscribes nor commits
                "group.id": settings.consumer_group,
                "enable.auto.commit": False,
                "enable.auto.offset.store": False,
                "client.id": "cityhub-landing",
                "fetch.max.bytes": 64 * 1024 * 1024,
                "max.partition.fetch.bytes": 8 * 1024 * 1024,
                # what it may prefetch ahead of landing: a chunk's worth, not the default 64 MB
                "queued.max.messages.kbytes": 16 * 1024,
                # Once a partition's slice is read, the client's next fetch for it waits on the broker for new
                # records, up to this long (default 500 ms) — and the next partition's first fetch waits behind
                # it on the same connection, leaving landing idle at every partition switch.
                "fetch.wait.max.ms": 10,
                # And once that prefetch is full, the client waits this long (default 1000 ms) before it fetches
                # again, even when landing has drained it meanwhile: landing's next chunk then waited up to a
                # second (a 1M-message backfill spent ~80 % of its time there).
                "fetch.queue.backoff.ms": 10,
                # its own log lines (connection trouble) go through cityhub's logging, not raw to stderr
                "logger": logging.getLogger("ingest.librdkafka"),
            }
        )
        self.at: tuple[str, int, int] | None = None  # (topic, partition, next offset) the consumer is reading

    def fetch(self, tp: TopicPartition, first: int, end: int) -> RawRecords:
        from confluent_kafka import TopicPartition as RdTopicPartition

        if self.at != (tp.topic, tp.partition, first):
            self.consumer.assign([RdTopicPartition(tp.topic, tp.partition, first)])
        self.at = None  # until the range is complete, the consumer's position is not known to be ``end``
        out = RawRecords([], [], [], [], [], [])
        next_offset, overshot = first, False
        deadline = time.monotonic() + NO_RECORDS_TIMEOUT_S
        while next_offset < end:
            messages = self.consumer.consume(num_messages=end - next_offset, timeout=1.0)
            if any(m.error() is not None for m in messages):
                for m in messages:
                    if m.error() is not None:
                        log.warning("broker: %s", m.error())
                messages = [m for m in messages if m.error() is None]
            if not messages:
                if time.monotonic() > deadline:
                    raise _stalled(tp, next_offset, end)
                continue
            deadline = time.monotonic() + NO_RECORDS_TIMEOUT_S
            offsets = [m.offset() for m in messages]
            keep = bisect.bisect_left(offsets, end)
            if keep < len(messages):  # past the range (a gap in the log): the next range re-assigns
                overshot, messages = True, messages[:keep]
            out.offsets += offsets[:keep]
            out.values += [m.value() for m in messages]
            out.timestamps_ms += [m.timestamp()[1] for m in messages]
            out.zones += [_zone(h) if (h := m.headers()) else None for m in messages]
            next_offset = offsets[keep - 1] + 1 if keep else end
        if not overshot:
            self.at = (tp.topic, tp.partition, end)
        out.topics = [tp.topic] * len(out)
        out.partitions = [tp.partition] * len(out)
        return out

    def close(self) -> None:
        self.consumer.close()
