"""``cityhub bench serve``: the public API against the same queries run directly in DuckDB, same lake, same run.

A lake of ``rows`` clean ``traffic_flow`` readings (the transforms benchmark's synthetic generator: 2,553 real
lane segments, one reading every 5 minutes, 10M rows ≈ 13.6 days) is written as landing and compaction leave it
once its days are over — one Parquet file per date under ``clean/traffic_flow/date=…/``, the day's rows in the
API's default order (event time first) in row groups of 122 880 (:func:`write_lake`). The API then runs in a
process of its own (``cityhub serve``; nothing is cached between requests: a client sending no
``If-None-Match`` gets every answer computed afresh), and each named query is timed

* through the API with one httpx client (its connection kept alive), reading every byte of the answer, and
* directly in DuckDB (a fresh in-process database with the server's thread count) over the same files, the
  result fully materialised — Arrow for JSON queries, ``COPY … TO '/dev/null'`` for the downloads;

p50 of ``runs`` runs each, ``ratio`` = api / duckdb. ``download_rss_growth_mb`` is the server's RSS
(``/proc/<pid>/status``, sampled every 20 ms) during a full CSV download, above its RSS just before.
``load`` is ``clients`` concurrent clients, each with an ``X-API-Key`` of its own inside the rate limit, asking
for record pages (a random day each) for ``load_s`` seconds: requests per second, p50/p99 latency, and errors
(any answer but 200 — a 429 included).
"""

from __future__ import annotations

import os
import random
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from datetime import timedelta
from pathlib import Path

import duckdb
import httpx
import pyarrow as pa
import pyarrow.compute as pc

from catalog import get_contract
from infra.broker import free_port
from infra.settings import Settings
from ingest import compaction, lake
from serving.aggregate import district_table

DATASET = "traffic_flow"
FILE_ROWS = 500_000
BBOX = (126.95, 37.50, 127.05, 37.58)  # central Seoul: a few percent of the segments
TARGETS = {"ratio_max": 1.3, "record_pages_extra_ms": 10.0, "rss_growth_mb": 200.0, "errors": 0}


def write_lake(settings: Settings, rows: int) -> pa.Table:
    """``rows`` synthetic readings as the lake holds them once their days are over: each date partition compacted
    (:mod:`ingest.compaction`) into one file of the day's rows in the API's default order, in row groups of
    ``ROW_GROUP_ROWS``, named by its manifest as covering the chunk files landing wrote (``FILE_ROWS`` readings
    of one Kafka partition each). Returns the event times."""
    from bench.transforms import synthetic_traffic

    contract = get_contract(DATASET)
    table = synthetic_traffic(rows).select(contract.schema.names).cast(contract.schema)
    days = pc.strftime(table.column(contract.event_time), format="%Y-%m-%d")
    topic = settings.topic_for(DATASET)
    for day in pc.unique(days).to_pylist():
        part = table.filter(pc.equal(days, day))
        part = part.sort_by([(name, "ascending") for name in compaction.cluster_order(contract, "clean")])
        covers = []
        for partition in pc.unique(part.column("_partition")).to_pylist():
            offsets = part.filter(pc.equal(part.column("_partition"), partition)).column("_offset")
            offsets = pc.take(offsets, pc.sort_indices(offsets))  # landing wrote chunks of consecutive offsets
            for start in range(0, len(offsets), FILE_ROWS):
                chunk = offsets.slice(start, FILE_ROWS)
                first, end = pc.min(chunk).as_py(), pc.max(chunk).as_py() + 1
                name = lake.file_name(topic, partition, first, end)
                covers.append(
                    {
                        "file": name,
                        "topic": topic,
                        "partition": partition,
                        "first": first,
                        "end": end,
                        "rows": len(chunk),
                    }
                )
        folder = lake.dataset_dir(settings.lake, "clean", DATASET) / f"date={day}"
        folder.mkdir(parents=True, exist_ok=True)
        name = lake.compacted_name(1, covers)
        written = compaction.write_atomically([part], part.schema, folder / name)
        manifest = {"file": name, "covers": covers, "retired": {}, "generation": 1, "rows": written}
        lake.write_json_atomically(folder / lake.MANIFEST, manifest)
    return table.select([contract.event_time])


class Server:
    """``cityhub serve`` in a process of its own, on a free port."""

    def __init__(self, home: Path):
        self.port = free_port()
        env = {
            **os.environ,
            "CITYHUB_HOME": str(home),
            # every load client stays inside its own limit: the limit is not what is measured
            "CITYHUB_RATE_LIMIT_PER_MIN": str(1_000_000),
            "CITYHUB_QUERY_TIMEOUT_S": "120",
            "CITYHUB_DOWNLOAD_TIMEOUT_S": "1800",
        }
        self.process = subprocess.Popen(
            [sys.executable, "-m", "infra.cli", "serve", "--port", str(self.port)],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        self.url = f"http://127.0.0.1:{self.port}"
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{self.url}/healthz", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline or self.process.poll() is not None:
                raise RuntimeError("the API server did not start")
            time.sleep(0.2)

    def rss_mb(self) -> float:
        for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
        return 0.0

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.process.kill()


def _api(client: httpx.Client, path: str, params: dict) -> int:
    """One request, every byte read; returns the bytes received."""
    size = 0
    with client.stream("GET", path, params=params, headers={"Accept-Encoding": "identity"}) as response:
        if response.status_code != 200:
            raise RuntimeError(f"{path} answered {response.status_code}: {response.read()[:300]!r}")
        for chunk in response.iter_raw():
            size += len(chunk)
    return size


def _queries(settings: Settings, day_start, day_end) -> dict[str, tuple[str, dict, str, list]]:
    """name -> (API path, params, the same query in DuckDB SQL, its parameters)."""
    contract = get_contract(DATASET)
    files = ", ".join(f"'{f}'" for f in lake.zone_files(settings.lake, "clean", DATASET))
    source = f"read_parquet([{files}], union_by_name = true, hive_partitioning = false)"
    order = f'"{contract.event_time}", _topic, _partition, _offset'
    # a time filter reads the day partitions it touches, as the API does and as anyone querying a date-partitioned
    # lake in DuckDB would (the page is one UTC day)
    day_files = lake.zone_files(settings.lake, "clean", DATASET, [day_start.date().isoformat()])
    day_source = "read_parquet([{}], union_by_name = true, hive_partitioning = false)".format(
        ", ".join(f"'{f}'" for f in day_files)
    )
    base = f"/api/v1/datasets/{DATASET}"
    from serving.aggregate import _cell_sql
    from transforms import geo

    east = _cell_sql('s."lon"', geo.GRID_ORIGIN[0], geo._M_PER_DEG_LON)
    north = _cell_sql('s."lat"', geo.GRID_ORIGIN[1], geo._M_PER_DEG_LAT)
    measures = ", ".join(
        f'count(s."{m}"), avg(s."{m}"), min(s."{m}"), max(s."{m}")'
        for m in ("intensity", "occupancy", "average_speed", "average_headway", "average_vehicle_length")
    )
    lon0, lat0, lon1, lat1 = BBOX
    return {
        "records_time_page": (
            f"{base}/records",
            {"since": day_start.isoformat(), "until": day_end.isoformat(), "limit": 100},
            f"SELECT * FROM {day_source} WHERE observed_at >= ? AND observed_at < ? ORDER BY {order} LIMIT 101",
            [day_start, day_end],
        ),
        "records_bbox_page": (
            f"{base}/records",
            {"bbox": ",".join(map(str, BBOX)), "limit": 100},
            f"SELECT * FROM {source} WHERE lon BETWEEN ? AND ? AND lat BETWEEN ? AND ? ORDER BY {order} LIMIT 101",
            [lon0, lon1, lat0, lat1],
        ),
        "aggregate_hour_district": (
            f"{base}/aggregate",
            {"bucket": "hour", "by": "district", "limit": 10000},
            f"SELECT date_trunc('hour', s.observed_at), d.district, count(*), {measures} FROM {source} s "
            f"LEFT JOIN _districts d ON d._e = {east} AND d._n = {north} GROUP BY 1, 2 ORDER BY 1, 2 NULLS LAST "
            "LIMIT 10001",
            [],
        ),
        "download_csv": (
            f"{base}/download",
            {"format": "csv"},
            f"COPY (SELECT * FROM {source} ORDER BY {order}) TO '/dev/null' (FORMAT csv, HEADER)",
            [],
        ),
        "download_parquet": (
            f"{base}/download",
            {"format": "parquet"},
            f"COPY (SELECT * FROM {source} ORDER BY {order}) TO '/dev/null' (FORMAT parquet, COMPRESSION zstd)",
            [],
        ),
    }


def _duckdb_ms(sql: str, params: list) -> float:
    con = duckdb.connect(config={"threads": 2})
    try:
        con.execute("SET TimeZone = 'UTC'")
        con.register("_districts", district_table())
        start = time.perf_counter()
        if sql.startswith("COPY"):
            con.execute(sql, params)
        else:
            con.execute(sql, params).to_arrow_table()
        return (time.perf_counter() - start) * 1000
    finally:
        con.close()


def _api_ms(client: httpx.Client, path: str, params: dict) -> float:
    start = time.perf_counter()
    _api(client, path, params)
    return (time.perf_counter() - start) * 1000


def _rss_growth(server: Server, client: httpx.Client, path: str, params: dict) -> float:
    before = server.rss_mb()
    peak = [before]
    done = threading.Event()

    def sample() -> None:
        while not done.is_set():
            peak[0] = max(peak[0], server.rss_mb())
            time.sleep(0.02)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    try:
        _api_ms(client, path, params)
    finally:
        done.set()
        sampler.join()
    return peak[0] - before


def _load(url: str, days: list, clients: int, seconds: float) -> dict:
    latencies: list[float] = []
    errors = [0]
    lock = threading.Lock()
    stop_at = time.monotonic() + seconds
    path = f"/api/v1/datasets/{DATASET}/records"

    def client_loop(number: int) -> None:
        rng = random.Random(number)
        with httpx.Client(base_url=url, timeout=60, headers={"X-API-Key": f"bench-client-{number}"}) as client:
            while time.monotonic() < stop_at:
                day = rng.choice(days)
                params = {"since": day.isoformat(), "until": (day + timedelta(hours=1)).isoformat(), "limit": 100}
                start = time.perf_counter()
                try:
                    status = client.get(path, params=params).status_code
                except httpx.HTTPError:
                    status = -1
                took = (time.perf_counter() - start) * 1000
                with lock:
                    latencies.append(took)
                    if status != 200:
                        errors[0] += 1

    threads = [threading.Thread(target=client_loop, args=(i,)) for i in range(clients)]
    begin = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - begin
    ordered = sorted(latencies)
    return {
        "clients": clients,
        "seconds": round(elapsed, 1),
        "requests": len(ordered),
        "rps": round(len(ordered) / elapsed, 1),
        "p50_ms": round(ordered[len(ordered) // 2], 1) if ordered else None,
        "p99_ms": round(ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))], 1) if ordered else None,
        "errors": errors[0],
    }


def bench_serve(rows: int = 10_000_000, runs: int = 5, clients: int = 50, load_s: float = 30.0) -> dict:
    with tempfile.TemporaryDirectory() as home:
        settings = Settings(home=Path(home))
        times = write_lake(settings, rows).column(0)
        first, last = pc.min(times).as_py(), pc.max(times).as_py()
        middle = first + (last - first) / 2
        day_start = middle.replace(hour=0, minute=0, second=0, microsecond=0)
        queries = _queries(settings, day_start, day_start + timedelta(days=1))
        server = Server(Path(home))
        # one client, its connection kept alive between requests, as an application's HTTP client does
        client = httpx.Client(base_url=server.url, timeout=1800)
        try:
            _api_ms(client, *queries["records_time_page"][:2])  # warm the server's imports and caches
            results = {}
            for name, (path, params, sql, sql_params) in queries.items():
                api, direct = [], []
                for _ in range(runs if not name.startswith("download") else max(1, runs // 2)):
                    api.append(_api_ms(client, path, params))
                    direct.append(_duckdb_ms(sql, sql_params))
                a, d = statistics.median(api), statistics.median(direct)
                results[name] = {"api_ms": round(a, 1), "duckdb_ms": round(d, 1), "ratio": round(a / d, 3)}
            growth = _rss_growth(server, client, *queries["download_csv"][:2])
            hours = [first + timedelta(hours=h) for h in range(int((last - first).total_seconds() // 3600))]
            load = _load(server.url, hours, clients, load_s)
        finally:
            client.close()
            server.stop()
    return {
        "suite": "serve",
        "dataset": DATASET,
        "rows": rows,
        "runs": runs,
        "queries": results,
        "download_rss_growth_mb": round(growth, 1),
        "load": load,
        "targets_met": _targets_met(results, growth, load),
    }


def _targets_met(results: dict, growth: float, load: dict) -> dict:
    pages = ("records_time_page", "records_bbox_page")
    return {
        "ratios": all(results[q]["ratio"] <= TARGETS["ratio_max"] for q in results if q not in pages),
        "record_pages": all(
            results[q]["api_ms"] <= results[q]["duckdb_ms"] + TARGETS["record_pages_extra_ms"] for q in pages
        ),
        "rss_growth": growth < TARGETS["rss_growth_mb"],
        "load_errors": load["errors"] == TARGETS["errors"],
    }
