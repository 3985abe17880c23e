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
keys, batch by batch (``CHUNK_ROWS``) through reused buffers — on the development machine a fresh page costs
more than the arithmetic done on it, so no pass allocates a column-sized temporary. Group keys are computed
column-wise (time bucket; district code from a raster or cell indices) as int32 group numbers — the input's
string columns are never read, and place names are formatted once per group, not per row. Order statistics
are selected, not sorted: per measure one pass counts (group, value bin) cells, the cumulative counts name
the cells holding each group's wanted ranks, and a second pass keeps only the rows in those cells (a few per
cent) to sort (:func:`_stats`). Measures run in parallel threads. Tried and measured slower: one ``np.sort``
of packed (group, value rank) integers per measure (the previous engine: ~2× slower at 10M rows, most of it
in column-sized temporaries), DuckDB's exact ``quantile_cont`` (slower than pandas' groupby quantile once
there are thousands of groups: ~1 s per measure for 10M rows by day and cell), DuckDB's ``approx_quantile``
and its top-k ``max(x, k)``, pyarrow's ``group_by().aggregate`` (no exact quantile; its approximate
``tdigest`` was slower than DuckDB's exact one).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Literal

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from catalog.contract import Contract
from infra.errors import BadRequest
from transforms.geo import cell_indices, district_codes, district_names
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
# rows per step of the key pass: its temporaries (from geo, normalise) stay under the allocator's mmap
# threshold (128 KiB), so their blocks are reused instead of faulted in afresh (−20 % for the pass at 10M rows)
KEY_ROWS = 1 << 14
CHUNK_ROWS = 1 << 17  # rows per step of a pass: a step's temporaries stay in the CPU caches
MAX_BINS = 1024
HIST_CELLS = 1 << 20  # (group, bin) counts per measure at most, when there are many groups


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
    batches = table.to_batches(max_chunksize=CHUNK_ROWS)  # zero-copy slices, aligned across the columns
    places = _places(table, spec, by)
    groups = _groups(batches, spec, grain, tz, places)
    workers = max(1, min(threads or os.cpu_count() or 1, len(spec.measures)))
    local = threading.local()  # one set of scratch buffers per thread, reused for each measure it takes

    def stats_of(measure: str) -> list[np.ndarray]:
        if not hasattr(local, "scratch"):
            local.scratch = _Scratch()
        return _stats(groups.rows_of, groups.count, [b.column(measure) for b in batches], local.scratch)

    with ThreadPoolExecutor(workers) as pool:  # NumPy's loops release the GIL
        stats = list(pool.map(stats_of, spec.measures))
    bucket, place = np.divmod(groups.keys, places.slots)
    columns = [_bucket_column(bucket, grain), places.names(place), pa.array(groups.rows)]
    for count, *values in stats:
        columns.append(pa.array(count))
        columns += [pa.array(v, mask=count == 0) for v in values]
    return pa.Table.from_arrays(columns, schema=schema)


def _buckets(times: pa.Array | pa.ChunkedArray, grain: Grain, tz: str) -> np.ndarray:
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
    """Each row's place as a code in ``[0, slots)``, the last slot meaning "no place"; ``codes`` computes them
    for one batch of coordinates, ``names`` turns codes back into district names or cell ids (once per group,
    not per row)."""

    codes: Callable[[pa.Array, pa.Array], np.ndarray]
    slots: int
    names: Callable[[np.ndarray], pa.Array]


def _places(table: pa.Table, spec: RollupSpec, by: By) -> _Places:
    lon, lat = table.column(spec.lon), table.column(spec.lat)
    if by == "district":
        names = pa.array([*district_names(), None], pa.string())
        none = len(names) - 1

        def district_slots(x: pa.Array, y: pa.Array) -> np.ndarray:
            codes = district_codes(*cell_indices(x, y))
            return np.where(codes < 0, none, codes)

        return _Places(district_slots, len(names), lambda c: names.take(pa.array(c)))
    # the grid's extent from the coordinates' extremes: a cell index is a monotone function of a coordinate
    (lon_lo, lon_hi), (lat_lo, lat_hi) = (_extremes(c) for c in (lon, lat))
    if np.isnan([lon_lo, lat_lo]).any():
        return _Places(lambda x, _: np.zeros(len(x), np.int64), 1, lambda c: pa.nulls(len(c), pa.string()))
    (e0, e1), (n0, n1) = cell_indices(pa.array([lon_lo, lon_hi]), pa.array([lat_lo, lat_hi]))
    e0, n0, rows = int(e0), int(n0), int(n1 - n0) + 1
    none = (int(e1) - e0 + 1) * rows  # the slot after every cell: no coordinates

    def cell_slots(x: pa.Array, y: pa.Array) -> np.ndarray:
        east, north = cell_indices(x, y)
        missing = np.isnan(east) | np.isnan(north)
        east -= e0
        east *= rows
        east += north
        east -= n0
        return np.where(missing, none, east).astype(np.int64)

    def names(c: np.ndarray) -> pa.Array:
        e, n = (pa.array(x + base).cast(pa.string()) for x, base in zip(divmod(c, rows), (e0, n0), strict=True))
        return pc.if_else(
            pa.array(c == none), pa.scalar(None, pa.string()), pc.binary_join_element_wise("250m", e, n, ":")
        )

    return _Places(cell_slots, none + 1, names)


def _extremes(column: pa.ChunkedArray) -> tuple[float, float]:
    """Smallest and largest value, NaN when there is none (nulls and NaN are skipped)."""
    chunks = [c for c in column.chunks if len(c)]
    if chunks and column.type == pa.float64() and column.null_count == 0:
        low, high = min(c.to_numpy().min() for c in chunks), max(c.to_numpy().max() for c in chunks)
        if not np.isnan(low) and not np.isnan(high):  # NumPy's min is several times faster than Arrow's
            return float(low), float(high)
    bounds = pc.min_max(column)
    low, high = bounds["min"].as_py(), bounds["max"].as_py()
    return (np.nan, np.nan) if low is None else (float(low), float(high))


@dataclass(frozen=True)
class _Groups:
    """Each row's group, 0..G−1 in (bucket, place) order, one int32 array per batch; each group's key
    (bucket × slots + place) and row count."""

    rows_of: list[np.ndarray]
    keys: np.ndarray
    rows: np.ndarray

    @property
    def count(self) -> int:
        return len(self.keys)


def _groups(batches: list[pa.RecordBatch], spec: RollupSpec, grain: Grain, tz: str, places: _Places) -> _Groups:
    """Dense group numbers from (bucket, place) keys counted in one array over the keys' range, batch by
    batch, as int32 — no sort, and no 64-bit copy of every key (fresh memory costs more than the arithmetic)."""
    bounds = pc.min_max(pa.chunked_array([b.column(spec.time) for b in batches]))
    edges = _buckets(pa.array([bounds["min"], bounds["max"]]), grain, tz)
    # a bucket of margin on each side: a zone's wall clock can step back across a day's boundary
    first, span = int(edges[0]) - 1, (int(edges[1]) - int(edges[0]) + 3) * places.slots
    if span > min(max(sum(map(len, batches)), 1 << 20), 2**31 - 1):
        return _hashed_groups(batches, spec, grain, tz, places)
    counts = np.zeros(span, np.int64)
    rows_of = []
    for batch in batches:
        rows_of.append(np.empty(batch.num_rows, np.int32))
        # in slices small enough that the allocator hands the temporaries' blocks back, never fresh pages
        for start in range(0, batch.num_rows, KEY_ROWS):
            key = _keys(batch.slice(start, KEY_ROWS), spec, grain, tz, places, first)
            if key.min() < 0 or key.max() >= span:  # a wall clock that jumped by more than a day
                return _hashed_groups(batches, spec, grain, tz, places)
            np.add.at(counts, key, 1)
            rows_of[-1][start : start + len(key)] = key
    present = np.flatnonzero(counts)
    index = np.zeros(span, np.int32)
    index[present] = np.arange(len(present), dtype=np.int32)
    for key in rows_of:
        np.take(index, key, out=key)  # key → group, in place
    return _Groups(rows_of, present + first * places.slots, counts[present])


def _keys(batch: pa.RecordBatch, spec: RollupSpec, grain: Grain, tz: str, places: _Places, first: int) -> np.ndarray:
    """(bucket − first) × slots + place of each row of a batch, as int64."""
    key = _buckets(batch.column(spec.time), grain, tz)
    key -= first
    key *= places.slots
    key += places.codes(batch.column(spec.lon), batch.column(spec.lat))
    return key


def _hashed_groups(batches: list[pa.RecordBatch], spec: RollupSpec, grain: Grain, tz: str, places: _Places) -> _Groups:
    """Group numbers by sorting the distinct keys, when their range is too wide to count them in an array."""
    combined = [_keys(b, spec, grain, tz, places, 0) for b in batches]
    keys, inverse = np.unique(np.concatenate(combined), return_inverse=True)
    rows_of = np.split(inverse.astype(np.int32), np.cumsum([len(k) for k in combined[:-1]]))
    return _Groups(rows_of, keys, np.bincount(inverse, minlength=len(keys)))


def measure_stats(groups: np.ndarray, n_groups: int, column: pa.ChunkedArray | pa.Array) -> list[np.ndarray]:
    """Per group: count, mean, min, max and p95 of a measure's non-null values (NaN where a group has none);
    ``groups`` gives each row's group in ``[0, n_groups)``."""
    values = column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column
    starts = range(0, len(values), CHUNK_ROWS)
    return _stats(
        [groups[s : s + CHUNK_ROWS].astype(np.int32) for s in starts],
        n_groups,
        [values.slice(s, CHUNK_ROWS) for s in starts],
        _Scratch(),
    )


def _stats(groups: list[np.ndarray], n_groups: int, chunks: list[pa.Array], scratch: _Scratch) -> list[np.ndarray]:
    """count, mean, min, max, p95 per group of one measure, given in batches (``groups[i]`` for ``chunks[i]``).

    Exact order statistics without sorting the column (selection by histogram): every value gets a bin, a
    monotone function of the value, so the rows sorted by (group, bin) are sorted by (group, value) up to the
    order inside each bin. One pass counts (group, bin) cells and sums; the cumulative counts then name, for
    each group, the cells holding its ranks 0, ⌊h⌋, ⌈h⌉ and n − 1 (h = 0.95 × (n − 1)); a second pass keeps
    only the rows in those cells — a few per cent — and sorting just them gives the order statistics exactly.
    Both passes go batch by batch through ``scratch``'s buffers: the same few cache-sized arrays for every
    batch and measure, because fresh memory (page faults) costs more here than the arithmetic."""
    bins = _Bins.of(chunks, n_groups)
    hist, sums = _histogram(groups, chunks, bins, n_groups, scratch)
    before = scratch.array("before", len(hist) + 1, np.int64)
    _cumulative(hist, before)
    count = np.diff(before[:: bins.count])
    has = count > 0
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = sums / count
    if not has.any():
        return [count, *(np.full(n_groups, np.nan) for _ in STATS[1:])]
    h = P95 * np.maximum(count - 1, 0)
    cell, inside = _ranked_cells(before, bins.count, count, has, h)
    flags = scratch.array("flags_by_cell", len(hist), np.uint8)
    flags[:] = 0
    flags[cell["lo"]] = flags[cell["hi"]] = _ORDER
    flags[cell["min"]] |= _EXTREME
    flags[cell["max"]] |= _EXTREME
    ordered, extreme = _kept(groups, chunks, bins, flags, scratch)
    least, most = _least_and_most(extreme, has)
    g, x = ordered
    x = x[np.lexsort((x, g))]  # the kept rows in (group, value) order
    hist[(flags & _ORDER) == 0] = 0
    _cumulative(hist, before)  # now: kept rows in the cells before each cell
    value = {rank: _scatter(x[before[cell[rank]] + inside[rank]], has) for rank in ("lo", "hi")}
    return [count, mean, least, most, value["lo"] + (value["hi"] - value["lo"]) * (h - np.floor(h))]


def _ranked_cells(
    before: np.ndarray, width: int, count: np.ndarray, has: np.ndarray, h: np.ndarray
) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """For the groups in ``has``: the cell holding each wanted rank (⌊h⌋, ⌈h⌉, first, last), and for ⌊h⌋
    and ⌈h⌉ the rank's position inside its cell. A rank's position in the whole (group, value) order is the
    group's start plus the rank; the cell holding it is found among the cumulative counts ``before``."""
    start = before[:-1:width][has]
    at = {
        "lo": start + np.floor(h).astype(np.int64)[has],
        "hi": start + np.ceil(h).astype(np.int64)[has],
        "min": start,
        "max": start + count[has] - 1,
    }
    cell = {rank: np.searchsorted(before, p, side="right") - 1 for rank, p in at.items()}
    return cell, {rank: at[rank] - before[cell[rank]] for rank in ("lo", "hi")}


def _histogram(
    groups: list[np.ndarray], chunks: list[pa.Array], bins: _Bins, n_groups: int, scratch: _Scratch
) -> tuple[np.ndarray, np.ndarray]:
    """Rows per (group, bin) cell and the sum of the values per group (first pass)."""
    one = np.int32(1) if sum(map(len, chunks)) < 2**31 else np.int64(1)
    hist = scratch.array("hist", n_groups * bins.count, one.dtype)
    hist[:] = 0
    sums = np.zeros(n_groups)
    for i, (g, x) in enumerate(_valid(groups, chunks, scratch)):
        np.add.at(hist, bins.cells(g, x, scratch.batch_cells(i, len(x)), scratch), one)  # same type as hist: fast path
        np.add.at(sums, g, x)
    return hist, sums


def _cumulative(counts: np.ndarray, out: np.ndarray) -> None:
    """``out[c]``: the sum of ``counts`` before ``c`` (``out`` one longer), written into a reused array."""
    out[0] = 0
    np.cumsum(counts, out=out[1:])


def _least_and_most(extreme: tuple[np.ndarray, np.ndarray], has: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    least, most = np.full(len(has), np.nan), np.full(len(has), np.nan)
    least[has], most[has] = np.inf, -np.inf
    np.minimum.at(least, *extreme)
    np.maximum.at(most, *extreme)
    return least, most


def _scatter(values: np.ndarray, has: np.ndarray) -> np.ndarray:
    """Per group: ``values`` (given for the groups in ``has``), NaN elsewhere."""
    out = np.full(len(has), np.nan)
    out[has] = values
    return out


_ORDER, _EXTREME = np.uint8(1), np.uint8(2)  # a cell holds a rank ⌊h⌋ or ⌈h⌉ / a group's first or last rank


def _kept(
    groups: list[np.ndarray], chunks: list[pa.Array], bins: _Bins, flags: np.ndarray, scratch: _Scratch
) -> tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]:
    """(groups, values) of the rows in flagged cells: those in ``_ORDER`` cells (to be sorted) and those in
    ``_EXTREME`` cells (for min and max, not sorted: a group's first cell may hold most of its rows)."""
    ordered: list[tuple[np.ndarray, np.ndarray]] = []
    extreme: list[tuple[np.ndarray, np.ndarray]] = []
    wanted = np.not_equal(flags, 0, out=scratch.array("wanted_by_cell", len(flags), np.bool_))
    for i, (g, x) in enumerate(_valid(groups, chunks, scratch)):
        cells = scratch.batch_cells(i, len(x))  # written by the first pass
        keep = np.flatnonzero(np.take(wanted, cells, out=scratch.keep[: len(x)]))  # nonzero is 2× faster on bool
        if not len(keep):
            continue
        g, x, flag = g[keep], x[keep], flags[cells[keep]]
        for kind, into in ((_ORDER, ordered), (_EXTREME, extreme)):
            mask = (flag & kind) != 0
            into.append((g[mask], x[mask]))
    return _joined(ordered), _joined(extreme)


def _joined(parts: list[tuple[np.ndarray, np.ndarray]]) -> tuple[np.ndarray, np.ndarray]:
    return np.concatenate([g for g, _ in parts]), np.concatenate([x for _, x in parts])


def _valid(
    groups: list[np.ndarray], chunks: list[pa.Array], scratch: _Scratch
) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """(groups, values as float64) of each batch without its nulls and NaNs; the values may live in
    ``scratch`` until the next batch."""
    for g, chunk in zip(groups, chunks, strict=True):
        if chunk.null_count == 0 and pa.types.is_integer(chunk.type):
            x = scratch.values[: len(chunk)]
            np.copyto(x, chunk.to_numpy())  # zero-copy view, converted into the buffer: no NaN possible
        else:
            x = _floats(chunk)
            if chunk.null_count or np.isnan(np.sum(x)):  # a NaN (or ∞ − ∞) makes the sum NaN: no mask needed
                keep = ~np.isnan(x)
                g, x = g[keep], x[keep]
        if len(x):
            yield g, x


@dataclass(frozen=True)
class _Bins:
    """A monotone map of values to ``count`` bins: ``clip((x − low) × scale, 0, count − 1)``, truncated.

    Only monotonicity matters for exactness; the range (from a sample) only decides how few rows the second
    pass keeps. Values outside it (or infinite) fall into the first or last bin."""

    low: float
    scale: float
    count: int

    @classmethod
    def of(cls, chunks: list[pa.Array], n_groups: int) -> _Bins:
        cells = min(HIST_CELLS, max(1, sum(map(len, chunks)) // 8))  # zeroed and summed per measure: keep few
        count = max(1, min(MAX_BINS, cells // max(n_groups, 1)))
        sample = _sample(chunks)
        sample = sample[np.isfinite(sample)]  # infinities fall into the end bins by the clipping
        if count == 1 or len(sample) == 0:
            return cls(0.0, 0.0, 1)
        for low, high in (np.quantile(sample, [0.001, 0.999]), (sample.min(), sample.max())):
            scale = (count - 1) / (high - low) if high > low else np.inf  # an outlier must not squeeze the rest
            if np.isfinite(scale):
                return cls(float(low), float(scale), count)
        return cls(float(sample[0]), 1.0, 2)  # one value: it in bin 0, anything above in bin 1

    def cells(self, g: np.ndarray, x: np.ndarray, cell: np.ndarray, scratch: _Scratch) -> np.ndarray:
        """Each value's (group, bin) cell, group × count + bin, written into ``cell`` (int32: cells are few)."""
        np.multiply(g, self.count, out=cell)
        if self.count == 1:
            return cell
        b, whole = scratch.bins[: len(x)], scratch.whole_bins[: len(x)]
        np.subtract(x, self.low, out=b)
        np.multiply(b, self.scale, out=b)
        np.clip(b, 0, self.count - 1, out=b)  # NaN never comes here (see _valid)
        np.copyto(whole, b, casting="unsafe")  # truncation: the floor of a non-negative number
        np.add(cell, whole, out=cell)
        return cell


def _sample(chunks: list[pa.Array], size: int = 1 << 16) -> np.ndarray:
    """About ``size`` non-null values spread over the column: a run from the middle of every batch (slices
    are free; only they are converted)."""
    take = max(1, size // max(len(chunks), 1))
    runs = [_floats(c.slice(max(0, (len(c) - take) // 2), take)) for c in chunks]
    values = np.concatenate(runs) if runs else np.empty(0)
    return values[~np.isnan(values)]


class _Scratch:
    """Buffers of one batch's length, reused by every batch and measure of a thread."""

    def __init__(self, rows: int = CHUNK_ROWS):
        self.values = np.empty(rows)
        self.bins = np.empty(rows)
        self.whole_bins = np.empty(rows, np.int32)
        self.keep = np.empty(rows, np.bool_)
        self._arrays: dict[str, np.ndarray] = {}
        self._cells: list[np.ndarray] = []

    def batch_cells(self, i: int, rows: int) -> np.ndarray:
        """The (group, bin) cells of a measure's i-th batch: written by the first pass, read by the second."""
        while len(self._cells) <= i:
            self._cells.append(np.empty(len(self.values), np.int32))
        return self._cells[i][:rows]

    def array(self, name: str, size: int, dtype: type) -> np.ndarray:
        """A reused array of at least ``size`` elements (its first ``size``; contents left as they were)."""
        have = self._arrays.get(name)
        if have is None or len(have) < size or have.dtype != dtype:
            have = self._arrays[name] = np.empty(size, dtype)
        return have[:size]


def _floats(column: pa.ChunkedArray | pa.Array) -> np.ndarray:
    values = column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column
    if values.null_count == 0 and (pa.types.is_integer(values.type) or pa.types.is_floating(values.type)):
        return values.to_numpy().astype(np.float64, copy=False)  # zero-copy view, or one cast in NumPy
    return values.cast(pa.float64()).to_numpy(zero_copy_only=False)  # nulls become NaN
