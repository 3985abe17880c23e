"""``cityhub bench transforms``: the Arrow/DuckDB transforms against idiomatic pandas 3 twins, same input, same run.

The input is ``rows`` synthetic clean rows shaped like ``traffic_flow`` (the contract's columns plus lineage and
``_decode_error``, as a staged chunk holds them): 851 real S-DoT site locations × 3 lanes = 2,553 lane segments
(the id cardinality of ``segment_id``), one reading per segment every 5 minutes in time order (10M rows span
~13.6 days), daily traffic curves, and 1 % later copies of a reading (same segment and time) for the dedupe.
It is generated once with NumPy and written to an Arrow IPC file; string columns are dictionary-encoded, as
Parquet stores them and ``read_dictionary`` returns them.

Each (transform, engine) runs in a fresh subprocess that reads the file into memory first, so that

* ``peak_arrow_mb`` is that process's Arrow memory pool maximum (``max_memory()``, the input included) and
* ``peak_rss_mb`` is its resident-set high-water mark over the transform alone (VmHWM, reset through
  ``/proc/self/clear_refs`` just before): it counts DuckDB's own memory, which Arrow's pool does not.

The pandas twins get the same rows as a DataFrame (``to_pandas()`` before the clock starts; pandas 3 keeps the
strings as Arrow-backed ``str``) and are written the idiomatic vectorised way: ``groupby``/``agg`` plus
``quantile``, ``.map`` of a dict of precomputed HMACs, ``duplicated``. No ``apply``. The child processes run
alternately, best of ``repeat``, and each pair's results are compared (groups, row totals, sums of every
statistic) so that a fast wrong answer cannot pass.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

DATASET = "traffic_flow"
LANES = 3
CADENCE_S = 300
START = datetime(2026, 3, 1, tzinfo=UTC)
DUPLICATE_SHARE = 0.01
BENCH_KEY = b"cityhub-bench-key-not-a-secret"
TRANSFORMS = ("rollup_hour_district", "rollup_day_cell", "pseudonymise", "dedupe")
TARGETS = {"rollup_hour_district": 3.0, "rollup_day_cell": 3.0, "pseudonymise": 3.0}  # speedup vs pandas
MAX_PEAK_VS_INPUT = 2.0


# ---------------------------------------------------------------- input


def synthetic_traffic(rows: int, seed: int = 1) -> pa.Table:
    """``rows`` traffic_flow-shaped readings (see the module doc), vectorised."""
    from ingest.simulate import stations

    rng = np.random.default_rng(seed)
    sites = stations("sdot_seoul")
    n_segments = len(sites) * LANES
    index = np.arange(rows)
    segment, slot = index % n_segments, index // n_segments
    later = rng.random(rows) < DUPLICATE_SHARE
    later[0] = False
    copies = np.flatnonzero(later)
    segment[copies], slot[copies] = segment[copies - 1], slot[copies - 1]  # a later copy of the previous reading
    site = segment // LANES
    seconds = START.timestamp() + slot * CADENCE_S
    local_hour = ((seconds + 9 * 3600) % 86400) / 3600
    demand = 0.25 + 0.9 * np.exp(-((local_hour - 8) ** 2) / 4.5) + 0.8 * np.exp(-((local_hour - 18.5) ** 2) / 8)
    intensity = rng.poisson(60 * demand)
    occupancy = np.clip(intensity / 160 + rng.normal(0, 0.02, rows), 0, 1).round(3)
    speed = np.clip(70 - 45 * occupancy + rng.normal(0, 5, rows), 3, 110).round(1)
    ids = pa.array([f"urn:ngsi-ld:TrafficFlowObserved:{s['site_id']}:lane{k + 1}" for s in sites for k in range(LANES)])
    lon = np.array([float(s["lon"]) for s in sites])
    lat = np.array([float(s["lat"]) for s in sites])
    partition = (segment % 4).astype(np.int32)
    return pa.table(
        {
            "segment_id": pa.DictionaryArray.from_arrays(pa.array(segment.astype(np.int32)), ids),
            "observed_at": pa.array((seconds * 1_000_000).astype(np.int64), pa.timestamp("us", tz="UTC")),
            "lon": lon[site],
            "lat": lat[site],
            "street_address": pa.DictionaryArray.from_arrays(
                pa.array((site % 400).astype(np.int32)), pa.array([f"서울 도로 {i}" for i in range(400)])
            ),
            "lane_id": (segment % LANES + 1).astype(np.int64),
            "lane_direction": pa.DictionaryArray.from_arrays(
                pa.array((site % 2).astype(np.int32)), pa.array(["backward", "forward"])
            ),
            "intensity": intensity.astype(np.int64),
            "occupancy": occupancy,
            "average_speed": speed,
            "average_headway": (300 / np.maximum(1, intensity)).round(2),
            "average_vehicle_length": rng.normal(5.2, 0.8, rows).round(2),
            "reversed_lane": np.zeros(rows, dtype=bool),
            "_topic": pa.DictionaryArray.from_arrays(
                pa.array(np.zeros(rows, np.int32)), pa.array([f"cityhub.{DATASET}"])
            ),
            "_partition": partition,
            "_offset": _offsets_within(partition),
            "_kafka_ts": pa.array((seconds * 1000 + 1500).astype(np.int64), pa.timestamp("ms", tz="UTC")),
            "_decode_error": pa.nulls(rows, pa.string()),
        }
    )


def _offsets_within(partition: np.ndarray) -> np.ndarray:
    """Each row's offset in its partition, in row order (the order Kafka received them)."""
    order = np.argsort(partition, kind="stable")
    counts = np.bincount(partition)
    starts = np.repeat(np.cumsum(counts) - counts, counts)
    offsets = np.empty(len(partition), np.int64)
    offsets[order] = np.arange(len(partition)) - starts
    return offsets


# ---------------------------------------------------------------- the transforms, both engines


def _spec():
    from catalog import get_contract
    from transforms.rollup import rollup_spec

    return rollup_spec(get_contract(DATASET))


def arrow_transforms() -> dict[str, Callable[[pa.Table], object]]:
    from catalog import get_contract
    from transforms.dedupe import mark_duplicates
    from transforms.pseudonymise import hmac_column
    from transforms.rollup import rollup

    spec, identity = _spec(), list(get_contract(DATASET).identity)

    def pseudonymise(table: pa.Table) -> pa.Table:
        index = table.column_names.index("segment_id")
        return table.set_column(index, "segment_id", hmac_column(table.column("segment_id"), BENCH_KEY))

    return {
        "rollup_hour_district": lambda t: rollup(t, spec, "hour", "district"),
        "rollup_day_cell": lambda t: rollup(t, spec, "day", "cell"),
        "pseudonymise": pseudonymise,
        "dedupe": lambda t: mark_duplicates(t, identity),
    }


def pandas_transforms() -> dict[str, Callable]:
    import pandas as pd

    from catalog import get_contract
    from transforms.geo import _M_PER_DEG_LAT, _M_PER_DEG_LON, CELL_M, GRID_ORIGIN, district
    from transforms.rollup import CITY_TZ

    spec, identity = _spec(), list(get_contract(DATASET).identity)
    measures = list(spec.measures)

    def summarise(df: pd.DataFrame, keys: list) -> pd.DataFrame:
        grouped = df[measures].groupby(keys, observed=True, dropna=False)
        stats = grouped.agg(["count", "mean", "min", "max"])
        stats.columns = [f"{m}_{s}" for m, s in stats.columns]
        p95 = grouped.quantile(0.95).add_suffix("_p95")
        return pd.concat([grouped.size().rename("rows"), stats, p95], axis=1)

    def hour_district(df: pd.DataFrame) -> pd.DataFrame:
        # the same district lookup (a NumPy raster) as the Arrow path; what differs is the grouping engine
        where = district(pa.array(df["lon"].to_numpy()), pa.array(df["lat"].to_numpy()))
        codes = where.indices.fill_null(-1).to_numpy()
        place = pd.Categorical.from_codes(codes, categories=where.dictionary.to_pylist())
        keys = [df["observed_at"].dt.floor("h").rename("hour"), pd.Series(place, index=df.index, name="district")]
        return summarise(df, keys).reset_index()

    def day_cell(df: pd.DataFrame) -> pd.DataFrame:
        east = np.floor((df["lon"] - GRID_ORIGIN[0]) * _M_PER_DEG_LON / CELL_M).astype("Int32").rename("east")
        north = np.floor((df["lat"] - GRID_ORIGIN[1]) * _M_PER_DEG_LAT / CELL_M).astype("Int32").rename("north")
        day = df["observed_at"].dt.tz_convert(CITY_TZ).dt.floor("D").rename("day")
        out = summarise(df, [day, east, north]).reset_index()
        out.insert(1, "cell_250m", "250m:" + out["east"].astype(str) + ":" + out["north"].astype(str))
        return out.drop(columns=["east", "north"])

    def pseudonymise(df: pd.DataFrame) -> pd.DataFrame:
        ids = df["segment_id"]
        digests = {u: hmac.new(BENCH_KEY, u.encode(), hashlib.sha256).hexdigest() for u in ids.unique()}
        return df.assign(segment_id=ids.map(digests))

    def dedupe(df: pd.DataFrame) -> pd.DataFrame:
        ordered = df.sort_values(["_partition", "_offset"])
        return ordered.assign(_duplicate=ordered.duplicated(identity, keep="first"))

    return {
        "rollup_hour_district": hour_district,
        "rollup_day_cell": day_cell,
        "pseudonymise": pseudonymise,
        "dedupe": dedupe,
    }


# ---------------------------------------------------------------- checks: the two engines agree


def digest(transform: str, result) -> dict:
    """A small summary of a result that both engines must agree on."""
    if transform.startswith("rollup"):
        table = result if isinstance(result, pa.Table) else pa.Table.from_pandas(result, preserve_index=False)
        sums = {
            name: pc.sum(table.column(name)).as_py()
            for name in table.column_names
            if name == "rows" or name.endswith(("_count", "_mean", "_min", "_max", "_p95"))
        }
        return {"groups": table.num_rows, "sums": sums}
    if transform == "pseudonymise":
        column = result.column("segment_id") if isinstance(result, pa.Table) else result["segment_id"]
        values = column.to_pylist() if isinstance(result, pa.Table) else column.tolist()
        return {"first": values[0], "last": values[-1], "distinct": len(set(values))}
    marked = result.column("_duplicate") if isinstance(result, pa.Table) else result["_duplicate"]
    count = pc.sum(pc.fill_null(marked, False)).as_py() if isinstance(result, pa.Table) else int(marked.sum())
    return {"duplicates": count}


def agree(a: dict, b: dict) -> bool:
    if a.keys() != b.keys():
        return False
    for key in a:
        if isinstance(a[key], dict):
            if not agree(a[key], b[key]):
                return False
        elif isinstance(a[key], float) or isinstance(b[key], float):
            if not np.isclose(a[key], b[key], rtol=1e-9, atol=1e-9):
                return False
        elif a[key] != b[key]:
            return False
    return True


# ---------------------------------------------------------------- one measured child process


def _status(field: str) -> float:
    """A memory figure of this process from /proc/self/status, in MB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field):
            return int(line.split()[1]) / 1024
    return 0.0


def child(engine: str, transform: str, path: str) -> dict:
    """Read the input into memory, run one transform once, report time and memory (as JSON on stdout)."""
    with pa.OSFile(path) as source:  # read, not memory-mapped: the input sits in Arrow's pool like a read table
        table = pa.ipc.open_file(source).read_all()
    pool = pa.default_memory_pool()
    input_mb = table.nbytes / 1e6
    if engine == "arrow":
        run = arrow_transforms()[transform]
        arg = table
    else:
        run = pandas_transforms()[transform]
        plain = [c.cast(c.type.value_type) if pa.types.is_dictionary(c.type) else c for c in table.columns]
        arg = pa.Table.from_arrays(plain, names=table.column_names).to_pandas()
        del table, plain
    run(arg.iloc[:1000] if engine == "pandas" else arg.slice(0, 1000))  # warm caches (district raster, imports)
    rss_before = _status("VmRSS")
    Path("/proc/self/clear_refs").write_text("5")  # reset VmHWM: the peak below is the transform's
    started = time.perf_counter()
    result = run(arg)
    seconds = time.perf_counter() - started
    return {
        "seconds": seconds,
        "input_mb": input_mb,
        "peak_arrow_mb": pool.max_memory() / 1e6,
        "rss_before_mb": rss_before,
        "peak_rss_mb": _status("VmHWM"),
        "pool": pool.backend_name,
        "digest": digest(transform, result),
    }


def _run_child(engine: str, transform: str, path: Path) -> dict:
    proc = subprocess.run(
        [sys.executable, "-m", "bench.transforms", engine, transform, str(path)],
        capture_output=True,
        text=True,
        timeout=3600,
        env={**os.environ, "PYTHONHASHSEED": "0"},
    )
    if proc.returncode != 0:
        raise RuntimeError(f"bench child {engine} {transform} failed: {proc.stderr[-2000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


# ---------------------------------------------------------------- the suite


def bench_transforms(rows: int, repeat: int = 3, transforms: tuple[str, ...] = TRANSFORMS) -> dict:
    table = synthetic_traffic(rows)
    cardinality = len(table.column("segment_id").chunk(0).dictionary)
    span_days = (pc.max(table["observed_at"]).value - pc.min(table["observed_at"]).value) / 86_400e6
    with tempfile.TemporaryDirectory(prefix="cityhub-bench-") as tmp:
        path = Path(tmp) / "input.arrow"
        with pa.OSFile(str(path), "wb") as sink, pa.ipc.new_file(sink, table.schema) as writer:
            writer.write_table(table, max_chunksize=1_000_000)
        del table
        results = {name: _measure(name, path, repeat) for name in transforms}
    pools = {r.pop("pool") for r in results.values()}
    first = next(iter(results.values()))
    return {
        "suite": "transforms",
        "dataset": DATASET,
        "rows": rows,
        "input_mb": first["input_mb"],
        "id_column": "segment_id",
        "id_cardinality": cardinality,
        "span_days": round(span_days, 2),
        "duplicate_share": DUPLICATE_SHARE,
        "best_of": repeat,
        "cpus": os.cpu_count(),
        "arrow_memory_pool": ", ".join(sorted(pools)),
        "transforms": results,
        "targets_met": {
            **{
                f"{name}_speedup_ge_{t:g}x": results[name]["speedup"] >= t
                for name, t in TARGETS.items()
                if name in results
            },
            **{
                f"{name}_peak_le_{MAX_PEAK_VS_INPUT:g}x_input": results[name]["peak_arrow_vs_input"]
                <= MAX_PEAK_VS_INPUT
                for name in results
            },
        },
    }


def _measure(transform: str, path: Path, repeat: int) -> dict:
    runs: dict[str, list[dict]] = {"arrow": [], "pandas": []}
    for _ in range(repeat):  # alternate, so that both engines see the same machine
        for engine in runs:
            runs[engine].append(_run_child(engine, transform, path))
    arrow, pandas = (min(runs[e], key=lambda r: r["seconds"]) for e in runs)
    return {
        "arrow_s": round(arrow["seconds"], 3),
        "pandas_s": round(pandas["seconds"], 3),
        "speedup": round(pandas["seconds"] / arrow["seconds"], 2),
        "input_mb": round(arrow["input_mb"], 1),
        "peak_arrow_mb": round(max(r["peak_arrow_mb"] for r in runs["arrow"]), 1),
        "peak_arrow_vs_input": round(max(r["peak_arrow_mb"] for r in runs["arrow"]) / arrow["input_mb"], 2),
        "peak_rss_mb": round(max(r["peak_rss_mb"] for r in runs["arrow"]), 1),
        "rss_before_mb": round(arrow["rss_before_mb"], 1),
        "pandas_peak_rss_mb": round(max(r["peak_rss_mb"] for r in runs["pandas"]), 1),
        "pandas_rss_before_mb": round(pandas["rss_before_mb"], 1),
        "results_match": all(
            agree(a["digest"], p["digest"]) for a, p in zip(runs["arrow"], runs["pandas"], strict=True)
        ),
        "pool": arrow["pool"],
    }


if __name__ == "__main__":
    print(json.dumps(child(sys.argv[1], sys.argv[2], sys.argv[3]), ensure_ascii=False))
