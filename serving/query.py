"""The one parser and SQL builder of row queries, shared by ``/records`` and ``/download``.

A :class:`RowQuery` is built from the request's parameters and the dataset's contract: every column name is
checked against the contract's stored schema (lineage included) and every value is converted to the column's
type in Python, then handed to DuckDB as a parameter — no user value is ever put into the SQL text, and
column names only ever come from the contract.

Parameters:

* ``since`` / ``until``: event time from (inclusive) / to (exclusive), with a zone.
* ``eq=column:value`` (repeatable): equality on any column; several values of one column match any of them
  (``IN``), different columns all (``AND``). The column name ends at the first ``:``, so values may hold colons
  (``eq=station_id:urn:ngsi-ld:AirQualityObserved:ST-1``).
* ``bbox=minLon,minLat,maxLon,maxLat``: WGS84 box on the dataset's location (edges included).
* ``fields=a,b``: the columns returned (default all, contract columns then lineage).
* ``sort=col,-col2``: the order (``-`` descending); default the event time. Ascending puts nulls last,
  descending first (nulls count as the largest value). The lineage ``_topic, _partition, _offset`` always
  follows as a tie-break, so the order is total and keyset pages are exact.
"""

from __future__ import annotations

import functools
import hashlib
import json
import math
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Annotated, Any
from zoneinfo import ZoneInfo

import pyarrow as pa
from fastapi import Query

from catalog.contract import Contract
from infra.errors import BadRequest

LINEAGE = ("_topic", "_partition", "_offset")
# [start, end) of event time, either end open (None)
TimeWindow = tuple[datetime | None, datetime | None]


def _duck_type(arrow_type: pa.DataType) -> str:
    if pa.types.is_dictionary(arrow_type):
        return "VARCHAR"
    if pa.types.is_timestamp(arrow_type):
        return "TIMESTAMPTZ" if arrow_type.tz else "TIMESTAMP"
    if pa.types.is_date(arrow_type):
        return "DATE"
    if pa.types.is_floating(arrow_type):
        return "DOUBLE"
    if pa.types.is_integer(arrow_type):
        return "BIGINT"
    if pa.types.is_boolean(arrow_type):
        return "BOOLEAN"
    return "VARCHAR"


def quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def location_columns(contract: Contract) -> tuple[str, str] | None:
    """The (lon, lat) pair of a dataset's location: columns named ``lon``/``lat``, else the first declared
    coordinate pair; None for a dataset without one."""
    names = {c.name: c for c in contract.stored_columns}
    if "lon" in names and "lat" in names:
        return "lon", "lat"
    for column in contract.stored_columns:
        if column.kind == "lon" and column.partner in names:
            return column.name, column.partner
    return None


def entity_id_column(contract: Contract) -> str | None:
    """The column holding the NGSI-LD entity id (kind ``entity_id``), if the contract has one."""
    return next((c.name for c in contract.stored_columns if c.kind == "entity_id"), None)


def convert(value: str, arrow_type: pa.DataType, what: str) -> Any:
    """A text parameter as a value of the column's type, or a 400 saying what was expected."""
    try:
        if pa.types.is_timestamp(arrow_type):
            parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
            if parsed.tzinfo is None:
                raise ValueError("no time zone")
            return parsed.astimezone(UTC)
        if pa.types.is_date(arrow_type):
            return date.fromisoformat(value)
        if pa.types.is_floating(arrow_type):
            number = float(value)
            if not math.isfinite(number):
                raise ValueError("not finite")
            return number
        if pa.types.is_integer(arrow_type):
            number = int(value)
            if not -(2**63) <= number < 2**63:
                raise ValueError("out of range")
            return number
        if pa.types.is_boolean(arrow_type):
            lowered = value.lower()
            if lowered not in ("true", "false"):
                raise ValueError("not a boolean")
            return lowered == "true"
    except (ValueError, OverflowError) as exc:
        raise BadRequest(
            f"{what}: {value!r} is not a {_kind_word(arrow_type)} (or out of range)",
            hint=_kind_hint(arrow_type),
        ) from exc
    return value


def _kind_word(arrow_type: pa.DataType) -> str:
    if pa.types.is_timestamp(arrow_type):
        return "time with a zone"
    if pa.types.is_date(arrow_type):
        return "date (YYYY-MM-DD)"
    if pa.types.is_floating(arrow_type):
        return "number"
    if pa.types.is_integer(arrow_type):
        return "whole number"
    if pa.types.is_boolean(arrow_type):
        return "boolean"
    return "text"


def _kind_hint(arrow_type: pa.DataType) -> str:
    if pa.types.is_timestamp(arrow_type):
        return "give ISO 8601 with Z or an offset, e.g. 2026-11-21T09:00:00Z"
    if pa.types.is_boolean(arrow_type):
        return "give true or false"
    return f"give a {_kind_word(arrow_type)}"


@dataclass
class RowQuery:
    """A validated row query on one dataset: filters, output columns and order."""

    contract: Contract
    since: datetime | None = None
    until: datetime | None = None
    eq: dict[str, list[Any]] = field(default_factory=dict)
    bbox: tuple[float, float, float, float] | None = None
    fields: list[str] = field(default_factory=list)
    fields_given: bool = False  # fields were named, rather than all of them by default
    sort: list[tuple[str, bool]] = field(default_factory=list)  # (column, descending)

    @functools.cached_property
    def types(self) -> dict[str, pa.DataType]:
        return {f.name: f.type for f in self.contract.schema}

    @classmethod
    def parse(
        cls,
        contract: Contract,
        *,
        since: datetime | None = None,
        until: datetime | None = None,
        eq: list[str] | None = None,
        bbox: str | None = None,
        fields: str | None = None,
        sort: str | None = None,
    ) -> RowQuery:
        query = cls(contract)
        for value, name in ((since, "since"), (until, "until")):
            if value is not None and value.tzinfo is None:
                raise BadRequest(
                    f"{name} has no time zone", hint=f"add Z or an offset, e.g. {name}=2026-11-21T09:00:00Z"
                )
        try:
            since, until = (v.astimezone(UTC) if v is not None else None for v in (since, until))
        except OverflowError as exc:
            raise BadRequest("since or until is out of range", hint="give a time between years 1 and 9999") from exc
        if since and until and since >= until:
            raise BadRequest("since must be before until", hint="swap them, or widen the range")
        query.since, query.until = since, until
        types = query.types
        for item in eq or []:
            name, sep, value = item.partition(":")
            if not sep:
                raise BadRequest(
                    f"eq: {item!r} has no ':' between column and value",
                    hint="write eq=column:value, e.g. eq=station_name:강남구",
                )
            query._check_column(name, "eq")
            query.eq.setdefault(name, []).append(convert(value, types[name], f"eq {name}"))
        if bbox is not None:
            query.bbox = query._parse_bbox(bbox)
        names = [n.strip() for n in fields.split(",")] if fields is not None else list(types)
        if not all(names):
            raise BadRequest(
                "fields names an empty column", hint="name columns, e.g. fields=observed_at,pm10, or leave it out"
            )
        for name in names:
            query._check_column(name, "fields")
        query.fields = list(dict.fromkeys(names))
        query.fields_given = fields is not None
        for item in (sort or contract.event_time).split(","):
            item = item.strip()
            descending = item.startswith("-")
            name = item.removeprefix("-").removeprefix("+")
            query._check_column(name, "sort")
            query.sort.append((name, descending))
        return query

    def _check_column(self, name: str, what: str) -> None:
        if name not in self.types:
            raise BadRequest(
                f"{what}: dataset {self.contract.id!r} has no column {name!r}",
                hint=f"columns: {', '.join(self.types)}",
            )

    def _parse_bbox(self, text: str) -> tuple[float, float, float, float]:
        hint = "bbox=minLon,minLat,maxLon,maxLat in WGS84 degrees, e.g. bbox=126.9,37.5,127.1,37.6"
        if location_columns(self.contract) is None:
            raise BadRequest(f"bbox: dataset {self.contract.id!r} has no location", hint="leave bbox out")
        try:
            box = tuple(float(part) for part in text.split(","))
        except ValueError:
            box = ()
        if len(box) != 4 or not all(math.isfinite(v) for v in box):
            raise BadRequest(f"bbox: {text!r} is not four numbers", hint=hint)
        min_lon, min_lat, max_lon, max_lat = box
        if not (-180 <= min_lon <= 180 and -180 <= max_lon <= 180 and -90 <= min_lat <= 90 and -90 <= max_lat <= 90):
            raise BadRequest(f"bbox: {text!r} is outside -180..180 / -90..90", hint=hint)
        if min_lon > max_lon or min_lat > max_lat:
            raise BadRequest(
                f"bbox: {text!r} has a minimum above its maximum",
                hint=hint + " (a box across the antimeridian is not supported: ask for its two halves)",
            )
        return box  # type: ignore[return-value]

    # ---- SQL -------------------------------------------------------------------------------------------------

    def where(self) -> tuple[list[str], list[Any]]:
        """Conditions and their parameters (in order)."""
        clauses: list[str] = []
        params: list[Any] = []
        et = quote(self.contract.event_time)
        for value, op in ((self.since, ">="), (self.until, "<")):
            if value is not None:
                clauses.append(f"{et} {op} ?")
                params.append(self._event_time_param(value))
        types = self.types
        for name, values in self.eq.items():
            cast = f"CAST(? AS {_duck_type(types[name])})"
            if len(values) == 1:
                clauses.append(f"{quote(name)} = {cast}")
            else:
                clauses.append(f"{quote(name)} IN ({', '.join([cast] * len(values))})")
            params += values
        if self.bbox is not None:
            lon, lat = location_columns(self.contract)  # type: ignore[misc]
            clauses.append(f"{quote(lon)} BETWEEN ? AND ? AND {quote(lat)} BETWEEN ? AND ?")
            min_lon, min_lat, max_lon, max_lat = self.bbox
            params += [min_lon, max_lon, min_lat, max_lat]
        return clauses, params

    def _event_time_param(self, instant: Any) -> Any:
        """A daily (derived) dataset's event time is a day in its zone: an instant selects the day it falls on."""
        if self.contract.column(self.contract.event_time).kind == "date":
            return instant.astimezone(ZoneInfo(self.contract.source_tz)).date()
        return instant

    @property
    def order_columns(self) -> list[tuple[str, bool]]:
        """The sort, then the dataset's unique order as tie-break (ascending): the lineage of a landed dataset,
        the key columns of a derived one — a total order, one row per key."""
        sorted_names = {name for name, _ in self.sort}
        tie = [name for name in self.contract.order_columns[1:] if name not in sorted_names]
        return [*self.sort, *((name, False) for name in tie)]

    def order_by(self) -> str:
        return ", ".join(
            f"{quote(name)} {'DESC NULLS FIRST' if desc else 'ASC NULLS LAST'}" for name, desc in self.order_columns
        )

    def after(self, key: list[Any]) -> tuple[str, list[Any]]:
        """The keyset condition "the row comes after ``key``" in :meth:`order_by`'s order (nulls largest)."""
        types = self.types
        params: list[Any] = []

        def build(i: int) -> str:
            name, desc = self.order_columns[i]
            col, value = quote(name), key[i]
            cast = f"CAST(? AS {_duck_type(types[name])})"
            if value is None:
                later = f"{col} IS NOT NULL" if desc else "FALSE"
                same = f"{col} IS NULL"
                later_params, same_params = [], []
            else:
                later = f"({col} {'<' if desc else '>'} {cast}{'' if desc else f' OR {col} IS NULL'})"
                same = f"{col} = {cast}"
                later_params, same_params = [value], [value]
            if i == len(self.order_columns) - 1:
                params.extend(later_params)
                return later
            params.extend(later_params)
            params.extend(same_params)
            return f"({later} OR ({same} AND {build(i + 1)}))"

        return build(0), params

    def select_columns(self, extra: list[str] | tuple[str, ...] = ()) -> list[str]:
        """The output fields, then any other column the caller needs (sort keys, coordinates)."""
        return list(dict.fromkeys([*self.fields, *extra]))

    def sql(
        self,
        relation: str,
        columns: list[str],
        key: list[Any] | None = None,
        limit: int | None = None,
        window: TimeWindow | None = None,
    ):
        """The rows in order; only those after ``key``, the first ``limit``, those in ``window`` if given."""
        clauses, params = self.where()
        if window is not None:
            condition, more = self.in_window(window)
            clauses.append(condition)
            params += more
        if key is not None:
            condition, more = self.after(key)
            clauses.append(condition)
            params += more
        sql = f"SELECT {', '.join(quote(c) for c in columns)} FROM {relation}"
        if clauses:
            sql += " WHERE " + " AND ".join(clauses)
        sql += f" ORDER BY {self.order_by()}"
        if limit is not None:
            sql += f" LIMIT {int(limit)}"
        return sql, params

    def in_window(self, window: TimeWindow) -> tuple[str, list[Any]]:
        """The condition "the event time is in ``window``": ``[start, end)``, an open end unbounded. Rows without
        an event time sort last, so the window open at its end holds them too: windows that tile the time line
        miss no row."""
        et = quote(self.contract.event_time)
        start, end = window
        if start is None and end is None:
            return "TRUE", []
        if start is None:
            return f"{et} < ?", [end]
        if end is None:
            return f"({et} >= ? OR {et} IS NULL)", [start]
        return f"{et} >= ? AND {et} < ?", [start, end]

    def count_by_file_sql(self, relation: str, file_column: str) -> tuple[str, list[Any]]:
        """The matching rows of each file (the relation's ``file_column``); files without any are left out."""
        clauses, params = self.where()
        where = " WHERE " + " AND ".join(clauses) if clauses else ""
        return f"SELECT {quote(file_column)}, count(*) FROM {relation}{where} GROUP BY ALL", params

    # ---- cursors ---------------------------------------------------------------------------------------------

    def fingerprint(self) -> str:
        """What a cursor must be used with: the dataset, the filters and the order (not fields or limit)."""
        spec = {
            "dataset": self.contract.id,
            "since": self.since.isoformat() if self.since else None,
            "until": self.until.isoformat() if self.until else None,
            "eq": {k: [_jsonable(v) for v in vs] for k, vs in sorted(self.eq.items())},
            "bbox": self.bbox,
            "sort": self.sort,
        }
        return hashlib.sha256(json.dumps(spec, sort_keys=True, ensure_ascii=False).encode()).hexdigest()[:16]

    def key_of(self, row: dict) -> list[Any]:
        return [_jsonable(row[name]) for name, _ in self.order_columns]

    def check_key(self, key: Any) -> list[Any]:
        """A key from a cursor, each value converted back to its column's type (a forged one is a 400)."""
        columns = self.order_columns
        if not isinstance(key, list) or len(key) != len(columns):
            raise ValueError("key length")
        types = self.types
        out = []
        for (name, _), value in zip(columns, key, strict=True):
            if value is None:
                out.append(None)
            elif isinstance(value, bool) or not isinstance(value, (str, int, float)):
                if pa.types.is_boolean(types[name]) and isinstance(value, bool):
                    out.append(value)
                else:
                    raise ValueError(name)
            else:
                out.append(convert(str(value), types[name], f"cursor {name}"))
        return out


def _jsonable(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat()
    if isinstance(value, date):
        return value.isoformat()
    return value


# ---- the parameters as FastAPI declares them (one description for both routes) ------------------------------

Since = Annotated[datetime | None, Query(description="event time from (inclusive), ISO 8601 with zone")]
Until = Annotated[datetime | None, Query(description="event time to (exclusive), ISO 8601 with zone")]
Eq = Annotated[
    list[str] | None,
    Query(
        description="equality filter `column:value` (repeatable; values of one column are OR-ed, columns AND-ed; "
        "the column ends at the first ':'), e.g. `eq=station_name:강남구`; an unknown column is a 400 listing "
        "the columns",
        examples=["air_quality_level:good"],
    ),
]
Bbox = Annotated[
    str | None,
    Query(
        description="`minLon,minLat,maxLon,maxLat` (WGS84, edges included) on the dataset's location",
        examples=["126.9,37.5,127.1,37.6"],
    ),
]
Fields = Annotated[str | None, Query(description="comma-separated columns to return (default: all, lineage included)")]
Sort = Annotated[
    str | None,
    Query(
        description="comma-separated columns, `-` for descending (default: the event time); ascending puts nulls "
        "last, descending first; `_topic,_partition,_offset` always follow as a unique tie-break",
        examples=["-pm10"],
    ),
]
