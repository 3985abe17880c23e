"""The landing path against the real embedded broker, GX and Parquet: nothing lost, nothing duplicated."""

from __future__ import annotations

import hashlib

import pyarrow.parquet as pq
import pytest

from catalog import get_contract
from infra.errors import BrokerLogWentBackwards
from infra.settings import Settings
from ingest import lake
from ingest.landing import land_once, new_run_id, plan_slice
from ingest.offsets import reset_offsets, show_offsets
from ingest.produce import send
from ingest.runner import ingest_loop
from ingest.simulate import simulate


def zone_rows(settings, dataset_id: str, zone: str):
    files = sorted((settings.lake / zone / dataset_id).glob("date=*/*.parquet"))
    return [row for f in files for row in pq.read_table(f).to_pylist()]


def lake_digest(settings) -> dict[str, str]:
    return {
        str(p.relative_to(settings.lake)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(settings.lake.rglob("*.parquet"))
    }


def test_every_record_lands_once_clean_or_quarantined_with_reason(settings):
    contract = get_contract("traffic_flow")
    records, planted = simulate(contract, 3000, seed=7, bad_ratio=0.05)
    send(settings, contract, records)
    totals = ingest_loop(settings, ["traffic_flow"])
    clean, quarantined = (
        zone_rows(settings, "traffic_flow", "clean"),
        zone_rows(settings, "traffic_flow", "quarantine"),
    )
    assert totals["traffic_flow"] == (len(clean), len(quarantined))
    assert len(clean) + len(quarantined) == 3000
    offsets = sorted((r["_partition"], r["_offset"]) for r in clean + quarantined)
    assert len(set(offsets)) == 3000  # each Kafka record exactly once
    assert len(quarantined) == sum(planted.values())
    reasons = " ".join(r["_reason"] for r in quarantined)
    assert "ExpectColumnValuesToBeNull(_decode_error)=malformed_json" in reasons
    assert "ExpectColumnValuesToBeBetween(intensity)" in reasons  # out_of_range
    assert "ExpectColumnValuesToNotBeNull(intensity)" in reasons  # missing_field
    assert "wrong_type:occupancy" in reasons
    assert "ExpectColumnValuesToBeInSet(lane_direction)" in reasons  # unknown_value
    assert all(r["_raw"] for r in quarantined)  # open data keeps the payload for a replay after a fix
    assert all(r["intensity"] is not None and 0 <= r["intensity"] <= 10000 for r in clean)


def test_reset_offsets_then_ingest_adds_no_rows(settings):
    contract = get_contract("air_quality")
    send(settings, contract, simulate(contract, 400, seed=1)[0])
    ingest_loop(settings, ["air_quality"])
    before = lake_digest(settings)
    reset_offsets(settings, "air_quality")
    assert all(row["committed"] == 0 for row in show_offsets(settings, "air_quality"))
    totals = ingest_loop(settings, ["air_quality"])
    assert totals["air_quality"] == (0, 0)
    assert lake_digest(settings) == before
    assert all(row["lag"] == 0 for row in show_offsets(settings, "air_quality"))


def test_rerun_of_a_recorded_slice_is_byte_identical(settings):
    contract = get_contract("parking_spots")
    send(settings, contract, simulate(contract, 500, seed=3, bad_ratio=0.1)[0])
    land_once(settings, contract, "run-1")
    first = lake_digest(settings)
    send(settings, contract, simulate(contract, 50, seed=4)[0])  # newer data must not leak into run-1
    rerun = land_once(settings, contract, "run-1")
    assert lake_digest(settings) == first
    assert rerun.clean_rows + rerun.quarantined_rows == 500


def test_safe_zone_identifiers_never_reach_disk(settings):
    contract = get_contract("mobility_trips")
    records, _ = simulate(contract, 800, seed=5, bad_ratio=0.1)
    send(settings, contract, records)
    ingest_loop(settings, ["mobility_trips"])
    rows = zone_rows(settings, "mobility_trips", "clean") + zone_rows(settings, "mobility_trips", "quarantine")
    assert len(rows) == 800
    assert all(r["rider_id"] is None or len(r["rider_id"]) == 64 for r in rows)
    assert all("_raw" not in r for r in rows)
    for path in settings.root.rglob("*"):
        if path.is_file() and "secrets" not in path.parts:
            assert b"rider-0" not in path.read_bytes(), path
    assert settings.pseudonym_key() not in b"".join(p.read_bytes() for p in settings.lake.rglob("*.parquet"))


def test_broker_log_going_backwards_is_refused(settings, tmp_path):
    from infra.broker import EmbeddedBroker
    from infra.settings import Settings
    from tests.conftest import free_port

    contract = get_contract("air_quality")
    with EmbeddedBroker(free_port()) as first:
        own = Settings(home=settings.home, broker_port=first.port, topic_prefix=settings.topic_prefix)
        send(own, contract, simulate(contract, 200, seed=1)[0])
        land_once(own, contract, new_run_id())
        landed = lake.landed_ends(own.lake, contract.id, own.topic_for(contract.id))
        port = first.port
    before = lake_digest(own)
    with EmbeddedBroker(port):  # same address, fresh in-memory log
        send(own, contract, simulate(contract, 20, seed=2)[0])
        with pytest.raises(BrokerLogWentBackwards) as caught:
            plan_slice(own, contract, new_run_id())
        assert "went backwards" in caught.value.message and caught.value.hint
    assert sum(landed.values()) == 200
    assert lake_digest(own) == before


def test_the_same_reading_twice_lands_once_and_the_copy_is_quarantined(settings):
    contract = get_contract("air_quality")
    records, _ = simulate(contract, 120, seed=8)
    send(settings, contract, records)
    ingest_loop(settings, ["air_quality"])
    send(settings, contract, records[:30] + records[50:60] + records[50:60])  # replays, one twice in a batch
    ingest_loop(settings, ["air_quality"])
    clean = zone_rows(settings, "air_quality", "clean")
    quarantined = zone_rows(settings, "air_quality", "quarantine")
    assert len(clean) == 120
    assert len({(r["station_id"], r["observed_at"]) for r in clean}) == 120
    assert len(quarantined) == 50
    assert all(r["_reason"] == "ExpectCompoundColumnsToBeUnique(station_id,observed_at)" for r in quarantined)


def test_a_reading_repeated_in_a_later_chunk_of_the_same_run_lands_once(settings, monkeypatch):
    monkeypatch.setenv("CITYHUB_FETCH_MAX_RECORDS", "7")  # copies fall into later chunks of one slice
    contract = get_contract("air_quality")
    records, _ = simulate(contract, 40, seed=8)
    send(settings, contract, records + records[:10])
    ingest_loop(Settings(), ["air_quality"])
    clean = zone_rows(settings, "air_quality", "clean")
    assert len(clean) == 40 == len({(r["station_id"], r["observed_at"]) for r in clean})
    assert len(zone_rows(settings, "air_quality", "quarantine")) == 10
