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

    Each identity's first row is the one with the smallest Kafka position, packed with the row number into
    one int64 so that the minimum names the row (:func:`_first_positions`); every other valid row is a later
    copy. Only the identity columns and that position are touched — no window over the table's columns
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
    later[_rows_of(_first_positions(identities, keys), table.num_rows)] = False
    if seen is not None and seen.num_rows:
        prior = seen.select(keys).cast(identities.select(keys).schema)
        landed = identities.join(prior, keys, join_type="left semi")
        later[_rows_of(landed.column("_first"), table.num_rows)] = True
    flag = pa.array(later, mask=~later)  # true on later copies, null on every other row
    return table.append_column(pa.field(DUPLICATE, pa.bool_()), flag)


def _first_positions(identities: pa.Table, keys: list[str]) -> np.ndarray | pa.ChunkedArray:
    """The smallest ``_first`` of each identity.

    When the identity packs into one int64 (a code per key), NumPy sorts the packed identities — an
    identity's rows become a run — and takes each run's minimum: several times faster than Arrow's hash
    group-by over millions of distinct identities, and no Arrow memory. Otherwise the hash group-by."""
    packed = _packed(identities, keys)
    if packed is None:
        return identities.group_by(keys).aggregate([("_first", "min")]).column("_first_min")
    first = _int64s(identities.column("_first"))
    order = np.argsort(packed)
    packed = packed[order]
    runs = np.flatnonzero(np.concatenate([[True], packed[1:] != packed[:-1]]))  # where each identity starts
    return np.minimum.reduceat(first[order], runs)


def repeated_rows(identities: pa.Table, keys: list[str]) -> np.ndarray | None:
    """Per row of ``identities`` (no nulls in ``keys``): whether another row has the same identity — every copy
    of a repeat, the first included, as GX's uniqueness counts them. None when the identity does not pack
    into one int64 (:func:`_packed`); the caller then groups by the keys instead."""
    packed = _packed(identities, keys)
    if packed is None:
        return None
    order = np.argsort(packed)
    ordered = packed[order]
    same_as_next = ordered[1:] == ordered[:-1]
    repeated = np.zeros(len(ordered), bool)
    repeated[1:] |= same_as_next
    repeated[:-1] |= same_as_next
    out = np.empty(len(ordered), bool)
    out[order] = repeated
    return out


def _packed(identities: pa.Table, keys: list[str]) -> np.ndarray | None:
    """Each row's identity as one int64 (a code per key, side by side in its bits), or None when a key is
    not of a packable type or the codes need more than 63 bits."""
    if identities.num_rows == 0:
        return None
    codes = []
    for key in keys:
        column = identities.column(key)
        code = _codes(column.combine_chunks() if column.num_chunks != 1 else column.chunk(0))
        if code is None:
            return None
        codes.append(code)
    widths = [max(1, int(c.max()).bit_length()) for c in codes]
    if sum(widths) > 63:
        return None
    packed = np.zeros(identities.num_rows, np.int64)
    for code, width in zip(codes, widths, strict=True):
        packed <<= width
        packed |= code
    return packed


def _codes(values: pa.Array) -> np.ndarray | None:
    """Non-negative int64 codes equal exactly where the values are (no nulls: invalid rows are gone)."""
    if values.null_count:
        return None
    if pa.types.is_dictionary(values.type):
        dictionary = values.dictionary
        if len(pc.unique(dictionary)) < len(dictionary):  # a value under two indices: codes would differ
            return None
        return values.indices.to_numpy().astype(np.int64)
    if pa.types.is_integer(values.type) or pa.types.is_temporal(values.type):
        width = pa.int64() if values.type.bit_width == 64 else pa.int32()
        numbers = values.view(width).to_numpy().astype(np.int64)
        return numbers - numbers.min()
    encoded = pc.dictionary_encode(values)  # strings and the rest: a code per distinct value
    return encoded.indices.to_numpy().astype(np.int64)


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


def _rows_of(positions: np.ndarray | pa.ChunkedArray | pa.Array, n: int) -> np.ndarray:
    """The row numbers packed into positions made by :func:`_positions`."""
    low = (1 << max(1, (n - 1).bit_length())) - 1
    values = positions if isinstance(positions, np.ndarray) else _int64s(positions)
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
