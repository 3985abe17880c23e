"""Retention drops whole date partitions past each zone's retention, and the offsets stay landed."""

from __future__ import annotations

from datetime import date, timedelta

from catalog import get_contract
from ingest import lake
from ingest.produce import send
from ingest.retention import apply_retention
from ingest.runner import ingest_loop
from ingest.simulate import simulate


def test_retention_removes_old_partitions_and_keeps_the_ledger(settings):
    contract = get_contract("mobility_trips")  # safe zone: clean kept 365 days, quarantine 30
    send(settings, contract, simulate(contract, 200, seed=6, bad_ratio=0.05)[0])
    ingest_loop(settings, [contract.id])
    clean = lake.dataset_dir(settings.lake, "clean", contract.id)
    quarantine = lake.dataset_dir(settings.lake, "quarantine", contract.id)
    newest = max(date.fromisoformat(d.name[5:]) for d in clean.glob("date=*"))
    ledger_before = sorted(lake.ledger_dir(settings.lake, contract.id).glob("*.json"))

    assert apply_retention(settings, contract, newest + timedelta(days=29)).removed == []
    removed = apply_retention(settings, contract, newest + timedelta(days=40)).removed
    assert removed and not list(quarantine.glob("date=*")) and list(clean.glob("date=*"))
    apply_retention(settings, contract, newest + timedelta(days=400))
    assert not list(clean.glob("date=*"))
    assert sorted(lake.ledger_dir(settings.lake, contract.id).glob("*.json")) == ledger_before
    assert ingest_loop(settings, [contract.id])[contract.id] == (0, 0)  # expired data is not landed again
