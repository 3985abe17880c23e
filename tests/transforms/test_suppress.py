"""Small-cell suppression in distinct persons and complementary suppression across the hourly and daily open
releases, on hand-made cells and on the simulated safe-zone feeds decoded and pseudonymised as landing does."""

from __future__ import annotations

import io
from collections import defaultdict
from datetime import UTC, datetime, timedelta

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from catalog import get_contract
from catalog.contract import KEY_VERSION
from ingest.decode import Message, decode_messages
from ingest.simulate import simulate
from transforms.derive import DERIVATIONS, derive, hour_and_day
from transforms.pseudonymise import pseudonymise
from transforms.suppress import ReleaseSpec, releases

# 07:00 KST on 3 March, 40 hours: a day from its morning (as the day's first releases see it), then a whole day
START = datetime(2026, 3, 2, 22, tzinfo=UTC)
HOURS = 40
KEY = b"test-key-0123456789abcdef"
OD = ("origin_district", "destination_district")
TRIPS = ReleaseSpec(OD, "rider_id", "riders", "trips")


def simulated_clean(dataset_id: str, start: datetime = START, hours: int = HOURS, seed: int = 0) -> pa.Table:
    """Clean rows of a safe-zone feed as the lake holds them: simulated, decoded by landing's decoder,
    pseudonymised. Trips follow a day's curve (few at night, commute peaks), riders recur across hours."""
    contract = get_contract(dataset_id)
    if dataset_id == "mobility_trips":
        local = (np.arange(hours) + 9) % 24
        volume = 60 + 1300 * np.exp(-(((local - 8.5) / 1.5) ** 2)) + 1100 * np.exp(-(((local - 18.5) / 2) ** 2))
        volume += 400 * ((local >= 10) & (local <= 16))
        batches = [
            simulate(contract, int(v), seed=seed + h, start=start + timedelta(hours=h))[0] for h, v in enumerate(volume)
        ]
        records = [r for batch in batches for r in batch]
    else:
        records = simulate(contract, 200 * 4 * hours, seed=seed, start=start)[0]  # every meter, every quarter
    ts = int((start + timedelta(hours=hours + 1)).timestamp() * 1000)
    table = decode_messages([Message("t", 0, i, ts, r.value) for i, r in enumerate(records)], contract)
    table = table.filter(pc.is_null(table.column("_decode_error")))
    return pseudonymise(table, contract, KEY, "v1").select(contract.schema.names).cast(contract.schema)


@pytest.fixture(scope="module")
def trips() -> pa.Table:
    return simulated_clean("mobility_trips")


@pytest.fixture(scope="module")
def energy() -> pa.Table:
    return simulated_clean("energy_usage")


def released(clean: pa.Table, source: str, min_persons: int = 10) -> tuple[pa.Table, pa.Table]:
    derivation = DERIVATIONS[source]
    return derive(clean, derivation, get_contract(derivation.hourly), get_contract(derivation.daily), min_persons)


def recoverable(hourly: pa.Table, daily: pa.Table, groups: tuple[str, ...], values: dict[str, float]) -> list:
    """The subtraction attack, written independently of the code under test: for every (day, group), take the
    published daily minus the published hourlies. ``values`` maps each additive column to the least value a
    cell that exists can hold (a trip count ≥ 1, energy ≥ 0). A suppressed hourly cell is recovered when it is
    its line's only suppressed cell, or when the residual leaves each suppressed cell only its least value;
    a suppressed daily cell is recovered when none of its hourlies is suppressed. Returns what was recovered."""
    lines = defaultdict(list)
    for row in hourly.to_pylist():
        lines[(row["day"], *(row[g] for g in groups))].append(row)
    found = []
    for day_cell in daily.to_pylist():
        line = (day_cell["day"], *(day_cell[g] for g in groups))
        hidden = [h for h in lines[line] if h["suppressed"]]
        if day_cell["suppressed"]:
            if not hidden:
                found.append(("daily", line))
            continue
        for column, least in values.items():
            residual = day_cell[column] - sum(h[column] for h in lines[line] if not h["suppressed"])
            if hidden and (len(hidden) == 1 or abs(residual - least * len(hidden)) < 1e-6):
                value = residual if len(hidden) == 1 else least
                found += [(column, line, h["hour"], value) for h in hidden]
    return found


def without_complements(hourly: pa.Table, daily: pa.Table, truth_h: pa.Table, truth_d: pa.Table):
    """The releases as primary suppression alone would publish them: complementary cells get their values back."""

    def undo(table: pa.Table, truth: pa.Table) -> pa.Table:
        comp = pc.fill_null(pc.equal(table.column("suppression"), "complementary"), False)
        for name in table.column_names:
            if name not in ("suppressed", "suppression") and table.column(name).null_count:
                table = table.set_column(
                    table.column_names.index(name), name, pc.if_else(comp, truth.column(name), table.column(name))
                )
        return table.set_column(
            table.column_names.index("suppressed"), "suppressed", pc.and_(table.column("suppressed"), pc.invert(comp))
        )

    return undo(hourly, truth_h), undo(daily, truth_d)


def _rows(cells: list[tuple[int, str, str, str]], version: str = "v1") -> pa.Table:
    """Trip rows (hour index since START, origin, destination, rider) as transforms.derive prepares them."""
    base = int(START.timestamp()) // 3600
    hours = pa.array([base + h for h, *_ in cells], pa.int64())
    _, days = hour_and_day(pc.multiply(hours, 3_600_000_000).cast(pa.timestamp("us", tz="UTC")))
    return pa.table(
        {
            "hour": hours,
            "day": days,
            "origin_district": [o for _, o, _, _ in cells],
            "destination_district": [d for _, _, d, _ in cells],
            "rider_id": pa.array([r for *_, r in cells]).dictionary_encode(),
            KEY_VERSION: [version] * len(cells),
        }
    )


def test_a_cell_with_many_trips_by_few_riders_is_suppressed():
    busy_few = [(0, "강남구", "서초구", f"r{i % 3}") for i in range(60)]  # 60 trips, 3 riders
    many = [(0, "마포구", "중구", f"m{i}") for i in range(12)]  # 12 trips, 12 riders
    hourly, daily = releases(_rows(busy_few + many), TRIPS, 10)
    rows = {(r["origin_district"], r["suppression"], r["trips"], r["riders"]) for r in hourly.to_pylist()}
    assert rows == {("강남구", "persons_below_min", None, None), ("마포구", None, 12, 12)}
    assert daily.column("suppression").to_pylist() == ["persons_below_min", None]  # one hour: the same cells


def test_persons_are_counted_within_one_key_version():
    """The same 6 riders before and after a key rotation: 12 pseudonyms, but never more than 6 persons."""
    cells = [(0, "강남구", "서초구", f"r{i}") for i in range(6)]
    rotated = pa.concat_tables([_rows(cells, "v1"), _rows([(0, o, d, f"x{r}") for _, o, d, r in cells], "v2")])
    hourly, _ = releases(rotated, TRIPS, 10)
    assert hourly.column("suppression").to_pylist() == ["persons_below_min"]
    published, _ = releases(rotated, TRIPS, 6)
    assert published.column("riders").to_pylist() == [6] and published.column("trips").to_pylist() == [12]


def test_a_lone_small_hour_gets_the_smallest_published_hour_as_complement():
    cells = [(8, "강남구", "서초구", f"a{i}") for i in range(15)]  # 15 trips
    cells += [(9, "강남구", "서초구", f"b{i}") for i in range(12)]  # 12 trips: the smallest published hour
    cells += [(10, "강남구", "서초구", f"c{i}") for i in range(14)]
    cells += [(11, "강남구", "서초구", f"d{i % 3}") for i in range(5)]  # 5 trips by 3 riders: small
    hourly, daily = releases(_rows(cells), TRIPS, 10)
    assert hourly.column("suppression").to_pylist() == [None, "complementary", None, "persons_below_min"]
    assert hourly.column("trips").to_pylist() == [15, None, 14, None]
    assert daily.column("trips").to_pylist() == [46] and not daily.column("suppressed")[0].as_py()
    assert recoverable(hourly, daily, OD, {"trips": 1}) == []
    # without the complement, daily − published hours gives the small hour's 5 trips
    truth_h, truth_d = releases(_rows(cells), TRIPS, 1)
    exposed = without_complements(hourly, daily, truth_h, truth_d)
    assert [(c, r) for c, _, _, r in recoverable(*exposed, OD, {"trips": 1})] == [("trips", 5)]


def test_the_daily_is_withheld_when_the_residual_pins_every_hour():
    """Twelve hours of one trip each by twelve riders: the day (12 riders) passes, every hour is small, and
    published daily − nothing = 12 trips over 12 suppressed hours would give each hour: 1 trip."""
    cells = [(h, "강남구", "서초구", f"r{h}") for h in range(12)]
    hourly, daily = releases(_rows(cells), TRIPS, 10)
    assert set(hourly.column("suppression").to_pylist()) == {"persons_below_min"}
    assert daily.column("suppression").to_pylist() == ["complementary"]
    # a day whose small hours hold more than one trip each keeps its daily: nothing is pinned
    doubled = cells + [(h, o, d, r) for h, o, d, r in cells]
    hourly, daily = releases(_rows(doubled), TRIPS, 10)
    assert daily.column("trips").to_pylist() == [24] and recoverable(hourly, daily, OD, {"trips": 1}) == []


def test_no_suppressed_trip_count_can_be_recovered_by_subtracting_the_releases(trips):
    hourly, daily = released(trips, "mobility_trips")
    hours = {r["values"]: r["counts"] for r in pc.value_counts(hourly.column("suppression")).to_pylist()}
    days = {r["values"]: r["counts"] for r in pc.value_counts(daily.column("suppression")).to_pylist()}
    assert hours["persons_below_min"] > 500 and hours[None] > 500 and days[None] > 50  # a realistic mix
    assert hours["complementary"] >= 1 and days["complementary"] >= 1  # both kinds of complement are needed
    assert recoverable(hourly, daily, OD, {"trips": 1}) == []
    # the attack is real: with primary suppression alone it recovers hidden cells, each with its true value
    truth_h, truth_d = released(trips, "mobility_trips", min_persons=1)
    assert sum(truth_h.column("trips").to_pylist()) == sum(truth_d.column("trips").to_pylist()) == trips.num_rows
    exposed = recoverable(*without_complements(hourly, daily, truth_h, truth_d), OD, {"trips": 1})
    truth = {(r["day"], *(r[g] for g in OD), r["hour"]): r["trips"] for r in truth_h.to_pylist()}
    assert len(exposed) >= 3 and all(truth[(*line, hour)] == value for _, line, hour, value in exposed)


def test_no_suppressed_energy_cell_can_be_recovered_and_persons_are_households(energy):
    hourly, daily = released(energy, "energy_usage")
    assert hourly.num_rows == HOURS * pc.count_distinct(hourly.column("district")).as_py()
    published = hourly.filter(pc.invert(hourly.column("suppressed")))
    suppressed = hourly.filter(hourly.column("suppressed"))
    assert published.num_rows and suppressed.num_rows  # districts with ≥ 10 households and with fewer
    assert pc.min(published.column("households")).as_py() >= 10
    assert suppressed.column("energy_kwh_sum").null_count == suppressed.num_rows
    sums = {"readings": 1, "energy_kwh_sum": 0.0}
    assert recoverable(hourly, daily, ("district",), sums) == []
    row = published.to_pylist()[0]
    assert row["readings"] == 4 * row["meters"] and row["energy_kwh_mean"] == round(
        row["energy_kwh_sum"] / row["readings"], 4
    )


def test_a_suppressed_day_has_no_published_hour(trips):
    """Persons of an hour are a subset of its day's: a small day has small hours only."""
    hourly, daily = released(trips, "mobility_trips")
    small_days = daily.filter(pc.fill_null(pc.equal(daily.column("suppression"), "persons_below_min"), False))
    keys = ["day", *OD]
    joined = hourly.join(small_days.select(keys), keys=keys, join_type="inner")
    assert small_days.num_rows > 0 and joined.num_rows > 0
    assert pc.all(joined.column("suppressed")).as_py()


def test_the_same_rows_in_any_order_give_the_same_bytes(trips):
    def as_bytes(table: pa.Table) -> bytes:
        sink = io.BytesIO()
        pq.write_table(table, sink, compression="zstd")
        return sink.getvalue()

    first = [as_bytes(t) for t in released(trips, "mobility_trips")]
    shuffled = trips.take(np.random.default_rng(3).permutation(trips.num_rows))
    assert [as_bytes(t) for t in released(shuffled, "mobility_trips")] == first
    assert [as_bytes(t) for t in released(trips, "mobility_trips")] == first
