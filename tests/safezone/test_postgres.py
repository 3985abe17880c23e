"""The safe zone on PostgreSQL: the same migrations and flow as on SQLite.

The server is ``CITYHUB_TEST_POSTGRES_URL`` when set; else a throwaway cluster (``initdb`` + ``pg_ctl`` on a
free port, Unix socket only, run as ``nobody`` when the tests run as root) when PostgreSQL is installed; else the
tests skip and say why."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import uuid
from collections.abc import Iterator

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from infra.broker import free_port
from infra.settings import Settings
from serving.safezone import audit, db
from tests.safezone.conftest import Zone


def _as_user(cmd: list[str]) -> list[str]:
    return ["runuser", "-u", "nobody", "--", *cmd] if os.geteuid() == 0 else cmd


@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    url = os.environ.get("CITYHUB_TEST_POSTGRES_URL")
    if url:
        yield url
        return
    if not (shutil.which("initdb") and shutil.which("pg_ctl")) or (os.geteuid() == 0 and not shutil.which("runuser")):
        pytest.skip("no PostgreSQL: set CITYHUB_TEST_POSTGRES_URL, or install PostgreSQL (initdb, pg_ctl)")
    folder = tempfile.mkdtemp(prefix="cityhub-pg-")
    if os.geteuid() == 0:
        shutil.chown(folder, "nobody")
    data, port = f"{folder}/data", free_port()
    try:
        subprocess.run(
            _as_user(["initdb", "-D", data, "-A", "trust", "-U", "cityhub"]), check=True, capture_output=True
        )
        options = f"-p {port} -k {folder} -c listen_addresses=''"
        subprocess.run(
            _as_user(["pg_ctl", "-D", data, "-l", f"{folder}/log", "-w", "-o", options, "start"]),
            check=True,
            capture_output=True,
        )
    except (subprocess.CalledProcessError, OSError) as exc:
        shutil.rmtree(folder, ignore_errors=True)
        pytest.skip(f"could not start a throwaway PostgreSQL: {exc}")
    try:
        yield f"postgresql+psycopg://cityhub@/postgres?host={folder}&port={port}"
    finally:
        subprocess.run(_as_user(["pg_ctl", "-D", data, "-w", "-m", "fast", "stop"]), capture_output=True)
        shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture
def pg_settings(settings, server, monkeypatch) -> Iterator[Settings]:
    """``settings`` (a planted lake) on a database of this test's own."""
    name = f"cityhub_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(server, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.exec_driver_sql(f"CREATE DATABASE {name}")
    url = sa.engine.make_url(server).set(database=name).render_as_string(hide_password=False)
    monkeypatch.setenv("CITYHUB_DATABASE_URL", url)
    yield Settings()
    db.dispose_all()
    with admin.connect() as conn:
        conn.exec_driver_sql(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
    admin.dispose()


def test_migrations_on_postgres(pg_settings):
    engine = db.engine_for(pg_settings)
    assert engine.dialect.name == "postgresql"
    assert db.schema_version(engine) == len(db.MIGRATIONS) and db.migrate(engine) == []


def test_the_flow_on_postgres(pg_settings):
    from serving.app import create_app

    with TestClient(create_app(pg_settings), raise_server_exceptions=False) as client:
        zone = Zone(client, pg_settings)
        project, key = zone.project()
        answer = zone.ok(zone.ask(project, key, {"group_by": ["start_district", "mode"], "measures": ["persons"]}))
        assert any(s["reason"] == "persons_below_min" for s in answer["suppressed"])
        export = zone.ok(zone.post(f"/queries/{answer['id']}/export", key))
        zone.ok(zone.post(f"/exports/{export['id']}/approve", zone.keys["reviewer"], {"reason": "ok"}))
        assert zone.get(f"/exports/{export['id']}/download", key).status_code == 200
        with db.engine_for(pg_settings).connect() as conn:
            log = audit.entries(conn)
            head = audit.head(conn)
        assert audit.verify(log, [head]) == [] and head["seq"] == len(log)
