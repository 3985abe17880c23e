"""`cityhub airflow` brings up Airflow standalone on the project's DAGs: every DAG is listed by its API."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx

from catalog import landed_contracts
from infra.broker import free_port


def test_cityhub_airflow_serves_every_dag(settings, tmp_path):
    port = free_port()
    cli = Path(sys.executable).with_name("cityhub")
    env = {**os.environ, "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS": "True"}  # no login in the test
    proc = subprocess.Popen(
        [str(cli), "airflow", "--port", str(port)],
        env=env,
        stdout=(tmp_path / "airflow.log").open("w"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    wanted = {c.dag_id for c in landed_contracts()} | {
        "cityhub_open_data_poll",
        "cityhub_retention",
        "cityhub_compaction",
    }
    listed: set[str] = set()
    try:
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline and not wanted <= listed:
            assert proc.poll() is None, (tmp_path / "airflow.log").read_text()[-3000:]
            try:
                response = httpx.get(f"http://127.0.0.1:{port}/api/v2/dags", params={"limit": 100}, timeout=5)
                if response.status_code == 200:
                    listed = {d["dag_id"] for d in response.json()["dags"]}
            except httpx.HTTPError:
                pass
            time.sleep(2)
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=90)
    leftovers = subprocess.run(["pgrep", "-f", str(settings.airflow_dir)], capture_output=True, text=True).stdout
    assert not leftovers.split(), f"Airflow processes outlived `cityhub airflow`: {leftovers}"
    assert wanted <= listed, f"missing {wanted - listed}; log: {(tmp_path / 'airflow.log').read_text()[-2000:]}"
    assert (settings.airflow_dir / "airflow.db").exists()  # metadata under CITYHUB_HOME
