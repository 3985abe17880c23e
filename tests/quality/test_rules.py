"""The streaming ingest's Arrow-kernel verdicts are the GX suite's: same rows, same expectation names."""

from __future__ import annotations

import pytest

from catalog import all_contracts
from ingest.decode import Message, decode_messages
from ingest.simulate import GENERATORS, simulate
from quality.rules import row_reasons
from quality.suite import validate


def _names(reason: str | None) -> set[str] | None:
    return set(reason.split(";")) if reason else None


@pytest.mark.parametrize("contract", [c for c in all_contracts() if c.id in GENERATORS], ids=lambda c: c.id)
def test_arrow_rules_flag_what_gx_flags(contract):
    records, planted = simulate(contract, 1500, seed=4, bad_ratio=0.2)
    messages = [Message("t", 0, i, 1_795_400_000_000, r.value) for i, r in enumerate(records)]
    table = decode_messages(messages, contract)
    by_gx = validate(table, contract).reasons(table.num_rows, table.column("_decode_error")).to_pylist()
    by_arrow = row_reasons(table, contract).to_pylist()
    assert sum(r is not None for r in by_gx) >= sum(planted.values()) > 0
    assert [_names(r) for r in by_arrow] == [_names(r) for r in by_gx]
