"""DAG integrity, as Airflow's own tests check it: imports cleanly, does no I/O, one DAG per dataset."""

from __future__ import annotations

import socket
import subprocess
import sys
from datetime import timedelta

from catalog import derived_contracts, landed_contracts
from catalog.sources import SOURCES
from infra.airflow import DAGS_FOLDER
from ingest.derived import derived_sources
from ingest.rollups import rollup_contracts


def _dagbag():
    from airflow.dag_processing.dagbag import DagBag

    return DagBag(dag_folder=str(DAGS_FOLDER))


def test_dagbag_has_one_dag_per_dataset_and_no_import_errors():
    bag = _dagbag()
    assert bag.import_errors == {}
    extra = ["cityhub_open_data_poll", "cityhub_retention", "cityhub_compaction"]
    rollups = [f"cityhub_rollup_{c.id}" for c in rollup_contracts()]
    derive = [f"cityhub_derive_{c.id}" for c in derived_sources()]
    assert sorted(bag.dag_ids) == sorted([c.dag_id for c in landed_contracts()] + extra + rollups + derive)
    retention = bag.dags["cityhub_retention"]
    assert {t.task_id for t in retention.tasks} == {f"retain_{c.id}" for c in landed_contracts()}
    assert "cityhub" in retention.tags
    compaction = bag.dags["cityhub_compaction"]
    assert {t.task_id for t in compaction.tasks} == {f"compact_{c.id}" for c in landed_contracts()}
    assert {"cityhub", "compaction"} <= set(compaction.tags) and compaction.catchup is False
    poll = bag.dags["cityhub_open_data_poll"]
    assert {t.task_id for t in poll.tasks} == {f"poll_{s.id}" for s in SOURCES}
    assert "cityhub" in poll.tags
    for contract in landed_contracts():
        dag = bag.dags[contract.dag_id]
        assert [t.task_id for t in dag.topological_sort()] == ["consume", "validate", "land", "publish"]
        assert {"cityhub", contract.tier} <= set(dag.tags)
        assert dag.catchup is False
    for dataset in (c.id for c in rollup_contracts()):  # each rollup DAG runs when its dataset has landed
        dag = bag.dags[f"cityhub_rollup_{dataset}"]
        assert [t.task_id for t in dag.tasks] == ["roll_up"]
        assert {"cityhub", "rollup", "open", dataset} <= set(dag.tags) and dag.catchup is False
        assert [a.name for a in dag.timetable.asset_condition.objects] == [f"cityhub.clean.{dataset}"]
    assert derive == ["cityhub_derive_energy_usage", "cityhub_derive_mobility_trips"]
    for source in derived_sources():  # each derive DAG runs when its safe-zone source has landed
        dag = bag.dags[f"cityhub_derive_{source.id}"]
        derived = [c.id for c in derived_contracts(source.id)]
        assert [t.task_id for t in dag.tasks] == ["derive"] and dag.catchup is False
        assert {"cityhub", "derived", "open", source.id, *derived} <= set(dag.tags)
        assert [a.name for a in dag.timetable.asset_condition.objects] == [f"cityhub.clean.{source.id}"]
        assert sorted(a.name for a in dag.tasks[0].outlets) == [f"cityhub.derived.{d}" for d in sorted(derived)]
    for dag in bag.dags.values():  # a failed task of any DAG logs one line naming dataset, run and reason
        assert all(t.on_failure_callback for t in dag.tasks), dag.dag_id


def test_every_task_has_a_time_limit_and_retries_with_exponential_backoff():
    """As the scheduler sees them (the serialized DAGs): it computes the next try's delay from these."""
    from airflow.serialization.serialized_objects import DagSerialization

    bag = _dagbag()
    for dag_id, dag in bag.dags.items():
        for task in DagSerialization.deserialize_dag(DagSerialization.serialize_dag(dag)).tasks:
            where = f"{dag_id}.{task.task_id}"
            assert task.execution_timeout and task.execution_timeout > timedelta(0), where
            assert task.retries >= 2 and task.retry_delay > timedelta(0), where
            # a multiplier since Airflow 3: True (= 1) means a constant delay
            assert task.retry_exponential_backoff >= 2, where
            assert task.max_retry_delay and task.max_retry_delay > task.retry_delay, where  # a cap that lets it grow


def test_importing_the_dags_does_no_io(tmp_path):
    """Import every DAG file with sockets and writes under CITYHUB_HOME made to fail."""
    home = tmp_path / "home"
    code = f"""
import socket, os
os.environ["CITYHUB_HOME"] = {str(home)!r}
def refuse(*a, **k): raise AssertionError("network I/O at import")
socket.socket.connect = refuse
socket.create_connection = refuse
import runpy
for path in {sorted(str(p) for p in DAGS_FOLDER.glob("cityhub_*.py"))!r}:
    runpy.run_path(path)
assert not os.path.exists({str(home)!r}), "a DAG file touched CITYHUB_HOME at import"
print("ok")
"""
    result = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        env={"AIRFLOW_HOME": str(tmp_path / "af"), "PATH": "/usr/bin:/bin"},
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip().endswith("ok")
    assert socket  # the patched module is only the child's
