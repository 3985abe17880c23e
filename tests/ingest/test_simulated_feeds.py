"""Every simulated feed: deterministic under its seed, every good reading passes the contract's checks and every
deliberately broken one is caught, for each bad kind that applies to it (decoded and validated in process)."""

from __future__ import annotations

import time

import pytest

from catalog import get_contract, landed_contracts
from ingest.decode import Message, decode_messages
from ingest.simulate import BAD_KINDS, GENERATORS, HOURLY_VOLUME, bad_kinds, simulate
from quality.suite import validate


def test_every_dataset_has_a_simulator_and_a_demo_volume():
    assert sorted(GENERATORS) == sorted(c.id for c in landed_contracts())
    assert set(HOURLY_VOLUME) == set(GENERATORS)


@pytest.mark.parametrize("dataset_id", sorted(GENERATORS))
def test_simulated_readings_are_clean_and_planted_ones_are_caught(dataset_id):
    contract = get_contract(dataset_id)
    count = min(600, max(HOURLY_VOLUME[dataset_id], 120))
    records, planted = simulate(contract, count, seed=5, bad_ratio=0.25)
    assert simulate(contract, count, seed=5, bad_ratio=0.25)[0] == records  # deterministic under the seed
    assert set(planted) == set(bad_kinds(dataset_id)) and {"malformed_json", "wrong_type"} <= set(planted)
    now = int(time.time() * 1000)
    decoded = decode_messages([Message("t", 0, i, now, r.value) for i, r in enumerate(records)], contract)
    verdict = validate(decoded, contract)
    intact = simulate(contract, count, seed=5, bad_ratio=0.0)[0]  # the same readings, none broken
    good = [i for i, (r, clean) in enumerate(zip(records, intact, strict=True)) if r.value == clean.value]
    assert not set(good) & set(verdict.failures), {i: verdict.failures[i] for i in set(good) & set(verdict.failures)}
    assert len(verdict.failures) == sum(planted.values()) == count - len(good)


def test_bad_kinds_cover_every_kind_somewhere():
    assert {k for d in GENERATORS for k in bad_kinds(d)} == set(BAD_KINDS)
