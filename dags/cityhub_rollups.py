"""One rollup DAG per open dataset with coordinates and numeric measures: ``cityhub_rollup_<dataset>``.

Scheduled by the dataset's clean Asset (``cityhub.clean.<dataset>``, emitted by its landing DAG's ``land``
task), so it runs after every landing run. Its one task recomputes the hourly and daily rollups by district
and by 250 m cell of the clean date partitions that changed since its last run
(:func:`ingest.rollups.refresh_rollups`) and emits ``cityhub.rollup.<dataset>``. A retry or rerun finds
nothing changed, or rewrites the same files with the same bytes. Safe-zone datasets get no rollup DAG: their
aggregates are not published openly.

Generated from the catalog; importing this file reads only the catalog's modules and ``CITYHUB_*`` variables.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from airflow.sdk import DAG, task

from infra.assets import clean_asset, rollup_asset
from infra.dag_callbacks import task_defaults
from ingest.rollups import rollup_contracts

DEFAULT_ARGS = task_defaults(timedelta(seconds=30), timedelta(minutes=10), timedelta(minutes=30))


def rollup_dag_id(dataset_id: str) -> str:
    return f"cityhub_rollup_{dataset_id}"


def build_rollup_dag(dataset_id: str, tier: str) -> DAG:
    with DAG(
        dag_id=rollup_dag_id(dataset_id),
        description=f"{dataset_id}: hourly and daily rollups by district and 250 m cell",
        schedule=[clean_asset(dataset_id)],
        start_date=datetime(2026, 1, 1),
        catchup=False,
        max_active_runs=1,
        default_args=DEFAULT_ARGS,
        tags=["cityhub", "rollup", tier, dataset_id],
        doc_md=__doc__,
    ) as dag:

        @task(outlets=[rollup_asset(dataset_id)])
        def roll_up() -> dict:
            from dataclasses import asdict

            from catalog import get_contract
            from infra.settings import get_settings
            from ingest.rollups import refresh_rollups

            return asdict(refresh_rollups(get_settings().lake, get_contract(dataset_id)))

        roll_up()
    return dag


for _contract in rollup_contracts():
    globals()[rollup_dag_id(_contract.id)] = build_rollup_dag(_contract.id, _contract.tier)
