"""The safe zone's feeds through the real pipeline: no raw identifier anywhere under CITYHUB_HOME (every zone,
the ledger, run state, staging files, Data Docs), pseudonyms stored dictionary-encoded with their key version,
and the k-anonymity report of every landed partition equal to an independent computation."""

from __future__ import annotations

import gzip
import json
import re
from collections import defaultdict
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
from fastapi.testclient import TestClient

from catalog import derived_contracts, get_contract
from catalog.contract import KEY_VERSION, PSEUDONYM_TYPE
from infra.kafka import ensure_topics
from infra.settings import Settings
from ingest import lake
from ingest.derived import derived_files, refresh_derived
from ingest.kanon_reports import read_reports, report_path, update_reports
from ingest.landing import land_once, land_run, new_run_id, plan_run, publish, stage, validate_staged
from ingest.produce import send
from ingest.retention import apply_retention
from ingest.runner import ingest_loop
from ingest.simulate import simulate
from serving.app import create_app
from transforms.pseudonymise import read_pseudonymised

SAFE_ZONE = ("mobility_trips", "care_sensors", "energy_usage")
# Every raw identifier the simulators make, whole or without the URN prefix (as a decoder might shorten it):
# riders, care hubs and households, smart meters and their households (the building id alone is kept).
RAW_ID = r"rider-\d{6}|hub-23\d{5}|care-\d{6}|ami-71\d{5}|bldg-\d{4}-\d{3,4}"
RAW = re.compile(RAW_ID.encode())


def raw_identifiers(dataset_id: str, records) -> set[str]:
    """The clear-text identifiers of the simulated entities (bad records carry the same ones)."""
    contract = get_contract(dataset_id)
    sources = {s for c in contract.personal_columns for s in c.source_paths}
    found = set()
    for record in records:
        try:
            entity = json.loads(record.value)
        except ValueError:
            continue
        found |= {str(entity[s]) for s in sources if entity.get(s) is not None}
    return found


def leaks(path: Path) -> list[str]:
    """Raw identifiers in a file: its bytes (footers, statistics, JSON, HTML), gzip's content, and every value
    of a Parquet file decoded — dictionary pages included (zstd hides values from a byte scan)."""
    data = path.read_bytes()
    found = [m.decode() for m in RAW.findall(data)]
    if data[:2] == b"\x1f\x8b":
        found += [m.decode() for m in RAW.findall(gzip.decompress(data))]
    if data[:4] == b"PAR1":
        found += parquet_leaks(path)
    return found


def parquet_leaks(path: Path) -> list[str]:
    schema = pq.read_schema(path)
    text = [f.name for f in schema if pa.types.is_string(f.type) or pa.types.is_dictionary(f.type)]
    table = pq.read_table(path, columns=text, read_dictionary=text)  # the dictionary pages as they are stored
    found = []
    for column in table.columns:
        for chunk in column.chunks:
            values = chunk.dictionary if pa.types.is_dictionary(chunk.type) else chunk
            hits = values.filter(pc.fill_null(pc.match_substring_regex(values, RAW_ID), False))
            found += hits.to_pylist()
    return found


def test_the_scanner_finds_identifiers_in_compressed_parquet_and_gzip(tmp_path):
    """The control: a raw id inside a zstd Parquet dictionary page or a gzip file is found."""
    riders = [f"rider-{i:06d}" for i in range(2000)]
    table = pa.table({"rider_id": pa.array(riders * 3).dictionary_encode()})
    lake.write_parquet_atomically(table, tmp_path / "canary.parquet")  # as landing writes: zstd, dictionary
    assert sorted(parquet_leaks(tmp_path / "canary.parquet")) == riders  # every dictionary entry, decoded
    assert "rider-001234" in leaks(tmp_path / "canary.parquet")
    (tmp_path / "canary.json.gz").write_bytes(gzip.compress(b'{"hub": "urn:ngsi-ld:CareSensorObserved:hub-2310007"}'))
    assert leaks(tmp_path / "canary.json.gz") == ["hub-2310007"]


def _produce(settings: Settings, dataset_id: str, seed: int, count: int, dead_letters: bool = False) -> set[str]:
    contract = get_contract(dataset_id)
    records, planted = simulate(contract, count, seed=seed, bad_ratio=0.15)
    assert sum(planted.values()) > 0
    send(settings, contract, records)
    if dead_letters:  # records a producer gave up on: quarantined whatever they hold
        dlq = settings.model_copy(update={"topic_prefix": settings.topic_prefix + "dlq."})
        ensure_topics(settings, [settings.dead_letter_topic_for(dataset_id)])
        send(dlq, contract, records[:20])
    return raw_identifiers(dataset_id, records)


def _land_as_a_dag_run(settings: Settings, dataset_id: str) -> None:
    """The DAG's four tasks, in process: its staging files stay under state/runs as a DAG run leaves them."""
    contract = get_contract(dataset_id)
    run_id = new_run_id("dag")
    paths = plan_run(settings, contract, run_id)
    validated = [(p, validate_staged(contract, stage(settings, contract, p), settings)) for p in paths]
    publish(settings, contract, land_run(settings, contract, run_id, validated))


def test_no_raw_identifier_anywhere_in_the_home(settings):
    identifiers: set[str] = set()
    for i, dataset_id in enumerate(SAFE_ZONE):
        identifiers |= _produce(settings, dataset_id, seed=10 + i, count=300)
        land_once(settings, get_contract(dataset_id), new_run_id())  # GX, Data Docs
        identifiers |= _produce(settings, dataset_id, seed=20 + i, count=300, dead_letters=True)
        _land_as_a_dag_run(settings, dataset_id)
        identifiers |= _produce(settings, dataset_id, seed=30 + i, count=300)
        ingest_loop(settings, [dataset_id])  # the pipelined service
        # the open data born from it (none for care_sensors), once today is over
        refresh_derived(settings, get_contract(dataset_id), now=datetime.now(UTC) + timedelta(days=2))
    # the search covers what the simulators made: every kind of identifier, in the pattern's shape
    short = {i.split(":")[-1] for i in identifiers}  # urn:ngsi-ld:CareSensorObserved:hub-2310005 → hub-2310005
    assert all(RAW.fullmatch(i.encode()) for i in short)
    assert {i.split("-")[0] for i in short} == {"rider", "hub", "care", "ami", "bldg"}
    for dataset_id in SAFE_ZONE:  # every place the pipeline writes to has something in it
        assert any((settings.lake / "quarantine" / dataset_id).rglob("*.parquet")), dataset_id
        assert any((settings.lake / "clean" / dataset_id).rglob("*.parquet")), dataset_id
        assert any((settings.lake / "_ledger" / dataset_id).glob("*.json")), dataset_id
        assert any((settings.lake / "_kanon" / dataset_id).rglob("report.json")), dataset_id
        assert any((settings.state / "runs" / dataset_id).rglob("staged/*.parquet")), dataset_id
        assert any((settings.state / "gx" / "docs" / dataset_id).rglob("*.html")), dataset_id
    for derived in derived_contracts():
        assert derived_files(settings.lake, derived.id), derived.id
    files = [p for p in settings.root.rglob("*") if p.is_file() and "secrets" not in p.relative_to(settings.root).parts]
    assert len(files) > 100
    found = {str(p.relative_to(settings.root)): hits for p in files if (hits := leaks(p))}
    assert found == {}


def test_pseudonyms_land_dictionary_encoded_beside_their_key_version(settings):
    contract = get_contract("care_sensors")
    _produce(settings, "care_sensors", seed=4, count=600)
    ingest_loop(settings, ["care_sensors"])
    files = sorted(settings.lake.glob("*/care_sensors/date=*/*.parquet"))
    assert any("quarantine" in f.parts for f in files) and any("clean" in f.parts for f in files)
    for f in files:
        schema = pq.read_schema(f)
        assert schema.field("hub_id").type == schema.field("household_id").type == PSEUDONYM_TYPE, f
        meta = pq.ParquetFile(f).metadata.row_group(0)
        assert meta.column(schema.get_field_index("household_id")).has_dictionary_page
    table = read_pseudonymised(files, contract, ["household_id", KEY_VERSION])
    household = table.column("household_id")
    assert all(pa.types.is_dictionary(chunk.type) for chunk in household.chunks)
    # one 64-hex digest per household in each file's dictionary, not one per row
    assert all(len(chunk.dictionary) <= 100 for chunk in household.chunks)
    assert all(re.fullmatch("[0-9a-f]{64}", d) for d in household.chunks[0].dictionary.to_pylist())
    assert table.column(KEY_VERSION).null_count == 0
    assert set(table.column(KEY_VERSION).to_pylist()) == {"v1"}  # per row: the key each pseudonym was made with


def _floor_15(t: datetime) -> datetime:
    return t.replace(minute=t.minute - t.minute % 15, second=0, microsecond=0)


def _band(age: int | None) -> str | None:
    return None if age is None else f"{age // 5 * 5}-{age // 5 * 5 + 4}"


def independent_report(rows: list[dict], keys, person: str, threshold: int) -> dict:
    """The report computed in plain Python from the landed rows: classes by generalised quasi-identifiers,
    each class's size in distinct persons within one key version (the largest over versions)."""
    persons: dict[tuple, dict[str, set]] = defaultdict(lambda: defaultdict(set))
    rows_in: dict[tuple, int] = defaultdict(int)
    for row in rows:
        key = keys(row)
        persons[key][row[KEY_VERSION]].add(row[person])
        rows_in[key] += 1
    size = {key: max(len(p) for p in by_version.values()) for key, by_version in persons.items()}
    small = [key for key in size if size[key] < threshold]
    histogram: dict[int, list[int]] = defaultdict(lambda: [0, 0])
    for key, n in size.items():
        histogram[n][0] += 1
        histogram[n][1] += rows_in[key]
    at_risk: dict[str, set] = defaultdict(set)
    for row in rows:
        if size[keys(row)] < threshold:
            at_risk[row[KEY_VERSION]].add(row[person])
    every: dict[str, set] = defaultdict(set)
    for row in rows:
        every[row[KEY_VERSION]].add(row[person])
    return {
        "rows": len(rows),
        "persons": max(len(p) for p in every.values()),
        "classes": len(size),
        "k": min(size.values()),
        "classes_below_threshold": len(small),
        "rows_below_threshold": sum(rows_in[k] for k in small),
        "persons_below_threshold": max((len(p) for p in at_risk.values()), default=0),
        "class_sizes": [{"size": s, "classes": c, "rows": r} for s, (c, r) in sorted(histogram.items())],
    }


INDEPENDENT_KEYS = {
    "care_sensors": lambda r: (r["district"], _band(r["resident_age"]), _floor_15(r["observed_at"])),
    "energy_usage": lambda r: (r["building_id"], r["building_use"], r["district"], _floor_15(r["observed_at"])),
}


def _clean_rows_by_date(settings: Settings, dataset_id: str) -> dict[str, list[dict]]:
    by_date = {}
    for folder in sorted((settings.lake / "clean" / dataset_id).glob("date=*")):
        by_date[folder.name.removeprefix("date=")] = [
            row for f in sorted(folder.glob("*.parquet")) for row in pq.read_table(f).to_pylist()
        ]
    return by_date


@pytest.mark.parametrize("dataset_id", sorted(INDEPENDENT_KEYS))
def test_kanon_report_of_every_partition_equals_an_independent_count(settings, monkeypatch, dataset_id):
    monkeypatch.setenv("CITYHUB_MIN_PERSONS", "4")
    settings = Settings()
    contract = get_contract(dataset_id)
    _produce(settings, dataset_id, seed=6, count=1200)
    ingest_loop(settings, [dataset_id])
    by_date = _clean_rows_by_date(settings, dataset_id)
    assert by_date
    for day, rows in by_date.items():
        stored = json.loads(report_path(settings, dataset_id, day).read_text())
        expected = independent_report(rows, INDEPENDENT_KEYS[dataset_id], contract.person_column, 4)
        assert {k: stored[k] for k in expected} == expected, day
        assert stored["threshold"] == 4 and stored["key_versions"] == ["v1"] and stored["date"] == day
    some = json.loads(report_path(settings, dataset_id, next(iter(by_date))).read_text())
    assert 0 < some["classes_below_threshold"] < some["classes"]  # threshold 4 splits the simulated classes


def test_mobility_report_counts_riders_per_generalised_trip_and_reruns_identically(settings):
    contract = get_contract("mobility_trips")
    _produce(settings, "mobility_trips", seed=8, count=900)
    land_once(settings, contract, "run-1")
    [day] = _clean_rows_by_date(settings, "mobility_trips") or [None]
    path = report_path(settings, "mobility_trips", day)
    report = json.loads(path.read_text())
    rows = _clean_rows_by_date(settings, "mobility_trips")[day]
    assert report["rows"] == len(rows) and report["persons"] == len({r["rider_id"] for r in rows})
    assert report["quasi_identifiers"] == ["mode", "started_at", "ended_at", "start_district", "end_district"]
    assert sum(s["rows"] for s in report["class_sizes"]) == len(rows)
    assert sum(s["classes"] for s in report["class_sizes"]) == report["classes"]
    assert report["k"] == report["class_sizes"][0]["size"] >= 1
    before = path.read_bytes()
    land_once(settings, contract, "run-1")  # a rerun of the run rewrites the same report
    assert path.read_bytes() == before


def test_key_rotation_never_counts_a_person_twice(settings, monkeypatch):
    """The same 100 households before and after a rotation: 200 distinct pseudonyms, 100 persons."""
    contract = get_contract("care_sensors")
    start = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    send(settings, contract, simulate(contract, 600, seed=1, start=start)[0])  # one hour of 100 homes
    ingest_loop(settings, ["care_sensors"])
    monkeypatch.setenv("CITYHUB_HMAC_KEY", "a-rotated-secret-key-0123456789abcdef")
    monkeypatch.setenv("CITYHUB_HMAC_KEY_VERSION", "v2")
    rotated = Settings()
    send(rotated, contract, simulate(contract, 600, seed=2, start=start + timedelta(hours=1))[0])
    ingest_loop(rotated, ["care_sensors"])
    day = start.date().isoformat()
    rows = _clean_rows_by_date(settings, "care_sensors")[day]
    assert len({r["household_id"] for r in rows}) == 200  # what counting across versions would say
    report = json.loads(report_path(settings, "care_sensors", day).read_text())
    assert report["key_versions"] == ["v1", "v2"] and report["persons"] == 100
    expected = independent_report(rows, INDEPENDENT_KEYS["care_sensors"], "household_id", settings.min_persons)
    assert {k: report[k] for k in expected} == expected


def test_reviewers_see_the_reports_as_counts_and_retention_removes_them(settings):
    contract = get_contract("care_sensors")
    _produce(settings, "care_sensors", seed=9, count=600)
    ingest_loop(settings, ["care_sensors"])
    with TestClient(create_app(settings)) as client:
        body = client.get("/api/v1/datasets/care_sensors/quality")
        assert client.get("/api/v1/datasets/care_sensors/records").status_code == 403
        trips = client.get("/api/v1/datasets/air_quality/quality").json()
    assert body.status_code == 200 and "k_anonymity" not in trips
    reports = body.json()["k_anonymity"]
    assert reports == read_reports(settings, "care_sensors") and reports
    # counts and column names only: no district, no age band, no time, no pseudonym
    assert not re.search(r"[0-9a-f]{64}|구|\d+-\d+\"|T\d\d:\d\d", body.text.replace(reports[0]["date"], ""))
    dates = {r["date"] for r in reports}
    # a report that cannot be computed is removed (no report, no extract), and landing goes on
    files = [str(f) for f in (settings.lake / "clean" / "care_sensors").rglob("*.parquet")]
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr("ingest.kanon_reports.kanon_report", lambda *a: 1 / 0)
        assert update_reports(settings, contract, files) == []
    assert read_reports(settings, "care_sensors") == []
    assert len(update_reports(settings, contract, files)) == len(dates)
    apply_retention(settings, contract, date.fromisoformat(max(dates)) + timedelta(days=400))
    assert read_reports(settings, "care_sensors") == []
    assert not any((settings.lake / "_kanon" / "care_sensors").iterdir())
