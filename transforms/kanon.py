"""k-anonymity of a table over its contract's generalised quasi-identifiers: a risk measure, counts only.

Rows sharing every generalised quasi-identifier (district, quarter hour, age band, …) form an *equivalence
class*; a class's size is the number of distinct persons in it (the contract's ``person_column``; rows where
the contract names none). ``k`` is the smallest class. A person in a class smaller than the threshold
(``CITYHUB_MIN_PERSONS``) could be singled out by someone who knows those few facts about them — if the rows
were released. The safe zone releases no rows, so the report gates only a row-level extract, should one ever
be made; it is stored with every landed date partition and shown to the zone's reviewers.

**Key versions.** A pseudonym is an HMAC under one key: after a rotation (a new ``CITYHUB_HMAC_KEY_VERSION``
and key) the same person has a different pseudonym, and nothing can link the two. So distinct persons are
only ever counted within one key version: :func:`equivalence_classes` counts each class per version and keeps
the largest count. That is a lower bound of the true number (the same person under two versions would
otherwise count twice), so a partition that spans a rotation never looks safer than it is.
"""

from __future__ import annotations

import duckdb
import pyarrow as pa
import pyarrow.compute as pc

from catalog.contract import KEY_VERSION, Contract
from transforms.generalise import generalise, quasi_identifier_names


def equivalence_classes(table: pa.Table, quasi_identifiers: list[str], person: str | None = None) -> pa.Table:
    """One row per class: its quasi-identifier values, ``rows`` and ``persons`` (distinct ``person`` values
    within one key version, the largest over versions; ``rows`` when ``person`` is None). Nulls form classes
    of their own."""
    version = f'"{KEY_VERSION}"' if KEY_VERSION in table.column_names else "NULL"
    distinct = f'count(DISTINCT "{person}")' if person else "count(*)"
    keys = ", ".join(f'"{q}"' for q in quasi_identifiers) or "NULL"
    return _sql(
        table,
        f"""
        WITH per_version AS (
            SELECT {keys}, {version} AS _version, count(*) AS n, {distinct} AS p FROM t GROUP BY ALL
        )
        SELECT {keys}, sum(n)::BIGINT AS rows, max(p)::BIGINT AS persons
        FROM per_version GROUP BY ALL ORDER BY ALL
        """,
    )


def persons_in(table: pa.Table, classes: pa.Table, quasi_identifiers: list[str], person: str | None) -> int:
    """Distinct persons with a row in any of ``classes`` (within one key version, the largest over versions;
    rows when there is no person column)."""
    if classes.num_rows == 0:
        return 0
    version = f'"{KEY_VERSION}"' if KEY_VERSION in table.column_names else "NULL"
    distinct = f'count(DISTINCT "{person}")' if person else "count(*)"
    on = " AND ".join(f't."{q}" IS NOT DISTINCT FROM c."{q}"' for q in quasi_identifiers) or "true"
    query = f"""
        SELECT coalesce(max(p), 0)::BIGINT AS persons FROM (
            SELECT {version} AS _version, {distinct} AS p FROM t SEMI JOIN c ON {on} GROUP BY ALL
        )
    """
    return _sql(table, query, c=classes.select(quasi_identifiers)).column("persons")[0].as_py()


def kanon_report(table: pa.Table, contract: Contract, threshold: int) -> dict:
    """The k-anonymity report of ``table`` (rows of ``contract``, precise values): counts only, never values."""
    quasi = quasi_identifier_names(contract)
    person = contract.person_column if contract.person_column in table.column_names else None
    generalised = generalise(table, contract)
    classes = equivalence_classes(generalised, quasi, person)
    small = classes.filter(pc.less(classes.column("persons"), threshold))
    histogram = classes.group_by("persons").aggregate([("rows", "count"), ("rows", "sum")]).sort_by("persons")
    return {
        "quasi_identifiers": quasi,
        "generalisation": {c.name: c.generalise for c in contract.quasi_identifiers},
        "counted_in": f"distinct {person} within one key version" if person else "rows",
        "key_versions": _key_versions(table),
        "threshold": threshold,
        "rows": table.num_rows,
        "persons": _persons(table, person),
        "classes": classes.num_rows,
        "k": pc.min(classes.column("persons")).as_py(),
        "classes_below_threshold": small.num_rows,
        "rows_below_threshold": pc.sum(small.column("rows")).as_py() or 0,
        "persons_below_threshold": persons_in(generalised, small, quasi, person),
        "class_sizes": [
            {"size": size, "classes": n, "rows": rows}
            for size, n, rows in zip(
                *(histogram.column(c).to_pylist() for c in ("persons", "rows_count", "rows_sum")), strict=True
            )
        ],
    }


def _key_versions(table: pa.Table) -> list[str]:
    if KEY_VERSION not in table.column_names:
        return []
    return sorted(pc.unique(table.column(KEY_VERSION)).drop_null().to_pylist())


def _persons(table: pa.Table, person: str | None) -> int:
    """Distinct persons of the whole table, within one key version (the largest over versions)."""
    if person is None:
        return table.num_rows
    classes = equivalence_classes(table, [], person)
    return classes.column("persons")[0].as_py() if classes.num_rows else 0


def _sql(table: pa.Table, query: str, **others: pa.Table) -> pa.Table:
    con = duckdb.connect(config={"threads": 1})
    try:
        con.register("t", table)
        for name, other in others.items():
            con.register(name, other)
        return con.sql(query).to_arrow_table()
    finally:
        con.close()
