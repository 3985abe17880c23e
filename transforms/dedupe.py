"""Duplicate readings: the same key and observation time seen twice appears once in the clean zone.

A pure Table → Table function. Later copies are not dropped: they get ``_duplicate = true``, which the GX
suite's uniqueness expectation (``ExpectCompoundColumnsToBeUnique(<keys>,<event time>)``, see
:mod:`quality.suite`) turns into a quarantine reason, so nothing vanishes silently. The marking happens here,
not in GX, because only this step sees what landed before and knows which copy came first: GX's own
uniqueness check flags every copy of a repeated reading, the first one included.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

DUPLICATE = "_duplicate"  # true on a later copy of a reading; null on every other row


def mark_duplicates(table: pa.Table, keys: list[str], seen: pa.Table | None = None) -> pa.Table:
    """Add ``_duplicate``: true on every row whose ``keys`` occurred in an earlier row of ``table`` (by
    partition, offset) or in ``seen`` (keys already landed). Rows failing to decode, or with a null key, are
    left alone (null).

    A hash group-by over the identity finds each identity's first row: the smallest Kafka position, packed
    with the row number into one int64 so that ``min`` names the row; every other valid row is a later copy.
    Only the identity columns and that position are hashed — no sort, no window over the table's columns
    (ranking every column through a DuckDB window cost 9× pandas at 10M rows)."""
    if DUPLICATE in table.column_names:
        table = table.drop_columns([DUPLICATE])
    if seen is not None:
        seen = _in_range(seen, table, keys[-1])
    valid = _valid(table, keys)
    identities = table.select(keys).append_column("_first", pa.array(_positions(table)))
    if valid is not None:
        identities = identities.filter(valid)
    later = np.ones(table.num_rows, bool) if valid is None else valid.to_numpy(zero_copy_only=False).copy()
    firsts = identities.group_by(keys).aggregate([("_first", "min")])
    later[_rows_of(firsts.column("_first_min"), table.num_rows)] = False
    if seen is not None and seen.num_rows:
        prior = seen.select(keys).cast(identities.select(keys).schema)
        landed = identities.join(prior, keys, join_type="left semi")
        later[_rows_of(landed.column("_first"), table.num_rows)] = True
    flag = pa.array(later, mask=~later)  # true on later copies, null on every other row
    return table.append_column(pa.field(DUPLICATE, pa.bool_()), flag)


def _valid(table: pa.Table, keys: list[str]) -> pa.ChunkedArray | pa.Array | None:
    """Rows that decoded and have every key; None when that is every row (the common case: no filter)."""
    columns = [table.column(k) for k in keys]
    if table.column("_decode_error").null_count == table.num_rows and not any(c.null_count for c in columns):
        return None
    valid = pc.is_null(table.column("_decode_error"))
    for column in columns:
        valid = pc.and_(valid, pc.is_valid(column))
    return valid


def _positions(table: pa.Table) -> np.ndarray:
    """A distinct int64 per row, ordered as Kafka received the rows — (partition, offset), ties by row
    number — with the row number in its low bits (see :func:`_rows_of`)."""
    n = table.num_rows
    row_bits = max(1, (n - 1).bit_length())
    rows = np.arange(n, dtype=np.int64)
    partition, offset = (_int64s(table.column(c)) for c in ("_partition", "_offset"))
    if partition is not None and offset is not None and len(partition):
        p_bits = int(partition.max()).bit_length()
        o_bits = int(offset.max()).bit_length()
        if partition.min() >= 0 and offset.min() >= 0 and p_bits + o_bits + row_bits <= 63:
            packed = partition << (o_bits + row_bits)
            packed |= offset << row_bits
            packed |= rows
            return packed
    # positions too wide to pack (or nulls, which sort last): rank them, the rank's row in the low bits
    order = (
        pc.sort_indices(
            table.select(["_partition", "_offset"]).append_column("_row", pa.array(rows)),
            sort_keys=[
                ("_partition", "ascending", "at_end"),
                ("_offset", "ascending", "at_end"),
                ("_row", "ascending"),
            ],
        )
        .to_numpy()
        .astype(np.int64)
    )
    packed = np.empty(n, np.int64)
    packed[order] = (rows << row_bits) | order
    return packed


def _rows_of(positions: pa.ChunkedArray | pa.Array, n: int) -> np.ndarray:
    """The row numbers packed into positions made by :func:`_positions`."""
    low = (1 << max(1, (n - 1).bit_length())) - 1
    values = positions.to_numpy() if isinstance(positions, pa.Array) else _int64s(positions)
    return values & low


def _int64s(column: pa.ChunkedArray) -> np.ndarray | None:
    """The column as int64 NumPy values, or None when it has nulls."""
    if column.null_count:
        return None
    values = column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column
    return values.cast(pa.int64()).to_numpy()


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
