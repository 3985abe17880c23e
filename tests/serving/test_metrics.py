"""``GET /metrics``: Prometheus text that follows a landing — rows, consumer lag, API traffic by route."""

from __future__ import annotations

import re

from fastapi.testclient import TestClient

from catalog import get_contract
from ingest.produce import send
from ingest.runner import ingest_loop
from ingest.simulate import simulate
from serving.app import create_app

SAMPLE = re.compile(r"^(?P<name>[a-z_]+)(?:\{(?P<labels>.*)\})? (?P<value>\S+)$")


def _scrape(client: TestClient) -> dict[tuple[str, frozenset], float]:
    response = client.get("/metrics")
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/plain")
    samples = {}
    for line in response.text.splitlines():
        if not line or line.startswith("#"):
            continue
        match = SAMPLE.match(line)
        assert match, f"not Prometheus text: {line!r}"
        labels = frozenset(re.findall(r'(\w+)="([^"]*)"', match["labels"] or ""))
        samples[(match["name"], labels)] = float(match["value"])
    return samples


def _value(samples, name: str, **labels) -> float:
    return samples[(name, frozenset((k, str(v)) for k, v in labels.items()))]


def _lag(samples, dataset: str) -> float:
    lags = [v for (n, labels), v in samples.items() if n == "cityhub_consumer_lag" and ("dataset", dataset) in labels]
    return sum(lags)


def test_metrics_reflect_a_landing(settings):
    contract = get_contract("air_quality")
    send(settings, contract, simulate(contract, 120, seed=3, bad_ratio=0.05)[0])
    with TestClient(create_app(settings)) as client:
        before = _scrape(client)
        assert _value(before, "cityhub_kafka_up") == 1
        assert _lag(before, "air_quality") == 120
        assert _value(before, "cityhub_rows_landed_total", dataset="air_quality", zone="clean") == 0

        clean, quarantined = ingest_loop(settings, ["air_quality"])["air_quality"]
        after = _scrape(client)
        assert _lag(after, "air_quality") == 0
        assert _value(after, "cityhub_rows_landed_total", dataset="air_quality", zone="clean") == clean > 0
        assert _value(after, "cityhub_rows_landed_total", dataset="air_quality", zone="quarantine") == quarantined > 0


def test_api_requests_are_counted_by_route_template(settings):
    with TestClient(create_app(settings)) as client:
        for _ in range(3):
            assert client.get("/api/v1/datasets/air_quality").status_code == 200
        assert client.get("/api/v1/datasets/no_such_dataset").status_code == 404
        samples = _scrape(client)
    route = "/api/v1/datasets/{dataset_id}"
    assert _value(samples, "cityhub_http_requests_total", method="GET", route=route, status=200) == 3
    assert _value(samples, "cityhub_http_requests_total", method="GET", route=route, status=404) == 1
    assert _value(samples, "cityhub_http_request_duration_seconds_count", method="GET", route=route) == 4
    assert _value(samples, "cityhub_http_request_duration_seconds_bucket", method="GET", route=route, le="+Inf") == 4
