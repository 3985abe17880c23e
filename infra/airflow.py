"""Running the project's DAGs through a real Airflow (SQLite metadata under CITYHUB_HOME in dev).

A DAG run counts only when Airflow's metadata shows the DagRun and every task instance in state success:
:func:`run_dags` executes each DAG with ``dag.test()`` in a child process, then reads the metadata back.
:class:`AirflowServices` runs Airflow itself instead — scheduler, DAG processor, triggerer and the execution
API — so that DAGs start by their schedules and asset watchers (``dag.test()`` never fires watchers).
"""

from __future__ import annotations

import configparser
import contextlib
import json
import os
import secrets
import signal
import sqlite3
import subprocess
import sys
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import dags
from infra.broker import _die_with_parent, _port_open
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


def airflow_env(settings: Settings, **overrides: str) -> dict[str, str]:
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
    env.update(overrides)
    return env


def _airflow(settings: Settings, *args: str, timeout: float = 600, env: dict[str, str] | None = None) -> str:
    exe = Path(sys.executable).with_name("airflow")
    proc = subprocess.run(
        [str(exe), *args], env=env or airflow_env(settings), capture_output=True, text=True, timeout=timeout
    )
    if proc.returncode != 0:
        raise AirflowError(
            f"`airflow {' '.join(args)}` failed: {proc.stderr.strip()[-2000:]}",
            hint=f"AIRFLOW_HOME is {settings.airflow_dir}; see the output above",
        )
    return proc.stdout


def write_config(settings: Settings) -> Path:
    """Write the project's settings into ``AIRFLOW_HOME/airflow.cfg``, so that a plain
    ``AIRFLOW_HOME=var/airflow airflow dags list-import-errors`` (or any Airflow command a data engineer types)
    sees cityhub's DAGs and metadata database rather than Airflow's defaults and example DAGs. Other keys of an
    existing file are kept; environment variables still override the file, as always in Airflow."""
    path = settings.airflow_dir / "airflow.cfg"
    path.parent.mkdir(parents=True, exist_ok=True)
    config = configparser.ConfigParser(interpolation=None)
    if path.exists():
        config.read(path, encoding="utf-8")
    env = airflow_env(settings)
    wanted = {
        ("core", "dags_folder"): env["AIRFLOW__CORE__DAGS_FOLDER"],
        ("core", "load_examples"): "False",
        ("core", "dags_are_paused_at_creation"): "False",
        ("database", "sql_alchemy_conn"): env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"],
        ("logging", "base_log_folder"): env["AIRFLOW__LOGGING__BASE_LOG_FOLDER"],
    }
    if all(config.get(section, key, fallback=None) == value for (section, key), value in wanted.items()):
        return path
    for (section, key), value in wanted.items():
        if not config.has_section(section):
            config.add_section(section)
        config.set(section, key, value)
    with open(path, "w", encoding="utf-8") as handle:
        config.write(handle)
    return path


def prepare(settings: Settings, env: dict[str, str] | None = None) -> None:
    """Create or upgrade the metadata database and serialize the DAGs (dag.test() needs both)."""
    write_config(settings)
    _airflow(settings, "db", "migrate", env=env)
    _airflow(settings, "dags", "reserialize", env=env)


def run_dags(settings: Settings, dag_ids: list[str], logical_date: datetime | None = None) -> list[DagRunOutcome]:
    """Run each DAG once for real and report what Airflow's metadata recorded.

    With a ``logical_date`` the run's id is ``manual__<logical_date>``, so running again with the same date is a
    rerun of the same run: Airflow clears its task instances and replaces the DagRun under the same run id,
    and the tasks find the slices that run recorded."""
    when = [f"--logical-date={logical_date.isoformat()}"] if logical_date else []
    proc = subprocess.run(
        [sys.executable, "-m", "infra.airflow_child", *when, *dag_ids],
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


SERVICES = ("scheduler", "dag-processor", "triggerer", "api-server")


@dataclass
class AirflowServices:
    """Airflow's own processes on the dev metadata database: scheduler (LocalExecutor), DAG processor,
    triggerer, and the API server's execution API (which task processes of Airflow 3 report to).

    Use as a context manager: each service runs in a session (process group) of its own with its output in
    ``AIRFLOW_HOME/logs/services/<name>.log``; leaving the block stops every process of every group, the task
    processes included. Ports and the JWT secret are this instance's own, so several can run side by side.
    """

    settings: Settings
    env: dict[str, str]
    api_port: int
    services: tuple[str, ...] = SERVICES
    processes: dict[str, subprocess.Popen] = field(default_factory=dict)

    @classmethod
    def configure(cls, settings: Settings, api_port: int, parallelism: int = 2, **overrides: str) -> AirflowServices:
        base = f"http://127.0.0.1:{api_port}"
        env = airflow_env(
            settings,
            AIRFLOW__CORE__EXECUTOR="LocalExecutor",
            AIRFLOW__CORE__PARALLELISM=str(parallelism),
            AIRFLOW__CORE__EXECUTION_API_SERVER_URL=f"{base}/execution/",
            AIRFLOW__API__BASE_URL=base,
            AIRFLOW__API__HOST="127.0.0.1",
            AIRFLOW__API__PORT=str(api_port),
            AIRFLOW__API__WORKERS="1",
            AIRFLOW__API_AUTH__JWT_SECRET=secrets.token_urlsafe(64),
            **overrides,
        )
        return cls(settings, env, api_port)

    @property
    def log_dir(self) -> Path:
        return self.settings.airflow_dir / "logs" / "services"

    def log_tail(self, name: str, chars: int = 3000) -> str:
        path = self.log_dir / f"{name}.log"
        return path.read_text(errors="replace")[-chars:] if path.exists() else ""

    def _command(self, name: str) -> list[str]:
        exe = str(Path(sys.executable).with_name("airflow"))
        if name == "api-server":
            return [exe, "api-server", "--apps", "execution", "--port", str(self.api_port), "--workers", "1"]
        if name in ("scheduler", "triggerer"):
            return [exe, name, "--skip-serve-logs"]
        return [exe, name]

    def _spawn(self, name: str) -> None:
        with open(self.log_dir / f"{name}.log", "ab") as out:
            self.processes[name] = subprocess.Popen(
                self._command(name),
                env=self.env,
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
                preexec_fn=_die_with_parent,  # a killed test or demo leaves no Airflow behind
            )

    def start(self, api_timeout_s: float = 120.0) -> AirflowServices:
        """Start the services; the scheduler once the execution API answers (its task processes report there
        from their first second, and would otherwise spend their retries waiting for it)."""
        self.log_dir.mkdir(parents=True, exist_ok=True)
        for name in self.services:
            if name != "scheduler":
                self._spawn(name)
        if "scheduler" in self.services:
            if "api-server" in self.services:
                wait_for(lambda: _port_open(self.api_port), api_timeout_s, "the execution API", self, every_s=0.2)
            self._spawn("scheduler")
        return self

    def check_alive(self) -> None:
        for name, proc in self.processes.items():
            if proc.poll() is not None:
                raise AirflowError(
                    f"airflow {name} exited with code {proc.returncode}: {self.log_tail(name)}",
                    hint=f"see {self.log_dir / (name + '.log')}",
                )

    def stop(self, timeout_s: float = 20.0) -> None:
        """SIGTERM every process group and every descendant (task processes may start sessions of their
        own), then SIGKILL whatever is still there after ``timeout_s``."""
        import psutil

        procs: list[psutil.Process] = []
        groups = set()
        for proc in self.processes.values():
            try:
                root = psutil.Process(proc.pid)
                procs += [root, *root.children(recursive=True)]
                groups.add(os.getpgid(proc.pid))
            except (psutil.NoSuchProcess, ProcessLookupError):
                pass
        for sig in (signal.SIGTERM, signal.SIGKILL):
            for group in groups:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(group, sig)
            for proc in procs:
                with contextlib.suppress(psutil.NoSuchProcess):
                    proc.send_signal(sig)
            _, procs = psutil.wait_procs(procs, timeout=timeout_s if sig == signal.SIGTERM else 5)
            if not procs:
                break
        for proc in self.processes.values():
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=5)
        self.processes.clear()

    def __enter__(self) -> AirflowServices:
        try:
            return self.start()
        except BaseException:
            self.stop()
            raise

    def __exit__(self, *exc: object) -> None:
        self.stop()


def set_paused(settings: Settings, dag_ids: list[str], paused: bool) -> None:
    """Pause or unpause DAGs in the dev (SQLite) metadata database, as ``airflow dags pause`` does."""
    with sqlite3.connect(settings.airflow_dir / "airflow.db") as db:
        db.executemany("UPDATE dag SET is_paused = ? WHERE dag_id = ?", [(int(paused), d) for d in dag_ids])


def wait_for(condition, timeout_s: float, what: str, services: AirflowServices | None = None, every_s: float = 1.0):
    """Poll ``condition()`` until it returns something truthy (returned), failing after ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while True:
        result = condition()
        if result:
            return result
        if services is not None:
            services.check_alive()
        if time.monotonic() > deadline:
            raise AirflowError(f"timed out after {timeout_s:.0f} s waiting for {what}", hint="see the service logs")
        time.sleep(every_s)
