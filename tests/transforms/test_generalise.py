"""Generalisation of quasi-identifiers on real data: the Seoul public-bike station list, AirKorea's nationwide
response, the FIWARE examples, and the simulated safe-zone feeds decoded as landing decodes them."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta

import pyarrow as pa
import pyarrow.compute as pc
import pytest

from catalog import get_contract
from ingest.decode import Message, decode_messages
from ingest.produce import records_from_file
from ingest.simulate import simulate
from tests.conftest import FIXTURES
from transforms import geo
from transforms.generalise import (
    age_band_5y,
    bucket_15min,
    cell_250m,
    district,
    generalise,
    quasi_identifier_names,
)

TS = pa.timestamp("us", tz="UTC")
FIWARE_DATASETS = {  # the examples with a location and a time: Spanish cities, outside Seoul
    "AirQualityObserved": "air_quality",
    "TrafficFlowObserved": "traffic_flow",
    "WeatherObserved": "weather_observed",
    "NoiseLevelObserved": "noise_level",
    "WaterQualityObserved": "water_quality",
}


def decoded(dataset_id: str, records) -> pa.Table:
    """Records decoded by landing's own decoder (DuckDB), without the broker."""
    now = int(time.time() * 1000)
    messages = [Message("t", 0, i, now, r.value) for i, r in enumerate(records)]
    return decode_messages(messages, get_contract(dataset_id))


@pytest.fixture(scope="module")
def bike_stations() -> pa.Table:
    table = decoded("bike_stations", records_from_file(FIXTURES / "korea" / "seoul_bike" / "bike_loc_info_api.csv"))
    return table.filter(pc.is_valid(table.column("lat")))


def test_real_bike_stations_fall_in_their_published_district(bike_stations):
    found = district(bike_stations.column("lon"), bike_stations.column("lat")).to_pylist()
    published = bike_stations.column("district").to_pylist()
    agree = sum(f == p for f, p in zip(found, published, strict=True))
    assert len(found) > 1000 and agree >= 0.97 * len(found)
    assert all(isinstance(f, str) for f in found)  # plain strings, every station inside Seoul


def test_cells_of_real_stations_are_stable_and_hold_their_point(bike_stations):
    lon, lat = bike_stations.column("lon"), bike_stations.column("lat")
    cells = cell_250m(lon, lat).to_pylist()
    # the same point gets the same cell whatever else is in the batch: reversed, sliced
    assert cell_250m(lon[::-1], lat[::-1]).to_pylist() == cells[::-1]
    assert cell_250m(lon[100:110], lat[100:110]).to_pylist() == cells[100:110]
    # each cell's south-west corner, 250 m squares on the projection, lies at most 250 m west and south
    for x, y, cell in zip(lon.to_pylist(), lat.to_pylist(), cells, strict=True):
        _, east, north = cell.split(":")
        dx = (x - geo.GRID_ORIGIN[0]) * geo._M_PER_DEG_LON - int(east) * 250
        dy = (y - geo.GRID_ORIGIN[1]) * geo._M_PER_DEG_LAT - int(north) * 250
        assert 0 <= dx < 250 and 0 <= dy < 250, (x, y, cell)
    assert len(set(cells)) > 0.8 * len(cells)  # stations a few hundred metres apart: mostly cells of their own


def test_fiware_examples_outside_seoul_get_a_cell_but_no_district():
    for model, dataset_id in FIWARE_DATASETS.items():
        table = decoded(dataset_id, records_from_file(FIXTURES / "fiware" / model / "example.json"))
        lon, lat = table.column("lon"), table.column("lat")
        assert lon[0].is_valid, model
        assert district(lon, lat).to_pylist() == [None], model  # Spain
        assert cell_250m(lon, lat)[0].as_py().startswith("250m:"), model


def test_quarter_hours_floor_in_utc_at_the_boundaries():
    times = [
        datetime(2026, 3, 1, 0, 0, tzinfo=UTC),
        datetime(2026, 3, 1, 0, 14, 59, 999_999, tzinfo=UTC),
        datetime(2026, 3, 1, 0, 15, tzinfo=UTC),
        datetime(2026, 3, 1, 0, 15, 0, 1, tzinfo=UTC),
        datetime(2026, 2, 28, 23, 59, 59, tzinfo=UTC),
        datetime(2026, 3, 1, 9, 7, tzinfo=UTC) - timedelta(hours=9),  # 09:07 KST
        None,
    ]
    expected = [
        datetime(2026, 3, 1, 0, 0, tzinfo=UTC),
        datetime(2026, 3, 1, 0, 0, tzinfo=UTC),
        datetime(2026, 3, 1, 0, 15, tzinfo=UTC),
        datetime(2026, 3, 1, 0, 15, tzinfo=UTC),
        datetime(2026, 2, 28, 23, 45, tzinfo=UTC),
        datetime(2026, 3, 1, 0, 0, tzinfo=UTC),
        None,
    ]
    out = bucket_15min(pa.array(times, TS))
    assert out.type == TS and out.to_pylist() == expected


def test_real_reading_times_floor_to_their_quarter_hour():
    nationwide = FIXTURES / "korea" / "airkorea" / "getCtprvnRltmMesureDnsty_nationwide_2024-02-18T20.json"
    hours = decoded("kr_air_quality", records_from_file(nationwide)).column("observed_at")
    fiware = [
        decoded(d, records_from_file(FIXTURES / "fiware" / m / "example-normalized.json")).column("observed_at")
        for m, d in FIWARE_DATASETS.items()
    ]
    for times in [hours, *fiware]:
        for time_, bucket in zip(times.to_pylist(), bucket_15min(times).to_pylist(), strict=True):
            if time_ is None:
                assert bucket is None
                continue
            assert bucket <= time_ < bucket + timedelta(minutes=15)
            assert bucket.minute % 15 == 0 and bucket.second == bucket.microsecond == 0
    # AirKorea's hours (19:00 and 20:00 KST, i.e. 10:00 and 11:00 UTC) lie on boundaries: their own buckets
    assert bucket_15min(hours).equals(hours)
    assert set(hours.drop_null().to_pylist()) == {datetime(2024, 2, 18, h, tzinfo=UTC) for h in (10, 11)}


def test_ages_fall_in_five_year_bands_edges_included():
    ages = pa.array([0, 4, 5, 9, 64, 65, 69, 70, 74, 99, 100, None], pa.int64())
    assert age_band_5y(ages).to_pylist() == [
        "0-4",
        "0-4",
        "5-9",
        "5-9",
        "60-64",
        "65-69",
        "65-69",
        "70-74",
        "70-74",
        "95-99",
        "100-104",
        None,
    ]


def test_mobility_trips_generalised_as_declared():
    contract = get_contract("mobility_trips")
    records, _ = simulate(contract, 300, seed=11)
    table = decoded("mobility_trips", records)
    out = generalise(table, contract)
    names = out.column_names
    assert "start_lat" not in names and "end_lon" not in names
    assert names.index("start_district") == table.column_names.index("start_lon")
    assert out.column("started_at").to_pylist() == bucket_15min(table.column("started_at")).to_pylist()
    for column in ("trip_id", "rider_id", "mode", "distance_m", "fare_krw", "_offset"):
        assert out.column(column).equals(table.column(column)), column
    # the simulator starts trips at real bike stations: each start district is its station's published one
    stations = {(round(float(s["lon"]), 6), round(float(s["lat"]), 6)): s["district"] for s in geo_stations()}
    starts = [json.loads(r.value)["startLocation"]["coordinates"] for r in records]
    published = [stations[(round(x, 6), round(y, 6))] for x, y in starts]
    agree = sum(a == b for a, b in zip(out.column("start_district").to_pylist(), published, strict=True))
    assert agree >= 0.97 * len(published)
    assert quasi_identifier_names(contract) == ["mode", "started_at", "ended_at", "start_district", "end_district"]


def test_care_sensors_ages_become_bands_and_times_quarter_hours():
    contract = get_contract("care_sensors")
    table = decoded("care_sensors", simulate(contract, 400, seed=3)[0])
    out = generalise(table, contract)
    ages, bands = table.column("resident_age").to_pylist(), out.column("resident_age_band").to_pylist()
    assert "resident_age" not in out.column_names
    assert all(65 <= a <= 99 for a in ages)  # the programme's register: 65 and over
    assert bands == [f"{a // 5 * 5}-{a // 5 * 5 + 4}" for a in ages]
    assert {t.minute for t in out.column("observed_at").to_pylist()} <= {0, 15, 30, 45}
    assert out.column("district").equals(table.column("district"))  # coarse already: kept as it is
    assert quasi_identifier_names(contract) == ["district", "resident_age_band", "observed_at"]


def test_a_projection_is_generalised_and_a_half_pair_refused():
    contract = get_contract("mobility_trips")
    table = decoded("mobility_trips", simulate(contract, 20, seed=2)[0])
    assert generalise(table.select(["rider_id", "ended_at"]), contract).column_names == ["rider_id", "ended_at"]
    from infra.errors import ContractError

    with pytest.raises(ContractError) as caught:
        generalise(table.select(["start_lon"]), contract)
    assert caught.value.hint


def geo_stations() -> list[dict]:
    import csv

    with open(geo.STATIONS, encoding="utf-8") as handle:
        return list(csv.DictReader(handle))
