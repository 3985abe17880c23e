"""A paused or unreachable broker: retries with backoff and a clear log line, no crash loop, nothing lost."""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from catalog import get_contract
from infra.broker import EmbeddedBroker, free_port
from infra.errors import BrokerError
from infra.settings import Settings
from ingest.produce import send
from ingest.runner import ingest_loop
from ingest.simulate import simulate


def test_unreachable_broker_is_retried_then_reported_clearly(tmp_path, caplog):
    settings = Settings(home=tmp_path, broker_port=free_port(), broker_wait_s=2)
    with caplog.at_level(logging.WARNING), pytest.raises(BrokerError) as caught:
        ingest_loop(settings, ["air_quality"])
    assert "gave up on air_quality" in caught.value.message and "cityhub broker" in caught.value.hint
    retries = [r for r in caplog.records if "unavailable while landing air_quality" in r.getMessage()]
    assert len(retries) >= 2 and "retrying in 1s" in retries[0].getMessage()


def test_a_paused_broker_delays_landing_but_loses_nothing(tmp_path):
    with EmbeddedBroker(free_port()) as broker:
        settings = Settings(home=tmp_path, broker_port=broker.port)
        contract = get_contract("traffic_flow")
        send(settings, contract, simulate(contract, 30_000, seed=41)[0])
        env = {
            **os.environ,
            "CITYHUB_HOME": str(tmp_path),
            "CITYHUB_BROKER_PORT": str(broker.port),
            "CITYHUB_FETCH_MAX_RECORDS": "5000",
            "CITYHUB_TOPIC_PREFIX": settings.topic_prefix,
        }
        cli = Path(sys.executable).with_name("cityhub")
        proc = subprocess.Popen(
            [str(cli), "ingest", "traffic_flow", "--until-idle"],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        time.sleep(6)
        broker.process.send_signal(signal.SIGSTOP)
        time.sleep(8)
        broker.process.send_signal(signal.SIGCONT)
        out, _ = proc.communicate(timeout=300)
        assert proc.returncode == 0, out[-3000:]
        assert "traffic_flow: landed 30000 clean row(s), quarantined 0" in out
