"""Running the project's DAGs through a real Airflow (SQLite metadata under CITYHUB_HOME in dev).

A DAG run counts only when Airflow's metadata shows the DagRun and every task instance in state success:
:func:`run_dags` executes each DAG with ``dag.test()`` in a child process, then reads the metadata back.
"""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import dags
from infra.errors import CityhubError
from infra.settings import Settings

DAGS_FOLDER = Path(dags.__file__).resolve().parent


class AirflowError(CityhubError):
    code = "airflow_error"


@dataclass
class DagRunOutcome:
    dag_id: str
    run_id: str
    state: str
    task_states: dict[str, str]

    @property
    def succeeded(self) -> bool:
        return (
            self.state == "success"
            and bool(self.task_states)
            and all(s == "success" for s in self.task_states.values())
        )


def airflow_env(settings: Settings) -> dict[str, str]:
    home = settings.airflow_dir
    env = dict(os.environ)
    env.update(
        {
            "AIRFLOW_HOME": str(home),
            "AIRFLOW__CORE__DAGS_FOLDER": str(DAGS_FOLDER),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "False",
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": os.environ.get(
                "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN", f"sqlite:///{home / 'airflow.db'}"
            ),
            "AIRFLOW__LOGGING__BASE_LOG_FOLDER": str(home / "logs"),
            "CITYHUB_HOME": str(settings.root),
            "GX_ANALYTICS_ENABLED": "False",
            "TQDM_DISABLE": "1",
        }
    )
    if settings.kafka_bootstrap:
        env["CITYHUB_KAFKA_BOOTSTRAP"] = settings.kafka_bootstrap
    env.setdefault("CITYHUB_BROKER_PORT", str(settings.broker_port))
    return env


def _airflow(settings: Settings, *args: str, timeout: float = 600) -> str:
    exe = Path(sys.executable).with_name("airflow")
    proc = subprocess.run([str(exe), *args], env=airflow_env(settings), capture_output=True, text=True, timeout=timeout)
    if proc.returncode != 0:
        raise AirflowError(
            f"`airflow {' '.join(args)}` failed: {proc.stderr.strip()[-2000:]}",
            hint=f"AIRFLOW_HOME is {settings.airflow_dir}; see the output above",
        )
    return proc.stdout


def prepare(settings: Settings) -> None:
    """Create or upgrade the metadata database and serialize the DAGs (dag.test() needs both)."""
    settings.airflow_dir.mkdir(parents=True, exist_ok=True)
    _airflow(settings, "db", "migrate")
    _airflow(settings, "dags", "reserialize")


def run_dags(settings: Settings, dag_ids: list[str]) -> list[DagRunOutcome]:
    """Run each DAG once for real and report what Airflow's metadata recorded."""
    proc = subprocess.run(
        [sys.executable, "-m", "infra.airflow_child", *dag_ids],
        env=airflow_env(settings),
        capture_output=True,
        text=True,
        timeout=1800,
    )
    runs = {}
    for line in proc.stdout.splitlines():
        if line.startswith("CITYHUB_RUN "):
            item = json.loads(line.removeprefix("CITYHUB_RUN "))
            runs[item["dag_id"]] = item["run_id"]
    missing = [d for d in dag_ids if d not in runs]
    if missing:
        raise AirflowError(
            f"Airflow did not run {missing}: {proc.stderr.strip()[-3000:]}",
            hint=f"see the task logs under {settings.airflow_dir / 'logs'}",
        )
    return [read_outcome(settings, dag_id, runs[dag_id]) for dag_id in dag_ids]


def read_outcome(settings: Settings, dag_id: str, run_id: str) -> DagRunOutcome:
    """The DagRun's and its task instances' states, straight from the metadata database."""
    with sqlite3.connect(settings.airflow_dir / "airflow.db") as db:
        row = db.execute("SELECT state FROM dag_run WHERE dag_id = ? AND run_id = ?", (dag_id, run_id)).fetchone()
        tasks = db.execute(
            "SELECT task_id, state FROM task_instance WHERE dag_id = ? AND run_id = ?", (dag_id, run_id)
        ).fetchall()
    return DagRunOutcome(dag_id, run_id, row[0] if row else "missing", {t: s or "none" for t, s in tasks})
