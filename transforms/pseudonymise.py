"""Pseudonymisation of direct identifiers: a keyed HMAC-SHA256, computed once per distinct value.

Neither pyarrow nor DuckDB has HMAC, so the column is dictionary-encoded, only the dictionary's unique
values are hashed in Python, and the indices pick the results (``take``): the cost grows with the number of
distinct people, not with the number of rows. A column that already is a dictionary array (as the lake's
pseudonym columns are read back, see below) is hashed without being encoded again.

**Key version.** Every row carries ``_pseudonym_key_version``: the label (``CITYHUB_HMAC_KEY_VERSION``) of the
key its pseudonyms were made with. Rotating the key (a new key *and* a new label) gives every person a new
pseudonym that nothing links to the old one, so rows of two versions must never be counted together as if
their pseudonyms were one space: a rider seen before and after the rotation would count as two riders.
Distinct persons are counted within one key version (:mod:`transforms.kanon` does, and takes the largest
count over versions — a lower bound, safe for disclosure checks). Old rows keep their old pseudonyms (the
lake is not rewritten: the old key may be gone, which is the point of rotating a compromised key).

**Storage.** The lake stores pseudonym columns dictionary-encoded (``catalog.contract.PSEUDONYM_TYPE``): the
Arrow dictionary goes to Parquet as the column chunk's dictionary page as it is — it never falls back to plain
pages, however many distinct people a chunk holds — and readers get dictionary arrays back
(:func:`read_pseudonymised`), so grouping or re-keying works on each distinct pseudonym once, not on millions
of 64-character strings.
"""

from __future__ import annotations

import hashlib
import hmac
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from catalog.contract import KEY_VERSION, Contract


def hmac_dictionary(values: pa.Array | pa.ChunkedArray, key: bytes) -> pa.DictionaryArray:
    """HMAC-SHA256 (hex) of every value as a dictionary array: one digest per distinct value, the input's
    indices; nulls stay null."""
    if isinstance(values, pa.ChunkedArray):
        values = values.combine_chunks()  # unifies the chunks' dictionaries
    encoded = values if pa.types.is_dictionary(values.type) else pc.dictionary_encode(values)
    # the one per-value Python loop allowed: over the distinct values only (nothing in Arrow computes HMAC)
    uniques = encoded.dictionary.cast(pa.string()).to_pylist()
    digests = pa.array([_hmac(key, u) for u in uniques], pa.string())
    return pa.DictionaryArray.from_arrays(encoded.indices.cast(pa.int32()), digests)


def hmac_column(values: pa.Array | pa.ChunkedArray, key: bytes) -> pa.Array:
    """HMAC-SHA256 (hex) of every value as plain strings; nulls stay null."""
    hashed = hmac_dictionary(values, key)
    return hashed.dictionary.take(hashed.indices)


def pseudonymise(table: pa.Table, contract: Contract, key: bytes, key_version: str) -> pa.Table:
    """Replace or drop every personal column of ``contract``; for safe-zone data also drop the raw payload.

    Runs before anything is written, quarantine included, so no raw identifier ever reaches disk. The rows
    stay plain strings in memory (deduplication and validation group and join on them); landing stores them
    dictionary-encoded.
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
    table = table.append_column(KEY_VERSION, pa.repeat(pa.scalar(key_version, pa.string()), table.num_rows))
    if not contract.is_open and "_raw" in table.column_names:
        # The raw payload holds the identifier in clear text: safe-zone data keeps lineage instead.
        table = table.drop_columns(["_raw"])
    return table


def _hmac(key: bytes, value: str | None) -> str | None:
    return None if value is None else hmac.new(key, value.encode(), hashlib.sha256).hexdigest()


def pseudonym_columns(contract: Contract) -> list[str]:
    """The columns the lake stores as pseudonyms (what ``read_dictionary=`` should name)."""
    return [c.name for c in contract.personal_columns if c.personal == "hmac"]


def read_pseudonymised(paths: list[Path] | list[str], contract: Contract, columns: list[str] | None = None) -> pa.Table:
    """Read lake files of ``contract`` with its pseudonym columns as dictionary arrays (one chunk per file,
    each with its own dictionary; ``combine_chunks`` unifies them)."""
    wanted = pseudonym_columns(contract)
    if columns is not None:
        wanted = [c for c in wanted if c in columns]
    if not paths:
        schema = contract.schema
        return (schema if columns is None else pa.schema([schema.field(c) for c in columns])).empty_table()
    # the lake's folders say date=…: no hive partition column is wanted, the rows carry their own times
    return pq.read_table([str(p) for p in paths], columns=columns, read_dictionary=wanted, partitioning=None)
