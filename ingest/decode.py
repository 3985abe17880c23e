"""Decode a fetched batch of Kafka messages into an Arrow table shaped by the dataset contract.

The whole batch is decoded at once inside DuckDB (its JSON functions are vectorised C++), never row by row
in Python. Accepted payloads, mixed freely within a batch:

* NGSI-LD keyValues / concise entities (``"pm10": 45``), with or without ``@context``;
* NGSI-LD normalized entities (``{"type": "Property", "value": ...}``, ``GeoProperty``, ``Relationship``
  with ``object``, property-of-property such as ``status.observedAt``), dates as plain strings or as
  ``{"@type": "DateTime", "@value": ...}``;
* NGSI v2 normalized entities (``{"type": "Number", "value": ..., "metadata": {...}}``).

Entity ids are normalised to the NGSI-LD URN form ``urn:ngsi-ld:<Type>:<id>``; an id that already is a URN
is kept as it is. Timestamps without a zone are read in the source's zone (the ``source-tz`` message header,
else the contract's ``source_tz``); intervals ``a/b`` yield their start. A record that cannot be decoded is not
dropped: it gets a ``_decode_error`` (never containing a value) that validation turns into a quarantine reason.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import duckdb
import pyarrow as pa
import pyarrow.compute as pc

from catalog.contract import KAFKA_TIMESTAMP, Column, Contract

SOURCE_TZ_HEADER = "source-tz"
DEFAULT_MAX_MESSAGE_BYTES = 1024 * 1024
# An event time this far ahead of the Kafka record's own timestamp is a clock or parsing error, not a reading.
FUTURE_TOLERANCE = timedelta(days=1)

_MACROS = """
CREATE OR REPLACE MACRO jtext(v) AS CASE
    WHEN json_type(v) = 'ARRAY' THEN json_extract_string(v, '$[0]') ELSE json_extract_string(v, '$') END;
CREATE OR REPLACE MACRO geo_coord(g, i) AS CASE
    WHEN json_extract_string(g, '$.type') = 'Point'
        THEN TRY_CAST(json_extract_string(g, '$.coordinates[' || i || ']') AS DOUBLE)
    WHEN json_extract_string(g, '$.type') IN ('LineString', 'MultiPoint')
        THEN list_avg(list_transform(json_extract(g, '$.coordinates[*][' || i || ']'),
                                     lambda c: TRY_CAST(c AS DOUBLE)))
    END;
CREATE OR REPLACE MACRO parse_time(s, tz) AS CASE
    WHEN s IS NULL THEN NULL
    WHEN regexp_matches(split_part(s, '/', 1), '[T ]\\d\\d:\\d\\d(:\\d\\d(\\.\\d+)?)?([Zz]|[+-]\\d\\d(:?\\d\\d)?)$')
        THEN TRY_CAST(split_part(s, '/', 1) AS TIMESTAMPTZ)
    ELSE timezone(tz, TRY_CAST(split_part(s, '/', 1) AS TIMESTAMP)) END;
"""


@dataclass(frozen=True)
class Message:
    """The parts of a Kafka record that landing keeps."""

    topic: str
    partition: int
    offset: int
    timestamp_ms: int
    value: bytes | None
    source_tz: str | None = None


def _quote_path(path: str) -> str:
    return ".".join(f'"{part}"' for part in path.split("."))


def _unwrap_stages(pairs: list[tuple[str, str]], source: str) -> list[str]:
    """Three CTE stages taking each ``(name, extract_sql)`` to its bare JSON value.

    Each stage computes a column once and the next stage refers to it by name, so the expression tree stays
    linear in the number of columns (nesting the same steps as SQL macros made DuckDB plan for seconds).
    """
    if not pairs:
        return []
    extract = ", ".join(f"{sql} AS e_{name}" for name, sql in pairs)
    envelope = ", ".join(
        f"CASE WHEN json_type(e_{n}) = 'OBJECT' AND json_exists(e_{n}, '$.value') THEN json_extract(e_{n}, '$.value')"
        f" WHEN json_type(e_{n}) = 'OBJECT' AND json_exists(e_{n}, '$.object') AND json_exists(e_{n}, '$.type')"
        f" THEN json_extract(e_{n}, '$.object') ELSE e_{n} END AS u_{n}"
        for n, _ in pairs
    )
    typed = ", ".join(
        f"CASE WHEN json_type(u_{n}) = 'NULL' THEN NULL"
        f" WHEN json_type(u_{n}) = 'OBJECT' AND json_exists(u_{n}, '$.\"@value\"')"
        f" THEN json_extract(u_{n}, '$.\"@value\"') ELSE u_{n} END AS w_{n}"
        for n, _ in pairs
    )
    tag = pairs[0][0]
    return [
        f"x_{tag} AS (SELECT *, {extract} FROM {source})",
        f"y_{tag} AS (SELECT *, {envelope} FROM x_{tag})",
        f"z_{tag} AS (SELECT *, {typed} FROM y_{tag})",
    ]


def _cast_sql(column: Column, contract: Contract, raw: str) -> tuple[str, str | None]:
    """(value expression, wrong-type condition) for one column whose bare JSON value is ``raw``."""
    text = f"t_{column.name}"
    kind = column.kind
    if kind == "string":
        return text, None
    if kind == "entity_id":
        type_sql = f"COALESCE(json_extract_string(j, '$.type'), '{contract.entity_type}')"
        return (
            f"CASE WHEN {text} LIKE 'urn:%' THEN {text} ELSE 'urn:ngsi-ld:' || {type_sql} || ':' || {text} END",
            None,
        )
    if kind in ("lon", "lat"):
        value = f"geo_coord({raw}, {0 if kind == 'lon' else 1})"
    elif kind == "float":
        # NaN and ±Infinity are no measurement: treated as a value of the wrong type
        value = f"CASE WHEN isfinite(TRY_CAST({text} AS DOUBLE)) THEN TRY_CAST({text} AS DOUBLE) END"
    elif kind == "int":
        value = f"TRY_CAST(TRY_CAST({text} AS DOUBLE) AS BIGINT)"
    elif kind == "bool":
        value = f"TRY_CAST({text} AS BOOLEAN)"
    elif kind == "timestamp":
        value = f"parse_time({text}, _source_tz)"
        if KAFKA_TIMESTAMP in column.source_paths:
            return f"COALESCE({value}, _kafka_ts::TIMESTAMPTZ)", f"{text} IS NOT NULL AND {value} IS NULL"
    else:  # pragma: no cover - Kind is a closed Literal
        raise ValueError(kind)
    return value, f"{raw} IS NOT NULL AND {value} IS NULL"


def decode_sql(contract: Contract) -> str:
    """The batch-decoding query for ``contract`` (one pass over the batch, staged projections)."""
    paths = sorted({p for c in contract.columns for p in c.source_paths if p != KAFKA_TIMESTAMP})
    names = {p: f"a{i}" for i, p in enumerate(paths)}
    heads = sorted({p.split(".", 1)[0] for p in paths if "." in p} - set(paths))
    names.update({h: f"h{i}" for i, h in enumerate(heads)})
    # one multi-path extract parses each document once, instead of once per attribute
    top_paths = paths + heads
    multi = ", ".join(f"'$.{_quote_path(p)}'" for p in top_paths)
    top = [(names[p], f"_parts[{i + 1}]") for i, p in enumerate(top_paths)]
    nested = [
        (
            f"n{names[p]}",
            f"json_extract(w_{names[p.split('.', 1)[0]]}, '$.{_quote_path(p.split('.', 1)[1])}')",
        )
        for p in paths
        if "." in p
    ]
    ctes = [
        "s0 AS (SELECT *, CASE WHEN json_valid(_raw) THEN _raw::JSON END AS j FROM batch)",
        f"s AS (SELECT *, json_extract(j, [{multi}]) AS _parts FROM s0)",
    ]
    ctes += _unwrap_stages(top, "s")
    last = f"z_{top[0][0]}" if top else "s"
    if nested:
        ctes += _unwrap_stages(nested, last)
        last = f"z_{nested[0][0]}"

    def value_of(path: str) -> str:
        if "." in path:
            return f"COALESCE(w_{names[path]}, w_n{names[path]})"
        return f"w_{names[path]}"

    raws, selects, problems = [], [], []
    for column in contract.columns:
        sources = [value_of(p) for p in column.source_paths if p != KAFKA_TIMESTAMP]
        raw = f"COALESCE({', '.join(sources)})" if sources else "NULL::JSON"
        if contract.missing_markers:  # a portal's "-" is a missing value, not a value of the wrong type
            markers = ", ".join("'" + m.replace("'", "''") + "'" for m in contract.missing_markers)
            raw = f"CASE WHEN jtext({raw}) IN ({markers}) THEN NULL ELSE {raw} END"
        raws.append(f"{raw} AS r_{column.name}, jtext({raw}) AS t_{column.name}")
        value, wrong = _cast_sql(column, contract, f"r_{column.name}")
        selects.append(f'{value} AS "{column.name}"')
        if wrong:
            problems.append(f"CASE WHEN {wrong} THEN 'wrong_type:{column.name}' END")
    ctes.append(f"v AS (SELECT *, {', '.join(raws)} FROM {last})")
    envelope = [
        "CASE WHEN _envelope_error IS NOT NULL THEN _envelope_error WHEN j IS NULL THEN 'malformed_json'"
        " WHEN json_type(j) <> 'OBJECT' THEN 'not_an_object' END",
        f"CASE WHEN json_extract_string(j, '$.type') <> '{contract.entity_type}' THEN 'wrong_entity_type' END",
    ]
    et = f'"{contract.event_time}"'
    timing = [
        f"CASE WHEN {et} > _kafka_ts + INTERVAL {int(FUTURE_TOLERANCE.total_seconds())} SECOND "
        "THEN 'event_time_ahead_of_kafka' END"
    ]
    if contract.horizon is not None:
        timing.append(
            f"CASE WHEN {et} < _kafka_ts - INTERVAL {int(contract.horizon.total_seconds())} SECOND "
            "THEN 'event_time_beyond_horizon' END"
        )
    return f"""
        WITH {", ".join(ctes)}, decoded AS (
            SELECT {", ".join(selects)},
                   _topic, _partition, _offset, _kafka_ts,
                   concat_ws(';', {", ".join(envelope + problems)}) AS _problems,
                   _raw
            FROM v
        )
        SELECT * EXCLUDE (_problems, _raw),
               NULLIF(concat_ws(';', NULLIF(_problems, ''), {", ".join(timing)}), '') AS _decode_error,
               _raw
        FROM decoded ORDER BY _partition, _offset
    """


def _valid_zone(zone: str | None, default: str) -> str:
    if not zone:
        return default
    try:
        ZoneInfo(zone)
    except (ZoneInfoNotFoundError, ValueError):
        return default
    return zone


def messages_to_arrow(
    messages: Sequence[Message], contract: Contract, max_bytes: int = DEFAULT_MAX_MESSAGE_BYTES
) -> pa.Table:
    """The raw batch as Arrow: payload text plus lineage, before any parsing.

    Payloads that are too large or not UTF-8 are not parsed at all: their ``_raw`` is null and
    ``_envelope_error`` says why (the bytes stay in Kafka, the row's lineage points at them).
    """
    values = pa.array([m.value for m in messages], pa.binary())
    oversized = pc.fill_null(pc.greater(pc.binary_length(values), max_bytes), False)
    envelope = pc.if_else(oversized, "oversized_message", pa.scalar(None, pa.string()))
    values = pc.if_else(oversized, pa.scalar(None, pa.binary()), values)
    try:
        raw = values.cast(pa.string())
    except pa.ArrowInvalid:  # invalid UTF-8 somewhere: find which rows (rare, so per row is fine here)
        bad = [v is not None and not _is_utf8(v) for v in values.to_pylist()]
        envelope = pc.if_else(pa.array(bad), "invalid_utf8", envelope)
        raw = pc.if_else(pa.array(bad), pa.scalar(None, pa.binary()), values).cast(pa.string())
    zones = {m.source_tz for m in messages}
    zone_map = {z: _valid_zone(z, contract.source_tz) for z in zones}
    return pa.table(
        {
            "_raw": raw,
            "_topic": pa.array([m.topic for m in messages], pa.string()),
            "_partition": pa.array([m.partition for m in messages], pa.int32()),
            "_offset": pa.array([m.offset for m in messages], pa.int64()),
            "_kafka_ts": pa.array([m.timestamp_ms for m in messages], pa.timestamp("ms", tz="UTC")),
            "_source_tz": pa.array([zone_map[m.source_tz] for m in messages], pa.string()),
            "_envelope_error": envelope,
        }
    )


def _is_utf8(value: bytes) -> bool:
    try:
        value.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def decoded_schema(contract: Contract) -> pa.Schema:
    from catalog.contract import LINEAGE_FIELDS

    fields = [pa.field(c.name, c.arrow_type) for c in contract.columns]
    return pa.schema(fields + LINEAGE_FIELDS + [pa.field("_decode_error", pa.string()), pa.field("_raw", pa.string())])


def decode_batch(batch: pa.Table, contract: Contract) -> pa.Table:
    """Arrow batch from :func:`messages_to_arrow` → contract columns + lineage + ``_decode_error`` + ``_raw``."""
    con = _decoder_db().cursor()
    try:
        con.execute("SET TimeZone = 'UTC'")
        con.register("batch", batch)
        result = con.sql(_decode_sql_cached(contract)).to_arrow_table()
    finally:
        con.close()
    return result.cast(decoded_schema(contract))


_DB: duckdb.DuckDBPyConnection | None = None
_SQL: dict[Contract, str] = {}


def _decoder_db() -> duckdb.DuckDBPyConnection:
    """One in-memory database per process holding the macros; each decode takes a cursor of its own."""
    global _DB
    if _DB is None:
        _DB = duckdb.connect(config={"threads": 1})
        _DB.execute(_MACROS)
    return _DB


def _decode_sql_cached(contract: Contract) -> str:
    if contract not in _SQL:
        _SQL[contract] = decode_sql(contract)
    return _SQL[contract]


def decode_messages(
    messages: Sequence[Message], contract: Contract, max_bytes: int = DEFAULT_MAX_MESSAGE_BYTES
) -> pa.Table:
    return decode_batch(messages_to_arrow(messages, contract, max_bytes), contract)
