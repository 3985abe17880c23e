"""schemathesis over the safe-zone routes of a real server, with valid keys and real ids: no input makes a 5xx,
and every error has the one JSON shape. (Drawn through Hypothesis directly, as ``tests/serving/test_fuzz.py``.)"""

from __future__ import annotations

import httpx
import pytest
import schemathesis
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from serving.app import create_app
from tests.safezone.conftest import Zone
from tests.serving.live import live_server

ERROR_KEYS = {"status", "code", "message", "hint"}
FUZZ = settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.filter_too_much],
)


@pytest.fixture
def world(settings, monkeypatch):
    monkeypatch.setenv("CITYHUB_RATE_LIMIT_PER_MIN", "0")
    from infra.settings import Settings

    settings = Settings()
    app = create_app(settings)
    with live_server(app) as url, TestClient(create_app(settings)) as client:
        zone = Zone(client, settings)
        project, query_key = zone.project()
        answer = zone.ok(zone.ask(project, query_key, {"group_by": ["mode"], "measures": ["persons"]}))
        export = zone.ok(zone.post(f"/queries/{answer['id']}/export", query_key))
        spare = zone.ok(zone.post("/keys", zone.admin, {"user": zone.users["applicant"]}))
        ids = {
            "project_id": [project, "prj_none"],
            "answer_id": [answer["id"], "ans_none"],
            "export_id": [export["id"], "exp_none"],
            "key_id": [spare["id"], "key_none"],
        }
        raw = httpx.get(f"{url}/openapi.json").json()
        raw["paths"] = {p: ops for p, ops in raw["paths"].items() if p.startswith("/api/v1/safezone")}
        for operations in raw["paths"].values():
            for operation in operations.values():
                for parameter in operation.get("parameters", []):
                    if parameter["name"] in ids:
                        parameter["schema"] = {"type": "string", "enum": ids[parameter["name"]]}
        yield url, schemathesis.openapi.from_dict(raw), zone, query_key


def _key(path: str, method: str, zone: Zone, query_key: str) -> str:
    if "/queries" in path:
        return query_key
    if path.startswith("/api/v1/safezone/exports"):
        return zone.keys["reviewer"]
    return zone.admin


def _fuzz(url: str, strategy, headers: dict, label: str) -> int:
    calls = []

    @FUZZ
    @given(data=st.data())
    def fuzz(data) -> None:
        case = data.draw(strategy)
        response = case.call(base_url=url, headers=headers, timeout=30)
        calls.append(response.status_code)
        assert response.status_code < 500, f"{label} {response.status_code}: {response.text[:300]}"
        if response.status_code >= 400:
            body = response.json()
            assert set(body) == {"error"} and set(body["error"]) == ERROR_KEYS, body

    fuzz()
    return len(calls)


def test_safezone_routes_make_no_server_error(world):
    url, schema, zone, query_key = world
    operations = [(p, m.upper()) for p, ops in schema.raw_schema["paths"].items() for m in ops]
    assert len(operations) >= 18
    for path, method in operations:
        headers = {"Authorization": f"Bearer {_key(path, method, zone, query_key)}"}
        assert _fuzz(url, schema[path][method].as_strategy(), headers, f"{method} {path}") >= 1
