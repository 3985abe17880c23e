"""Callbacks shared by cityhub's DAGs (imported by the DAG files, so: no I/O at import)."""

from __future__ import annotations

import logging

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
