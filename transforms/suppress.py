"""Small-cell suppression of open releases born from safe-zone data: an hourly and a daily release of the same
rows, counted in distinct persons, with complementary suppression across the two.

Pure functions over Arrow tables (DuckDB for the grouped steps; no per-row Python). The input is one row per
event, already generalised (``transforms/derive.py``): ``hour`` (hours since the epoch, UTC), ``day`` (the
Seoul day the hour belongs to, ``date32``), the group columns (districts), the person column (a pseudonym),
``_pseudonym_key_version``, and the columns that are counted or summed. :func:`releases` returns the hourly
cells (day, hour, group) and the daily cells (day, group), each with its values, ``suppressed`` and
``suppression``.

**Primary suppression.** A cell counted in fewer than ``min_persons`` (``CITYHUB_MIN_PERSONS``) distinct
persons — pseudonyms within one key version, the largest count over versions, as the k-anonymity report
counts them (:func:`transforms.kanon.equivalence_classes`): never trips or rows — is suppressed
(``persons_below_min``). A cell with many trips by few riders is suppressed.

**Complementary suppression.** Every hourly cell of a (day, group) lies in that day's daily cell and its
additive values (rows, sums) add up to the daily's, so publishing both releases publishes, per (day, group),
the *residual* R = daily − Σ published hourly = Σ suppressed hourly. An attacker knows each suppressed cell
exists, so holds ≥ 1 row (and ≥ 0 of a sum). A suppressed hourly cell is therefore recovered exactly when it
is the only one of its (day, group) (R is its value) or when R equals its lower bound times the number m of
suppressed cells (each must be 1). And R itself is an aggregate over the suppressed cells' persons, which
should pass the threshold like any published cell. So a (day, group) whose daily is published and which has
m ≥ 1 suppressed hourly cells is *safe* when

    m ≥ 2  and  the suppressed cells together hold ≥ min_persons distinct persons
           and  R > m for the row count  and  R > 0 for every sum.

Where it is not, the published hourly cell with the fewest rows (then the earliest) is suppressed too
(``complementary``): being published it holds ≥ min_persons persons itself, so afterwards m ≥ 2, the
suppressed cells hold ≥ min_persons persons and R ≥ (m − 1) + min_persons > m. Where no published hourly
cell is left, or a sum's residual is still 0, the daily cell is suppressed instead (``complementary``).

The other direction needs no extra step: the persons of an hour are a subset of the persons of its day (within
each key version, so also for the largest count over versions), so a daily cell below the threshold has every
hourly cell below it too — a suppressed daily is never the sum of published hourlies. (It is enforced anyway:
a suppressed daily suppresses its hourlies.) A daily cell suppressed as a complement has only suppressed
hourlies, or hourlies whose published part leaves the rest unknown.

Only these two releases are published, with no totals across groups: a total over districts would add a
margin to each hour and day (Σ over groups), and then a single suppressed cell in an hour's row of groups would
be recoverable from it; such a total would need this same treatment along its own dimension.

Deterministic: every step orders by its keys, sums run in input order on one thread and are rounded
(``digits``), so the same rows give the same bytes.
"""

from __future__ import annotations

from dataclasses import dataclass

import duckdb
import pyarrow as pa
import pyarrow.compute as pc

from catalog.releases import COMPLEMENTARY, PERSONS_BELOW_MIN
from transforms.kanon import equivalence_classes

HOUR, DAY = "hour", "day"


@dataclass(frozen=True)
class ReleaseSpec:
    """What a release counts: its groups, whose distinct values are persons, and its additive values."""

    groups: tuple[str, ...]  # e.g. ("origin_district", "destination_district")
    person: str  # the pseudonym column whose distinct values are the persons suppression counts
    persons: str  # output name of the distinct persons ("riders", "households")
    rows: str  # output name of the row count ("trips", "readings"): additive, ≥ 1 in every cell
    distinct: tuple[tuple[str, str], ...] = ()  # other distinct counts: (output name, pseudonym column)
    sums: tuple[tuple[str, str], ...] = ()  # additive measures ≥ 0: (output name, input column)
    digits: int = 3  # sums are rounded to this many decimals

    @property
    def values(self) -> list[str]:
        """The published value columns of a cell, in order (nulls when suppressed)."""
        return [self.rows, self.persons, *(o for o, _ in self.distinct), *(o for o, _ in self.sums)]


def cells(rows: pa.Table, spec: ReleaseSpec, keys: list[str]) -> pa.Table:
    """One row per cell of ``keys``: the row count, distinct persons and other distinct counts (within one key
    version, the largest over versions) and the rounded sums; ordered by ``keys``."""
    counted = {spec.persons: spec.person, **dict(spec.distinct)}
    tables = {
        f"d{i}": equivalence_classes(rows, keys, column).rename_columns([*keys, "_rows", output])
        for i, (output, column) in enumerate(counted.items())
    }
    sums = rows.select([*keys, *(c for _, c in spec.sums)]).group_by(keys, use_threads=False)
    tables["s"] = sums.aggregate([(c, "sum") for _, c in spec.sums]) if spec.sums else None
    on = ", ".join(f'"{k}"' for k in keys)
    joins = " ".join(f"JOIN {name} USING ({on})" for name in tables if name != "d0" and tables[name] is not None)
    select = [f'd0._rows AS "{spec.rows}"', *(f'"{o}"' for o in counted)]
    select += [f'round("{c}_sum", {spec.digits}) AS "{o}"' for o, c in spec.sums]
    query = f"SELECT {on}, {', '.join(select)} FROM d0 {joins} ORDER BY {on}"
    return _sql(query, **{k: v for k, v in tables.items() if v is not None})


def releases(rows: pa.Table, spec: ReleaseSpec, min_persons: int) -> tuple[pa.Table, pa.Table]:
    """(hourly, daily) cells of ``rows`` with primary and complementary suppression applied: each cell's values,
    null when ``suppressed``, and the reason in ``suppression``. Ordered by day, (hour,) group."""
    groups = list(spec.groups)
    hourly = cells(rows, spec, [DAY, HOUR, *groups])
    daily = cells(rows, spec, [DAY, *groups])
    # distinct persons of each (day, group)'s primary-suppressed hourly cells taken together
    small = hourly.filter(pc.less(hourly.column(spec.persons), min_persons)).select([DAY, HOUR, *groups])
    on = ", ".join(f'"{c}"' for c in (DAY, HOUR, *groups))
    in_small = _sql(f"SELECT * FROM r SEMI JOIN small USING ({on})", r=rows, small=small)
    union = equivalence_classes(in_small, [DAY, *groups], spec.person).drop_columns(["rows"])
    return _suppress(hourly, daily, union, spec, min_persons)


def _suppress(
    hourly: pa.Table, daily: pa.Table, union: pa.Table, spec: ReleaseSpec, k: int
) -> tuple[pa.Table, pa.Table]:
    line = ", ".join(f'"{c}"' for c in (DAY, *spec.groups))
    n, p = f'"{spec.rows}"', f'"{spec.persons}"'
    sums = [f'"{o}"' for o, _ in spec.sums]

    def residual(flag: str) -> str:
        """Per (day, group): m suppressed hourly cells and the residual of each additive value over them."""
        parts = [f"count(*) FILTER ({flag}) AS m", f"coalesce(sum({n}) FILTER ({flag}), 0) AS r_rows"]
        parts += [f"coalesce(sum({s}) FILTER ({flag}), 0) AS r_{i}" for i, s in enumerate(sums)]
        return ", ".join(parts)

    def safe(union_ok: str) -> str:
        """The subtraction recovers no suppressed hourly cell (and R passes the threshold)."""
        return " AND ".join([f"m >= 2 AND ({union_ok}) AND r_rows > m", *(f"r_{i} > 0" for i in range(len(sums)))])

    # Each step is computed once, into a table the next reads: the daily cells with their primary verdict (d), the
    # hourly cells with theirs (h2), the daily cells with theirs (d2). One statement per release had repeated
    # every step before its own.
    small_days = f"SELECT *, {p} < {k} AS small FROM daily"
    hourly_cells = f"""
    WITH h AS (
        SELECT h.*, h.{p} < {k} AS small, d.small AS day_small
        FROM hourly h JOIN d USING ({line})
    ),
    first_pass AS (
        SELECT {line}, {residual("small")} FROM h GROUP BY ALL
    ),
    needs AS (  -- lines whose daily is published but whose suppressed hourlies are not safe yet
        SELECT {line} FROM first_pass JOIN d USING ({line}) LEFT JOIN u USING ({line})
        WHERE NOT d.small AND m >= 1 AND NOT ({safe(f"coalesce(u.persons, 0) >= {k}")})
    ),
    complement AS (  -- in each such line the published hourly cell with the fewest rows, then the earliest
        SELECT {line}, "{HOUR}" FROM (
            SELECT h.*, row_number() OVER (PARTITION BY {line} ORDER BY {n}, "{HOUR}") AS rank
            FROM h SEMI JOIN needs USING ({line}) WHERE NOT h.small
        ) WHERE rank = 1
    )
    SELECT h.*, CASE
        WHEN h.small THEN '{PERSONS_BELOW_MIN}'
        WHEN h.day_small OR c."{HOUR}" IS NOT NULL THEN '{COMPLEMENTARY}'
    END AS suppression
    FROM h LEFT JOIN complement c USING ({line}, "{HOUR}")
    """
    daily_cells = f"""
    WITH second_pass AS (
        SELECT {line}, {residual("suppression IS NOT NULL")},
               bool_or(suppression = '{COMPLEMENTARY}') AS added
        FROM h2 GROUP BY ALL
    )
    SELECT d.*, CASE
        WHEN d.small THEN '{PERSONS_BELOW_MIN}'
        WHEN m >= 1 AND NOT ({safe(f"added OR coalesce(u.persons, 0) >= {k}")}) THEN '{COMPLEMENTARY}'
    END AS suppression
    FROM d JOIN second_pass USING ({line}) LEFT JOIN u USING ({line})
    """
    values = ", ".join(f'CASE WHEN suppression IS NULL THEN "{v}" END AS "{v}"' for v in spec.values)
    release = "SELECT {keys}, {values}, suppression IS NOT NULL AS suppressed, suppression FROM {table} ORDER BY {keys}"
    con = duckdb.connect(config={"threads": 1})
    try:
        for name, table in (("hourly", hourly), ("daily", daily), ("u", union)):
            con.register(name, table)
        con.execute(f"CREATE TEMP TABLE d AS {small_days}")
        con.execute(f"CREATE TEMP TABLE h2 AS {hourly_cells}")
        con.execute(f"CREATE TEMP TABLE d2 AS {daily_cells}")
        hour_keys = ", ".join(f'"{c}"' for c in (DAY, HOUR, *spec.groups))
        out_h = con.sql(release.format(keys=hour_keys, values=values, table="h2")).to_arrow_table()
        out_d = con.sql(release.format(keys=line, values=values, table="d2")).to_arrow_table()
        return out_h, out_d
    finally:
        con.close()


def _sql(query: str, **tables: pa.Table) -> pa.Table:
    con = duckdb.connect(config={"threads": 1})
    try:
        for name, table in tables.items():
            con.register(name, table)
        return con.sql(query).to_arrow_table()
    finally:
        con.close()
