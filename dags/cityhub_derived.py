"""One DAG per safe-zone dataset with derived open datasets: ``cityhub_derive_<source>``.

Scheduled by the source's clean Asset (``cityhub.clean.<source>``, emitted by its landing DAG's ``land`` task),
so it runs after every landing run. Its one task recomputes the hourly and daily open releases of the Seoul days
fed by clean partitions that changed since its last run, with small-cell suppression in distinct persons
(``CITYHUB_MIN_PERSONS``) and complementary suppression across the two releases
(:func:`ingest.derived.refresh_derived`), and emits ``cityhub.derived.<dataset>`` for each derived dataset. A
retry or rerun finds nothing changed, or rewrites the same files with the same bytes.

Generated from the catalog; importing this file reads only the catalog's modules and ``CITYHUB_*`` variables.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from airflow.sdk import DAG, task

from catalog import derived_contracts, derived_sources, get_contract
from infra.assets import clean_asset, derived_asset
from infra.dag_callbacks import task_defaults

DEFAULT_ARGS = task_defaults(timedelta(seconds=30), timedelta(minutes=10), timedelta(minutes=30))


def build_derive_dag(source_id: str, derived: list[str]) -> DAG:
    with DAG(
        dag_id=get_contract(derived[0]).dag_id,  # the contract names its derive DAG
        description=f"{source_id}: open hourly and daily releases ({', '.join(derived)}), small cells suppressed",
        schedule=[clean_asset(source_id)],
        start_date=datetime(2026, 1, 1),
        catchup=False,
        max_active_runs=1,
        default_args=DEFAULT_ARGS,
        tags=["cityhub", "derived", "open", source_id, *derived],
        doc_md=__doc__,
    ) as dag:

        @task(outlets=[derived_asset(d) for d in derived])
        def derive() -> dict:
            from dataclasses import asdict

            from infra.settings import get_settings
            from ingest.derived import refresh_derived

            return asdict(refresh_derived(get_settings(), get_contract(source_id)))

        derive()
    return dag


for _source in derived_sources():
    _dag = build_derive_dag(_source.id, [c.id for c in derived_contracts(_source.id)])
    globals()[_dag.dag_id] = _dag
