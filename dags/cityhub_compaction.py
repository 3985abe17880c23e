"""The daily compaction DAG: each dataset's closed date partitions (days over in UTC) merged into one file each,
then the files compaction retired longer than CITYHUB_COMPACTION_GRACE_S ago deleted.

One task per dataset, derived from the catalog. Import does no I/O.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from airflow.sdk import DAG, get_current_context, task

from catalog import landed_contracts
from catalog.contract import Contract
from infra.dag_callbacks import task_defaults

with DAG(
    dag_id="cityhub_compaction",
    description="Merge the small chunk files of closed date partitions; delete retired files after the grace period",
    schedule=timedelta(days=1),
    start_date=datetime(2026, 1, 1),
    catchup=False,
    max_active_runs=1,
    default_args=task_defaults(timedelta(minutes=5), timedelta(hours=1), timedelta(hours=1)),
    tags=["cityhub", "compaction"],
    doc_md=__doc__,
) as dag:

    def _compaction_task(contract: Contract):
        @task(task_id=f"compact_{contract.id}")
        def compact() -> dict:
            from dataclasses import asdict

            from infra.settings import get_settings
            from ingest.compaction import compact_dataset

            # the run's interval end, like retention: a rerun of an old run compacts what was closed back then
            interval_end = get_current_context()["data_interval_end"]
            return asdict(compact_dataset(get_settings(), contract, interval_end.date()))

        return compact()

    for _contract in landed_contracts():
        _compaction_task(_contract)
