"""``GET /metrics`` in the Prometheus text format (version 0.0.4).

Landing state is read where it is durable, at scrape time — the lake's ledger (rows landed and quarantined
per dataset), Kafka (consumer lag per topic partition) and Airflow's metadata database (DAG runs) — so the
figures are right whichever process landed the data. API traffic is counted in this process by a middleware.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from collections import defaultdict
from collections.abc import Iterable
from pathlib import Path

from fastapi import FastAPI, Response

from catalog import landed_contracts
from infra.settings import Settings

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


def _labels(**labels: object) -> str:
    if not labels:
        return ""
    escaped = (str(v).replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") for v in labels.values())
    return "{" + ",".join(f'{k}="{v}"' for k, v in zip(labels, escaped, strict=True)) + "}"


class Family:
    """One metric family: its HELP and TYPE lines, then its samples."""

    def __init__(self, name: str, kind: str, help_text: str):
        self.name, self.kind, self.help = name, kind, help_text
        self.samples: list[tuple[str, dict, float]] = []

    def add(self, value: float, suffix: str = "", **labels: object) -> None:
        self.samples.append((suffix, labels, value))

    def render(self) -> str:
        lines = [f"# HELP {self.name} {self.help}", f"# TYPE {self.name} {self.kind}"]
        lines += [f"{self.name}{suffix}{_labels(**labels)} {value:g}" for suffix, labels, value in self.samples]
        return "\n".join(lines)


class RequestStats:
    """API requests per route template and status, with a latency histogram per route (thread-safe)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.counts: dict[tuple[str, str, int], int] = defaultdict(int)
        self.buckets: dict[tuple[str, str], list[int]] = defaultdict(lambda: [0] * len(LATENCY_BUCKETS))
        self.sums: dict[tuple[str, str], float] = defaultdict(float)
        self.totals: dict[tuple[str, str], int] = defaultdict(int)

    def observe(self, method: str, route: str, status: int, seconds: float) -> None:
        with self.lock:
            self.counts[(method, route, status)] += 1
            key = (method, route)
            for i, bound in enumerate(LATENCY_BUCKETS):
                if seconds <= bound:
                    self.buckets[key][i] += 1
            self.sums[key] += seconds
            self.totals[key] += 1

    def families(self) -> list[Family]:
        requests = Family("cityhub_http_requests_total", "counter", "API requests by route template and status.")
        latency = Family("cityhub_http_request_duration_seconds", "histogram", "API request latency by route.")
        with self.lock:
            for (method, route, status), n in sorted(self.counts.items()):
                requests.add(n, method=method, route=route, status=status)
            for (method, route), counts in sorted(self.buckets.items()):
                for bound, n in zip(LATENCY_BUCKETS, counts, strict=True):
                    latency.add(n, "_bucket", method=method, route=route, le=f"{bound:g}")
                latency.add(self.totals[(method, route)], "_bucket", method=method, route=route, le="+Inf")
                latency.add(self.sums[(method, route)], "_sum", method=method, route=route)
                latency.add(self.totals[(method, route)], "_count", method=method, route=route)
        return [requests, latency]


class CountRequests:
    """Plain ASGI middleware (cheaper per request than Starlette's ``BaseHTTPMiddleware``, and it leaves a
    streamed body alone): one observation per request once its answer is complete, by route template."""

    def __init__(self, app, stats: RequestStats):
        self.app, self.stats = app, stats

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start, status = time.perf_counter(), [500]

        async def sending(message) -> None:
            if message["type"] == "http.response.start":
                status[0] = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, sending)
        finally:
            template = getattr(scope.get("route"), "path", None) or "unmatched"
            self.stats.observe(scope["method"], template, status[0], time.perf_counter() - start)


def install(app: FastAPI, settings: Settings) -> None:
    """Count every request by its route template (``/api/v1/datasets/{dataset_id}/records``, not the raw
    path, so that the number of series stays bounded) and serve ``/metrics``."""
    stats = RequestStats()
    app.state.request_stats = stats

    app.add_middleware(CountRequests, stats=stats)

    @app.get("/metrics", tags=["service"], summary="Prometheus metrics: landing, lag, DAG runs, API traffic")
    def metrics() -> Response:
        families = [*landing_families(settings), *lag_families(settings), *dag_families(settings)]
        families += stats.families()
        return Response("\n".join(f.render() for f in families) + "\n", media_type=CONTENT_TYPE)


_LEDGER_CACHE: dict[Path, tuple[float, dict]] = {}


def ledger_entries(lake: Path, dataset_id: str) -> Iterable[dict]:
    """The dataset's ledger entries (one per landed chunk), each file parsed once until it changes."""
    for path in (lake / "_ledger" / dataset_id).glob("*.json"):
        try:
            mtime = path.stat().st_mtime
            cached = _LEDGER_CACHE.get(path)
            if cached is None or cached[0] != mtime:
                cached = (mtime, json.loads(path.read_text()))
                _LEDGER_CACHE[path] = cached
            yield cached[1]
        except (OSError, ValueError):
            continue  # a replay is rewriting it right now; the next scrape reads it


def landing_families(settings: Settings) -> list[Family]:
    rows = Family("cityhub_rows_landed_total", "counter", "Rows landed per dataset and zone (from the ledger).")
    chunks = Family("cityhub_chunks_landed_total", "counter", "Offset chunks completely landed per dataset.")
    for contract in landed_contracts():
        clean = quarantined = count = 0
        for entry in ledger_entries(settings.lake, contract.id):
            clean += entry.get("clean_rows", 0)
            quarantined += entry.get("quarantined_rows", 0)
            count += 1
        rows.add(clean, dataset=contract.id, zone="clean")
        rows.add(quarantined, dataset=contract.id, zone="quarantine")
        chunks.add(count, dataset=contract.id)
    return [rows, chunks]


def lag_families(settings: Settings) -> list[Family]:
    """Consumer lag of the landing group per topic partition: the true end offset minus the committed one."""
    from infra import kafka as kafka_io
    from infra.errors import BrokerError

    up = Family("cityhub_kafka_up", "gauge", "1 if Kafka answered this scrape.")
    lag = Family("cityhub_consumer_lag", "gauge", "Messages on the topic not yet landed, per partition.")
    try:
        kafka_io.check_reachable(settings, timeout_s=1.0)
        consumer = kafka_io.consumer(settings)
    except BrokerError:
        up.add(0)
        return [up, lag]
    try:
        existing = kafka_io.existing_topics(settings)
        for contract in landed_contracts():
            topic = settings.topic_for(contract.id)
            if topic not in existing:
                continue
            tps = kafka_io.partitions_of(consumer, topic, wait_s=2.0)
            ends = kafka_io.true_end_offsets(consumer, tps)
            for tp in tps:
                behind = max(ends[tp] - (consumer.committed(tp) or 0), 0)
                lag.add(behind, dataset=contract.id, topic=topic, partition=tp.partition)
        up.add(1)
    except Exception:  # noqa: BLE001 - a scrape must answer; the gauge says Kafka did not
        up.samples.clear()
        up.add(0)
    finally:
        consumer.close()
    return [up, lag]


def dag_families(settings: Settings) -> list[Family]:
    """Runs of the project's DAGs from Airflow's metadata database (the dev SQLite one under CITYHUB_HOME)."""
    runs = Family("cityhub_dag_runs_total", "counter", "DAG runs by DAG and final state.")
    last = Family("cityhub_dag_last_run_duration_seconds", "gauge", "Duration of each DAG's latest finished run.")
    database = settings.airflow_dir / "airflow.db"
    if not database.exists():
        return [runs, last]
    try:
        con = sqlite3.connect(f"file:{database}?mode=ro", uri=True, timeout=2)
        try:
            for dag_id, state, n in con.execute(
                "SELECT dag_id, state, count(*) FROM dag_run WHERE dag_id LIKE 'cityhub%' GROUP BY 1, 2"
            ):
                runs.add(n, dag_id=dag_id, state=state)
            for dag_id, state, seconds in con.execute(
                "SELECT dag_id, state, (julianday(end_date) - julianday(start_date)) * 86400 FROM dag_run r "
                "WHERE dag_id LIKE 'cityhub%' AND end_date IS NOT NULL AND end_date = "
                "(SELECT max(end_date) FROM dag_run WHERE dag_id = r.dag_id AND end_date IS NOT NULL)"
            ):
                last.add(round(seconds or 0.0, 3), dag_id=dag_id, state=state)
        finally:
            con.close()
    except sqlite3.Error:
        pass  # Airflow is migrating or the file is not Airflow's: no DAG figures this scrape
    return [runs, last]
