"""Pseudonymisation is a pure Table → Table function: keyed, deterministic, one HMAC per distinct value."""

from __future__ import annotations

import hashlib
import hmac

import pyarrow as pa

from catalog import get_contract
from transforms.pseudonymise import hmac_column, pseudonymise


def test_hmac_column_matches_the_standard_and_keeps_nulls():
    values = pa.array(["rider-1", None, "rider-2", "rider-1"])
    out = hmac_column(values, b"k" * 32).to_pylist()
    assert out[0] == hmac.new(b"k" * 32, b"rider-1", hashlib.sha256).hexdigest() == out[3]
    assert out[1] is None and out[2] != out[0]
    assert hmac_column(values, b"other-key-123456").to_pylist()[0] != out[0]


def test_safe_zone_table_loses_identifiers_and_raw_payload():
    contract = get_contract("mobility_trips")
    table = pa.table({"rider_id": pa.array(["rider-000001"] * 3), "_raw": ['{"riderId": "rider-000001"}'] * 3})
    out = pseudonymise(table, contract, b"k" * 32, "v7")
    assert "_raw" not in out.column_names
    assert "rider-000001" not in str(out.to_pylist())
    assert out.column("_pseudonym_key_version").to_pylist() == ["v7"] * 3
