"""Hourly and daily rollups of a dataset's clean rows, by Seoul district and by 250 m grid cell.

Pure Table → Table: :func:`rollup` takes clean rows (the contract's columns) and returns one row per
(time bucket, place) with ``rows`` and, for each numeric measure of the contract, ``<m>_count`` (non-null
values), ``<m>_mean``, ``<m>_min``, ``<m>_max`` and ``<m>_p95``.

* **Buckets.** ``hour``: the UTC hour (``timestamp[us, UTC]``, the hour's start). ``day``: the city's calendar
  day in Asia/Seoul (``date32``), so a reading at 23:30 KST and one at 00:30 KST fall on different days though
  they share a UTC date (:mod:`transforms.normalise`).
* **Places.** ``district``: the Seoul district (자치구) of the reading's 250 m cell, null outside Seoul;
  ``cell_250m``: the cell id ``250m:<east>:<north>`` (:mod:`transforms.geo`). Rows without coordinates form the
  null group, so the ``rows`` of a rollup always add up to its input's.
* **p95** is exact: linear interpolation between the order statistics at ranks ⌊h⌋ and ⌈h⌉ (0-based) of the
  group's non-null values, h = 0.95 × (n − 1) — DuckDB's ``quantile_cont(x, 0.95)``, numpy's and pandas'
  default ``linear`` method, R's type 7, Excel's ``PERCENTILE.INC``. A group of one value has that value.

Engine, chosen by measurement (``cityhub bench transforms`` and the notes in README): NumPy over small integer
keys. Group keys are computed column-wise (time bucket; district code or cell indices) — the input's string
columns are never read, and place names are formatted once per group, not per row. Order statistics come from
one ``np.sort`` of packed (group, value rank) integers per measure, measures in parallel threads. Tried and
measured slower: DuckDB's exact ``quantile_cont`` (slower than pandas' groupby quantile once there are
thousands of groups: ~1 s per measure for 10M rows by day and cell), DuckDB's ``approx_quantile`` and its
top-k ``max(x, k)``, pyarrow's ``group_by().aggregate`` (no exact quantile; its approximate ``tdigest`` was
slower than DuckDB's exact one), and counting (group, value) pairs instead of sorting them.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Literal

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from catalog.contract import Contract
from infra.errors import BadRequest
from transforms.geo import cell_indices, district
from transforms.normalise import US_PER_DAY, epoch_us, local_wall_clock_us

Grain = Literal["hour", "day"]
By = Literal["district", "cell"]
GRAINS: tuple[Grain, ...] = ("hour", "day")
BYS: tuple[By, ...] = ("district", "cell")
CITY_TZ = "Asia/Seoul"
P95 = 0.95
STATS = ("count", "mean", "min", "max", "p95")
US_PER_HOUR = 3_600_000_000
PLACE_COLUMN = {"district": "district", "cell": "cell_250m"}


@dataclass(frozen=True)
class RollupSpec:
    """What a dataset's rollups read: its event time, its coordinates and its numeric measures."""

    dataset: str
    time: str
    measures: tuple[str, ...]
    lon: str = "lon"
    lat: str = "lat"

    @property
    def columns(self) -> list[str]:
        return [self.time, self.lon, self.lat, *self.measures]


def rollup_spec(contract: Contract) -> RollupSpec | None:
    """The contract's rollup inputs, or None when it has no coordinates or no numeric measure.

    Measures are the float and int columns that are not keys, coordinates, personal, or identifiers by name
    (``*_id``, ``*_no``: a lane number or a station number is a label, its mean means nothing)."""
    names = {c.name for c in contract.stored_columns}
    lon = next((c.name for c in contract.stored_columns if c.kind == "lon"), "lon" if "lon" in names else None)
    lat = next((c.name for c in contract.stored_columns if c.kind == "lat"), "lat" if "lat" in names else None)
    if lon is None or lat is None:
        return None
    measures = tuple(
        c.name
        for c in contract.stored_columns
        if c.kind in ("float", "int")
        and c.name not in (*contract.key_columns, lon, lat)
        and not c.personal
        and not c.name.endswith(("_id", "_no"))
    )
    return RollupSpec(contract.id, contract.event_time, measures, lon, lat) if measures else None


def output_schema(spec: RollupSpec, grain: Grain, by: By) -> pa.Schema:
    bucket = pa.field("hour", pa.timestamp("us", tz="UTC")) if grain == "hour" else pa.field("day", pa.date32())
    fields = [bucket, pa.field(PLACE_COLUMN[by], pa.string()), pa.field("rows", pa.int64())]
    for m in spec.measures:
        fields.append(pa.field(f"{m}_count", pa.int64()))
        fields += [pa.field(f"{m}_{stat}", pa.float64()) for stat in STATS[1:]]
    return pa.schema(fields)


def rollup(
    table: pa.Table, spec: RollupSpec, grain: Grain, by: By, *, tz: str = CITY_TZ, threads: int | None = None
) -> pa.Table:
    """Per (bucket, place): ``rows`` and count/mean/min/max/p95 of every measure; ordered by bucket, place
    (null place last). Rows without an event time are left out (the clean zone has none). ``threads``
    (default: every CPU) work on different measures at once."""
    if grain not in GRAINS or by not in BYS:
        raise BadRequest(f"unknown rollup {grain}/{by}", hint=f"grains: {', '.join(GRAINS)}; by: {', '.join(BYS)}")
    missing = [c for c in spec.columns if c not in table.column_names]
    if missing:
        raise BadRequest(f"{spec.dataset}: rollup input lacks {missing}", hint="pass the dataset's clean rows")
    table = table.select(spec.columns)
    if table.column(spec.time).null_count:
        table = table.filter(pc.is_valid(table.column(spec.time)))
    schema = output_schema(spec, grain, by)
    if table.num_rows == 0:
        return schema.empty_table()
    bucket = _buckets(table.column(spec.time), grain, tz)
    places = _places(table, spec, by)
    groups, group_keys = _dense_groups(bucket, places.codes, places.slots)
    n_groups = len(group_keys)
    workers = max(1, min(threads or os.cpu_count() or 1, len(spec.measures)))
    rows = np.bincount(groups, minlength=n_groups)
    with ThreadPoolExecutor(workers) as pool:  # NumPy's sort, take and Arrow's kernels release the GIL
        stats = list(pool.map(lambda m: measure_stats(groups, n_groups, table.column(m), rows), spec.measures))
    first, place = divmod(group_keys, places.slots)
    columns = [_bucket_column(first + int(bucket.min()), grain), places.names(place), pa.array(rows)]
    for count, *values in stats:
        columns.append(pa.array(count))
        columns += [pa.array(v, mask=count == 0) for v in values]
    return pa.Table.from_arrays(columns, schema=schema)


def _buckets(times: pa.ChunkedArray, grain: Grain, tz: str) -> np.ndarray:
    """Hours since the epoch (UTC) or the city's days since the epoch, as int64."""
    utc = epoch_us(times)
    if grain == "hour":
        return utc // US_PER_HOUR
    return local_wall_clock_us(utc, tz) // US_PER_DAY


def _bucket_column(values: np.ndarray, grain: Grain) -> pa.Array:
    if grain == "hour":
        return pa.array(values * US_PER_HOUR, pa.timestamp("us", tz="UTC"))
    return pa.array(values.astype(np.int32), pa.date32())


@dataclass(frozen=True)
class _Places:
    """Each row's place as a code in ``[0, slots)``, the last slot meaning "no place"; ``names`` turns codes
    back into district names or cell ids (once per group, not per row)."""

    codes: np.ndarray
    slots: int
    names: Callable[[np.ndarray], pa.Array]


def _places(table: pa.Table, spec: RollupSpec, by: By) -> _Places:
    lon, lat = table.column(spec.lon), table.column(spec.lat)
    if by == "district":
        where = district(lon, lat)
        names = pa.concat_arrays([where.dictionary, pa.nulls(1, pa.string())])
        codes = where.indices.fill_null(len(where.dictionary)).to_numpy().astype(np.int64)
        return _Places(codes, len(names), lambda c: names.take(pa.array(c)))
    east, north = cell_indices(lon, lat)
    missing = np.isnan(east) | np.isnan(north)
    if missing.all():
        return _Places(np.zeros(len(east), np.int64), 1, lambda c: pa.nulls(len(c), pa.string()))
    e0, n0 = int(east[~missing].min()), int(north[~missing].min())
    rows = int(north[~missing].max()) - n0 + 1
    none = (int(east[~missing].max()) - e0 + 1) * rows  # the slot after every cell: no coordinates
    codes = np.where(missing, none, (np.nan_to_num(east) - e0) * rows + np.nan_to_num(north) - n0).astype(np.int64)

    def names(c: np.ndarray) -> pa.Array:
        e, n = (pa.array(x + base).cast(pa.string()) for x, base in zip(divmod(c, rows), (e0, n0), strict=True))
        return pc.if_else(
            pa.array(c == none), pa.scalar(None, pa.string()), pc.binary_join_element_wise("250m", e, n, ":")
        )

    return _Places(codes, none + 1, names)


def _dense_groups(bucket: np.ndarray, codes: np.ndarray, slots: int) -> tuple[np.ndarray, np.ndarray]:
    """Each row's group as 0..G−1 in (bucket, place) order, and each group's combined key."""
    combined = (bucket - bucket.min()) * slots + codes
    span = int(combined.max()) + 1
    if span <= max(len(combined), 1 << 20):  # a count per possible key is small: no sort needed
        counts = np.bincount(combined, minlength=span)
        keys = np.flatnonzero(counts)
        index = np.cumsum(counts > 0) - 1
        return index[combined], keys
    keys, groups = np.unique(combined, return_inverse=True)
    return groups, keys


def measure_stats(
    groups: np.ndarray, n_groups: int, column: pa.ChunkedArray | pa.Array, rows: np.ndarray | None = None
) -> list[np.ndarray]:
    """Per group: count, mean, min, max and p95 of a measure's non-null values (NaN where a group has none).
    ``rows`` (each group's row count) saves a pass when the column has no nulls.

    Exact order statistics without a per-group sort: each value's rank among the column's sorted distinct
    values is packed below its group number into one int64 (ranks, not truncated value bits: nothing is
    rounded), so one ``np.sort`` orders every group's values at once, and a group's k-th smallest value is
    read at its offset. p95 interpolates between ranks ⌊h⌋ and ⌈h⌉, h = 0.95 × (n − 1)."""
    x = _floats(column)
    valid = ~np.isnan(x)
    if not valid.all():
        groups, x, rows = groups[valid], x[valid], None
    count = rows if rows is not None else np.bincount(groups, minlength=n_groups)
    if len(x) == 0:
        return [count, *(np.full(n_groups, np.nan) for _ in STATS[1:])]
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.bincount(groups, weights=x, minlength=n_groups) / count
    ranked, rank = _ranks(x)
    nth = _order_statistics(groups, rank, len(ranked), count)
    h = P95 * np.maximum(count - 1, 0)
    lo, hi = np.floor(h).astype(np.int64), np.ceil(h).astype(np.int64)
    has = count > 0
    below, above, least, most = (
        np.where(has, ranked[nth(r)], np.nan) for r in (lo, hi, np.zeros_like(count), np.maximum(count - 1, 0))
    )
    return [count, mean, least, most, below + (above - below) * (h - lo)]


def _order_statistics(
    groups: np.ndarray, rank: np.ndarray, distinct: int, count: np.ndarray
) -> Callable[[np.ndarray], np.ndarray]:
    """A function giving, for per-group positions r, the rank of each group's r-th smallest value."""
    # Counting (group, rank) pairs instead of sorting was slower at 10M rows: the counts outgrow the caches.
    start = np.cumsum(count) - count
    bits = max(1, (distinct - 1).bit_length())
    keys = groups << bits
    keys |= rank
    keys.sort()
    low = (1 << bits) - 1
    return lambda r: keys[np.minimum(start + r, len(rank) - 1)] & low


def _floats(column: pa.ChunkedArray | pa.Array) -> np.ndarray:
    values = column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column
    if values.type == pa.float64() and values.null_count == 0:
        return values.to_numpy()  # zero-copy
    return pc.fill_null(values.cast(pa.float64()), float("nan")).to_numpy(zero_copy_only=False)


def _ranks(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(sorted values, each value's index in them). Sensor readings repeat (rounded to a unit step), so their
    distinct values are hashed and only those sorted; a column of mostly distinct values is sorted whole."""
    sample = x[:: max(1, len(x) // 65_536)]
    if len(np.unique(sample)) * 8 <= len(sample):
        encoded = pc.dictionary_encode(pa.array(x))
        distinct = encoded.dictionary.to_numpy()
        order = np.argsort(distinct)
        position = np.empty(len(order), np.int64)
        position[order] = np.arange(len(order))
        return distinct[order], position[encoded.indices.to_numpy()]
    order = np.argsort(_sortable(x))
    position = np.empty(len(x), np.int64)
    position[order] = np.arange(len(x))
    return x[order], position


def _sortable(x: np.ndarray) -> np.ndarray:
    """The float64 bits as uint64 that sort like the numbers (sorting integers is several times faster)."""
    bits = x.view(np.uint64)
    return np.where(bits >> np.uint64(63), ~bits, bits | np.uint64(1 << 63))
