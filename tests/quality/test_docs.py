"""Data Docs from real GX results: what is published per tier, how many runs are kept, retries replace."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

from catalog import get_contract
from infra.settings import Settings
from ingest.decode import Message, decode_messages
from quality.docs import COUNTS, batch_markers, docs_root, publishable, record
from quality.suite import validate

TRIP = (
    b'{"id": "trip-1", "type": "MobilityTrip", "riderId": "rider-1", "vehicleType": "horse", '
    b'"startTime": "2026-11-21T10:00:00Z", "endTime": "2026-11-21T10:20:00Z", "distance": 1234.5678}'
)


def _result(dataset_id: str, payload: bytes):
    contract = get_contract(dataset_id)
    table = decode_messages([Message("t", 0, 0, 1_795_400_000_000, payload)], contract)
    kept = []
    validate(table, contract, record=kept.append)
    return contract, kept[0]


def test_safe_zone_results_keep_counts_and_names_only():
    contract, raw = _result("mobility_trips", TRIP)
    assert "horse" in json.dumps(raw.to_json_dict(), default=str)  # GX's own result holds the value
    published = publishable(raw, contract, batch_markers(contract, 1, 0))
    text = json.dumps(published.to_json_dict(), default=str)
    assert "horse" not in text and "trip-1" not in text and "pandas_data_fingerprint" not in text
    failed = [r for r in published.results if not r.success]
    assert failed and all(r.result.get("unexpected_count") == 1 for r in failed)
    assert all(set(r.result) <= set(COUNTS) for r in published.results)


def test_only_the_newest_runs_are_kept_and_a_retry_replaces_its_own(tmp_path):
    settings = Settings(home=tmp_path, data_docs_keep=2)
    contract, raw = _result("mobility_trips", TRIP)
    published = publishable(raw, contract, batch_markers(contract, 1, 0))
    start = datetime(2026, 11, 22, tzinfo=UTC)
    for i in range(3):
        record(settings, contract, f"run{i}", start + timedelta(hours=i), [("chunks_0-0-1", published)])
    record(settings, contract, "run2", start + timedelta(hours=2), [("chunks_0-0-1", published)])  # a retry
    pages = sorted(p.relative_to(docs_root(settings)).parts[4] for p in docs_root(settings).rglob("chunks_*.html"))
    assert pages == ["run1", "run2"]
    index = (docs_root(settings) / contract.id / "index.html").read_text()
    assert "run2" in index and "run1" in index and "run0" not in index
