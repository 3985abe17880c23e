"""Later copies of a reading are marked, never dropped; the first copy (by partition, offset) stays unmarked."""

from __future__ import annotations

import pyarrow as pa

from transforms.dedupe import DUPLICATE, first_copies, mark_duplicates


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
