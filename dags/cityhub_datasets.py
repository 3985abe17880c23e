"""One Airflow DAG per catalog dataset: consume → validate → land → publish.

Generated from the catalog: adding a contract adds its DAG. Importing this file reads only the catalog's
own modules and ``CITYHUB_*`` environment variables — no broker, lake or database I/O; every task does its
work when it runs. Tasks pass paths (the run's recorded slices and their staging files), never data. Outputs
are keyed by the run's recorded offset slices, so a retry or rerun of a task rewrites the same files with the
same bytes.

Each run lands two slices in the same four tasks: the dataset's topic and its dead-letter topic
``<prefix>dlq.<dataset>``, whose records all go to quarantine (reason ``dead_letter``), as ``cityhub ingest``
does.

Each DAG is scheduled by new messages on its topic *or* by the contract's cadence, whichever comes first: the
Asset ``cityhub.kafka.<dataset>`` has an AssetWatcher whose trigger (``infra.kafka_trigger``) runs in Airflow's
triggerer and fires when the topic holds offsets the landing group has not committed; the cadence is the
fallback. The trigger's broker, topic and group are read from the environment when the file is parsed, so
the DAG processor needs the same ``CITYHUB_*`` variables as the workers.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from airflow.sdk import DAG, Asset, AssetOrTimeSchedule, AssetWatcher, DeltaTriggerTimetable, get_current_context, task

from catalog import landed_contracts
from catalog.contract import Contract
from infra.assets import clean_asset
from infra.dag_callbacks import task_defaults
from infra.kafka_trigger import KafkaBacklogTrigger
from infra.settings import Settings, get_settings

# retries after 20–40 s, then 40–80 s
DEFAULT_ARGS = task_defaults(timedelta(seconds=20), timedelta(minutes=5), timedelta(minutes=30))
WATCH_POLL_INTERVAL_S = 5.0  # how often the triggerer looks at each topic's offsets


def kafka_asset(contract: Contract, settings: Settings) -> Asset:
    """The dataset's topic as an Asset, watched by the triggerer: new messages start the dataset's DAG."""
    topic = settings.topic_for(contract.id)
    trigger = KafkaBacklogTrigger(
        bootstrap_servers=settings.bootstrap,
        topic=topic,
        group_id=settings.consumer_group,
        poll_interval=WATCH_POLL_INTERVAL_S,
    )
    return Asset(
        name=f"cityhub.kafka.{contract.id}",
        uri=f"kafka://{settings.bootstrap.split(',')[0].strip()}/{topic}",
        watchers=[AssetWatcher(name=f"cityhub_kafka_{contract.id}", trigger=trigger)],
    )


def schedule_for(contract: Contract, settings: Settings) -> AssetOrTimeSchedule:
    """New messages on the topic, or the contract's cadence when none arrive (or an event was missed)."""
    return AssetOrTimeSchedule(
        timetable=DeltaTriggerTimetable(contract.cadence), assets=kafka_asset(contract, settings)
    )


def build_dag(contract: Contract, settings: Settings | None = None) -> DAG:
    with DAG(
        dag_id=contract.dag_id,
        description=f"{contract.title_en} ({contract.title_ko}): Kafka → GX → Parquet",
        schedule=schedule_for(contract, settings or get_settings()),
        start_date=datetime(2026, 1, 1),
        catchup=False,
        max_active_runs=1,
        default_args=DEFAULT_ARGS,
        tags=["cityhub", contract.tier, contract.id],
        doc_md=__doc__,
    ) as dag:

        @task
        def consume() -> dict:
            from infra.settings import get_settings
            from ingest.landing import plan_run, stage

            settings = get_settings()
            # the dataset's topic and its dead-letter topic, each recorded before it is read
            slices = plan_run(settings, contract, get_current_context()["run_id"])
            return {
                "slices": [{"slice": str(s), "staged": [str(p) for p in stage(settings, contract, s)]} for s in slices]
            }

        @task
        def validate(consumed: dict) -> dict:
            from pathlib import Path

            from infra.settings import get_settings
            from ingest.landing import validate_staged

            settings = get_settings()
            # GX's results also go to the dataset's Data Docs (served under /quality/)
            return {
                "slices": [
                    {
                        "slice": s["slice"],
                        "validated": [
                            str(p) for p in validate_staged(contract, [Path(p) for p in s["staged"]], settings)
                        ],
                    }
                    for s in consumed["slices"]
                ]
            }

        @task(outlets=[clean_asset(contract.id)])
        def land(validated: dict) -> dict:
            from dataclasses import asdict
            from pathlib import Path

            from infra.settings import get_settings
            from ingest.landing import land_run

            slices = [(Path(s["slice"]), [Path(p) for p in s["validated"]]) for s in validated["slices"]]
            return asdict(land_run(get_settings(), contract, get_current_context()["run_id"], slices))

        @task
        def publish(landed: dict) -> str:
            from datetime import UTC, datetime

            from infra.settings import get_settings
            from ingest.landing import LandResult, publish
            from quality.checks import run_checks

            settings = get_settings()
            context = get_current_context()
            published = publish(settings, contract, LandResult(**landed))
            # Freshness and volume: a breach fails the run with a clear message (a warning in a backfill).
            interval_end = context.get("data_interval_end") or datetime.now(UTC)
            interval_end = datetime.fromtimestamp(interval_end.timestamp(), UTC)
            run_type = str(getattr(context.get("dag_run"), "run_type", ""))
            # Only a scheduled or event-driven run vouches for freshness; a backfill, or a manual run (a rerun,
            # `dags test`, the demo) may run at any time, so staleness is a warning there.
            backfill = (
                not any(kind in run_type for kind in ("scheduled", "asset_triggered"))
                or interval_end < datetime.now(UTC) - 2 * contract.cadence
            )
            run_checks(settings, contract, landed["clean_rows"], context["run_id"], interval_end, backfill)
            return str(published)

        publish(land(validate(consume())))
    return dag


_settings = get_settings()  # environment variables only
for _contract in landed_contracts():
    globals()[_contract.dag_id] = build_dag(_contract, _settings)
