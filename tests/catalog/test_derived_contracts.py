"""Derived datasets in the catalog: open aggregates with provenance, refused when they contradict themselves."""

from __future__ import annotations

import dataclasses

import pytest

from catalog import all_contracts, derived_contracts, get_contract, landed_contracts
from catalog.contract import Column
from infra.errors import CatalogError, ContractError

DERIVED = ("energy_district_daily", "energy_district_hourly", "mobility_od_daily", "mobility_od_hourly")


def test_derived_datasets_are_listed_with_every_dataset_but_never_landed():
    assert [c.id for c in derived_contracts()] == list(DERIVED)
    assert set(DERIVED) <= {c.id for c in all_contracts()} and not set(DERIVED) & {c.id for c in landed_contracts()}
    for dataset_id in DERIVED:
        contract = get_contract(dataset_id)
        assert contract.is_open and get_contract(contract.derived_from).tier == "safezone"
        assert not {"_topic", "_partition", "_offset"} & set(contract.schema.names)  # no Kafka lineage
        assert contract.order_columns == contract.key_columns  # the time bucket first, unique per cell
        assert {"suppressed", "suppression"} <= set(contract.schema.names)


def test_a_derived_dataset_holds_no_personal_column_and_a_key_with_its_time():
    hourly = get_contract("mobility_od_hourly")
    rider = Column("rider_id", "string", personal="hmac")
    with pytest.raises(ContractError, match="never personal columns"):
        dataclasses.replace(hourly, columns=(*hourly.columns, rider))
    with pytest.raises(ContractError, match="must name its time bucket"):
        dataclasses.replace(hourly, key_columns=("origin_district", "destination_district"))


def test_a_derived_dataset_names_a_landed_source(tmp_path, monkeypatch):
    (tmp_path / "orphan.py").write_text(
        "import dataclasses\n"
        "from catalog.datasets.mobility_od_daily import CONTRACT as DAILY\n"
        "CONTRACT = dataclasses.replace(DAILY, id='orphan_daily', derived_from='no_such_dataset')\n"
    )
    monkeypatch.setenv("CITYHUB_EXTRA_CATALOG_DIRS", str(tmp_path))
    with pytest.raises(CatalogError, match="not a landed dataset"):
        all_contracts()
