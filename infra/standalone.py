"""``cityhub airflow``: Airflow standalone (API server and UI, scheduler, DAG processor, triggerer) on the
project's DAGs, with its metadata under ``CITYHUB_HOME`` — and the embedded broker if no Kafka is configured."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from contextlib import ExitStack, suppress
from pathlib import Path

from infra import airflow
from infra.broker import EmbeddedBroker
from infra.errors import BrokerError
from infra.kafka import check_reachable
from infra.settings import Settings


def standalone_env(settings: Settings, port: int) -> dict[str, str]:
    env = airflow.airflow_env(settings)
    env["AIRFLOW__API__PORT"] = str(port)
    env["AIRFLOW__API__BASE_URL"] = f"http://localhost:{port}"
    # standalone starts its components as `airflow …` found on PATH: the project's own, not another one
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
    return env


def run_standalone(settings: Settings, port: int) -> int:
    with ExitStack() as stack:
        if settings.uses_embedded_broker:
            try:
                check_reachable(settings, timeout_s=1.0)
                print(f"using the broker already on {settings.bootstrap}", file=sys.stderr)
            except BrokerError:
                broker = EmbeddedBroker(settings.broker_port, settings.root / "logs" / "broker.log").start()
                stack.callback(broker.stop)
                print(f"embedded broker on {broker.bootstrap}", file=sys.stderr)
        airflow.prepare(settings)
        print(
            f"Airflow UI on http://localhost:{port} (metadata and logs under {settings.airflow_dir}; standalone "
            f"prints the admin password, also in {settings.airflow_dir}/simple_auth_manager_passwords.json.generated)",
            file=sys.stderr,
        )
        exe = Path(sys.executable).with_name("airflow")
        proc = subprocess.Popen([str(exe), "standalone"], env=standalone_env(settings, port), start_new_session=True)
        try:
            return proc.wait()
        except KeyboardInterrupt:
            return 130
        finally:
            _stop_group(proc)


def _stop_group(proc: subprocess.Popen) -> None:
    """SIGTERM standalone's whole process group, give it time to shut down, then SIGKILL whatever is left:
    its components (the scheduler especially) can outlive standalone itself."""
    try:
        os.killpg(proc.pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        proc.poll()
        try:
            os.killpg(proc.pid, 0)  # anyone left in the group?
        except ProcessLookupError:
            return
        time.sleep(0.5)
    with suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
