"""Pseudonymisation of personal columns: a keyed HMAC-SHA256, computed once per distinct value.

Neither pyarrow nor DuckDB has HMAC, so the column is dictionary-encoded, only the dictionary's unique
values are hashed in Python, and the indices pick the results (``take``): the cost grows with the number of
distinct people, not with the number of rows.
"""

from __future__ import annotations

import hashlib
import hmac

import pyarrow as pa
import pyarrow.compute as pc

from catalog.contract import Contract


def hmac_column(values: pa.Array | pa.ChunkedArray, key: bytes) -> pa.Array:
    """HMAC-SHA256 (hex) of every value; nulls stay null."""
    if isinstance(values, pa.ChunkedArray):
        values = values.combine_chunks()
    encoded = values if pa.types.is_dictionary(values.type) else pc.dictionary_encode(values)
    uniques = encoded.dictionary.cast(pa.string()).to_pylist()
    digests = pa.array([hmac.new(key, u.encode(), hashlib.sha256).hexdigest() for u in uniques], pa.string())
    return digests.take(encoded.indices)


def pseudonymise(table: pa.Table, contract: Contract, key: bytes, key_version: str) -> pa.Table:
    """Replace or drop every personal column of ``contract``; for safe-zone data also drop the raw payload.

    Runs before anything is written, quarantine included, so no raw identifier ever reaches disk.
    """
    if not contract.personal_columns:
        return table
    for column in contract.personal_columns:
        if column.name not in table.column_names:
            continue
        if column.personal == "drop":
            table = table.drop_columns([column.name])
        else:
            index = table.column_names.index(column.name)
            table = table.set_column(index, column.name, hmac_column(table.column(column.name), key))
    table = table.append_column("_pseudonym_key_version", pa.array([key_version] * table.num_rows, pa.string()))
    if not contract.is_open and "_raw" in table.column_names:
        # The raw payload holds the identifier in clear text: safe-zone data keeps lineage instead.
        table = table.drop_columns(["_raw"])
    return table
