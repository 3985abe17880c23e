"""GX suites generated from the catalog, run by real Great Expectations."""

from __future__ import annotations

import pytest

from catalog import get_contract
from infra.errors import QualityError
from ingest.decode import Message, decode_messages
from quality.suite import expectation_specs, required_columns, validate
from transforms.dedupe import mark_duplicates

UNIQUE = "ExpectCompoundColumnsToBeUnique(station_id,observed_at)"


def _batch(*payloads: bytes):
    messages = [Message("t", 0, i, 1_795_400_000_000, p) for i, p in enumerate(payloads)]  # 2026-11-22
    return decode_messages(messages, get_contract("air_quality"))


GOOD = (
    b'{"id": "s1", "type": "AirQualityObserved", "dateObserved": "2026-11-21T10:00:00Z", '
    b'"location": {"type": "Point", "coordinates": [126.97, 37.56]}, "pm10": 40}'
)


def test_suite_is_derived_from_the_contract():
    contract = get_contract("air_quality")
    names = {s.name for s in expectation_specs(contract, required_columns(contract))}
    assert {
        "ExpectColumnValuesToNotBeNull(station_id)",
        "ExpectColumnValuesToBeBetween(pm10)",
        "ExpectColumnValuesToBeInSet(air_quality_level)",
        "ExpectColumnValuesToBeNull(_decode_error)",
        "ExpectTableColumnsToMatchSet",
        UNIQUE,
    } <= names


def test_gx_flags_exactly_the_bad_rows_with_expectation_names():
    bad_range = GOOD.replace(b'"pm10": 40', b'"pm10": 4000').replace(b'"s1"', b'"s2"')
    no_time = GOOD.replace(b'"dateObserved": "2026-11-21T10:00:00Z", ', b"")
    verdict = validate(_batch(GOOD, bad_range, no_time, b"{not json"), get_contract("air_quality"))
    assert verdict.failures.keys() == {1, 2, 3}
    assert verdict.failures[1] == ["ExpectColumnValuesToBeBetween(pm10)"]
    assert verdict.failures[2] == ["ExpectColumnValuesToNotBeNull(observed_at)"]
    assert "ExpectColumnValuesToBeNull(_decode_error)" in verdict.failures[3]


def test_an_unusable_batch_fails_with_a_clear_message():
    table = _batch(GOOD).drop_columns(["pm10", "observed_at"])
    with pytest.raises(QualityError) as caught:
        validate(table, get_contract("air_quality"))
    assert "['observed_at', 'pm10'] are missing" in caught.value.message and caught.value.hint


def test_a_later_copy_of_a_reading_fails_the_uniqueness_expectation():
    contract = get_contract("air_quality")
    other = GOOD.replace(b'"s1"', b'"s2"')
    table = _batch(GOOD, other, GOOD, GOOD.replace(b'"pm10": 40', b'"pm10": 4000'))
    marked = validate(mark_duplicates(table, list(contract.identity)), contract)
    assert marked.failures == {2: [UNIQUE], 3: [UNIQUE, "ExpectColumnValuesToBeBetween(pm10)"]}  # the first lands
    landed = table.slice(0, 1).select(list(contract.identity))
    again = validate(mark_duplicates(table.slice(1), list(contract.identity), seen=landed), contract)
    assert again.failures == {1: [UNIQUE], 2: [UNIQUE, "ExpectColumnValuesToBeBetween(pm10)"]}  # s1 landed before
    # Unmarked, GX's own check flags every copy: a batch that skipped the marking lands none of them twice.
    unmarked = validate(table, contract)
    assert {row for row, names in unmarked.failures.items() if UNIQUE in names} == {0, 2, 3}
