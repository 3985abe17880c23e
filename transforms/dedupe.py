"""Duplicate readings: the same key and observation time seen twice appears once in the clean zone.

A pure Table → Table function. Later copies are not dropped: they get ``_duplicate = true``, which the GX
suite's uniqueness expectation (``ExpectCompoundColumnsToBeUnique(<keys>,<event time>)``, see
:mod:`quality.suite`) turns into a quarantine reason, so nothing vanishes silently. The marking happens here,
not in GX, because only this step sees what landed before and knows which copy came first: GX's own
uniqueness check flags every copy of a repeated reading, the first one included.
"""

from __future__ import annotations

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

DUPLICATE = "_duplicate"  # true on a later copy of a reading; null on every other row


def mark_duplicates(table: pa.Table, keys: list[str], seen: pa.Table | None = None) -> pa.Table:
    """Add ``_duplicate``: true on every row whose ``keys`` occurred in an earlier row of ``table`` (by
    partition, offset) or in ``seen`` (keys already landed). Rows failing to decode, or with a null key, are
    left alone (null)."""
    if DUPLICATE in table.column_names:
        table = table.drop_columns([DUPLICATE])
    if seen is not None:
        seen = _in_range(seen, table, keys[-1])
    if table.num_rows == 0 or not _may_repeat(table, keys, seen):
        return table.append_column(pa.field(DUPLICATE, pa.bool_()), pa.nulls(table.num_rows, pa.bool_()))
    cols = ", ".join(f'"{k}"' for k in keys)
    valid = " AND ".join([f'"{k}" IS NOT NULL' for k in keys] + ["_decode_error IS NULL"])
    # Only the identity and the Kafka position go through the ranking; the flag comes back in the table's own
    # row order and is appended (carrying every column through a window function cost 9x pandas at 10M rows).
    slim = table.select([*keys, "_partition", "_offset", "_decode_error"]).append_column(
        "_i", pa.array(np.arange(table.num_rows, dtype=np.int64))
    )
    con = duckdb.connect(config={"threads": 1})
    try:
        con.register("t", slim)
        con.register("seen", seen if seen is not None else table.select(keys).schema.empty_table())
        flag = (
            con.sql(f"""
            WITH ranked AS (
                SELECT _i, {cols}, ({valid}) AS _valid,
                       row_number() OVER (PARTITION BY {cols}, ({valid}) ORDER BY _partition, _offset) AS _rn
                FROM t
            ), prior AS (SELECT DISTINCT {cols}, true AS _landed FROM seen)
            SELECT CASE WHEN _valid AND (_rn > 1 OR _landed) THEN true END AS {DUPLICATE}
            FROM ranked LEFT JOIN prior USING ({cols})
            ORDER BY _i
        """)
            .to_arrow_table()
            .column(DUPLICATE)
        )
    finally:
        con.close()
    return table.append_column(pa.field(DUPLICATE, pa.bool_()), flag.cast(pa.bool_()))


def _in_range(seen: pa.Table, table: pa.Table, key: str) -> pa.Table:
    """The rows of ``seen`` whose ``key`` (the observation time) lies within ``table``'s range: only they can
    repeat a row of ``table``. A long backfill remembers millions of readings; a chunk spans minutes to hours
    of them, so this keeps each chunk's check proportional to the chunk, not to everything seen so far."""
    if seen.num_rows == 0 or pa.types.is_dictionary(seen.schema.field(key).type):
        return seen
    bounds = pc.min_max(table.column(key))
    low, high = bounds["min"], bounds["max"]
    if not low.is_valid:
        return seen.slice(0, 0)
    column = seen.column(key)
    within = pc.and_(pc.greater_equal(column, low.cast(column.type)), pc.less_equal(column, high.cast(column.type)))
    return seen.filter(pc.fill_null(within, False))


def first_copies(table: pa.Table, keys: list[str]) -> pa.Table:
    """The ``keys`` of the rows that decoded and are no later copy: what a later chunk must not repeat."""
    kept = pc.and_(pc.is_null(table.column("_decode_error")), pc.is_null(table.column(DUPLICATE)))
    return table.select(keys).filter(kept)  # select first: filtering the whole table would copy the payloads


def _may_repeat(table: pa.Table, keys: list[str], seen: pa.Table | None) -> bool:
    """A cheap Arrow check first: most batches repeat nothing, and then the ranking query is not needed."""
    valid = pc.is_null(table.column("_decode_error"))
    for key in keys:
        valid = pc.and_(valid, pc.is_valid(table.column(key)))
    identities = table.filter(valid).select(keys)
    if identities.group_by(keys).aggregate([]).num_rows < identities.num_rows:
        return True
    if seen is None or seen.num_rows == 0:
        return False
    return identities.join(seen.select(keys).cast(identities.schema), keys, join_type="left semi").num_rows > 0
