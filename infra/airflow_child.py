"""Child process of :func:`infra.airflow.run_dags`: runs each named DAG once with ``dag.test()``.

``--logical-date=ISO`` fixes the runs' logical date and run_after, hence their run ids (``manual__<ISO>``):
``dag.test()`` then clears and replaces an earlier DagRun of that date, which reruns the same run.
"""

from __future__ import annotations

import json
import sys
from datetime import datetime


def main(args: list[str]) -> int:
    from airflow.dag_processing.dagbag import DagBag

    from infra.airflow import DAGS_FOLDER

    dates = [datetime.fromisoformat(a.split("=", 1)[1]) for a in args if a.startswith("--logical-date=")]
    when = {"logical_date": dates[0], "run_after": dates[0]} if dates else {}
    bag = DagBag(dag_folder=str(DAGS_FOLDER))
    if bag.import_errors:
        print(json.dumps(bag.import_errors), file=sys.stderr)
        return 2
    failed = 0
    for dag_id in (a for a in args if not a.startswith("--")):
        dag_run = bag.get_dag(dag_id).test(**when)
        print(
            "CITYHUB_RUN " + json.dumps({"dag_id": dag_id, "run_id": dag_run.run_id, "state": str(dag_run.state)}),
            flush=True,
        )
        failed += dag_run.state != "success"
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
