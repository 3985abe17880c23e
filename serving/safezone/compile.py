"""One meaning, two ways to ask: a structured aggregate request, or SQL that sqlglot parses into exactly such a
request. Either way the server compiles the SQL that runs itself; the analyst's text is never passed through.

A project grants datasets and columns. From them come its **dimensions** — quasi-identifiers only in their
generalised form (``start_district``, a 15-minute ``started_at``, ``resident_age_band``; coarse ones such as
``mode`` or ``district`` as they are) and categorical columns with a closed list of values — and its
**measures**: ``count`` (rows), ``persons`` (distinct persons: the contract's person column, within one key
version), and ``sum``/``mean`` of a numeric column clamped to the contract's minimum and maximum. Filters
compare a dimension with literals (=, !=, <, <=, >, >=, IN, NOT IN); literals travel as bound parameters.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from datetime import UTC, datetime

import sqlglot
from sqlglot import exp

from catalog import get_contract
from catalog.contract import KEY_VERSION, Contract
from infra.errors import BadRequest
from serving.query import quote as q

FUNCTIONS = ("count", "persons", "sum", "mean")
OPS = ("=", "!=", "<", "<=", ">", ">=", "in", "not in")


class Refused(BadRequest):
    code = "query_refused"


class NotGranted(Refused):
    status = 403
    code = "not_granted"


@dataclass(frozen=True)
class Dimension:
    name: str  # as the analyst sees it (the generalised column)
    kind: str  # "string", "timestamp" or "bool"
    sources: tuple[str, ...]  # contract columns it is made from


@dataclass(frozen=True)
class Vocabulary:
    """What one project may ask of one dataset."""

    contract: Contract
    dimensions: dict[str, Dimension]
    measures: dict[str, tuple[float, float]]  # column → (min, max) clamping bounds

    @property
    def person(self) -> str:
        return self.contract.person_column or ""


def dimension_of(contract: Contract, name: str) -> Dimension | None:
    """The dimension a contract column (or its generalised name) gives, or None when it gives none."""
    for col in contract.columns:
        if name not in (col.name, col.generalised_name, col.partner) or col.personal:
            continue
        if col.kind == "lat":
            col = contract.column(col.partner or "")
        if col.is_quasi_identifier:
            if col.generalise in ("cell_250m", "district"):
                return Dimension(col.generalised_name, "string", (col.name, col.partner or ""))
            kind = "timestamp" if col.generalise == "bucket_15min" else "string"
            return Dimension(col.generalised_name, kind, (col.name,))
        if col.kind == "bool":
            return Dimension(col.name, "bool", (col.name,))
        if col.kind == "string" and col.allowed:
            return Dimension(col.name, "string", (col.name,))
    return None


def measure_of(contract: Contract, name: str) -> tuple[float, float] | None:
    col = next((c for c in contract.columns if c.name == name), None)
    if col is None or col.personal or col.is_quasi_identifier or col.kind not in ("int", "float"):
        return None
    if col.minimum is None or col.maximum is None:
        return None
    return (float(col.minimum), float(col.maximum))


def grantable(contract: Contract, name: str) -> bool:
    return dimension_of(contract, name) is not None or measure_of(contract, name) is not None


def vocabulary(contract: Contract, granted: list[str]) -> Vocabulary:
    dims, measures = {}, {}
    for name in granted:
        dim = dimension_of(contract, name)
        if dim:
            dims[dim.name] = dim
        bounds = measure_of(contract, name)
        if bounds:
            measures[name] = bounds
    return Vocabulary(contract, dims, measures)


def full_vocabulary(contract: Contract) -> Vocabulary:
    """Every dimension of a dataset: what the differencing guard's table holds."""
    return vocabulary(contract, [c.name for c in contract.columns])


@dataclass(frozen=True)
class Measure:
    fn: str
    column: str | None = None

    @property
    def name(self) -> str:
        return self.fn if self.column is None else f"{self.fn}_{self.column}"


@dataclass(frozen=True)
class Filter:
    column: str
    op: str
    values: tuple

    def canonical(self) -> list:
        return [self.column, self.op, list(self.values)]


@dataclass(frozen=True)
class AggRequest:
    dataset: str
    group_by: tuple[str, ...]
    measures: tuple[Measure, ...]
    filters: tuple[Filter, ...] = field(default=())

    def canonical(self) -> dict:
        return {
            "dataset": self.dataset,
            "group_by": list(self.group_by),
            "measures": [{"fn": m.fn, "column": m.column} for m in self.measures],
            "where": sorted((f.canonical() for f in self.filters), key=json.dumps),
        }

    @property
    def columns(self) -> list[str]:
        return [*self.group_by, *(m.name for m in self.measures)]


# -- from JSON ---------------------------------------------------------------------------------------------------


def from_json(body: dict, datasets: list[str], granted: dict[str, list[str]]) -> AggRequest:
    dataset = body.get("dataset") or (datasets[0] if len(datasets) == 1 else None)
    if dataset not in datasets:
        raise NotGranted(
            "the request names no dataset of this project",
            hint=f"set dataset to one of {', '.join(datasets)}",
        )
    vocab = vocabulary(get_contract(dataset), granted[dataset])
    group_by = body.get("group_by") or []
    measures = body.get("measures") or []
    where = body.get("where") or []
    if not isinstance(group_by, list) or not all(isinstance(g, str) for g in group_by):
        raise Refused("group_by must be a list of dimension names", hint=_dims_hint(vocab))
    if not isinstance(measures, list) or not measures:
        raise Refused("measures must be a non-empty list", hint='e.g. [{"fn": "persons"}, {"fn": "count"}]')
    parsed = []
    for m in measures:
        if isinstance(m, str):
            m = {"fn": m}
        if not isinstance(m, dict):
            raise Refused("each measure is an object {fn, column}", hint='e.g. {"fn": "sum", "column": "fare_krw"}')
        parsed.append(_measure(vocab, m.get("fn"), m.get("column")))
    if not isinstance(where, list):
        raise Refused(
            "where must be a list of {column, op, value}", hint='e.g. [{"column": "mode", "op": "=", "value": "bike"}]'
        )
    filters = []
    for f in where:
        if not isinstance(f, dict):
            raise Refused(
                "each filter is an object {column, op, value}",
                hint='e.g. {"column": "mode", "op": "=", "value": "bike"}',
            )
        op = str(f.get("op", "=")).lower()
        value = f.get("value")
        values = tuple(value) if isinstance(value, list) else (value,)
        filters.append(_filter(vocab, f.get("column"), op, values))
    return _checked(vocab, AggRequest(dataset, tuple(group_by), tuple(parsed), tuple(filters)))


def _dims_hint(vocab: Vocabulary) -> str:
    return f"dimensions of this project: {', '.join(vocab.dimensions) or '(none)'}"


def _measure(vocab: Vocabulary, fn, column) -> Measure:
    if not isinstance(fn, str) or not (column is None or isinstance(column, str)):
        raise Refused(
            "a measure is {fn, column} with names as strings", hint='e.g. {"fn": "sum", "column": "fare_krw"}'
        )
    if fn not in FUNCTIONS:
        raise Refused("unknown measure", hint="measures are count, persons, sum and mean")
    if fn in ("count", "persons"):
        if column not in (None, vocab.person) and fn == "persons":
            raise Refused("persons counts the dataset's person column only", hint='use {"fn": "persons"}')
        return Measure(fn)
    if column not in vocab.measures:
        raise Refused(
            f"{fn} needs a numeric column granted to this project",
            hint=f"numeric columns of this project: {', '.join(vocab.measures) or '(none)'}",
        )
    return Measure(fn, column)


def _filter(vocab: Vocabulary, column, op: str, values: tuple) -> Filter:
    if not isinstance(column, str) or column not in vocab.dimensions:
        raise Refused("filters compare a dimension of this project", hint=_dims_hint(vocab))
    if op not in OPS:
        raise Refused("unknown filter operator", hint=f"operators: {', '.join(OPS)}")
    if not values or (op not in ("in", "not in") and len(values) != 1) or len(values) > 100:
        raise Refused("a filter compares with one literal (IN: 1 to 100 literals)", hint="e.g. mode IN ('bike', 'drt')")
    kind = vocab.dimensions[column].kind
    return Filter(column, op, tuple(_literal(kind, column, v) for v in values))


def _literal(kind: str, column: str, value):
    if kind == "timestamp":
        if not isinstance(value, str):
            raise Refused(f"{column} is compared with an ISO-8601 timestamp string", hint="e.g. '2026-11-20T09:00:00Z'")
        try:
            moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            raise Refused(
                f"a literal compared with {column} is not an ISO-8601 timestamp", hint="e.g. '2026-11-20T09:00:00Z'"
            ) from None
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=UTC)
        return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    if kind == "bool":
        if not isinstance(value, bool):
            raise Refused(f"{column} is compared with true or false", hint="e.g. true")
        return value
    if not isinstance(value, str) or len(value) > 200:
        raise Refused(f"{column} is compared with a string literal", hint="quote the value")
    return value


def _checked(vocab: Vocabulary, request: AggRequest) -> AggRequest:
    for g in request.group_by:
        if g not in vocab.dimensions:
            raise Refused("group_by names a column that is not a dimension of this project", hint=_dims_hint(vocab))
    if len(set(request.group_by)) != len(request.group_by) or len(request.group_by) > 4:
        raise Refused("group_by lists up to 4 distinct dimensions", hint=_dims_hint(vocab))
    if len(set(request.measures)) != len(request.measures) or len(request.measures) > 8:
        raise Refused("measures list up to 8 distinct measures", hint="count, persons, sum and mean of a column")
    if len(request.filters) > 10:
        raise Refused("at most 10 filters", hint="combine values with IN")
    return request


# -- from SQL ----------------------------------------------------------------------------------------------------

_SELECT_ARGS = {"expressions", "from_", "where", "group"}
_COMPARISONS = {exp.EQ: "=", exp.NEQ: "!=", exp.LT: "<", exp.LTE: "<=", exp.GT: ">", exp.GTE: ">="}
_FLIP = {"<": ">", "<=": ">=", ">": "<", ">=": "<=", "=": "=", "!=": "!="}


def from_sql(sql: str, datasets: list[str], granted: dict[str, list[str]]) -> AggRequest:
    """The aggregate request ``sql`` means, or :class:`Refused` with the reason it is none."""
    try:
        return _from_sql(sql, datasets, granted)
    except RecursionError:
        raise Refused("the SQL is nested too deeply", hint="at most 10 filters joined by AND") from None


def _from_sql(sql: str, datasets: list[str], granted: dict[str, list[str]]) -> AggRequest:
    if not isinstance(sql, str) or not sql.strip() or len(sql) > 10_000:
        raise Refused("sql must be a non-empty string of at most 10000 characters", hint="SELECT … FROM … GROUP BY …")
    try:
        statements = [s for s in sqlglot.parse(sql, read="duckdb") if s is not None]
    except (sqlglot.errors.SqlglotError, RecursionError, ValueError):
        raise Refused("the SQL does not parse", hint="write one SELECT of dimensions and aggregates") from None
    if len(statements) != 1:
        raise Refused("exactly one statement is accepted", hint="send one SELECT, without ';' separated others")
    select = statements[0]
    if not isinstance(select, exp.Select):
        raise Refused(f"only SELECT is accepted, not {type(select).__name__.upper()}", hint=_SQL_HINT)
    extra = sorted(k for k, v in select.args.items() if v and k not in _SELECT_ARGS)
    if extra:
        raise Refused(f"SELECT with {', '.join(e.rstrip('_') for e in extra)} is not accepted", hint=_SQL_HINT)
    source = select.args.get("from_")
    table = source.this if source is not None else None
    if not isinstance(table, exp.Table) or any(v for k, v in table.args.items() if k != "this"):
        raise Refused("FROM must name one granted dataset, nothing else", hint=_SQL_HINT)
    if not isinstance(table.this, exp.Identifier) or table.name not in datasets:
        raise NotGranted("FROM must name a dataset granted to this project", hint=f"granted: {', '.join(datasets)}")
    vocab = vocabulary(get_contract(table.name), granted[table.name])

    dims, measures = [], []
    for item in select.expressions:
        node = item.this if isinstance(item, exp.Alias) else item
        if isinstance(node, exp.Column):
            dims.append(_column(vocab, node, dimension=True))
        else:
            measures.append(_aggregate(vocab, node))
    if not measures:
        raise Refused(
            "the SELECT has no aggregate", hint="add count(*), count(DISTINCT <person>), sum(col) or avg(col)"
        )
    group = select.args.get("group")
    group_cols = []
    if group is not None:
        if any(v for k, v in group.args.items() if k != "expressions"):
            raise Refused("GROUP BY lists dimensions only (no ROLLUP, CUBE, ALL)", hint=_SQL_HINT)
        for g in group.expressions:
            if not isinstance(g, exp.Column):
                raise Refused("GROUP BY lists dimension columns only", hint=_dims_hint(vocab))
            group_cols.append(_column(vocab, g, dimension=True))
    if sorted(group_cols) != sorted(dims):
        raise Refused("the selected dimensions and the GROUP BY must be the same columns", hint=_SQL_HINT)
    where = select.args.get("where")
    filters = _conjuncts(vocab, where.this) if where is not None else []
    return _checked(vocab, AggRequest(table.name, tuple(dims), tuple(measures), tuple(filters)))


_SQL_HINT = (
    "accepted: SELECT <dimensions>, count(*), count(DISTINCT <person>), sum(<col>), avg(<col>) FROM <dataset> "
    "[WHERE <dimension> <op> <literal> AND …] [GROUP BY <dimensions>]"
)


def _column(vocab: Vocabulary, node: exp.Column, dimension: bool) -> str:
    if node.table or node.args.get("db") or not isinstance(node.this, exp.Identifier):
        raise Refused("columns are plain names", hint=_SQL_HINT)
    name = node.name
    if dimension and name not in vocab.dimensions:
        raise Refused("a selected or grouped column is not a dimension of this project", hint=_dims_hint(vocab))
    return name


def _aggregate(vocab: Vocabulary, node: exp.Expression) -> Measure:
    if isinstance(node, exp.Count):
        arg = node.this
        if isinstance(arg, exp.Star) and not any(v for k, v in node.args.items() if k not in ("this", "big_int")):
            return Measure("count")
        if (
            isinstance(arg, exp.Distinct)
            and len(arg.expressions) == 1
            and isinstance(arg.expressions[0], exp.Column)
            and not any(v for k, v in arg.args.items() if k != "expressions")
            and _plain(arg.expressions[0]) == vocab.person
        ):
            return Measure("persons")
        raise Refused(
            "count is accepted as count(*) or count(DISTINCT <person column>)",
            hint=f"the person column of {vocab.contract.id} is {vocab.person}",
        )
    for kind, fn in ((exp.Sum, "sum"), (exp.Avg, "mean")):
        if type(node) is kind:
            arg = node.this
            if not isinstance(arg, exp.Column) or any(v for k, v in node.args.items() if k != "this"):
                raise Refused(f"{fn} takes one plain numeric column", hint="e.g. sum(fare_krw)")
            return _measure(vocab, fn, _plain(arg))
    raise Refused(
        "only count(*), count(DISTINCT <person>), sum(<col>) and avg(<col>) are accepted in the SELECT",
        hint="functions, expressions, window functions and other aggregates are refused",
    )


def _plain(node: exp.Column) -> str:
    if node.table or not isinstance(node.this, exp.Identifier):
        raise Refused("columns are plain names", hint=_SQL_HINT)
    return node.name


def _conjuncts(vocab: Vocabulary, node: exp.Expression) -> list[Filter]:
    if isinstance(node, exp.Paren):
        return _conjuncts(vocab, node.this)
    if isinstance(node, exp.And):
        return _conjuncts(vocab, node.this) + _conjuncts(vocab, node.expression)
    negate = False
    if isinstance(node, exp.Not):
        negate, node = True, node.this
        if isinstance(node, exp.Paren):
            node = node.this
    if isinstance(node, exp.In):
        if node.args.get("query") or node.args.get("unnest") or node.args.get("field"):
            raise Refused("IN takes a list of literals", hint="e.g. mode IN ('bike', 'drt')")
        column = _filter_column(vocab, node.this)
        values = tuple(_sql_literal(v) for v in node.expressions)
        return [_filter(vocab, column, "not in" if negate else "in", values)]
    for kind, op in _COMPARISONS.items():
        if type(node) is kind:
            left, right = node.this, node.expression
            if isinstance(right, exp.Column) and not isinstance(left, exp.Column):
                left, right, op = right, left, _FLIP[op]
            column = _filter_column(vocab, left)
            if negate:
                op = {"=": "!=", "!=": "=", "<": ">=", "<=": ">", ">": "<=", ">=": "<"}[op]
            return [_filter(vocab, column, op, (_sql_literal(right),))]
    raise Refused(
        "WHERE accepts comparisons of a dimension with literals joined by AND",
        hint="OR, functions, subqueries and expressions are refused",
    )


def _filter_column(vocab: Vocabulary, node: exp.Expression) -> str:
    if not isinstance(node, exp.Column):
        raise Refused("a filter compares a dimension column with literals", hint=_dims_hint(vocab))
    name = _plain(node)
    if name not in vocab.dimensions:
        raise Refused("filters compare a dimension of this project", hint=_dims_hint(vocab))
    return name


def _sql_literal(node: exp.Expression):
    if isinstance(node, exp.Boolean):
        return bool(node.this)
    if isinstance(node, exp.Literal) and node.is_string:
        return node.this
    raise Refused("filter values are quoted string literals (or true/false)", hint="e.g. district = '강남구'")


# -- to SQL ------------------------------------------------------------------------------------------------------


def predicate(vocab: Vocabulary, dims: dict, filters: list) -> tuple[str, list]:
    """SQL (with ``?`` parameters) true for rows of the cell ``dims`` ({dimension: value}) under ``filters``
    (canonical [column, op, values] lists); never NULL."""
    parts, params = [], []
    for column, op, values in filters:
        cast = "CAST(? AS TIMESTAMPTZ)" if vocab.dimensions[column].kind == "timestamp" else "?"
        if op in ("in", "not in"):
            parts.append(f"{q(column)} {op.upper()} ({', '.join([cast] * len(values))})")
        else:
            parts.append(f"{q(column)} {op} {cast}")
        params.extend(values)
    for column, value in dims.items():
        if value is None:
            parts.append(f"{q(column)} IS NULL")
            continue
        cast = "CAST(? AS TIMESTAMPTZ)" if vocab.dimensions[column].kind == "timestamp" else "?"
        parts.append(f"{q(column)} = {cast}")
        params.append(value)
    return f"coalesce(({' AND '.join(parts) or 'true'}), false)", params


def compile_cells(vocab: Vocabulary, request: AggRequest) -> tuple[str, list]:
    """The one query an answer runs over the sandbox's table ``t``: per cell its dimensions, ``_rows``,
    ``_persons`` (distinct persons within one key version, the largest over versions) and, per sum or mean
    measure, the clamped sum, the count of values, and the two largest contributions of one person."""
    dims = [q(g) for g in request.group_by]
    valued = [m for m in request.measures if m.column]
    columns = list(dict.fromkeys(m.column for m in valued))
    clamp = [
        f"least(greatest(CAST({q(c)} AS DOUBLE), {vocab.measures[c][0]!r}), {vocab.measures[c][1]!r}) AS {q('_m_' + c)}"
        for c in columns
    ]
    version = q(KEY_VERSION)  # the sandbox's view always has it (nulls when no file does)
    where, params = predicate(vocab, {}, [f.canonical() for f in request.filters])
    select_dims = "".join(f"{d}, " for d in dims)
    group = ", ".join(dims)
    base = (
        f"SELECT {select_dims}CAST({q(vocab.person)} AS VARCHAR) AS _p, {version} AS _v"
        + "".join(f", {c}" for c in clamp)
        + f" FROM t WHERE {where}"
    )
    per_person = (
        f"SELECT {select_dims}_v, _p, count(*) AS n"
        + "".join(f", sum({q('_m_' + c)}) AS {q('_s_' + c)}, count({q('_m_' + c)}) AS {q('_c_' + c)}" for c in columns)
        + f" FROM base GROUP BY {select_dims}_v, _p"
    )
    per_version = f"SELECT {select_dims}_v, count(*) AS persons FROM pp GROUP BY {select_dims}_v"
    persons = f"SELECT {select_dims}max(persons) AS persons FROM pv" + (f" GROUP BY {group}" if dims else "")
    cells = (
        f"SELECT {select_dims}CAST(sum(n) AS BIGINT) AS _rows"
        + "".join(
            f", CAST(sum({q('_s_' + c)}) AS DOUBLE) AS {q('_sum_' + c)}"
            f", CAST(sum({q('_c_' + c)}) AS BIGINT) AS {q('_n_' + c)}"
            f", sum(abs({q('_s_' + c)})) AS {q('_abs_' + c)}, max(abs({q('_s_' + c)}), 2) AS {q('_top_' + c)}"
            for c in columns
        )
        + " FROM pp"
        + (f" GROUP BY {group}" if dims else "")
    )
    on = " AND ".join(f"c.{d} IS NOT DISTINCT FROM x.{d}" for d in dims) or "true"
    order = ", ".join(f"c.{d} NULLS LAST" for d in dims)
    sql = (
        f"WITH base AS ({base}), pp AS ({per_person}), pv AS ({per_version}), px AS ({persons}), "
        f"cells AS ({cells}) SELECT c.*, coalesce(x.persons, 0) AS _persons FROM cells c JOIN px x ON {on}"
        + (f" ORDER BY {order}" if dims else "")
    )
    return sql, params


def finite(value):
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value
