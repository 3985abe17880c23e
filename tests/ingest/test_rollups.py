"""Rollups as lake datasets: the dates a change touches are rewritten, a rerun changes nothing."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from catalog import get_contract
from ingest.decode import Message, decode_messages
from ingest.rollups import FILE_NAME, ROLLUPS, refresh_rollups, rollup_contracts, rollup_dir
from ingest.simulate import simulate

AIR = get_contract("air_quality")
START = datetime(2026, 3, 1, 12, tzinfo=UTC)


def _clean(count: int, start: datetime, seed: int) -> pa.Table:
    ts = int((start + timedelta(days=5)).timestamp() * 1000)
    payloads = [r.value for r in simulate(AIR, count, seed=seed, start=start)[0]]
    table = decode_messages([Message("t", 0, i, ts, p) for i, p in enumerate(payloads)], AIR)
    return table.filter(pc.is_null(table.column("_decode_error"))).select(AIR.schema.names).cast(AIR.schema)


def _land(lake, table: pa.Table, name: str) -> None:
    """Write clean rows as landing does: one file per UTC event date."""
    dates = pc.cast(table.column("observed_at"), pa.date32())
    for day in pc.unique(dates).to_pylist():
        folder = lake / "clean" / AIR.id / f"date={day.isoformat()}"
        folder.mkdir(parents=True, exist_ok=True)
        pq.write_table(table.filter(pc.equal(dates, pa.scalar(day, pa.date32()))), folder / name)


def _files(lake) -> dict[str, bytes]:
    return {str(p.relative_to(lake)): p.read_bytes() for p in sorted((lake / "rollup").rglob("*.parquet"))}


def test_rollups_follow_the_clean_zone_date_by_date(tmp_path):
    lake = tmp_path / "lake"
    _land(lake, _clean(40 * 48, START, seed=1), "a.parquet")  # 2026-03-01 12:00 UTC to 03-03 12:00 UTC
    first = refresh_rollups(lake, AIR)
    assert first.changed_dates == ["2026-03-01", "2026-03-02", "2026-03-03"]
    made = _files(lake)
    hourly = sorted(p.split("/")[3] for p in made if "/hour_district/" in p)
    daily = sorted(p.split("/")[3] for p in made if "/day_district/" in p)
    assert hourly == ["date=2026-03-01", "date=2026-03-02", "date=2026-03-03"]
    assert daily == ["date=2026-03-01", "date=2026-03-02", "date=2026-03-03"]  # 21:00 KST 03-01 to 20:00 03-03
    total = pq.read_table(rollup_dir(lake, AIR.id, "hour", "cell")).column("rows")
    assert pc.sum(total).as_py() == 40 * 48

    again = refresh_rollups(lake, AIR)
    assert again.changed_dates == [] and again.written == [] and _files(lake) == made

    # late readings for 03-02 only: hourly 03-02 and the Seoul days 03-02 and 03-03 are rewritten
    _land(lake, _clean(40, START + timedelta(hours=20), seed=2).slice(0, 10), "late.parquet")
    late = refresh_rollups(lake, AIR)
    assert late.changed_dates == ["2026-03-02"]
    assert {w.split("/")[2] + "/" + w.split("/")[3] for w in late.written} == {
        f"{g}_{b}/date={d}"
        for g, b in ROLLUPS
        for d in (["2026-03-02"] if g == "hour" else ["2026-03-02", "2026-03-03"])
    }
    changed = {p for p, data in _files(lake).items() if made.get(p) != data}
    assert changed and all("2026-03-02" in p or ("day_" in p and "2026-03-03" in p) for p in changed)

    # the clean partition of 03-03 (UTC) goes: its hourly files go; Seoul day 03-03 keeps 00:00-08:59 KST
    day = rollup_dir(lake, AIR.id, "day", "district") / "date=2026-03-03" / FILE_NAME
    before = pc.sum(pq.read_table(day).column("rows")).as_py()
    for f in (lake / "clean" / AIR.id / "date=2026-03-03").glob("*.parquet"):
        f.unlink()
    gone = refresh_rollups(lake, AIR)
    assert gone.changed_dates == ["2026-03-03"]
    assert not (rollup_dir(lake, AIR.id, "hour", "district") / "date=2026-03-03" / FILE_NAME).exists()
    assert pc.sum(pq.read_table(day).column("rows")).as_py() == before - 40 * 12


def test_only_open_datasets_with_places_and_measures_get_rollups():
    ids = {c.id for c in rollup_contracts()}
    assert "air_quality" in ids and "traffic_flow" in ids
    assert "mobility_trips" not in ids  # safe zone: no open aggregates
    assert not ids & {"kr_air_quality", "parking_spots", "bike_rentals_hourly"}
