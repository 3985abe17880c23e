"""``cityhub demo``: the whole path on embedded defaults, then the API.

broker (embedded unless CITYHUB_KAFKA_BOOTSTRAP is set) → topics → an hour of every feed → each dataset's
Airflow DAG (real runs, checked in Airflow's metadata), then the derive DAGs of the safe-zone datasets with open
releases → the API. ``--once`` checks the API for every open dataset, derived ones included, prints a summary and
exits (non-zero with the reason if anything is missing).
"""

from __future__ import annotations

import shutil
import threading
import time
from contextlib import ExitStack
from datetime import timedelta

import httpx
import uvicorn

from catalog import derived_contracts, derived_sources, landed_contracts
from infra import airflow
from infra.broker import EmbeddedBroker
from infra.errors import CityhubError
from infra.kafka import ensure_topics
from infra.settings import Settings
from ingest.derived import derived_files
from ingest.produce import send
from ingest.simulate import GENERATORS, HOURLY_VOLUME, default_start, simulate
from serving.app import create_app

DEMO_SEED = 42
DEMO_BAD_RATIO = 0.02


def _say(message: str) -> None:
    print(f"[demo] {message}", flush=True)


def _fresh_state(settings: Settings) -> None:
    """A new embedded broker starts with an empty log, so the lake and run records of an earlier demo
    belong to a log that no longer exists: set them aside instead of mixing the two."""
    for name in ("lake", "state"):
        path = settings.root / name
        if path.exists():
            archive = settings.root / "previous" / f"{name}-{int(time.time())}"
            archive.parent.mkdir(parents=True, exist_ok=True)
            shutil.move(str(path), archive)
            _say(f"moved {path} of an earlier embedded-broker run to {archive}")


class _Server(uvicorn.Server):
    def install_signal_handlers(self) -> None:  # the demo's main thread owns Ctrl-C
        pass


def run_demo(settings: Settings, once: bool = False, port: int | None = None) -> int:
    port = port or settings.api_port
    contracts = landed_contracts()
    with ExitStack() as stack:
        if settings.uses_embedded_broker:
            _fresh_state(settings)
            broker = EmbeddedBroker(settings.broker_port, settings.root / "logs" / "broker.log").start()
            stack.callback(broker.stop)
            _say(f"embedded broker on {broker.bootstrap}")
        else:
            _say(f"using Kafka at {settings.bootstrap}")
        created = ensure_topics(settings, [settings.topic_for(c.id) for c in contracts])
        _say(f"topics ready ({len(created)} created)")
        sources = {c.id for c in derived_sources()}
        for contract in contracts:
            if contract.id not in GENERATORS:
                _say(f"{contract.id}: no simulator, nothing produced")
                continue
            records, planted = simulate(
                contract, HOURLY_VOLUME.get(contract.id, 1000), seed=DEMO_SEED, bad_ratio=DEMO_BAD_RATIO
            )
            send(settings, contract, records)
            _say(f"{contract.id}: produced {len(records)} readings ({sum(planted.values())} deliberately bad)")
            if contract.id in sources:
                # derived open data releases a Seoul day once it is over: give it the same hour of yesterday too
                yesterday = default_start(contract) - timedelta(days=1)
                earlier, _ = simulate(contract, HOURLY_VOLUME[contract.id], seed=DEMO_SEED + 1, start=yesterday)
                send(settings, contract, earlier)
                _say(f"{contract.id}: produced {len(earlier)} readings of the same hour yesterday")
        _say(f"preparing Airflow (metadata under {settings.airflow_dir})")
        airflow.prepare(settings)
        # the derive DAGs after the landing DAGs (dag.test() fires no Asset schedules): open data born in the safe zone
        derive = list(dict.fromkeys(c.dag_id for c in derived_contracts()))
        outcomes = airflow.run_dags(settings, [c.dag_id for c in contracts] + derive)
        for outcome in outcomes:
            _say(
                f"{outcome.dag_id}: DagRun {outcome.run_id} {outcome.state}; tasks "
                + ", ".join(f"{t}={s}" for t, s in sorted(outcome.task_states.items()))
            )
        failed = [o.dag_id for o in outcomes if not o.succeeded]
        if failed:
            raise CityhubError(
                f"DAG runs did not succeed: {failed}",
                hint=f"see the task logs under {settings.airflow_dir / 'logs'}",
            )

        server = _Server(uvicorn.Config(create_app(settings), host=settings.api_host, port=port, log_level="warning"))
        thread = threading.Thread(target=server.run, daemon=True)
        thread.start()
        stack.callback(lambda: (setattr(server, "should_exit", True), thread.join(10)))
        base = f"http://{settings.api_host}:{port}"
        deadline = time.monotonic() + 30
        while not server.started:
            if time.monotonic() > deadline or not thread.is_alive():
                raise CityhubError(f"the API did not start on {base}", hint="is the port free? set --port")
            time.sleep(0.1)
        _say(f"API serving at {base}  (portal: {base}/, datasets: {base}/api/v1/datasets, docs: {base}/docs)")
        if once:
            return _summary(base, contracts, settings)
        _say("Ctrl-C stops the demo")
        try:
            while thread.is_alive():
                time.sleep(0.5)
        except KeyboardInterrupt:
            _say("stopping")
    return 0


def count_zone(settings: Settings, dataset_id: str, zone: str) -> int:
    import pyarrow.parquet as pq

    from ingest import lake

    return sum(pq.ParquetFile(p).metadata.num_rows for p in lake.zone_files(settings.lake, zone, dataset_id))


def api_rows(client: httpx.Client, dataset_id: str) -> int:
    """Count rows the way an API user would: page through /records following next_cursor."""
    total, cursor = 0, None
    while True:
        params = {"limit": 10_000, **({"cursor": cursor} if cursor else {})}
        response = client.get(f"/api/v1/datasets/{dataset_id}/records", params=params)
        response.raise_for_status()
        page = response.json()
        total += page["count"]
        cursor = page["next_cursor"]
        if not cursor:
            return total


def _cells(files) -> tuple[int, int]:
    """Cells of a derived dataset's files, and how many of them are suppressed."""
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    tables = [pq.read_table(f, columns=["suppressed"]) for f in files]
    return sum(t.num_rows for t in tables), sum(pc.sum(t.column("suppressed")).as_py() or 0 for t in tables)


def _summary(base: str, contracts, settings: Settings) -> int:
    problems = []
    with httpx.Client(base_url=base, timeout=60) as client:
        listed = {d["id"] for d in client.get("/api/v1/datasets").json()["datasets"]}
        print(f"\n{'dataset':<20} {'tier':<9} {'landed':>8} {'quarantined':>12} {'api rows':>9}")
        for c in contracts:
            landed, quarantined = (
                count_zone(settings, c.id, "clean"),
                count_zone(settings, c.id, "quarantine"),
            )
            rows = api_rows(client, c.id) if c.is_open else "403"
            print(f"{c.id:<20} {c.tier:<9} {landed:>8} {quarantined:>12} {rows:>9}")
            if c.id not in listed:
                problems.append(f"{c.id} missing from /api/v1/datasets")
            if landed == 0:
                problems.append(f"{c.id}: no rows landed")
            if c.is_open and rows != landed:
                problems.append(f"{c.id}: API returned {rows} rows but {landed} landed")
        print(f"\n{'derived dataset':<24} {'from':<15} {'cells':>6} {'suppressed':>11} {'api rows':>9}")
        for c in derived_contracts():
            files = derived_files(settings.lake, c.id)
            cells, suppressed = _cells(files)
            rows = api_rows(client, c.id)
            print(f"{c.id:<24} {c.derived_from:<15} {cells:>6} {suppressed:>11} {rows:>9}")
            if c.id not in listed:
                problems.append(f"{c.id} missing from /api/v1/datasets")
            if cells == 0 or rows != cells:
                problems.append(f"{c.id}: API returned {rows} rows of {cells} cells derived")
    if problems:
        print("\nFAILED: " + "; ".join(problems))
        return 1
    print("\nOK: every dataset landed and every open dataset is served by the API")
    return 0
