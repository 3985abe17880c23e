"""The open-data polling DAG: one task per source in ``catalog/sources.py``, on a schedule.

Each task fetches its source, skips it when unchanged (ETag, Last-Modified, content hash), and produces the
records to the dataset's topic; the dataset's own DAG lands them. Import does no I/O.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from airflow.sdk import DAG, task

from catalog.sources import SOURCES, PollSource
from infra.dag_callbacks import task_defaults

with DAG(
    dag_id="cityhub_open_data_poll",
    description="Fetch the open-data sources and produce new content to Kafka",
    schedule=min((s.interval for s in SOURCES), default=timedelta(hours=1)),
    start_date=datetime(2026, 1, 1),
    catchup=False,
    max_active_runs=1,
    default_args=task_defaults(timedelta(minutes=1), timedelta(minutes=15), timedelta(minutes=15)),
    tags=["cityhub", "poll"],
    doc_md=__doc__,
) as dag:

    def _poll_task(source: PollSource):
        @task(task_id=f"poll_{source.id}")
        def poll_source() -> dict:
            from dataclasses import asdict

            from infra.settings import get_settings
            from ingest.poll import poll

            return asdict(poll(get_settings(), source))

        return poll_source()

    for _source in SOURCES:
        _poll_task(_source)
