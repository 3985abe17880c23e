"""Operations: replay from a time, and quarantine replay after a contract fix — once and only once."""

from __future__ import annotations

import dataclasses
import hashlib
import json
from datetime import UTC, datetime, timedelta

import pyarrow.parquet as pq

from catalog import get_contract
from ingest.produce import send
from ingest.replay import quarantine_summary, replay_from_time, replay_quarantine
from ingest.runner import ingest_loop
from ingest.simulate import Record, simulate


def _digest(settings) -> dict[str, str]:
    return {
        str(p.relative_to(settings.lake)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(settings.lake.rglob("*.parquet"))
    }


def _rows(settings, zone: str) -> list[dict]:
    return [
        r
        for f in sorted((settings.lake / zone / "air_quality").rglob("*.parquet"))
        for r in pq.read_table(f).to_pylist()
    ]


def _high_pm10(i: int) -> Record:
    entity = {
        "id": f"urn:ngsi-ld:AirQualityObserved:dusty-{i}",
        "type": "AirQualityObserved",
        "dateObserved": (datetime.now(UTC) - timedelta(hours=2)).replace(microsecond=0).isoformat(),
        "location": {"type": "Point", "coordinates": [128.6, 35.87]},
        "pm10": 1500.0,
    }
    return Record(entity["id"].encode(), json.dumps(entity).encode())


def test_quarantine_replay_after_a_contract_fix_moves_rows_to_clean_once(settings):
    contract = get_contract("air_quality")
    send(settings, contract, simulate(contract, 300, seed=61)[0] + [_high_pm10(i) for i in range(7)])
    ingest_loop(settings, ["air_quality"])
    assert quarantine_summary(settings, contract) == [("ExpectColumnValuesToBeBetween(pm10)", 7)]

    # the fix: a yellow-dust storm is real, PM10 up to 2000 µg/m³ is a reading, not an error
    fixed = dataclasses.replace(
        contract,
        columns=tuple(dataclasses.replace(c, maximum=2000) if c.name == "pm10" else c for c in contract.columns),
    )
    result = replay_quarantine(settings, fixed)
    assert result.quarantined_rows == 0
    clean = _rows(settings, "clean")
    assert len(clean) == 307 and not _rows(settings, "quarantine")
    assert sum(r["pm10"] == 1500.0 for r in clean) == 7
    assert len({(r["_partition"], r["_offset"]) for r in clean}) == 307

    after = _digest(settings)
    replay_quarantine(settings, fixed)  # nothing left in quarantine: nothing to do
    replay_from_time(settings, fixed, datetime.now(UTC) - timedelta(days=1))  # rewrites the same bytes
    assert _digest(settings) == after
    assert ingest_loop(settings, ["air_quality"])["air_quality"] == (0, 0)
