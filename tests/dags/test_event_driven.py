"""Event-driven scheduling for real: Airflow's scheduler, DAG processor, triggerer and execution API run as
services; producing to a topic starts that dataset's DAG by itself, as an asset-triggered run, and it lands.

``dag.test()`` (the demo's way) never fires watchers, so this is the only test of the AssetWatcher path.
"""

from __future__ import annotations

import json
import sqlite3
import time

import pyarrow.parquet as pq
import pytest

from catalog import get_contract
from infra import airflow
from infra.airflow import AirflowError, AirflowServices, set_paused, wait_for
from infra.broker import free_port
from infra.kafka import ensure_topics
from ingest.landing import run_dir
from ingest.produce import send
from ingest.simulate import simulate

pytestmark = pytest.mark.slow

DATASET = "air_quality"
RECORDS = 12


def _query(settings, sql: str, *args) -> list[tuple]:
    with sqlite3.connect(settings.airflow_dir / "airflow.db", timeout=30) as db:
        return db.execute(sql, args).fetchall()


def test_producing_to_a_topic_starts_its_dag_through_the_triggerer(settings):
    contract = get_contract(DATASET)
    dag_id = contract.dag_id
    ensure_topics(settings, [settings.topic_for(contract.id)])  # so the fallback's first run finds the topic
    # Only this dataset's DAG is unpaused: its watcher is the only one the DAG processor hands the triggerer,
    # and the other DAGs' first scheduled runs do not compete for the two cores.
    services = AirflowServices.configure(settings, free_port(), AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION="True")
    began = time.monotonic()
    timings: dict[str, float] = {}

    def mark(step: str) -> None:
        timings[step] = round(time.monotonic() - began, 1)

    def runs(run_type: str, states=("success", "failed")) -> list[tuple]:
        marks = ",".join("?" * len(states))
        return _query(
            settings,
            f"SELECT run_id, state FROM dag_run WHERE dag_id = ? AND run_type = ? AND state IN ({marks})",
            dag_id,
            run_type,
            *states,
        )

    airflow.prepare(settings, env=services.env)
    set_paused(settings, [dag_id], False)
    mark("prepared")
    try:
        with services:
            wait_for(
                lambda: _query(
                    settings,
                    "SELECT t.id FROM trigger t JOIN asset_watcher w ON w.trigger_id = t.id "
                    "JOIN asset a ON a.id = w.asset_id WHERE a.name = ? AND t.triggerer_id IS NOT NULL",
                    f"cityhub.kafka.{DATASET}",
                ),
                180,
                "the triggerer to run the topic's watcher",
                services,
            )
            mark("watcher running")
            # The cadence fallback runs the DAG once at start (DeltaTriggerTimetable, catchup off). Wait for it
            # to finish on the empty topic: what lands from now on can only come from a run the watcher starts
            # (the next scheduled one is an hour away).
            (first,) = wait_for(lambda: runs("scheduled"), 240, "the first scheduled run", services)
            assert first[1] == "success", first
            mark("first scheduled run done")

            records, _ = simulate(contract, RECORDS, seed=11)
            send(settings, contract, records)
            mark("produced")
            wait_for(
                lambda: runs("asset_triggered", ("queued", "running", "success", "failed")), 120, "a run", services
            )
            mark("asset-triggered run created")
            (run_id, state), *_ = wait_for(lambda: runs("asset_triggered"), 240, "the run to end", services)
            mark("asset-triggered run done")
    except AirflowError as exc:
        logs = "\n".join(f"--- {name}\n{services.log_tail(name, 2500)}" for name in services.services)
        pytest.fail(f"{exc}\n{logs}")
    finally:
        services.stop()
    print(f"\nevent-driven run of {dag_id}: {json.dumps(timings)}")

    assert state == "success", airflow.read_outcome(settings, dag_id, run_id)
    assert airflow.read_outcome(settings, dag_id, run_id).succeeded
    # started by the watcher's event, which carries the trigger's payload
    events = _query(
        settings,
        "SELECT e.extra FROM asset_event e JOIN dagrun_asset_event r ON r.event_id = e.id "
        "JOIN dag_run d ON d.id = r.dag_run_id WHERE d.run_id = ?",
        run_id,
    )
    payloads = [json.loads(extra)["payload"] for (extra,) in events if json.loads(extra).get("from_trigger")]
    assert payloads and all(p["topic"] == settings.topic_for(DATASET) for p in payloads)
    assert all(0 < p["backlog"] <= RECORDS for p in payloads)
    # one event for one backlog: the watcher did not fire again while the run was landing it
    fired = _query(
        settings,
        "SELECT COUNT(*) FROM asset_event e JOIN asset a ON a.id = e.asset_id WHERE a.name = ?",
        f"cityhub.kafka.{DATASET}",
    )
    assert fired == [(1,)]
    # and that run landed every record produced after the first run
    landed = json.loads((run_dir(settings, DATASET, run_id) / "landed.json").read_text())
    assert landed["clean_rows"] + landed["quarantined_rows"] == RECORDS and landed["clean_rows"] > 0
    files = sorted((settings.lake / "clean" / DATASET).glob("date=*/*.parquet"))
    assert sum(pq.ParquetFile(f).metadata.num_rows for f in files) == landed["clean_rows"]
