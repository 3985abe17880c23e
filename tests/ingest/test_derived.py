"""Derived open datasets as lake datasets: built from the safe-zone clean zone day by day, byte-identical on a
rerun, the Seoul days a change touches rewritten, a new threshold recomputing everything."""

from __future__ import annotations

from datetime import date, timedelta

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from catalog import derived_contracts, get_contract
from infra.settings import Settings
from ingest.derived import derived_dir, derived_files, derived_sources, refresh_derived, released_after
from tests.transforms.test_suppress import OD, START, recoverable, simulated_clean

MOBILITY = get_contract("mobility_trips")
ENERGY = get_contract("energy_usage")


def land(settings: Settings, contract, table: pa.Table, name: str) -> None:
    """Write clean rows as landing does: one file per UTC event date, pseudonyms dictionary-encoded."""
    dates = pc.cast(table.column(contract.event_time), pa.date32())
    for day in pc.unique(dates).to_pylist():
        folder = settings.lake / "clean" / contract.id / f"date={day.isoformat()}"
        folder.mkdir(parents=True, exist_ok=True)
        pq.write_table(table.filter(pc.equal(dates, pa.scalar(day, pa.date32()))), folder / name)


def snapshot(settings: Settings) -> dict[str, bytes]:
    return {str(p.relative_to(settings.lake)): p.read_bytes() for p in sorted(settings.lake.glob("derived/*/*/*"))}


@pytest.fixture
def settings(tmp_path, monkeypatch) -> Settings:
    monkeypatch.setenv("CITYHUB_HOME", str(tmp_path / "home"))
    return Settings()


def test_every_safe_zone_source_with_a_derivation_gets_both_releases():
    assert [c.id for c in derived_sources()] == ["energy_usage", "mobility_trips"]
    for source in derived_sources():
        derived = derived_contracts(source.id)
        assert len(derived) == 2 and {c.tier for c in derived} == {"open"} and source.tier == "safezone"
        assert {c.derived_from for c in derived} == {source.id}
        assert {c.dag_id for c in derived} == {f"cityhub_derive_{source.id}"}


def test_derived_days_follow_the_clean_zone_and_reruns_change_nothing(settings):
    trips = simulated_clean("mobility_trips")  # 07:00 KST 3 March for 40 hours: UTC dates 03-02 to 03-04
    land(settings, MOBILITY, trips, "a.parquet")
    first = refresh_derived(settings, MOBILITY)
    assert first.days == ["2026-03-02", "2026-03-03", "2026-03-04", "2026-03-05"] and first.pending == []
    made = snapshot(settings)
    for dataset in ("mobility_od_hourly", "mobility_od_daily"):  # both releases by Seoul day
        assert [p.parent.name for p in derived_files(settings.lake, dataset)] == ["date=2026-03-03", "date=2026-03-04"]
    hourly = pq.read_table(derived_dir(settings.lake, "mobility_od_hourly"), partitioning=None)
    daily = pq.read_table(derived_dir(settings.lake, "mobility_od_daily"), partitioning=None)
    assert hourly.schema == get_contract("mobility_od_hourly").schema
    assert recoverable(hourly, daily, OD, {"trips": 1}) == []
    assert first.cells["mobility_od_hourly"]["cells"] == hourly.num_rows
    assert (
        first.cells["mobility_od_hourly"]["persons_below_min"]
        == pc.sum(pc.equal(hourly.column("suppression"), "persons_below_min")).as_py()
    )

    again = refresh_derived(settings, MOBILITY)
    assert again.days == [] and again.written == [] and snapshot(settings) == made
    # the days rewritten from scratch: the same bytes
    for path in settings.lake.glob("derived/*/*/*.parquet"):
        path.unlink()
    (settings.lake / "derived" / "_sources" / "mobility_trips.json").unlink()
    refresh_derived(settings, MOBILITY)
    assert snapshot(settings) == made

    # late trips on UTC date 03-04 (Seoul days 03-04 and 03-05): only Seoul day 03-04 is rewritten
    late = simulated_clean("mobility_trips", START + timedelta(hours=30), hours=1, seed=99)
    land(settings, MOBILITY, late, "late.parquet")
    rerun = refresh_derived(settings, MOBILITY)
    assert rerun.days == ["2026-03-04", "2026-03-05"] and rerun.written  # 03-05 (UTC 15:00-) has no trips
    changed = {p for p, data in snapshot(settings).items() if made.get(p) != data}
    assert changed == {f"derived/{d}/date=2026-03-04/part.parquet" for d in ("mobility_od_hourly", "mobility_od_daily")}


def test_a_new_threshold_recomputes_every_day(settings, monkeypatch):
    land(settings, ENERGY, simulated_clean("energy_usage", hours=30), "a.parquet")
    refresh_derived(settings, ENERGY)
    daily = pq.read_table(derived_dir(settings.lake, "energy_district_daily"), partitioning=None)
    monkeypatch.setenv("CITYHUB_MIN_PERSONS", "2")
    looser = refresh_derived(Settings(), ENERGY)
    assert looser.days == ["2026-03-02", "2026-03-03", "2026-03-04", "2026-03-05"]
    relaxed = pq.read_table(derived_dir(settings.lake, "energy_district_daily"), partitioning=None)
    assert pc.sum(relaxed.column("suppressed")).as_py() < pc.sum(daily.column("suppressed")).as_py()
    assert pc.sum(pc.fill_null(relaxed.column("readings"), 0)).as_py() > 0


def test_a_source_partition_that_goes_takes_its_days_with_it(settings):
    land(settings, MOBILITY, simulated_clean("mobility_trips", hours=8), "a.parquet")  # 07:00-15:00 KST, 03-03
    refresh_derived(settings, MOBILITY)
    assert [p.parent.name for p in derived_files(settings.lake, "mobility_od_daily")] == ["date=2026-03-03"]
    for folder in (settings.lake / "clean" / MOBILITY.id).glob("date=*"):
        for f in folder.glob("*.parquet"):
            f.unlink()  # retention dropped the clean partitions
    gone = refresh_derived(settings, MOBILITY)
    assert sorted(gone.removed) == [f"derived/{d}/date=2026-03-03/part.parquet" for d in sorted(OD_IDS)]
    assert derived_files(settings.lake, "mobility_od_daily") == []


OD_IDS = ("mobility_od_daily", "mobility_od_hourly")


def test_a_day_is_released_once_when_it_is_over_however_its_rows_arrive(settings):
    """Trips land hour by hour and the DAG runs after each landing: a Seoul day appears once, after its end,
    with the same bytes as a release of all its rows at once — no earlier version to subtract from."""
    trips = simulated_clean("mobility_trips")
    hours = pc.floor_temporal(trips.column("started_at"), unit="hour")
    versions: dict[str, set[bytes]] = {}
    for h in range(0, 40, 3):  # a landing run every three hours, the derive DAG after each
        start = START + timedelta(hours=h)
        mask = pc.and_(pc.greater_equal(hours, pa.scalar(start)), pc.less(hours, pa.scalar(start + timedelta(hours=3))))
        land(settings, MOBILITY, trips.filter(mask), f"run{h:02d}.parquet")
        now = start + timedelta(hours=3, minutes=5)
        run = refresh_derived(settings, MOBILITY, now=now)
        assert all(d not in run.pending for d in run.days)
        for path, data in snapshot(settings).items():
            day = date.fromisoformat(path.split("/")[2].removeprefix("date="))
            assert released_after(day, MOBILITY) <= now  # nothing of a day that is not over
            versions.setdefault(path, set()).add(data)
    # 07:00 KST 3 March to 23:00 KST 4 March; the last run is at 01:05 KST on 5 March
    assert {p.split("/")[2] for p in versions} == {"date=2026-03-03", "date=2026-03-04"}
    assert all(len(v) == 1 for v in versions.values())  # one version of each day, however often the DAG ran
    final = refresh_derived(settings, MOBILITY)  # later: 03-05 is over too (no trips); nothing is rewritten
    assert final.days == ["2026-03-05"] and final.written == []
    whole = Settings(home=settings.root / "whole")
    land(whole, MOBILITY, trips, "all.parquet")
    refresh_derived(whole, MOBILITY)
    assert snapshot(whole) == snapshot(settings)
