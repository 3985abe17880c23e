"""Producing to the dataset topics: simulated readings, or real payloads replayed from a file."""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from catalog.contract import Contract
from infra import kafka as kafka_io
from infra.errors import BadRequest
from infra.settings import Settings
from ingest.decode import SOURCE_TZ_HEADER
from ingest.simulate import Record


def _decode_text(data: bytes) -> str:
    """UTF-8 (with or without BOM), else CP949 when the text reads as Korean — what Korean portals serve —, else
    Latin-1 (ISO 8859-1), e.g. the ``°C`` of a European CSV export."""
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        pass
    korean = _as_korean(data)
    if korean is not None:
        return korean
    if not re.search(rb"[\x80-\x9f]", data):  # C1 control codes: never in real Latin-1 text
        return data.decode("latin-1")
    raise BadRequest("file is neither UTF-8, CP949 nor Latin-1", hint="re-encode it as UTF-8")


def _as_korean(data: bytes) -> str | None:
    """The CP949 reading of ``data`` if it is Korean text, else None.

    Korean text is almost entirely in KS X 1001 (EUC-KR: both bytes 0xA1–0xFE). CP949 also maps most other byte
    pairs to rare Hangul syllables, so Latin-1 bytes such as ``°C`` (B0 43) decode "successfully" as ``캜``: text
    whose Hangul are mostly such extension syllables is not Korean."""
    try:
        return data.decode("euc-kr")
    except UnicodeDecodeError:
        pass
    try:
        text = data.decode("cp949")
    except UnicodeDecodeError:
        return None
    hangul = [c for c in text if "\uac00" <= c <= "\ud7a3"]
    extension = sum(1 for c in hangul if c.encode("cp949")[1] < 0xA1)
    return text if 2 * extension < len(hangul) else None


def _portal_items(document: dict) -> list | None:
    """Rows of a Korean public-data-portal envelope (``response/header/resultCode``, ``body/items[/item]``)."""
    response = document.get("response")
    if not isinstance(response, dict) or "body" not in response and "header" not in response:
        return None
    header = response.get("header") or {}
    if str(header.get("resultCode", "00")) not in ("00", "0"):
        raise BadRequest(
            f"the portal answered {header.get('resultCode')}: {header.get('resultMsg')}",
            hint="fix the request (service key, parameters) and fetch the file again",
        )
    items = (response.get("body") or {}).get("items") or []
    if isinstance(items, dict):  # the XML-to-JSON style: items: {item: [...] | {...}}
        items = items.get("item") or []
    return items if isinstance(items, list) else [items]


def _xml_items(text: str) -> list[dict]:
    import xml.etree.ElementTree as ET

    root = ET.fromstring(text)
    code = root.findtext("header/resultCode")
    if code not in (None, "00", "0"):
        raise BadRequest(
            f"the portal answered {code}: {root.findtext('header/resultMsg')}",
            hint="fix the request (service key, parameters) and fetch the file again",
        )
    return [{child.tag: child.text for child in item} for item in root.iterfind("body/items/item")]


def entities_from_file(path: Path) -> Iterable[dict | str]:
    """Entities in a file: a JSON array, one JSON object (an entity, an NGSI notification with ``data``, or a
    Korean portal envelope), JSON lines, portal XML, or CSV (UTF-8, UTF-8 with BOM, CP949 or Latin-1). A line that is
    not valid JSON is yielded as text so that it is quarantined, not lost."""
    return entities_from_bytes(path.read_bytes(), path.suffix)


def entities_from_bytes(data: bytes, suffix: str = "") -> Iterator[dict | str]:
    """:func:`entities_from_file` for content fetched from elsewhere (``suffix`` hints the format)."""
    text = _decode_text(data)
    if suffix.lower() == ".csv" or (not suffix and _looks_like_csv(text)):
        import csv

        yield from csv.DictReader(text.splitlines())
        return
    if text.lstrip().startswith("<"):
        yield from _xml_items(text)
        return
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
    elif isinstance(document, dict) and (items := _portal_items(document)) is not None:
        yield from items
    else:
        yield document


def _looks_like_csv(text: str) -> bool:
    first = text.lstrip()[:1]
    return first not in ("{", "[", "<", "") and "," in text.splitlines()[0]


def records_from_file(path: Path) -> list[Record]:
    return records_from_entities(entities_from_file(path))


def records_from_entities(entities: Iterable[dict | str]) -> list[Record]:
    """Kafka records keyed by entity id (or station name): the same entity always lands in one partition."""
    records = []
    for entity in entities:
        if isinstance(entity, dict):
            key = str(entity.get("id") or entity.get("stationName") or "").encode() or None
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
