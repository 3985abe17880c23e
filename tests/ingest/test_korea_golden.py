"""Real Korean open-data files go through Kafka and land as hand-checked golden rows: the AirKorea portal's Seoul
page, Seoul's public-bike station list (UTF-8 CSV, float-typed counts) and the hourly bike rentals (Latin-1 CSV,
dd/mm/yyyy dates). The expected values in tests/golden/korea.json were read off the files by hand."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from catalog import get_contract
from ingest.produce import records_from_file, send
from ingest.runner import ingest_loop
from tests.conftest import FIXTURES

GOLDEN = json.loads((Path(__file__).parent.parent / "golden" / "korea.json").read_text())
# (dataset, file) -> what the decoder does not do yet; the golden rows say what it should produce.
DECODER_GAPS: dict[tuple[str, str], str] = {}


def _cases():
    for dataset_id, files in GOLDEN.items():
        for path in files:
            gap = DECODER_GAPS.get((dataset_id, path))
            marks = [pytest.mark.xfail(strict=True, reason=f"decoder: {gap}")] if gap else []
            yield pytest.param(dataset_id, path, marks=marks, id=f"{dataset_id}-{Path(path).name}")


def _zone(settings, dataset_id: str, zone: str) -> list[dict]:
    files = sorted((settings.lake / zone / dataset_id).rglob("*.parquet"))
    return [row for f in files for row in pq.read_table(f).to_pylist()]


def _plain(value):
    return value.isoformat() if isinstance(value, datetime) else value


def test_every_golden_row_names_every_column():
    for dataset_id, files in GOLDEN.items():
        columns = {c.name for c in get_contract(dataset_id).columns}
        for path, expected in files.items():
            assert (FIXTURES / path).is_file()
            assert all(set(row) == columns for row in expected["rows"]), (dataset_id, path)


@pytest.mark.parametrize(("dataset_id", "path"), list(_cases()))
def test_real_korean_files_land_as_golden_rows(settings, dataset_id, path):
    expected = GOLDEN[dataset_id][path]
    contract = get_contract(dataset_id)
    send(settings, contract, records_from_file(FIXTURES / path))
    ingest_loop(settings, [dataset_id])
    clean, quarantined = _zone(settings, dataset_id, "clean"), _zone(settings, dataset_id, "quarantine")
    reasons = sorted({r["_reason"] for r in quarantined})[:5]
    assert (len(clean), len(quarantined)) == (expected["clean"], expected["quarantined"]), reasons
    key = expected["key"]
    landed = {tuple(_plain(r[k]) for k in key): r for r in clean}
    assert len(landed) == len(clean), f"{key} does not identify the rows"
    for want in expected["rows"]:
        row = landed[tuple(want[k] for k in key)]
        for column, value in want.items():
            if value == "@kafka_timestamp":  # the row carries no time of its own
                assert row[column] == row["_kafka_ts"], column
            elif isinstance(value, float):
                assert row[column] == pytest.approx(value), (want[key[0]], column)
            else:
                assert _plain(row[column]) == value, (want[key[0]], column)
