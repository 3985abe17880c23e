"""Generalisation of quasi-identifiers: pure Table → Table functions, declared per column in the catalog.

* coordinates → the 250 m grid cell (``"250m:<east>:<north>"``) or the Seoul district (자치구), via
  :mod:`transforms.geo`; a ``<prefix>lon``/``<prefix>lat`` pair becomes one ``<prefix>cell_250m`` or
  ``<prefix>district`` column;
* timestamps → the start of their 15-minute bucket (floored in UTC, the lake's zone; the type is unchanged);
* ages → 5-year bands ``"70-74"`` (``<name>_band``; 0–4, 5–9, …, no top band).

**Where it applies.** The safe zone's lake keeps the precise values; generalisation happens wherever data is
*released*, and on the way to every disclosure check:

* inside the zone, analysts work on precise values but receive only aggregates, which the zone's reviewers
  check for small groups (``CITYHUB_MIN_PERSONS``) — the aggregates by district or by quarter hour they need
  are computed on :func:`generalise`'d columns, not on coordinates;
* the k-anonymity report stored with every landed date partition (:mod:`transforms.kanon`) measures the
  generalised quasi-identifiers, i.e. the risk of the partition *if* it were released as rows;
* a row-level extract, if one is ever made, carries the generalised values only, and only when that report
  allows it.

Precise coordinates inside the zone are a risk only if rows leave it, which they never do; generalising at
landing would destroy, irreversibly and for every future project, what analyses inside the zone legitimately
need (trip lengths, flows between cells, a project's own areas), and would fix one generalisation scheme
into the stored data, where the catalog can now change it (cells → districts after a review) without
re-landing anything. Direct identifiers are different: they are pseudonymised (or dropped) *before* anything
is written (:mod:`transforms.pseudonymise`), because nothing inside the zone needs them in clear.
"""

from __future__ import annotations

import pyarrow as pa
import pyarrow.compute as pc

from catalog.contract import Column, Contract
from infra.errors import ContractError
from transforms import geo

BUCKET_MINUTES = 15
AGE_BAND_YEARS = 5


def cell_250m(lon: pa.Array | pa.ChunkedArray, lat: pa.Array | pa.ChunkedArray) -> pa.Array:
    """The 250 m grid cell of each point; null where a coordinate is null."""
    return geo.grid_cell(lon, lat)


def district(lon: pa.Array | pa.ChunkedArray, lat: pa.Array | pa.ChunkedArray) -> pa.Array:
    """The Seoul district of each point (plain strings); null outside Seoul or where a coordinate is null."""
    return geo.district(lon, lat).cast(pa.string())


def bucket_15min(times: pa.Array | pa.ChunkedArray) -> pa.Array | pa.ChunkedArray:
    """Each time floored to its quarter hour. Buckets count from the Unix epoch in UTC, so they start at :00,
    :15, :30 and :45 in UTC (and in Korea's whole-hour offset alike); a time on a boundary is its own bucket."""
    naive = times.cast(pa.timestamp("us")) if times.type.tz else times  # floor in UTC, not in a local zone
    floored = pc.floor_temporal(naive, multiple=BUCKET_MINUTES, unit="minute")
    return floored.cast(times.type)


def age_band_5y(ages: pa.Array | pa.ChunkedArray) -> pa.Array | pa.ChunkedArray:
    """Each age as its 5-year band, ``"0-4"``, ``"70-74"``, ``"95-99"``; null stays null."""
    low = pc.multiply(pc.floor(pc.divide(ages.cast(pa.float64()), AGE_BAND_YEARS)), AGE_BAND_YEARS).cast(pa.int64())
    high = pc.add(low, AGE_BAND_YEARS - 1)
    return pc.binary_join_element_wise(low.cast(pa.string()), high.cast(pa.string()), "-")


def generalise(table: pa.Table, contract: Contract) -> pa.Table:
    """``table`` with every quasi-identifier the contract declares generalised (other columns unchanged).

    A coordinate pair is replaced by one column where its longitude was; an age by its band column in place;
    a time is floored in place. Columns ``table`` lacks are skipped, so a projection can be generalised."""
    for column in contract.quasi_identifiers:
        if column.generalise is None or column.name not in table.column_names:
            continue
        if column.kind == "lat":
            continue  # generalised with its longitude
        table = _generalise_column(table, column)
    return table


def quasi_identifier_names(contract: Contract) -> list[str]:
    """The columns of a generalised table that are quasi-identifiers (a coordinate pair counted once)."""
    return list(dict.fromkeys(c.generalised_name for c in contract.quasi_identifiers))


def _generalise_column(table: pa.Table, column: Column) -> pa.Table:
    index = table.column_names.index(column.name)
    values = table.column(column.name)
    if column.kind == "lon":
        lat_name = column.partner or ""
        if lat_name not in table.column_names:
            raise ContractError(
                f"cannot generalise {column.name} without {lat_name}",
                hint="select both columns of a coordinate pair",
            )
        where = COORDINATES[column.generalise or ""](values, table.column(lat_name))
        table = table.drop_columns([lat_name])
        index = table.column_names.index(column.name)
        return table.set_column(index, column.generalised_name, where)
    if column.generalise == "bucket_15min":
        return table.set_column(index, column.generalised_name, bucket_15min(values))
    return table.set_column(index, column.generalised_name, age_band_5y(values))


COORDINATES = {"cell_250m": cell_250m, "district": district}
