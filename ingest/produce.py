"""Producing to the dataset topics: simulated readings, or real payloads replayed from a file."""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from catalog.contract import Contract
from infra import kafka as kafka_io
from infra.errors import BadRequest
from infra.settings import Settings
from ingest.decode import SOURCE_TZ_HEADER
from ingest.simulate import Record


def entities_from_file(path: Path) -> Iterator[dict | str]:
    """Entities in a file: a JSON array, one JSON object (an entity or an NGSI v2 notification with ``data``),
    or JSON lines. A line that is not valid JSON is yielded as text so that it is quarantined, not lost."""
    text = path.read_text(encoding="utf-8-sig")
    try:
        document = json.loads(text)
    except json.JSONDecodeError:
        for line in text.splitlines():
            if not line.strip():
                continue
            try:
                yield json.loads(line)
            except json.JSONDecodeError:
                yield line
        return
    if isinstance(document, list):
        yield from document
    elif isinstance(document, dict) and isinstance(document.get("data"), list):
        yield from document["data"]  # an NGSI v2 / NGSI-LD notification
    else:
        yield document


def records_from_file(path: Path) -> list[Record]:
    records = []
    for entity in entities_from_file(path):
        if isinstance(entity, dict):
            key = str(entity.get("id", "")).encode() or None
            records.append(Record(key or b"", json.dumps(entity, ensure_ascii=False).encode()))
        else:
            records.append(Record(b"", str(entity).encode()))
    return records


def check_zone(zone: str) -> str:
    try:
        ZoneInfo(zone)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise BadRequest(f"unknown time zone {zone!r}", hint="use an IANA name such as Asia/Seoul") from exc
    return zone


def send(
    settings: Settings, contract: Contract, records: Iterable[Record], source_tz: str | None = None
) -> list[tuple[int, int]]:
    """Send records keyed by entity id; returns each record's (partition, offset) as the broker acknowledged."""
    topic = settings.topic_for(contract.id)
    kafka_io.ensure_topics(settings, [topic])
    headers = [(SOURCE_TZ_HEADER, check_zone(source_tz).encode())] if source_tz else None
    producer = kafka_io.producer(settings)
    futures = []
    try:
        for record in records:
            futures.append(producer.send(topic, key=record.key or None, value=record.value, headers=headers))
        producer.flush()
    finally:
        producer.close()
    # raises if the broker refused any record: nothing is silently lost
    return [(meta.partition, meta.offset) for meta in (future.get(timeout=30) for future in futures)]
