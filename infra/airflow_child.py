"""Child process of :func:`infra.airflow.run_dags`: runs each named DAG once with ``dag.test()``."""

from __future__ import annotations

import json
import sys


def main(dag_ids: list[str]) -> int:
    from airflow.dag_processing.dagbag import DagBag

    from infra.airflow import DAGS_FOLDER

    bag = DagBag(dag_folder=str(DAGS_FOLDER))
    if bag.import_errors:
        print(json.dumps(bag.import_errors), file=sys.stderr)
        return 2
    failed = 0
    for dag_id in dag_ids:
        dag_run = bag.get_dag(dag_id).test()
        print(
            "CITYHUB_RUN " + json.dumps({"dag_id": dag_id, "run_id": dag_run.run_id, "state": str(dag_run.state)}),
            flush=True,
        )
        failed += dag_run.state != "success"
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
