"""Bad input is quarantined record by record with a reason — never its whole batch, never a crash."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pyarrow.parquet as pq

from catalog import get_contract
from ingest.produce import send
from ingest.runner import ingest_loop
from ingest.simulate import Record, simulate


def _entity(**changes) -> dict:
    now = datetime.now(UTC).replace(microsecond=0)
    entity = {
        "id": "urn:ngsi-ld:AirQualityObserved:bad-input",
        "type": "AirQualityObserved",
        "dateObserved": now.isoformat(),
        "location": {"type": "Point", "coordinates": [126.97, 37.56]},
        "pm10": 40.0,
    }
    entity.update(changes)
    return {k: v for k, v in entity.items() if v is not None}


def _record(payload: bytes) -> Record:
    return Record(b"bad", payload)


BAD = {
    "malformed_json": _record(b'{"id": "x", "type": "AirQualityObserved", "pm10": '),
    "invalid_utf8": _record(json.dumps(_entity(name="ok")).encode().replace(b'"ok"', b'"\xff\xfe"')),
    "oversized_message": _record(json.dumps(_entity(name="x" * 20_000)).encode()),
    "nan_literal": _record(json.dumps(_entity(pm10=float("nan"))).encode()),  # Python writes a bare NaN
    "nan_string": _record(json.dumps(_entity(pm10="NaN")).encode()),
    "infinity_string": _record(json.dumps(_entity(pm10="Infinity")).encode()),
    "wrong_type": _record(json.dumps(_entity(pm10="forty")).encode()),
    "missing_key": _record(json.dumps(_entity(id=None)).encode()),
    "future_time": _record(
        json.dumps(_entity(dateObserved=(datetime.now(UTC) + timedelta(days=3)).isoformat())).encode()
    ),
    "not_an_object": _record(b"[1, 2, 3]"),
    "wrong_entity": _record(json.dumps(_entity(type="ParkingSpot")).encode()),
}
EXPECTED_REASON = {
    "malformed_json": "malformed_json",
    "invalid_utf8": "invalid_utf8",
    "oversized_message": "oversized_message",
    "nan_literal": "wrong_type:pm10",
    "nan_string": "wrong_type:pm10",
    "infinity_string": "wrong_type:pm10",
    "wrong_type": "wrong_type:pm10",
    "missing_key": "ExpectColumnValuesToNotBeNull(station_id)",
    "future_time": "event_time_ahead_of_kafka",
    "not_an_object": "not_an_object",
    "wrong_entity": "wrong_entity_type",
}


def test_each_bad_record_among_10k_is_quarantined_alone_with_its_reason(settings):
    settings = settings.model_copy(update={"max_message_bytes": 16_384})
    contract = get_contract("air_quality")
    good, _ = simulate(contract, 10_000, seed=21)
    kinds = list(BAD)
    records = good[:5000] + [BAD[k] for k in kinds] + good[5000:]
    positions = send(settings, contract, records)
    kind_at = {positions[5000 + i]: kind for i, kind in enumerate(kinds)}

    totals = ingest_loop(settings, ["air_quality"])
    assert totals["air_quality"] == (10_000, len(BAD))
    quarantined = [
        row
        for f in sorted((settings.lake / "quarantine" / "air_quality").rglob("*.parquet"))
        for row in pq.read_table(f).to_pylist()
    ]
    by_kind = {kind_at[(r["_partition"], r["_offset"])]: r for r in quarantined}
    assert set(by_kind) == set(BAD)
    for kind, row in by_kind.items():
        assert EXPECTED_REASON[kind] in row["_reason"], (kind, row["_reason"])
    assert by_kind["oversized_message"]["_raw"] is None and by_kind["invalid_utf8"]["_raw"] is None
    assert by_kind["wrong_type"]["_raw"] == BAD["wrong_type"].value.decode()


def test_records_sent_to_the_dead_letter_topic_land_in_quarantine(settings):
    from infra.kafka import ensure_topics
    from ingest.produce import send as produce

    contract = get_contract("air_quality")
    produce(settings, contract, simulate(contract, 100, seed=71)[0])
    dead = simulate(contract, 3, seed=72)[0] + [BAD["malformed_json"]]
    dlq = settings.model_copy(update={"topic_prefix": settings.topic_prefix + "dlq."})
    ensure_topics(settings, [settings.dead_letter_topic_for(contract.id)])
    produce(dlq, contract, dead)  # the dead-letter topic is prefix + "dlq." + dataset
    assert ingest_loop(settings, ["air_quality"])["air_quality"] == (100, 4)
    reasons = sorted(
        r["_reason"]
        for f in (settings.lake / "quarantine" / "air_quality").rglob("*.parquet")
        for r in pq.read_table(f).to_pylist()
    )
    assert reasons[:3] == ["ExpectColumnValuesToBeNull(_decode_error)=dead_letter"] * 3
    assert reasons[3].startswith("ExpectColumnValuesToBeNull(_decode_error)=dead_letter;malformed_json;")
