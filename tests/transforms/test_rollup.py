"""Rollups on real station locations and real FIWARE examples, checked against plain Python (statistics)."""

from __future__ import annotations

import dataclasses
import math
import statistics
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pytest

from catalog import get_contract
from ingest.decode import Message, decode_messages
from ingest.produce import records_from_file
from ingest.simulate import simulate
from tests.conftest import FIXTURES
from transforms.geo import district, grid_cell
from transforms.normalise import local_days
from transforms.rollup import PLACE_COLUMN, measure_stats, output_schema, rollup, rollup_spec

SEOUL = ZoneInfo("Asia/Seoul")
AIR = get_contract("air_quality")
START = datetime(2026, 3, 1, 12, tzinfo=UTC)  # 21:00 in Seoul: two days of readings span three Seoul days


def _decoded(payloads: list[bytes], source_tz: str | None = None) -> pa.Table:
    ts = int((START + timedelta(days=3)).timestamp() * 1000)  # received after every reading
    messages = [Message("t", 0, i, ts, p, source_tz) for i, p in enumerate(payloads)]
    table = decode_messages(messages, AIR)
    return table.filter(pc.is_null(table.column("_decode_error"))).select(AIR.schema.names[: len(AIR.columns)])


@pytest.fixture(scope="module")
def readings() -> pa.Table:
    """Two days of hourly readings at the 40 real AirKorea stations in Seoul, plus the four real FIWARE
    AirQualityObserved examples (Spanish locations: no Seoul district), decoded as landing decodes them."""
    simulated = [r.value for r in simulate(AIR, 40 * 48, seed=7, start=START)[0]]
    folder = FIXTURES / "fiware" / "AirQualityObserved"
    examples = [r.value for f in sorted(folder.glob("example*.json*")) for r in records_from_file(f)]
    table = pa.concat_tables([_decoded(simulated), _decoded(examples, "Europe/Madrid")])
    assert table.num_rows > 40 * 48 and pc.sum(pc.is_null(district(table["lon"], table["lat"]))).as_py() > 0
    return table


def _expected(table: pa.Table, grain: str, by: str) -> dict[tuple, dict[str, tuple]]:
    """Per (bucket, place), each measure's (count, mean, min, max, p95) in plain Python."""
    spec = rollup_spec(AIR)
    places = (
        district(table["lon"], table["lat"]).cast(pa.string())
        if by == "district"
        else grid_cell(table["lon"], table["lat"])
    ).to_pylist()
    groups: dict[tuple, list[dict]] = defaultdict(list)
    for row, place in zip(table.to_pylist(), places, strict=True):
        at = row["observed_at"]
        bucket = at.replace(minute=0, second=0, microsecond=0) if grain == "hour" else at.astimezone(SEOUL).date()
        groups[(bucket, place)].append(row)
    expected = {}
    for key, rows in groups.items():
        stats = {"rows": len(rows)}
        for m in spec.measures:
            values = [r[m] for r in rows if r[m] is not None]
            if not values:
                stats[m] = (0, None, None, None, None)
                continue
            p95 = values[0] if len(values) == 1 else statistics.quantiles(values, n=20, method="inclusive")[18]
            stats[m] = (len(values), statistics.fmean(values), min(values), max(values), p95)
        expected[key] = stats
    return expected


@pytest.mark.parametrize("grain", ["hour", "day"])
@pytest.mark.parametrize("by", ["district", "cell"])
def test_rollup_matches_plain_python(readings: pa.Table, grain: str, by: str):
    spec = rollup_spec(AIR)
    out = rollup(readings, spec, grain, by)
    assert out.schema == output_schema(spec, grain, by)
    expected = _expected(readings, grain, by)
    assert out.num_rows == len(expected)
    assert pc.sum(out["rows"]).as_py() == readings.num_rows  # nothing lost, the null place included
    keys = list(zip(out[grain].to_pylist(), out[PLACE_COLUMN[by]].to_pylist(), strict=True))
    assert keys == sorted(keys, key=lambda k: (k[0], k[1] is None, str(k[1])) if by == "district" else (k[0],))
    for row in out.to_pylist():
        want = expected[(row[grain], row[PLACE_COLUMN[by]])]
        assert row["rows"] == want["rows"]
        for m in spec.measures:
            got = tuple(row[f"{m}_{s}"] for s in ("count", "mean", "min", "max", "p95"))
            assert got[0] == want[m][0], (m, row)
            for a, b in zip(got[1:], want[m][1:], strict=True):
                assert (a is None and b is None) or math.isclose(a, b, rel_tol=1e-12, abs_tol=1e-12), (m, row)


def test_seoul_days_split_at_midnight_kst_not_utc():
    """23:30 and 00:30 in Seoul are 14:30 and 15:30 UTC on one UTC date: two days, and two UTC hours."""
    spec = dataclasses.replace(rollup_spec(AIR), measures=("pm10",))
    times = [datetime(2026, 3, 1, 14, 30, tzinfo=UTC), datetime(2026, 3, 1, 15, 30, tzinfo=UTC)]
    table = pa.table(
        {
            "observed_at": pa.array(times, pa.timestamp("us", tz="UTC")),
            "lon": [127.0590, 127.0590],
            "lat": [37.5119, 37.5119],  # COEX, 강남구
            "pm10": [10.0, 30.0],
        }
    )
    days = rollup(table, spec, "day", "district")
    assert days["day"].to_pylist() == [datetime(2026, 3, 1).date(), datetime(2026, 3, 2).date()]
    assert days["district"].to_pylist() == ["강남구", "강남구"] and days["pm10_p95"].to_pylist() == [10.0, 30.0]
    hours = rollup(table, spec, "hour", "cell")
    assert [h.hour for h in hours["hour"].to_pylist()] == [14, 15]
    assert hours["cell_250m"].to_pylist() == grid_cell(table["lon"], table["lat"]).to_pylist()


def test_local_days_follow_daylight_saving_changes():
    """Berlin's clocks went forward on 2026-03-29 at 01:00 UTC: offsets looked up per quarter hour."""
    start = datetime(2026, 3, 28, 20, tzinfo=UTC)
    times = [start + timedelta(minutes=15 * i) for i in range(24 * 4 * 2)]
    berlin = ZoneInfo("Europe/Berlin")
    want = [(t.astimezone(berlin).date() - datetime(1970, 1, 1).date()).days for t in times]
    got = local_days(pa.array(times, pa.timestamp("us", tz="UTC")), "Europe/Berlin")
    assert got.tolist() == want


def test_order_statistics_are_exact_for_continuous_values_and_skip_nulls():
    """Mostly distinct values take the sort-everything path; ties and nulls are handled the same."""
    rng = np.random.default_rng(5)
    values = rng.normal(0, 1, 5000)
    values[::7] = values[1::7][: len(values[::7])]  # some ties
    groups = rng.integers(0, 30, 5000)
    column = pa.array(values, mask=rng.random(5000) < 0.1)
    count, mean, least, most, p95 = measure_stats(groups, 31, column)
    for g in range(31):
        picked = [v for v, k in zip(column.to_pylist(), groups, strict=True) if k == g and v is not None]
        if not picked:
            assert count[g] == 0 and np.isnan(p95[g])
            continue
        assert count[g] == len(picked) and least[g] == min(picked) and most[g] == max(picked)
        assert math.isclose(mean[g], statistics.fmean(picked), rel_tol=1e-12)
        assert math.isclose(p95[g], float(np.quantile(picked, 0.95)), rel_tol=1e-12, abs_tol=1e-15)


def test_every_open_dataset_with_places_has_measures_but_no_identifiers():
    spec = rollup_spec(get_contract("traffic_flow"))
    assert "lane_id" not in spec.measures and "intensity" in spec.measures
    assert rollup_spec(get_contract("bike_stations")).measures == ("racks", "parked_bikes")  # station_no is a label
    assert rollup_spec(get_contract("kr_air_quality")) is None  # no coordinates
    assert rollup_spec(get_contract("parking_spots")) is None  # no numeric measure


def test_empty_input_gives_the_schema():
    spec = rollup_spec(AIR)
    empty = pa.schema([pa.field(c, AIR.schema.field(c).type) for c in spec.columns]).empty_table()
    assert rollup(empty, spec, "day", "cell").schema == output_schema(spec, "day", "cell")


def _order_stats_by_hand(values: list[float]) -> tuple[float, float, float]:
    """min, max, p95 from the sorted values: linear between ranks ⌊h⌋ and ⌈h⌉, h = 0.95 × (n − 1)."""
    ordered = sorted(values)
    h = 0.95 * (len(ordered) - 1)
    low, high = ordered[math.floor(h)], ordered[math.ceil(h)]
    return ordered[0], ordered[-1], low + (high - low) * (h - math.floor(h))


@pytest.mark.parametrize(
    "kind", ["piled_at_zero", "one_outlier", "constant", "infinite", "integers", "many_small_groups", "all_null"]
)
def test_order_statistics_stay_exact_whatever_the_values_bins_see(kind: str):
    """The histogram selection bins values by a sampled range: piles, outliers, infinities, a single value and
    groups too many for fine bins change how many rows it keeps, never the answer."""
    rng = np.random.default_rng(len(kind))
    n, n_groups = 40_000, 4_000 if kind == "many_small_groups" else 37
    values = rng.normal(50, 10, n).round(1)
    if kind == "piled_at_zero":
        values[rng.random(n) < 0.7] = 0.0  # like rain: most readings are exactly zero
    elif kind == "one_outlier":
        values[123] = 1e12
    elif kind == "constant":
        values[:] = 3.25
    elif kind == "infinite":
        values[::997], values[5::1009] = np.inf, -np.inf
    elif kind == "integers":
        values = rng.poisson(3, n)
    groups = rng.integers(0, n_groups, n)
    column = pa.array(values, mask=rng.random(n) < (1.0 if kind == "all_null" else 0.05))
    count, mean, least, most, p95 = measure_stats(groups, n_groups + 1, column)
    by_group = defaultdict(list)
    for v, g in zip(column.to_pylist(), groups, strict=True):
        if v is not None:
            by_group[g].append(float(v))
    for g in range(n_groups + 1):
        picked = by_group.get(g, [])
        assert count[g] == len(picked)
        if not picked:
            assert np.isnan([mean[g], least[g], most[g], p95[g]]).all()
            continue
        want = _order_stats_by_hand(picked)
        assert (least[g], most[g]) == want[:2], (g, kind)
        assert (np.isnan(p95[g]) and math.isnan(want[2])) or math.isclose(p95[g], want[2], rel_tol=1e-12), (g, kind)
        if np.isfinite(picked).all():
            assert math.isclose(mean[g], statistics.fmean(picked), rel_tol=1e-12, abs_tol=1e-9)
