"""Declare a dataset once: a new contract brings its topic, DAG, GX suite, DuckDB view and API route."""

from __future__ import annotations

import textwrap

from fastapi.testclient import TestClient

from catalog import all_contracts, get_contract
from infra.airflow import DAGS_FOLDER
from quality.suite import suite_for
from serving.app import create_app
from serving.db import Lake

NOISE = textwrap.dedent("""
    from datetime import timedelta
    from catalog.contract import Column, Contract

    CONTRACT = Contract(
        id="street_noise", title_ko="거리 소음", title_en="Street noise", description="Street noise (dB).",
        entity_type="NoiseLevelObserved", tier="open",
        columns=(
            Column("sensor_id", "entity_id", ("id",), required=True),
            Column("observed_at", "timestamp", ("dateObservedFrom", "dateObserved"), required=True),
            Column("lon", "lon", ("location",)), Column("lat", "lat", ("location",)),
            Column("laeq", "float", ("LAeq",), unit="2N", minimum=0, maximum=200),
        ),
        key_columns=("sensor_id",), event_time="observed_at", cadence=timedelta(minutes=10),
    )
""")


def test_new_contract_appears_everywhere(settings, tmp_path, monkeypatch):
    extra = tmp_path / "extra_catalog"
    extra.mkdir()
    (extra / "street_noise.py").write_text(NOISE)
    monkeypatch.setenv("CITYHUB_EXTRA_CATALOG_DIRS", str(extra))

    contract = get_contract("street_noise")
    assert contract in all_contracts()
    assert settings.topic_for("street_noise") == f"{settings.topic_prefix}street_noise"

    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=str(DAGS_FOLDER))
    assert bag.import_errors == {} and "cityhub_street_noise" in bag.dag_ids

    suite = suite_for(contract)
    assert suite.name == "cityhub.street_noise"
    assert any(getattr(e, "column", None) == "laeq" for e in suite.expectations)

    lake = Lake(settings)
    assert "street_noise" in lake.views()
    with lake.cursor() as cur:
        cur.execute(lake.view_sql(contract))
        assert cur.execute("SELECT count(*) FROM street_noise").fetchone() == (0,)
    lake.close()

    with TestClient(create_app(settings)) as client:
        assert "street_noise" in [d["id"] for d in client.get("/api/v1/datasets").json()["datasets"]]
        page = client.get("/api/v1/datasets/street_noise/records").json()
        assert page == {
            "dataset": "street_noise",
            "count": 0,
            "rows": [],
            "truncated": False,
            "next_cursor": None,
            "snapshot": None,  # a single page pins no snapshot
        }
