"""The daily retention DAG: each dataset's zones keep their date partitions as long as the contract says.

One task per dataset, derived from the catalog. Import does no I/O.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from airflow.sdk import DAG, get_current_context, task

from catalog import landed_contracts
from catalog.contract import Contract
from infra.dag_callbacks import task_defaults

with DAG(
    dag_id="cityhub_retention",
    description="Drop date partitions older than each zone's retention",
    schedule=timedelta(days=1),
    start_date=datetime(2026, 1, 1),
    catchup=False,
    max_active_runs=1,
    default_args=task_defaults(timedelta(minutes=5), timedelta(hours=1), timedelta(minutes=30)),
    tags=["cityhub", "retention"],
    doc_md=__doc__,
) as dag:

    def _retention_task(contract: Contract):
        @task(task_id=f"retain_{contract.id}")
        def retain() -> dict:
            from dataclasses import asdict

            from infra.settings import get_settings
            from ingest.retention import apply_retention

            interval_end = get_current_context()["data_interval_end"]
            return asdict(apply_retention(get_settings(), contract, interval_end.date()))

        return retain()

    for _contract in landed_contracts():
        _retention_task(_contract)
