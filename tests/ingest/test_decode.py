"""The batch decoder on its own: NGSI forms, zones, schema evolution (no broker needed)."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from catalog import get_contract
from ingest.decode import Message, decode_messages

NOW_MS = 1_795_400_000_000  # 2026-11-22


def _decode(*entities, zone: str | None = None):
    messages = [Message("t", 0, i, NOW_MS, json.dumps(e).encode(), zone) for i, e in enumerate(entities)]
    return decode_messages(messages, get_contract("air_quality")).to_pylist()


BASE = {
    "id": "s1",
    "type": "AirQualityObserved",
    "dateObserved": "2026-11-21T10:00:00",
    "location": {"type": "Point", "coordinates": [128.6, 35.87]},
    "pm10": 40,
}


def test_naive_times_are_read_in_the_source_zone():
    seoul, madrid = _decode(BASE, zone="Asia/Seoul")[0], _decode(BASE, zone="Europe/Madrid")[0]
    assert seoul["observed_at"] == datetime(2026, 11, 21, 1, 0, tzinfo=UTC)
    assert madrid["observed_at"] == datetime(2026, 11, 21, 9, 0, tzinfo=UTC)
    assert _decode(BASE, zone="Not/AZone")[0]["observed_at"] == seoul["observed_at"]  # contract's zone


def test_a_new_optional_field_does_not_break_decoding():
    [row] = _decode({**BASE, "pm1": 12, "sensorFirmware": "v2.1"})
    assert row["_decode_error"] is None and row["pm10"] == 40


def test_an_incompatible_change_names_the_field():
    [row] = _decode({**BASE, "pm10": {"min": 30, "max": 50}})
    assert row["_decode_error"] == "wrong_type:pm10"


def test_normalized_and_key_values_forms_agree():
    normalized = {
        "id": "urn:ngsi-ld:AirQualityObserved:s1",
        "type": "AirQualityObserved",
        "dateObserved": {"type": "Property", "value": {"@type": "DateTime", "@value": "2026-11-21T10:00:00"}},
        "location": {"type": "GeoProperty", "value": BASE["location"]},
        "pm10": {"type": "Property", "value": 40, "unitCode": "GQ"},
    }
    a, b = _decode(BASE, normalized)
    assert {k: v for k, v in a.items() if k not in ("_offset", "_raw")} == {
        k: v for k, v in b.items() if k not in ("_offset", "_raw")
    }


def test_values_in_another_unit_are_converted_to_the_contracts():
    normalized = {
        **BASE,
        "pm10": {"type": "Property", "value": 0.04, "unitCode": "GP"},  # mg/m³ → µg/m³
        "temperature": {"type": "Number", "value": 50.0, "metadata": {"unitCode": {"value": "FAH"}}},  # NGSI v2
        "relativeHumidity": {"type": "Property", "value": 54, "unitCode": "P1"},  # percent → fraction
    }
    [row] = _decode(normalized)
    assert row["_decode_error"] is None
    assert abs(row["pm10"] - 40.0) < 1e-9
    assert abs(row["temperature"] - 10.0) < 1e-9
    assert abs(row["relative_humidity"] - 0.54) < 1e-9


def test_an_unknown_unit_is_a_decode_error_naming_the_column():
    [row] = _decode({**BASE, "pm10": {"type": "Property", "value": 40, "unitCode": "XYZ"}})
    assert row["_decode_error"] == "unknown_unit:pm10" and row["pm10"] is None
