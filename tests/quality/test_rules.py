"""The streaming ingest's Arrow-kernel verdicts are the GX suite's: same rows, same expectation names."""

from __future__ import annotations

import time

import pytest

from catalog import all_contracts
from ingest.decode import Message, decode_messages
from ingest.simulate import GENERATORS, simulate
from quality.rules import row_reasons
from quality.suite import unique_reading, validate
from transforms.dedupe import mark_duplicates


def _names(reason: str | None) -> set[str] | None:
    return set(reason.split(";")) if reason else None


@pytest.mark.parametrize("contract", [c for c in all_contracts() if c.id in GENERATORS], ids=lambda c: c.id)
def test_arrow_rules_flag_what_gx_flags(contract):
    records, planted = simulate(contract, 1500, seed=4, bad_ratio=0.2)
    values = [r.value for r in records]
    values += values[:40] + values[100:110] + values[100:110]  # replayed readings, one of them twice
    # stamped now, as the broker would: the simulator's readings are of the last hours (a fixed date here
    # would put them ahead of their Kafka timestamps, or beyond the contract's horizon, as days pass)
    now_ms = int(time.time() * 1000)
    messages = [Message("t", 0, i, now_ms, v) for i, v in enumerate(values)]
    table = decode_messages(messages, contract)
    identity = list(contract.identity)
    landed_before = table.slice(200, 20).select(identity)
    unique = unique_reading(contract).name
    for case in (mark_duplicates(table, identity, landed_before), table):  # as landing runs it; never marked
        by_gx = validate(case, contract).reasons(case.num_rows, case.column("_decode_error")).to_pylist()
        by_arrow = row_reasons(case, contract).to_pylist()
        assert sum(r is not None for r in by_gx) >= sum(planted.values()) > 0
        assert sum(unique in _names(r) for r in by_gx if r) >= 60
        assert [_names(r) for r in by_arrow] == [_names(r) for r in by_gx]
