"""Shared fixtures: a real embedded broker per test session and an isolated CITYHUB_HOME per test."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

os.environ.setdefault("GX_ANALYTICS_ENABLED", "False")
os.environ.setdefault("TQDM_DISABLE", "1")
# Airflow reads its config at first import: keep the tests' Airflow away from ~/airflow.
os.environ.setdefault("AIRFLOW_HOME", tempfile.mkdtemp(prefix="cityhub-test-airflow-"))
os.environ.setdefault("AIRFLOW__CORE__LOAD_EXAMPLES", "False")

from infra.broker import EmbeddedBroker, free_port  # noqa: E402, F401 - free_port is used by tests
from infra.settings import Settings  # noqa: E402

FIXTURES = Path(__file__).parent / "fixtures"


@pytest.fixture(scope="session")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedBroker]:
    log = tmp_path_factory.mktemp("broker") / "broker.log"
    with EmbeddedBroker(free_port(), log) as running:
        yield running


@pytest.fixture
def settings(
    tmp_path: Path, broker: EmbeddedBroker, request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
) -> Settings:
    """Settings on the session broker with a home and topic prefix of this test's own."""
    prefix = f"t{abs(hash(request.node.nodeid)) % 10**8}."
    monkeypatch.setenv("CITYHUB_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("CITYHUB_BROKER_PORT", str(broker.port))
    monkeypatch.setenv("CITYHUB_TOPIC_PREFIX", prefix)
    monkeypatch.delenv("CITYHUB_KAFKA_BOOTSTRAP", raising=False)
    return Settings()
