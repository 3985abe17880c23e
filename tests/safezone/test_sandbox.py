"""The sandbox's view ``t`` generalises exactly as transforms/generalise.py does, and is locked."""

from __future__ import annotations

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from catalog import get_contract
from catalog.contract import KEY_VERSION
from ingest import lake
from serving.safezone import sandbox
from serving.safezone.compile import full_vocabulary
from transforms.generalise import generalise


def _view(settings, contract_id: str) -> pa.Table:
    contract = get_contract(contract_id)
    src = sandbox.source(settings, contract, full_vocabulary(contract))
    return sandbox.run(settings, src, f'SELECT * FROM t ORDER BY "{KEY_VERSION}", "{contract.person_column}"', [])


def test_the_view_matches_transforms_generalise(settings):
    contract = get_contract("mobility_trips")
    expected = generalise(pq.read_table(lake.zone_files(settings.lake, "clean", contract.id)[0]), contract)
    got = _view(settings, "mobility_trips")
    assert got.num_rows == expected.num_rows
    for name in ("start_district", "end_district", "started_at", "ended_at", "distance_m", "fare_krw", "mode"):
        left = sorted(zip(got.column("rider_id").to_pylist(), got.column(name).to_pylist(), strict=True), key=repr)
        right = sorted(
            zip(
                expected.column("rider_id").cast(pa.string()).to_pylist(),
                expected.column(name).to_pylist(),
                strict=True,
            ),
            key=repr,
        )
        assert left == right, name


def test_age_bands_and_cells_match(settings):
    contract = get_contract("care_sensors")
    ages = [0, 4, 5, 64, 65, 69, 70, 99, 120, None]
    table = pa.table(
        {
            f.name: (
                pa.array(ages, pa.int64())
                if f.name == "resident_age"
                else pa.array([f"h{i}" for i in range(len(ages))]).dictionary_encode()
                if f.name == "household_id"
                else pa.nulls(len(ages), f.type)
            )
            for f in contract.schema
            if not f.name.startswith("_") or f.name == KEY_VERSION
        },
    )
    folder = lake.dataset_dir(settings.lake, "clean", contract.id) / "date=2026-11-20"
    lake.write_parquet_atomically(table, folder / lake.file_name("c", 0, 0, len(ages)))
    got = _view(settings, "care_sensors")
    expected = generalise(table, contract)
    assert sorted(got.column("resident_age_band").to_pylist(), key=repr) == sorted(
        expected.column("resident_age_band").to_pylist(), key=repr
    )
    assert pc.count(got.column("resident_age_band")).as_py() == 9

    from transforms.geo import grid_cell

    points = pa.table({"lon": [126.978, 127.0276, 126.9, None], "lat": [37.5665, 37.4979, 37.6, 37.5]})
    src = sandbox.Source(contract, (), "CREATE VIEW t AS SELECT 1 AS x")
    sql = (
        "SELECT CASE WHEN lon IS NULL OR lat IS NULL THEN NULL ELSE '250m:' || "
        "CAST(CAST(floor((lon - 126.978) * ? / 250.0) AS BIGINT) AS VARCHAR) || ':' || "
        "CAST(CAST(floor((lat - 37.5665) * 110574.0 / 250.0) AS BIGINT) AS VARCHAR) END AS cell FROM "
        "(VALUES (126.978, 37.5665), (127.0276, 37.4979), (126.9, 37.6), (NULL, 37.5)) v(lon, lat)"
    )
    from transforms import geo

    cells = sandbox.run(settings, src, sql, [geo._M_PER_DEG_LON]).column("cell").to_pylist()
    assert cells == grid_cell(points.column("lon"), points.column("lat")).to_pylist()


def test_the_sandbox_cannot_be_unlocked_or_widened(settings):
    contract = get_contract("mobility_trips")
    src = sandbox.source(settings, contract, full_vocabulary(contract))
    settings_sql = (
        "SELECT name, value FROM duckdb_settings() WHERE name IN ('enable_external_access', 'lock_configuration', "
        "'python_enable_replacements', 'allowed_directories', 'autoload_known_extensions', "
        "'autoinstall_known_extensions', 'allow_community_extensions', 'threads')"
    )
    values = dict(
        sandbox.run(settings, src, settings_sql, []).to_pylist()
        and [(r["name"], r["value"]) for r in sandbox.run(settings, src, settings_sql, []).to_pylist()]
    )
    assert values["enable_external_access"] == "false" and values["lock_configuration"] == "true"
    assert values["python_enable_replacements"] == "false" and values["allowed_directories"] == "[]"
    assert values["autoload_known_extensions"] == "false" and values["allow_community_extensions"] == "false"
    assert values["threads"] == str(settings.safezone_threads)
    for sql in ("SET allowed_paths = ['/etc/passwd']", "SET enable_external_access = true", "RESET lock_configuration"):
        with pytest.raises(sandbox.SandboxError):
            sandbox.run(settings, src, sql, [])
