"""Every DAG runs through a real Airflow on fixture data, ends in success in Airflow's metadata, and a rerun of
the same run is byte-identical.

One metadata database and one ``prepare`` for the module; the runs build on each other, in this order:

1. first runs (one ``run_dags`` call, one logical date): the polling DAG fetches the real AirKorea file from a
   local HTTP server and produces it, ``cityhub_kr_air_quality`` lands it, and four dataset DAGs land a real
   FIWARE example file each (air_quality's also its dead-letter topic);
2. the same runs again (same logical date, hence the same run ids): nothing under the lake or the runs'
   records changes by a byte, no offset moves, no record is produced again;
3. the retention DAG, then air_quality's DAG once more: old partitions go, the ledger stays, nothing expired
   is landed again;
4. the compaction DAG, then kr_air_quality's first run once more: the portal's closed day is one file, and the
   rerun of the run that landed it adds nothing and writes no chunk file back.
"""

from __future__ import annotations

import functools
import json
import os
import sqlite3
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import duckdb
import pyarrow.parquet as pq
import pytest

from catalog import get_contract, landed_contracts
from infra import airflow
from infra import kafka as kafka_io
from infra.airflow import DagRunOutcome
from infra.settings import Settings
from ingest import compaction, lake
from ingest.landing import dead_letter_run_id, run_dir
from ingest.produce import records_from_file, send
from ingest.simulate import simulate
from tests.conftest import FIXTURES
from tests.ingest.test_fiware_golden import FILES, GOLDEN, MODELS, assert_golden_row

pytestmark = pytest.mark.slow

AIRKOREA = "korea/airkorea/getCtprvnRltmMesureDnsty_nationwide_2024-02-18T20.json"
# One real example for each of four models, one per format (the four files of a model are the same reading,
# so together they would land once and quarantine the rest as duplicates). test_fiware_golden lands them all;
# parking_spots is the model whose entity has no time of its own.
EXAMPLES = dict(zip(["air_quality", "parking_spots", "traffic_flow", "weather_observed"], FILES, strict=True))
DEAD_LETTERED = "air_quality"
OLD_DEAD_LETTERS = datetime(2024, 1, 10, tzinfo=UTC)  # filed in quarantine far beyond its 90-day retention
POLL_DAG = "cityhub_open_data_poll"
COMPACTION_DAG = "cityhub_compaction"
PORTAL_DAY = "date=2024-02-18"  # the AirKorea file's day: closed long ago
DATASET_DAGS = [get_contract("kr_air_quality").dag_id] + [get_contract(d).dag_id for d in sorted(EXAMPLES)]
# Seconds, not microseconds: the run id is manual__<this>, also a folder name under the runs' state.
LOGICAL_DATE = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=1)


@dataclass
class Runs:
    outcomes: dict[str, DagRunOutcome]
    files: dict[str, bytes]  # what landing wrote: lake files and the runs' records, by path under the home
    offsets: dict[str, dict[int, tuple[int, int]]]  # topic -> partition -> (committed, end)
    finished: dict[str, datetime]  # dag_id -> when its last task instance ended
    written: dict[str, int]  # ledger entry -> when it was last written (ns)


def _serve(directory: Path) -> tuple[ThreadingHTTPServer, str]:
    """The fixture files over HTTP, with Last-Modified and If-Modified-Since as a portal sends them."""
    handler = functools.partial(SimpleHTTPRequestHandler, directory=str(directory))
    handler.log_message = lambda *args: None  # type: ignore[method-assign]
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_address[1]}"


@pytest.fixture(scope="module")
def hub(tmp_path_factory: pytest.TempPathFactory, broker) -> Iterator[Settings]:
    """A home, a topic prefix and a portal of this module's own; the DAGs' Airflow reads the same variables."""
    server, base = _serve(FIXTURES)
    with pytest.MonkeyPatch.context() as env:
        env.setenv("CITYHUB_HOME", str(tmp_path_factory.mktemp("dag-runs") / "home"))
        env.setenv("CITYHUB_BROKER_PORT", str(broker.port))
        env.setenv("CITYHUB_TOPIC_PREFIX", f"dagruns{broker.port}.")
        env.setenv("CITYHUB_SOURCE_URLS", json.dumps({"airkorea_nationwide": f"{base}/{AIRKOREA}"}))
        env.delenv("CITYHUB_KAFKA_BOOTSTRAP", raising=False)
        yield Settings()
    server.shutdown()


def _produce_raw(settings: Settings, topic: str, values: list[bytes]) -> None:
    kafka_io.ensure_topics(settings, [topic])
    producer = kafka_io.producer(settings)
    try:
        futures = [producer.send(topic, value=v) for v in values]
        producer.flush()
        for future in futures:
            future.get(timeout=30)
    finally:
        producer.close()


def _topics(settings: Settings) -> list[str]:
    return [t for c in landed_contracts() for t in (settings.topic_for(c.id), settings.dead_letter_topic_for(c.id))]


def _offsets(settings: Settings) -> dict[str, dict[int, tuple[int, int]]]:
    consumer = kafka_io.consumer(settings)
    try:
        existing = consumer.topics()
        result = {}
        for topic in (t for t in _topics(settings) if t in existing):
            tps = kafka_io.partitions_of(consumer, topic)
            ends = kafka_io.true_end_offsets(consumer, tps)
            result[topic] = {tp.partition: (consumer.committed(tp) or 0, ends[tp]) for tp in tps}
        return result
    finally:
        consumer.close()


def _landed_files(settings: Settings) -> dict[str, bytes]:
    runs = settings.state / "runs"
    paths = [*settings.lake.rglob("*"), *runs.glob("*/*/slice.json"), *runs.glob("*/*/landed.json")]
    return {str(p.relative_to(settings.root)): p.read_bytes() for p in sorted(paths) if p.is_file()}


def _query(settings: Settings, sql: str, *args) -> list[tuple]:
    with sqlite3.connect(settings.airflow_dir / "airflow.db") as db:
        return db.execute(sql, args).fetchall()


def _task_times(settings: Settings, outcome: DagRunOutcome) -> list[tuple[datetime, datetime]]:
    rows = _query(
        settings,
        "SELECT start_date, end_date FROM task_instance WHERE dag_id = ? AND run_id = ?",
        outcome.dag_id,
        outcome.run_id,
    )
    return [(datetime.fromisoformat(start), datetime.fromisoformat(end)) for start, end in rows]


def _run(settings: Settings, dag_ids: list[str], logical_date: datetime | None = None) -> Runs:
    outcomes = {o.dag_id: o for o in airflow.run_dags(settings, dag_ids, logical_date)}
    finished = {d: max(end for _, end in _task_times(settings, o)) for d, o in outcomes.items()}
    written = {str(p): p.stat().st_mtime_ns for p in (settings.lake / "_ledger").rglob("*.json")}
    return Runs(outcomes, _landed_files(settings), _offsets(settings), finished, written)


@pytest.fixture(scope="module")
def first(hub: Settings) -> Runs:
    for dataset, name in EXAMPLES.items():
        # The Madrid/Valladolid/Santander examples carry local times without a zone.
        path = FIXTURES / "fiware" / MODELS[dataset] / name
        send(hub, get_contract(dataset), records_from_file(path), source_tz="Europe/Madrid")
    contract = get_contract(DEAD_LETTERED)
    dead = [r.value for r in simulate(contract, 2, seed=5, start=OLD_DEAD_LETTERS)[0]] + [b'{"id": "urn:ngsi-ld:']
    _produce_raw(hub, hub.dead_letter_topic_for(DEAD_LETTERED), dead)
    airflow.prepare(hub)
    # the polling DAG first: the kr_air_quality DAG after it lands what it produced
    return _run(hub, [POLL_DAG, *DATASET_DAGS], LOGICAL_DATE)


@pytest.fixture(scope="module")
def rerun(hub: Settings, first: Runs) -> Runs:
    return _run(hub, [POLL_DAG, *DATASET_DAGS], LOGICAL_DATE)


@pytest.fixture(scope="module")
def retained(hub: Settings, rerun: Runs) -> Runs:
    # retention as of today, then a new run of a DAG whose topic still holds every landed offset
    return _run(hub, ["cityhub_retention", get_contract(DEAD_LETTERED).dag_id])


@dataclass
class Compacted:
    before: dict[str, list[dict]]  # kr_air_quality's rows per zone before the compaction
    runs: Runs


@pytest.fixture(scope="module")
def compacted(hub: Settings, retained: Runs) -> Compacted:
    before = {zone: _rows(hub, zone, "kr_air_quality") for zone in lake.ZONES}
    # the compaction, then a rerun of the run that landed the portal's day (the first run's logical date)
    return Compacted(before, _run(hub, [COMPACTION_DAG, get_contract("kr_air_quality").dag_id], LOGICAL_DATE))


def _landed(settings: Settings, outcome: DagRunOutcome) -> dict:
    dataset = outcome.dag_id.removeprefix("cityhub_")
    return json.loads((run_dir(settings, dataset, outcome.run_id) / "landed.json").read_text())


def _rows(settings: Settings, zone: str, dataset: str) -> list[dict]:
    files = lake.zone_files(settings.lake, zone, dataset)  # once compacted, replaced files linger a while
    if not files:
        return []
    con = duckdb.connect()
    con.execute("SET TimeZone='UTC'")
    listed = ", ".join(f"'{f}'" for f in files)
    return con.sql(f"SELECT * FROM read_parquet([{listed}], hive_partitioning = false)").to_arrow_table().to_pylist()


def _in_kafka_order(rows: list[dict]) -> list[dict]:
    return sorted(rows, key=lambda r: tuple(r[c] for c in compaction.ORDER))


def test_every_first_run_succeeds_in_airflows_metadata(first: Runs):
    assert list(first.outcomes) == [POLL_DAG, *DATASET_DAGS]
    for outcome in first.outcomes.values():
        assert outcome.succeeded, outcome
        assert outcome.run_id == f"manual__{LOGICAL_DATE.isoformat()}"
    assert set(first.outcomes[POLL_DAG].task_states) == {"poll_airkorea_nationwide"}
    for dag_id in DATASET_DAGS:
        assert set(first.outcomes[dag_id].task_states) == {"consume", "validate", "land", "publish"}


def test_the_polling_dag_produces_the_portals_file_and_its_dataset_dag_lands_it(hub: Settings, first: Runs):
    topic = hub.topic_for("kr_air_quality")
    assert sum(end for _, end in first.offsets[topic].values()) == 656  # every item of the response
    assert json.loads((hub.state / "poll" / "airkorea_nationwide.json").read_text())["last_modified"]
    landed = _landed(hub, first.outcomes["cityhub_kr_air_quality"])
    # as the real response always lands: 650 readings, its 6 all-null rows quarantined
    assert (landed["clean_rows"], landed["quarantined_rows"]) == (650, 6)
    assert all(committed == end for committed, end in first.offsets[topic].values())


@pytest.mark.parametrize("dataset", sorted(EXAMPLES))
def test_dataset_dags_land_real_fiware_examples_as_the_golden_rows(hub: Settings, first: Runs, dataset: str):
    landed = _landed(hub, first.outcomes[get_contract(dataset).dag_id])
    assert landed["clean_rows"] == 1
    [row] = _rows(hub, "clean", dataset)
    assert_golden_row(row, GOLDEN[dataset][EXAMPLES[dataset]])
    assert row["_topic"] == hub.topic_for(dataset)


def test_records_on_the_dead_letter_topic_land_in_quarantine_through_the_dag(hub: Settings, first: Runs):
    outcome = first.outcomes[get_contract(DEAD_LETTERED).dag_id]
    topic = hub.dead_letter_topic_for(DEAD_LETTERED)
    dead = [r for r in _rows(hub, "quarantine", DEAD_LETTERED) if r["_topic"] == topic]
    assert len(dead) == 3 and all("=dead_letter" in r["_reason"] for r in dead)
    assert sum("malformed_json" in r["_reason"] for r in dead) == 1
    # the DAG run recorded the dead-letter slice beside its topic's, landed both and published their total
    assert _landed(hub, outcome)["quarantined_rows"] == 0
    published = json.loads((hub.state / "published" / f"{DEAD_LETTERED}.json").read_text())
    assert (published["run_id"], published["clean_rows"], published["quarantined_rows"]) == (outcome.run_id, 1, 3)
    dlq_landed = json.loads(
        (run_dir(hub, DEAD_LETTERED, dead_letter_run_id(outcome.run_id)) / "landed.json").read_text()
    )
    assert (dlq_landed["clean_rows"], dlq_landed["quarantined_rows"]) == (0, 3)
    assert all(committed == end for committed, end in first.offsets[topic].values())
    # a dataset nobody dead-lettered to records an empty dead-letter slice and has no such topic
    other = run_dir(hub, "traffic_flow", dead_letter_run_id(outcome.run_id)) / "slice.json"
    assert json.loads(other.read_text())["partitions"] == []
    assert hub.dead_letter_topic_for("traffic_flow") not in first.offsets


def test_a_rerun_of_the_same_runs_is_byte_identical(hub: Settings, first: Runs, rerun: Runs):
    for dag_id, outcome in rerun.outcomes.items():
        assert outcome.succeeded, outcome
        assert outcome.run_id == first.outcomes[dag_id].run_id  # the same run, run again
        # every task ran again, after the first run had ended
        assert all(start > first.finished[dag_id] for start, _ in _task_times(hub, outcome))
    # every chunk was landed again (its ledger entry rewritten, last), and came out the same
    assert all(rerun.written[path] > when for path, when in first.written.items())
    assert rerun.files.keys() == first.files.keys()  # no file added or removed
    changed = [path for path, data in rerun.files.items() if first.files[path] != data]
    assert changed == []
    parquet = [p for p in first.files if p.endswith(".parquet")]
    assert any("/clean/" in p for p in parquet) and any("/quarantine/" in p for p in parquet)
    assert any("/_ledger/" in p for p in first.files)
    # no offset committed or produced again: the poll saw an unchanged source
    assert rerun.offsets == first.offsets
    # one data point per run in each dataset's run history, however often it ran
    for dag_id in DATASET_DAGS:
        history = (hub.state / "published" / f"{dag_id.removeprefix('cityhub_')}.runs.jsonl").read_text()
        assert len(history.splitlines()) == 1


def test_the_retention_dag_drops_old_partitions_and_keeps_the_ledger(hub: Settings, rerun: Runs, retained: Runs):
    for outcome in retained.outcomes.values():
        assert outcome.succeeded, outcome
    retention = retained.outcomes["cityhub_retention"]
    assert set(retention.task_states) == {f"retain_{c.id}" for c in landed_contracts()}
    quarantine = hub.lake / "quarantine" / DEAD_LETTERED
    today = datetime.now(UTC).date()
    # the old dead letters' partition went (90 days in quarantine); today's malformed one stayed
    assert not list(quarantine.glob(f"date={OLD_DEAD_LETTERS.date().isoformat()}"))
    assert [d.name for d in quarantine.glob("date=*")] == [f"date={today.isoformat()}"]
    removed = {p for p in rerun.files if p not in retained.files}
    assert removed and all("/quarantine/" in p and "date=2024-" in p for p in removed)
    # open data's clean zone is kept for ever; every ledger entry stays, byte for byte
    assert all(p in retained.files for p in rerun.files if "/clean/" in p or "/_ledger/" in p)
    assert all(retained.files[p] == data for p, data in rerun.files.items() if "/_ledger/" in p)
    # so the expired offsets, still on the topic, are not landed again
    again = retained.outcomes[get_contract(DEAD_LETTERED).dag_id]
    assert again.run_id != rerun.outcomes[again.dag_id].run_id
    assert (_landed(hub, again)["clean_rows"], _landed(hub, again)["quarantined_rows"]) == (0, 0)
    assert sum(pq.ParquetFile(hub.root / p).metadata.num_rows for p in retained.files if "/clean/" in p) > 0


def test_plain_airflow_commands_on_the_projects_airflow_home_see_the_dags(hub: Settings, first: Runs):
    """A data engineer types Airflow's own CLI with only AIRFLOW_HOME set: it finds cityhub's DAGs (not the
    example DAGs) in cityhub's metadata database, and no import errors."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW")}
    env["AIRFLOW_HOME"] = str(hub.airflow_dir)
    airflow = str(Path(sys.executable).with_name("airflow"))

    def run(*args: str) -> str:
        proc = subprocess.run([airflow, *args], env=env, capture_output=True, text=True, timeout=300)
        assert proc.returncode == 0, proc.stderr[-2000:]
        return proc.stdout

    run("dags", "reserialize")
    assert "No data found" in run("dags", "list-import-errors")
    out = run("dags", "list", "--output", "json")
    listed = json.loads(out[out.index("[{") :].strip().splitlines()[0])  # Airflow prints warnings first
    ids = {d["dag_id"] for d in listed}
    assert {c.dag_id for c in landed_contracts()} | {"cityhub_open_data_poll", "cityhub_retention"} <= ids
    assert not {i for i in ids if not i.startswith("cityhub_")}  # no example DAGs


def test_the_compaction_dag_merges_closed_days_and_a_rerun_after_it_adds_nothing(
    hub: Settings, retained: Runs, compacted: Compacted
):
    runs = compacted.runs
    for outcome in runs.outcomes.values():
        assert outcome.succeeded, outcome
    assert set(runs.outcomes[COMPACTION_DAG].task_states) == {f"compact_{c.id}" for c in landed_contracts()}
    day = hub.lake / "clean" / "kr_air_quality" / PORTAL_DAY
    [merged] = lake.live_files(day)
    covers = lake.read_manifest(day)["covers"]
    assert lake.is_compacted(merged.name) and len(covers) >= 2  # one chunk file per partition before
    assert pq.ParquetFile(merged).metadata.num_rows == sum(c["rows"] for c in covers) == 650
    # the rerun landed its recorded slice again: the same verdicts, no row added, no chunk file written back
    rerun = runs.outcomes[get_contract("kr_air_quality").dag_id]
    assert rerun.run_id == f"manual__{LOGICAL_DATE.isoformat()}"
    assert (_landed(hub, rerun)["clean_rows"], _landed(hub, rerun)["quarantined_rows"]) == (650, 6)
    # the same rows; a compacted day is clustered on event time, so compare them in Kafka order
    assert {zone: _in_kafka_order(_rows(hub, zone, "kr_air_quality")) for zone in lake.ZONES} == {
        zone: _in_kafka_order(rows) for zone, rows in compacted.before.items()
    }
    chunk_files = [f"lake/clean/kr_air_quality/{PORTAL_DAY}/{c['file']}" for c in covers]
    assert all(runs.files[f] == retained.files[f] for f in chunk_files)  # retired in place, untouched
    assert runs.offsets == retained.offsets
