"""The real FIWARE Smart Data Models examples go through Kafka and land with the expected values."""

from __future__ import annotations

import json
from pathlib import Path

import duckdb
import pytest

from catalog import get_contract
from ingest.landing import land_once, new_run_id
from ingest.produce import records_from_file, send
from tests.conftest import FIXTURES

GOLDEN = json.loads((Path(__file__).parent.parent / "golden" / "fiware.json").read_text())
MODELS = {
    "air_quality": "AirQualityObserved",
    "traffic_flow": "TrafficFlowObserved",
    "parking_spots": "ParkingSpot",
    "weather_observed": "WeatherObserved",
    "noise_level": "NoiseLevelObserved",
    "streetlights": "Streetlight",
    "waste_containers": "WasteContainer",
    "water_quality": "WaterQualityObserved",
}
FILES = ["example.json", "example-normalized.json", "example.jsonld", "example-normalized.jsonld"]
# (dataset, file) -> what the decoder does not do yet; the golden row says what it should produce.
DECODER_GAPS: dict[tuple[str, str], str] = {}


def _cases():
    for dataset_id in sorted(MODELS):
        for name in FILES:
            gap = DECODER_GAPS.get((dataset_id, name))
            marks = [pytest.mark.xfail(strict=True, reason=f"decoder: {gap}")] if gap else []
            yield pytest.param(dataset_id, name, marks=marks, id=f"{name}-{dataset_id}")


def _landed(settings, dataset_id: str) -> list[dict]:
    glob = settings.lake / "clean" / dataset_id / "date=*" / "*.parquet"
    con = duckdb.connect()
    con.execute("SET TimeZone='UTC'")
    rows = con.sql(f"SELECT * FROM read_parquet('{glob}', hive_partitioning=false) ORDER BY _offset")
    return rows.to_arrow_table().to_pylist()


def test_every_model_file_has_a_golden_row():
    assert set(GOLDEN) == set(MODELS)
    for dataset_id, model in MODELS.items():
        assert set(GOLDEN[dataset_id]) == set(FILES)
        assert all((FIXTURES / "fiware" / model / name).is_file() for name in FILES)
        columns = {c.name for c in get_contract(dataset_id).columns}
        assert all(set(row) == columns for row in GOLDEN[dataset_id].values()), dataset_id


@pytest.mark.parametrize(("dataset_id", "name"), list(_cases()))
def test_real_examples_land_as_golden_rows(settings, dataset_id, name):
    contract = get_contract(dataset_id)
    # The Madrid/Valladolid/Santander examples carry local times without a zone.
    send(
        settings,
        contract,
        records_from_file(FIXTURES / "fiware" / MODELS[dataset_id] / name),
        source_tz="Europe/Madrid",
    )
    result = land_once(settings, contract, new_run_id("test"))
    assert (result.clean_rows, result.quarantined_rows) == (1, 0)
    [row] = _landed(settings, dataset_id)
    assert_golden_row(row, GOLDEN[dataset_id][name])
    assert row["_topic"] == settings.topic_for(dataset_id)


def assert_golden_row(row: dict, expected: dict) -> None:
    """A landed clean row (as DuckDB reads it) has the golden row's values (the DAG runs' test uses it too)."""
    got = {k: (v.isoformat() if hasattr(v, "isoformat") else v) for k, v in row.items() if k in expected}
    if expected.get("observed_at") == "@kafka_timestamp":  # the entity carries no time of its own
        assert row["observed_at"] == row["_kafka_ts"]
        got["observed_at"] = expected["observed_at"]
    assert set(got) == set(expected)
    for key, value in expected.items():
        if isinstance(value, float):
            assert got[key] == pytest.approx(value), key
        else:
            assert got[key] == value, key
