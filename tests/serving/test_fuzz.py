"""schemathesis against /openapi.json of a real server over a real lake: no input makes the API answer 5xx.

100 generated examples per operation (each operation a test of its own), then a stateful run that follows
the links schemathesis infers between operations (ids from one answer into the next request). Every error
answer must keep the one JSON error shape.

(The cases are drawn through Hypothesis directly: schemathesis' pytest plugin does not load under pytest 9.)
"""

from __future__ import annotations

import contextlib
import tempfile
from pathlib import Path

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.errors import Flaky

from catalog import all_contracts, get_contract
from infra.settings import Settings
from ingest.produce import send
from ingest.runner import ingest_loop
from ingest.simulate import simulate
from serving.app import create_app
from tests.serving.live import live_server

ERROR_KEYS = {"status", "code", "message", "hint"}
FUZZ = settings(
    max_examples=100,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.filter_too_much],
)
# the operations, read off the app's own schema at collection time (no lake needed for that)
OPERATIONS = [
    (path, method.upper())
    for path, methods in create_app(Settings(home=Path(tempfile.gettempdir()) / "cityhub-openapi"))
    .openapi()["paths"]
    .items()
    for method in methods
]


@pytest.fixture(scope="module")
def base_url(tmp_path_factory: pytest.TempPathFactory, broker) -> str:
    home = Path(tmp_path_factory.mktemp("fuzz")) / "home"
    # fuzzing sends thousands of requests a minute from one client: the rate limit would answer most of them
    lake_settings = Settings(home=home, broker_port=broker.port, topic_prefix="fuzz.", rate_limit_per_min=0)
    for dataset_id, count in (("air_quality", 200), ("traffic_flow", 200), ("mobility_trips", 50)):
        contract = get_contract(dataset_id)
        send(lake_settings, contract, simulate(contract, count, seed=3, bad_ratio=0.05)[0])
    ingest_loop(lake_settings, ["air_quality", "traffic_flow", "mobility_trips"])
    with live_server(create_app(lake_settings)) as url:
        yield url


@pytest.fixture(scope="module")
def api_schema(base_url):
    """The served schema, with ``dataset_id`` drawn from the catalog (and one unknown id) rather than from all
    strings: random ids would only ever reach the 404 of an unknown dataset, never a query."""
    raw = httpx.get(f"{base_url}/openapi.json").json()
    ids = [c.id for c in all_contracts()] + ["no_such_dataset"]
    for operations in raw["paths"].values():
        for operation in operations.values():
            for parameter in operation.get("parameters", []):
                if parameter["name"] == "dataset_id":
                    parameter["schema"] = {"type": "string", "enum": ids}
    return schemathesis.openapi.from_dict(raw)


def _no_server_error_and_one_error_shape(response) -> None:
    assert response.status_code < 500, f"{response.status_code}: {response.text[:500]}"
    if response.status_code >= 400:
        body = response.json()
        assert set(body) == {"error"} and set(body["error"]) == ERROR_KEYS, body


@pytest.mark.parametrize(("path", "method"), OPERATIONS, ids=[f"{m} {p}" for p, m in OPERATIONS])
def test_no_input_makes_a_server_error(api_schema, base_url, path, method):
    strategy = api_schema[path][method].as_strategy()
    calls = []

    @FUZZ
    @given(data=st.data())
    def fuzz(data) -> None:
        case = data.draw(strategy)
        response = case.call(base_url=base_url, timeout=30)
        calls.append(response.status_code)
        _no_server_error_and_one_error_shape(response)

    fuzz()
    # Hypothesis stops early only when the parameters cannot make 100 different requests (none, or only enums)
    parameters = api_schema[path][method].definition.raw.get("parameters", [])
    assert len(calls) >= 100 or all(_finite(p["schema"]) for p in parameters), len(calls)


def _finite(schema: dict) -> bool:
    if "anyOf" in schema:
        return all(_finite(s) for s in schema["anyOf"])
    return "enum" in schema or schema.get("type") in ("boolean", "null")


def test_stateful_sequences_make_no_server_error(api_schema, base_url):
    machine = api_schema.as_state_machine()
    answered: list[int] = []
    failures: list[str] = []

    class Checked(machine):  # type: ignore[misc, valid-type]
        def get_call_kwargs(self, case) -> dict:
            return {"base_url": base_url, "timeout": 30}

        def validate_response(self, response, case, **kwargs) -> None:
            answered.append(response.status_code)
            try:
                _no_server_error_and_one_error_shape(response)
            except AssertionError as error:
                failures.append(f"{case.method} {case.formatted_path}: {error}")
                raise

    # The API keeps state between scenarios (safe-zone projects, the differencing guard's query history),
    # so Hypothesis replaying a sequence can see other answers and follow other links; it then gives up
    # with "inconsistent data generation". That is no finding about the server, and schemathesis' own
    # runner counts it the same way: only a checked answer that failed is one. Every answer was checked.
    with contextlib.suppress(Flaky):
        Checked.run(settings=settings(max_examples=30, deadline=None, suppress_health_check=list(HealthCheck)))
    assert not failures, failures
    assert len(answered) >= 30, len(answered)
