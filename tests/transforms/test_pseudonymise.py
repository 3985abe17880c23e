"""Pseudonymisation is a pure Table → Table function: keyed, deterministic, one HMAC per distinct value."""

from __future__ import annotations

import hashlib
import hmac

import pyarrow as pa

from catalog import get_contract
from transforms.pseudonymise import hmac_column, hmac_dictionary, pseudonymise


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


def test_a_dictionary_array_is_hashed_without_encoding_it_again(monkeypatch):
    plain = pa.array(["rider-3", "rider-1", None, "rider-3", "rider-2"] * 40)
    expected = hmac_column(plain, b"k" * 32)
    encoded = plain.dictionary_encode()
    hashed: list[bytes] = []
    real = hmac.new

    def counting(key, message, digestmod):
        hashed.append(message)
        return real(key, message, digestmod)

    def refuse(*args, **kwargs):
        raise AssertionError("a dictionary array was encoded again")

    monkeypatch.setattr("transforms.pseudonymise.hmac.new", counting)
    monkeypatch.setattr("transforms.pseudonymise.pc.dictionary_encode", refuse)
    assert hmac_column(encoded, b"k" * 32).equals(expected)
    assert sorted(hashed) == [b"rider-1", b"rider-2", b"rider-3"]  # once per distinct value, never per row
    hashed.clear()
    out = hmac_dictionary(pa.chunked_array([encoded[:100], encoded[100:]]), b"k" * 32)
    assert pa.types.is_dictionary(out.type) and len(out.dictionary) == 3 == len(hashed)
    assert out.cast(pa.string()).equals(expected)


def test_key_version_is_stored_on_every_row_and_pseudonyms_differ_across_versions():
    contract = get_contract("care_sensors")
    table = pa.table({"hub_id": ["h-1", "h-2", None], "household_id": ["care-1", "care-2", "care-1"]})
    v1 = pseudonymise(table, contract, b"a" * 32, "v1")
    v2 = pseudonymise(table, contract, b"b" * 32, "v2")
    assert v1.column("_pseudonym_key_version").to_pylist() == ["v1"] * 3
    assert v2.column("_pseudonym_key_version").to_pylist() == ["v2"] * 3
    assert v1.column("hub_id").null_count == 1  # a missing identifier stays missing
    # after a rotation nothing links a person's two pseudonyms: counting across versions would double-count
    assert not set(v1.column("household_id").to_pylist()) & set(v2.column("household_id").to_pylist())
