"""Task defaults and callbacks shared by cityhub's DAGs (imported by the DAG files, so: no I/O at import)."""

from __future__ import annotations

import logging
from datetime import timedelta

log = logging.getLogger("cityhub.dags")


def log_failure(context) -> None:
    """Failure callback: one line naming the dataset (or the DAG, for the poll and retention DAGs), the run,
    the task, the try and the reason."""
    task_instance = context.get("task_instance") or context.get("ti")
    dag_id = getattr(task_instance, "dag_id", "?")
    log.error(
        "cityhub task failed: dataset=%s run_id=%s task=%s try=%s reason=%s",
        dag_id.removeprefix("cityhub_"),
        context.get("run_id"),
        getattr(task_instance, "task_id", "?"),
        getattr(task_instance, "try_number", "?"),
        context.get("exception"),
    )


def task_defaults(retry_delay: timedelta, max_retry_delay: timedelta, execution_timeout: timedelta) -> dict:
    """``default_args`` of every cityhub DAG: two retries with exponential backoff, a time limit, the failure log
    line. Only the delays and the limit differ between DAGs."""
    return {
        "owner": "cityhub",
        "retries": 2,
        "retry_delay": retry_delay,
        # a multiplier since Airflow 3 (True = 1 would keep the delay constant)
        "retry_exponential_backoff": 2.0,
        "max_retry_delay": max_retry_delay,
        "execution_timeout": execution_timeout,
        "on_failure_callback": log_failure,
    }
