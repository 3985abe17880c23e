"""Quasi-identifiers and their generalisation are declared per column and checked when the catalog loads."""

from __future__ import annotations

import pyarrow as pa
import pytest

from catalog import all_contracts, get_contract
from catalog.contract import PSEUDONYM_TYPE, Column, Contract
from infra.errors import CatalogError, ContractError


def contract(*columns: Column, person: str | None = None) -> Contract:
    base = (Column("hub_id", "entity_id", personal="hmac"), Column("observed_at", "timestamp"))
    return Contract(
        id="probe",
        title_ko="",
        title_en="",
        description="",
        entity_type="Probe",
        tier="safezone",
        columns=base + columns,
        key_columns=("hub_id",),
        event_time="observed_at",
        person_column=person,
    )


@pytest.mark.parametrize(
    ("columns", "says"),
    [
        ((Column("age", "float", generalise="age_5y"),), "'age_5y' generalises int columns, not 'float'"),
        ((Column("when", "string", generalise="bucket_15min"),), "generalises timestamp columns"),
        ((Column("lon", "lon", generalise="bucket_15min"),), "generalises timestamp columns"),
        ((Column("ts", "timestamp", generalise="district"),), "generalises lon or lat columns"),
        ((Column("lon", "lon", generalise="cell_250m"),), "partner 'lat'"),
        (
            (Column("lon", "lon", generalise="cell_250m"), Column("lat", "lat", generalise="district")),
            "generalised the same way",
        ),
        ((Column("x", "lon", generalise="district"), Column("y", "lat", generalise="district")), "partner"),
        ((Column("rider", "string", personal="hmac", quasi_identifier=True),), "cannot also be a quasi-identifier"),
        (
            (
                Column("start_lon", "lon", generalise="district"),
                Column("start_lat", "lat", generalise="district"),
                Column("start_district", "string"),
            ),
            "'start_district' is already a declared column",
        ),
    ],
)
def test_contradictory_declarations_are_refused_with_a_hint(columns, says):
    with pytest.raises(ContractError) as caught:
        contract(*columns)
    assert says in caught.value.message and caught.value.hint
    assert isinstance(caught.value, CatalogError) and isinstance(caught.value, ValueError)


def test_the_person_column_must_be_a_pseudonym():
    with pytest.raises(ContractError, match="person_column 'observed_at'"):
        contract(person="observed_at")
    with pytest.raises(ContractError, match="not a pseudonymised column"):
        contract(Column("rider", "string", personal="drop"), person="rider")
    assert contract(person="hub_id").person_column == "hub_id"


def test_a_generalised_pair_and_its_names():
    probe = contract(
        Column("end_lon", "lon", generalise="cell_250m"),
        Column("end_lat", "lat", generalise="cell_250m"),
        Column("age", "int", generalise="age_5y"),
        Column("district", "string", quasi_identifier=True),
    )
    names = {c.name: c.generalised_name for c in probe.quasi_identifiers}
    assert names == {"end_lon": "end_cell_250m", "end_lat": "end_cell_250m", "age": "age_band", "district": "district"}


def test_safe_zone_contracts_declare_persons_and_quasi_identifiers():
    for c in all_contracts():
        if c.is_open:
            assert not c.quasi_identifiers and c.person_column is None, c.id
            continue
        assert c.quasi_identifiers and c.person_column, c.id
        assert c.schema.field(c.person_column).type == PSEUDONYM_TYPE  # stored dictionary-encoded
        assert c.schema.field("_pseudonym_key_version").type == pa.string()
    trips = get_contract("mobility_trips")
    declared = {c.name: c.generalise for c in trips.quasi_identifiers}
    assert declared == {
        "mode": None,
        "started_at": "bucket_15min",
        "ended_at": "bucket_15min",
        "start_lon": "district",
        "start_lat": "district",
        "end_lon": "district",
        "end_lat": "district",
    }
    assert get_contract("care_sensors").column("resident_age").generalise == "age_5y"
    assert get_contract("energy_usage").column("building_id").is_quasi_identifier
