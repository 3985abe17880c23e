"""Later copies of a reading are marked, never dropped; the first copy (by partition, offset) stays unmarked."""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
import pyarrow as pa
import pytest

from transforms.dedupe import DUPLICATE, first_copies, mark_duplicates, repeated_rows


def _table(keys: list[str | None], errors: list[str | None]) -> pa.Table:
    n = len(keys)
    return pa.table(
        {
            "k": keys,
            "_decode_error": pa.array(errors, pa.string()),
            "_partition": pa.array([0] * n, pa.int32()),
            "_offset": pa.array(range(n), pa.int64()),
        }
    )


def test_later_copies_are_marked_and_nothing_else_changes():
    table = _table(["a", "b", "a", None, None, "c", "c"], [None, None, None, None, None, "malformed_json", None])
    marked = mark_duplicates(table, ["k"], seen=pa.table({"k": ["b"]}))
    assert marked.column(DUPLICATE).to_pylist() == [None, True, True, None, None, None, None]
    assert marked.drop_columns([DUPLICATE]).equals(table)  # _decode_error untouched, no row dropped
    assert first_copies(marked, ["k"]).column("k").to_pylist() == ["a", None, None, "c"]


def test_a_batch_without_repeats_still_gets_the_marker_column():
    marked = mark_duplicates(_table(["a", "b"], [None, None]), ["k"])
    assert marked.column(DUPLICATE).null_count == 2


def test_every_copy_of_a_repeated_identity_is_found_first_one_included():
    when = [datetime(2026, 12, 3, h, tzinfo=UTC) for h in (1, 2, 1, 1, 3)]
    identities = pa.table({"k": ["a", "a", "b", "a", "b"], "t": when})
    assert repeated_rows(identities, ["k", "t"]).tolist() == [True, False, False, True, False]
    assert repeated_rows(identities, ["k"]).tolist() == [True, True, True, True, True]
    assert repeated_rows(identities.slice(1, 3), ["k", "t"]).tolist() == [False, False, False]
    wide = pa.table({"k": pa.array([0, 2**62, 0], pa.int64()), "n": pa.array([1, 1, 1], pa.int64())})
    assert repeated_rows(wide, ["k", "n"]) is None  # codes beyond 63 bits: the caller groups instead


def _reference(table: pa.Table, keys: list[str], seen: set[tuple]) -> list[bool | None]:
    """Plain Python: walk the valid rows in Kafka order (partition, offset, row); the first of an identity
    not landed before stays unmarked."""
    rows = table.to_pylist()
    first: set[tuple] = set()
    flags: list[bool | None] = [None] * len(rows)
    order = sorted(range(len(rows)), key=lambda i: (rows[i]["_partition"], rows[i]["_offset"], i))
    for i in order:
        identity = tuple(rows[i][k] for k in keys)
        if rows[i]["_decode_error"] is not None or None in identity:
            continue
        if identity in seen or identity in first:
            flags[i] = True
        first.add(identity)
    return flags


@pytest.mark.parametrize("offset_base", [0, 2**61])  # 2**61: positions too wide to pack, ranked instead
def test_the_first_copy_in_kafka_order_stays_unmarked(offset_base: int):
    rng = np.random.default_rng(11)
    for trial in range(40):
        n = int(rng.integers(1, 80))
        keys = pa.array([f"s{v}" for v in rng.integers(0, 6, n)], mask=rng.random(n) < 0.1)
        table = pa.table(
            {
                "k": keys.dictionary_encode() if trial % 2 else keys,  # pseudonyms are stored dictionary-encoded
                "t": pa.array((rng.integers(0, 3, n) * 1_000_000).tolist(), pa.timestamp("us", tz="UTC")),
                "_decode_error": pa.array([("bad" if r < 0.1 else None) for r in rng.random(n)], pa.string()),
                "_partition": pa.array(rng.integers(0, 3, n), pa.int32()),  # rows of partitions interleaved
                "_offset": pa.array(rng.permutation(n) + offset_base, pa.int64()),
            }
        )
        landed = {(f"s{v}", w) for v, w in zip(rng.integers(0, 6, 2), rng.integers(0, 3, 2), strict=True)}
        seen = pa.table(
            {
                "k": [k for k, _ in landed],
                "t": pa.array([int(w) * 1_000_000 for _, w in landed], pa.timestamp("us", tz="UTC")),
            }
        )
        marked = mark_duplicates(table, ["k", "t"], seen if trial % 3 else None)
        want = _reference(table, ["k", "t"], {(k, _ts(w)) for k, w in landed} if trial % 3 else set())
        assert marked.column(DUPLICATE).to_pylist() == want, trial


def _ts(step: int) -> datetime:
    return datetime.fromtimestamp(int(step), UTC)
