"""GX Data Docs of real DAG-path runs (real broker, real GX), served under /quality/ by the real app."""

from __future__ import annotations

import re
import time

import pyarrow.parquet as pq
from fastapi.testclient import TestClient

from catalog import get_contract, landed_contracts
from ingest.landing import land_once
from ingest.produce import send
from ingest.simulate import simulate
from quality.docs import docs_root
from quality.suite import expectation_specs, required_columns, unique_reading
from serving.app import create_app

RUN = "manual__2026-11-22T06:00:00+00:00"  # an Airflow run id: its ':' and '+' end up in the docs' paths


def _land(settings, dataset_id: str) -> tuple[int, float]:
    """Land simulated readings (bad ones and replayed copies included) the way a DAG does; return how many
    rows were quarantined and how long validation plus Data Docs took."""
    contract = get_contract(dataset_id)
    records = simulate(contract, 300, seed=5, bad_ratio=0.1)[0]
    send(settings, contract, records + records[:20])
    started = time.monotonic()
    result = land_once(settings, contract, RUN)
    return result.quarantined_rows, time.monotonic() - started


def _values(settings, dataset_id: str) -> set[str]:
    """Distinctive values of the landed rows (both zones): ids and pseudonyms, and measured numbers precise
    enough not to be mistaken for a count or a percentage — not the contract's allowed values, which the
    suite names."""
    allowed = {value for column in get_contract(dataset_id).columns for value in column.allowed or ()}
    found = set()
    for path in settings.lake.glob(f"*/{dataset_id}/date=*/*.parquet"):
        for row in pq.read_table(path).to_pylist():
            for name, value in row.items():
                if name.startswith("_"):
                    continue
                if isinstance(value, str) and len(value) >= 8 and value not in allowed:
                    found.add(value)
                elif isinstance(value, float) and len(repr(value)) >= 7:
                    found.add(repr(value))
    return found


def _files(settings, dataset_id: str) -> dict[str, str]:
    """Every HTML and JSON file GX wrote for the dataset: its stored results and its built site."""
    roots = [docs_root(settings) / dataset_id, settings.state / "gx" / "projects" / dataset_id]
    return {
        str(p): p.read_text(errors="replace")
        for root in roots
        for p in root.rglob("*")
        if p.suffix in (".html", ".json")
    }


def test_quality_page_renders_before_any_docs_are_built(settings):
    with TestClient(create_app(settings)) as client:
        page = client.get("/quality")  # redirected to /quality/
        assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
        assert "No Data Docs yet" in page.text
        assert all(f"<code>{c.id}</code>" in page.text for c in landed_contracts())
        missing = client.get("/quality/air_quality/index.html")
        assert missing.status_code == 404 and missing.json()["error"]["code"] == "not_found"


def test_data_docs_of_real_runs_show_counts_and_names_and_no_safe_zone_value(settings):
    quarantined = {}
    for dataset_id in ("air_quality", "mobility_trips"):
        quarantined[dataset_id], took = _land(settings, dataset_id)
        assert took < 15, f"validating and building the docs of {dataset_id} took {took:.1f} s"

    with TestClient(create_app(settings)) as client:
        page = client.get("/quality/")
        assert page.status_code == 200 and "No Data Docs yet" not in page.text
        for dataset_id in ("air_quality", "mobility_trips"):
            contract = get_contract(dataset_id)
            assert f'href="{dataset_id}/index.html"' in page.text
            index = client.get(f"/quality/{dataset_id}/index.html")
            assert index.status_code == 200 and f"cityhub.{dataset_id}" in index.text
            links = set(re.findall(r"validations/[^'\"]+?\.html", index.text))
            assert len(links) == 1  # one run, one GX batch
            run_page = client.get(f"/quality/{dataset_id}/{links.pop()}")
            assert run_page.status_code == 200
            suite_page = client.get(f"/quality/{dataset_id}/expectations/cityhub/{dataset_id}.html")
            assert suite_page.status_code == 200
            # expectation names and counts: the uniqueness of readings among them, the replayed copies counted
            stored = "".join(_files(settings, dataset_id).values())
            for spec in expectation_specs(contract, required_columns(contract)):
                assert spec.type in stored or _snake(spec.type) in stored
            marker = re.escape(f'"cityhub_later_copies ({unique_reading(contract).name})": ')
            assert 15 <= int(re.search(marker + r"(\d+)", stored).group(1)) <= 20  # the replays that decode
            assert "cityhub_later_copies" in run_page.text
            assert "unexpected values found" in run_page.text and "of 320 total rows" in run_page.text
            assert quarantined[dataset_id] > 20

    open_values = _values(settings, "air_quality")
    open_docs = "".join(_files(settings, "air_quality").values())
    assert "smoky" in open_docs or "5000.0" in open_docs  # open data may show a sample of what failed
    assert any(value in open_docs for value in open_values | {"smoky", "5000.0"})

    safe_values = _values(settings, "mobility_trips") | {"horse", "-10.0"}  # + planted bad values
    assert len(safe_values) > 500  # pseudonymised rider ids, trip ids, distances, coordinates
    for path, text in _files(settings, "mobility_trips").items():
        leaked = [value for value in safe_values if value in text]
        assert not leaked, f"{path} holds values of safe-zone rows: {leaked[:3]}"
        assert "pandas_data_fingerprint" not in text


def _snake(name: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()
