"""Grid cells and districts from coordinates, checked against places whose district the city publishes."""

from __future__ import annotations

import csv
from pathlib import Path

import pyarrow as pa

from transforms.geo import CELL_M, district, grid_cell, with_cell_and_district

STATIONS = Path(__file__).resolve().parents[2] / "catalog" / "stations"


def _read(name: str) -> list[dict]:
    with open(STATIONS / name, encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def test_air_quality_stations_fall_in_their_published_district():
    """AirKorea's stations are not the bike stations the lookup is built from: an independent check."""
    rows = _read("airkorea_seoul.csv")
    found = district(pa.array([float(r["lon"]) for r in rows]), pa.array([float(r["lat"]) for r in rows]))
    agree = sum(f == r["district"] for f, r in zip(found.to_pylist(), rows, strict=True))
    assert agree >= 0.85 * len(rows), list(zip(found.to_pylist(), [r["district"] for r in rows], strict=True))


def test_cells_are_250_m_and_stable():
    lon, lat = 127.0276, 37.4979  # Gangnam station
    # 250 m east is the next cell east, 250 m north the next cell north
    east = 250 / (111_320 * 0.7929)
    north = 250 / 110_574
    cells = grid_cell(pa.array([lon, lon + east, lon, None]), pa.array([lat, lat, lat + north, lat])).to_pylist()
    _, e, n = cells[0].split(":")
    assert cells[1] == f"250m:{int(e) + 1}:{n}" and cells[2] == f"250m:{e}:{int(n) + 1}" and cells[3] is None
    assert CELL_M == 250.0


def test_points_outside_seoul_have_no_district_and_the_table_gets_both_columns():
    table = pa.table({"lon": [127.0590, 129.0756, None], "lat": [37.5119, 35.1796, 37.5]})  # COEX, Busan
    out = with_cell_and_district(table)
    assert out.column("district").to_pylist() == ["강남구", None, None]
    assert grid_cell(pa.array([126.978]), pa.array([37.5665])).to_pylist() == ["250m:0:0"]  # City Hall
