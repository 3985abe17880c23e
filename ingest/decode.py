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

import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import duckdb
import pyarrow as pa
import pyarrow.compute as pc

from catalog.contract import KAFKA_TIMESTAMP, Column, Contract
from catalog.units import conversions_to

SOURCE_TZ_HEADER = "source-tz"
DEFAULT_MAX_MESSAGE_BYTES = 1024 * 1024
# An event time this far ahead of the Kafka record's own timestamp is a clock or parsing error, not a reading.
FUTURE_TOLERANCE = timedelta(days=1)

# DuckDB warns that Arrow from ``execute()`` copies the rows once more than ``sql()``: for a decode the copy costs
# less than the second bind it saves (see decode_batch)
warnings.filterwarnings("ignore", message="Arrow output on a DB-API result", category=UserWarning)

_MACROS = """
CREATE OR REPLACE MACRO dt_value(v) AS CASE
    WHEN v IS NULL OR NOT prefix(v, '{') THEN v
    WHEN json_valid(v) AND json_exists(v, '$."@value"') THEN json_extract_string(v, '$."@value"')
    ELSE v END;
CREATE OR REPLACE MACRO ngsi_value(t) AS CASE
    WHEN t IS NULL OR NOT prefix(t, '{') THEN t
    WHEN NOT json_valid(t) THEN t
    WHEN json_exists(t, '$.value') THEN dt_value(json_extract_string(t, '$.value'))
    WHEN json_exists(t, '$.object') AND json_exists(t, '$.type') THEN json_extract_string(t, '$.object')
    WHEN json_exists(t, '$."@value"') THEN json_extract_string(t, '$."@value"')
    ELSE t END;
CREATE OR REPLACE MACRO ngsi_unit(t) AS CASE
    WHEN t IS NULL OR NOT prefix(t, '{') THEN NULL
    WHEN json_valid(t) THEN COALESCE(json_extract_string(t, '$.unitCode'),
                                     json_extract_string(t, '$.metadata.unitCode.value')) END;
CREATE OR REPLACE MACRO json_member(t, path) AS CASE
    WHEN t IS NOT NULL AND prefix(t, '{') AND json_valid(t) THEN json_extract_string(t, path) END;
CREATE OR REPLACE MACRO jtext(t) AS CASE
    WHEN t IS NOT NULL AND prefix(t, '[') AND json_valid(t) THEN json_extract_string(t, '$[0]') ELSE t END;
CREATE OR REPLACE MACRO geo_points(kind, coordinates) AS CASE
    WHEN kind = 'Point' THEN [TRY_CAST(TRY_CAST(coordinates AS JSON) AS DOUBLE[])]
    WHEN kind IN ('LineString', 'MultiPoint') THEN TRY_CAST(TRY_CAST(coordinates AS JSON) AS DOUBLE[][])
    END;
CREATE OR REPLACE MACRO geo_coords(g) AS CASE
    WHEN g IS NULL OR NOT prefix(g, '{') OR NOT json_valid(g) THEN NULL
    ELSE geo_points(json_extract_string(g, '$.type'), json_extract(g, '$.coordinates')) END;
CREATE OR REPLACE MACRO geo_coord(points, i) AS list_avg(list_transform(points, lambda p: p[i + 1]));
CREATE OR REPLACE MACRO parse_time_part(p, tz) AS CASE
    WHEN p IS NULL THEN NULL
    WHEN suffix(p, 'Z') OR suffix(p, 'z') THEN TRY_CAST(p AS TIMESTAMPTZ)
    WHEN regexp_matches(p, '[T ]\\d\\d:\\d\\d(:\\d\\d(\\.\\d+)?)?[+-]\\d\\d(:?\\d\\d)?$')
        THEN TRY_CAST(p AS TIMESTAMPTZ)
    ELSE timezone(tz, TRY_CAST(p AS TIMESTAMP)) END;
CREATE OR REPLACE MACRO parse_time(s, tz) AS parse_time_part(split_part(s, '/', 1), tz);
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


def _json_path(path: str) -> str:
    return "$." + ".".join(f'"{part}"' for part in path.split("."))


def _sql_text(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def _unit_sql(column: Column, value: str, unit: str) -> tuple[str, str]:
    """(value in the column's canonical unit, unknown-unit condition) given the reading's own ``unit`` code."""
    known = conversions_to(column.unit or "")
    cases = " ".join(
        f"WHEN {unit} = {_sql_text(code)} THEN {value} * {scale!r} + {offset!r}"
        for code, (scale, offset) in sorted(known.items())
        if (scale, offset) != (1.0, 0.0)
    )
    codes = ", ".join(map(_sql_text, known))
    converted = f"CASE WHEN {unit} IS NULL THEN {value} {cases} WHEN {unit} IN ({codes}) THEN {value} END"
    unknown = f"{unit} IS NOT NULL AND {unit} NOT IN ({codes})"
    return converted, unknown


@dataclass(frozen=True)
class _ColumnSql:
    """How one column is decoded from its bare text ``t_<name>``, in two query steps: ``value`` is computed once
    into ``c_<name>``; ``final`` (the column) and ``problems`` (quarantine reasons) are expressions over it.

    Problems name the computed value instead of repeating its expression: DuckDB does not share common
    subexpressions across a projection, and recomputing every value for its check doubled the cost of a decode."""

    value: str
    final: str
    problems: tuple[str, ...]


def _cast_sql(column: Column, contract: Contract, points: str = "", units: bool = True) -> _ColumnSql:
    """The decoding of one column (see :class:`_ColumnSql`).

    ``units=False``: the batch carries no unit codes (see :func:`_is_plain`), values are taken as canonical."""
    text, computed = f"t_{column.name}", f"c_{column.name}"
    kind = column.kind
    wrong = f"CASE WHEN {text} IS NOT NULL AND {computed} IS NULL THEN 'wrong_type:{column.name}' END"
    if kind == "string":
        return _ColumnSql(text, computed, ())
    if kind == "entity_id":
        type_sql = f"COALESCE(_entity_type, {_sql_text(contract.entity_type)})"
        value = f"CASE WHEN {text} LIKE 'urn:%' THEN {text} ELSE 'urn:ngsi-ld:' || {type_sql} || ':' || {text} END"
        return _ColumnSql(value, computed, ())
    if kind in ("lon", "lat"):
        value = f"geo_coord({points}, {0 if kind == 'lon' else 1})"
    elif kind == "float":
        # NaN and ±Infinity are no measurement: treated as a value of the wrong type
        value = f"CASE WHEN isfinite(TRY_CAST({text} AS DOUBLE)) THEN TRY_CAST({text} AS DOUBLE) END"
        if column.unit and units:
            converted, unknown = _unit_sql(column, computed, f"unit_{column.name}")
            return _ColumnSql(value, converted, (wrong, f"CASE WHEN {unknown} THEN 'unknown_unit:{column.name}' END"))
    elif kind == "int":
        value = f"TRY_CAST(TRY_CAST({text} AS DOUBLE) AS BIGINT)"
    elif kind == "bool":
        value = f"TRY_CAST({text} AS BOOLEAN)"
    elif kind == "timestamp" and column.time_format:
        local = f"TRY_STRPTIME({text}, {_sql_text(column.time_format)})::TIMESTAMP"
        if column.hour_from:
            local = f"{local} + to_hours(TRY_CAST(TRY_CAST(h_{column.name} AS DOUBLE) AS BIGINT))"
        value = f"timezone(_source_tz, {local})"
    elif kind == "timestamp":
        value = f"parse_time({text}, _source_tz)"
        if KAFKA_TIMESTAMP in column.source_paths:
            return _ColumnSql(value, f"COALESCE({computed}, _kafka_ts::TIMESTAMPTZ)", (wrong,))
    else:  # pragma: no cover - Kind is a closed Literal
        raise ValueError(kind)
    return _ColumnSql(value, computed, (wrong,))


def decode_sql(contract: Contract, plain: bool = False) -> str:
    """The batch-decoding query for ``contract``.

    Each document is parsed once, by one multi-path ``json_extract_string`` that yields every attribute the
    contract reads as text. Only attributes that arrive as objects (NGSI normalized form, GeoJSON, ``@value``
    dates) are parsed again, and only on the rows where they are objects: the keyValues rows a city's IoT
    agents mostly send take the short way through every ``CASE``.

    ``plain=True`` is the query for a batch that :func:`_is_plain` found free of NGSI attribute objects: every
    attribute is its own value, so the unwrapping and unit layers are left out, and a GeoJSON location's type
    and coordinates come out of the same single parse. It gives the same result as the general query on such
    a batch (a test holds them equal on every simulated feed and real fixture) at less than half the cost.
    """
    paths = sorted(
        {p for c in contract.columns for p in c.source_paths if p != KAFKA_TIMESTAMP}
        | {c.hour_from for c in contract.columns if c.hour_from}
    )
    heads = [] if plain else sorted({p.split(".", 1)[0] for p in paths if "." in p} - set(paths))
    locations = list(dict.fromkeys(c.source_paths for c in contract.columns if c.kind in ("lon", "lat")))
    # a location read from one attribute: its GeoJSON members parsed with the document (plain batches only)
    geo_paths = [s[0] for s in locations if plain and len(s) == 1]
    geo_members = [f"{p}.{member}" for p in geo_paths for member in ("type", "coordinates")]
    extracted = ["type", *paths, *heads, *[m for m in geo_members if m not in paths]]
    slot = {p: i for i, p in enumerate(extracted)}
    multi = ", ".join(_sql_text(_json_path(p)) for p in extracted)
    texts = ", ".join(f"_p[{i + 1}] AS e{i}" for i in range(len(extracted)))
    unwrap = (lambda i: f"e{i}") if plain else (lambda i: f"ngsi_value(e{i})")
    values = ", ".join(f"{unwrap(i)} AS w{i}" for i in range(1, len(extracted)))
    unit_columns = [c for c in contract.columns if c.kind == "float" and c.unit and not plain]
    units = "".join(
        f", COALESCE({', '.join(f'ngsi_unit(e{slot[p]})' for p in c.source_paths if p != KAFKA_TIMESTAMP)})"
        f" AS unit_{c.name}"
        for c in unit_columns
        if any(p != KAFKA_TIMESTAMP for p in c.source_paths)
    )

    def value_of(path: str) -> str:
        if "." not in path or plain:
            return f"w{slot[path]}"
        head, rest = path.split(".", 1)
        return f"COALESCE(w{slot[path]}, ngsi_value(json_member(w{slot[head]}, {_sql_text(_json_path(rest))})))"

    markers = ", ".join(_sql_text(m) for m in contract.missing_markers)
    # lon and lat read the same location: its coordinates are parsed once, into ``_points<i>``
    first_column = {
        sources: next(c.name for c in contract.columns if c.kind in ("lon", "lat") and c.source_paths == sources)
        for sources in locations
    }

    def points_of(sources: tuple[str, ...]) -> str:
        general = f"geo_coords(t_{first_column[sources]})"
        if len(sources) != 1 or sources[0] not in geo_paths:
            return general
        path = sources[0]
        # an object location is GeoJSON read from the single parse; any other shape takes the general way
        return (
            f"CASE WHEN prefix(e{slot[path]}, '{{') THEN geo_points(e{slot[path + '.type']}, "
            f"e{slot[path + '.coordinates']}) ELSE {general} END"
        )

    points = ", ".join([f"{points_of(s)} AS _points{i}" for i, s in enumerate(locations)] or ["NULL AS _points0"])
    column_texts, values_sql, selects, problems = [], [], [], []
    for column in contract.columns:
        sources = [value_of(p) for p in column.source_paths if p != KAFKA_TIMESTAMP]
        text = f"jtext(COALESCE({', '.join(sources)}))" if sources else "NULL::VARCHAR"
        if markers:  # a portal's "-" is a missing value, not a value of the wrong type
            text = f"CASE WHEN {text} IN ({markers}) THEN NULL ELSE {text} END"
        column_texts.append(f"{text} AS t_{column.name}")
        if column.hour_from:
            column_texts.append(f"jtext({value_of(column.hour_from)}) AS h_{column.name}")
        coords = f"_points{locations.index(column.source_paths)}" if column.kind in ("lon", "lat") else ""
        decoding = _cast_sql(column, contract, coords, units=not plain)
        values_sql.append(f"{decoding.value} AS c_{column.name}")
        selects.append(f'{decoding.final} AS "{column.name}"')
        problems += decoding.problems
    envelope = [
        "CASE WHEN _envelope_error IS NOT NULL THEN _envelope_error WHEN NOT _valid THEN 'malformed_json'"
        " WHEN NOT prefix(ltrim(_raw, ' \t\n\r'), '{') THEN 'not_an_object' END",
        f"CASE WHEN _entity_type <> {_sql_text(contract.entity_type)} THEN 'wrong_entity_type' END",
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
        WITH s AS (SELECT *, COALESCE(json_valid(_raw), false) AS _valid FROM batch),
        p AS (SELECT *, CASE WHEN _valid THEN json_extract_string(_raw, [{multi}]) END AS _p FROM s),
        e AS (SELECT *, {texts} FROM p),
        w AS (SELECT *, e0 AS _entity_type, {values}{units} FROM e),
        t AS (SELECT *, {", ".join(column_texts)} FROM w),
        g AS (SELECT *, {points} FROM t),
        v AS (SELECT *, {", ".join(values_sql)} FROM g),
        decoded AS (
            SELECT {", ".join(selects)}, _kafka_ts,
                   concat_ws(';', {", ".join(envelope + problems)}) AS _problems
            FROM v
        )
        SELECT * EXCLUDE (_problems, _kafka_ts),
               NULLIF(concat_ws(';', NULLIF(_problems, ''), {", ".join(timing)}), '') AS _decode_error
        FROM decoded
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
    """The raw batch as Arrow: payload text plus lineage, before any parsing."""
    return raw_batch(
        RawRecords(
            [m.topic for m in messages],
            [m.partition for m in messages],
            [m.offset for m in messages],
            [m.timestamp_ms for m in messages],
            [m.value for m in messages],
            [m.source_tz for m in messages],
        ),
        contract,
        max_bytes,
    )


@dataclass
class RawRecords:
    """Fetched Kafka records as columns (what a batch decode needs, without a Python object per record)."""

    topics: list[str]
    partitions: list[int]
    offsets: list[int]
    timestamps_ms: list[int]
    values: list[bytes | None]
    zones: list[str | None]

    def __len__(self) -> int:
        return len(self.offsets)


def raw_batch(records: RawRecords, contract: Contract, max_bytes: int = DEFAULT_MAX_MESSAGE_BYTES) -> pa.Table:
    """The raw batch as Arrow: payload text plus lineage, before any parsing.

    Payloads that are too large or not UTF-8 are not parsed at all: their ``_raw`` is null and
    ``_envelope_error`` says why (the bytes stay in Kafka, the row's lineage points at them).
    """
    values = pa.array(records.values, pa.binary())
    envelope: pa.Array = pa.nulls(len(values), pa.string())
    # if_else over variable-width payloads copies them row by row (~1.5 µs a message): only when needed
    oversized = pc.fill_null(pc.greater(pc.binary_length(values), max_bytes), False)
    if pc.any(oversized).as_py():
        envelope = pc.if_else(oversized, "oversized_message", envelope)
        values = pc.if_else(oversized, pa.scalar(None, pa.binary()), values)
    try:
        raw = values.cast(pa.string())
    except pa.ArrowInvalid:  # invalid UTF-8 somewhere: find which rows (rare, so per row is fine here)
        bad = [v is not None and not _is_utf8(v) for v in values.to_pylist()]
        envelope = pc.if_else(pa.array(bad), "invalid_utf8", envelope)
        raw = pc.if_else(pa.array(bad), pa.scalar(None, pa.binary()), values).cast(pa.string())
    zone_map = {z: _valid_zone(z, contract.source_tz) for z in set(records.zones)}
    if len(zone_map) == 1:
        zones = pa.repeat(next(iter(zone_map.values())), len(records)).cast(pa.string())
    else:
        zones = pa.array([zone_map[z] for z in records.zones], pa.string())
    return pa.table(
        {
            "_raw": raw,
            "_topic": pa.array(records.topics, pa.string()),
            "_partition": pa.array(records.partitions, pa.int32()),
            "_offset": pa.array(records.offsets, pa.int64()),
            "_kafka_ts": pa.array(records.timestamps_ms, pa.timestamp("ms", tz="UTC")),
            "_source_tz": zones,
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


def decode_batch(batch: pa.Table, contract: Contract, plain: bool | None = None) -> pa.Table:
    """Arrow batch from :func:`raw_batch` → contract columns + lineage + ``_decode_error`` + ``_raw``.

    ``plain`` picks the query (see :func:`decode_sql`); by default the batch is looked at to choose.

    DuckDB returns only what it computes, in the batch's row order; lineage and the payload are taken over
    from the batch as they are (copying 50k payloads through the query would cost more than parsing them)."""
    con = _decoder_db().cursor()
    try:
        con.execute("SET TimeZone = 'UTC'")
        con.register("batch", batch)
        if plain is None:
            plain = _is_plain(con)
        # execute(), not sql(): a relation binds the query once to describe it and again to run it, and binding
        # this query (~10 ms) costs as much as running it on a few thousand messages
        result = con.execute(_decode_sql_cached(contract, plain)).to_arrow_table()
    finally:
        con.close()
    schema = decoded_schema(contract)
    columns = [result.column(f.name) if f.name in result.column_names else batch.column(f.name) for f in schema]
    return pa.Table.from_arrays(columns, schema=schema)


# Text that only NGSI attribute objects (``value``/``@value``, ``object``, ``unitCode`` members) or escaped ASCII
# in member names contain. A batch with none of it anywhere is plain keyValues. No pattern starts with the
# quote, which is on every few bytes of JSON and would slow the substring search tenfold.
_NGSI_MARKERS = ('value"', 'object"', 'unitCode"', "\\u00")


def _is_plain(con: duckdb.DuckDBPyConnection) -> bool:
    """Whether the registered ``batch`` holds no NGSI attribute objects, so the cheaper plain query applies.

    One substring scan per marker over the batch (~0.2 µs a message) against ~3 µs a message saved."""
    found = " OR ".join(f"contains(_raw, {_sql_text(m)})" for m in _NGSI_MARKERS)
    ((any_found,),) = con.execute(f"SELECT COALESCE(bool_or({found}), false) FROM batch").fetchall()
    return not any_found


_DB: duckdb.DuckDBPyConnection | None = None
_SQL: dict[tuple[Contract, bool], str] = {}


def _decoder_db() -> duckdb.DuckDBPyConnection:
    """One in-memory database per process holding the macros; each decode takes a cursor of its own."""
    global _DB
    if _DB is None:
        _DB = duckdb.connect(config={"threads": 1})
        _DB.execute(_MACROS)
    return _DB


def _decode_sql_cached(contract: Contract, plain: bool) -> str:
    if (contract, plain) not in _SQL:
        _SQL[contract, plain] = decode_sql(contract, plain)
    return _SQL[contract, plain]


def decode_messages(
    messages: Sequence[Message], contract: Contract, max_bytes: int = DEFAULT_MAX_MESSAGE_BYTES
) -> pa.Table:
    return decode_batch(messages_to_arrow(messages, contract, max_bytes), contract)
