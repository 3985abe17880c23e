"""Run-level checks: a freshness breach and a volume anomaly are detected and fail the run with a clear
message; during a backfill a stale dataset is only a warning."""

from __future__ import annotations

from datetime import timedelta

import pytest

from catalog import get_contract
from infra.errors import QualityError
from ingest.produce import send
from ingest.runner import ingest_loop
from ingest.simulate import simulate
from quality.checks import newest_event_time, run_checks


@pytest.fixture
def landed(settings):
    contract = get_contract("air_quality")
    send(settings, contract, simulate(contract, 80, seed=12)[0])
    ingest_loop(settings, ["air_quality"])
    return contract


def test_a_freshness_breach_fails_the_run_but_only_warns_in_a_backfill(settings, landed):
    newest = newest_event_time(settings, landed)
    assert newest is not None
    fine = run_checks(settings, landed, 80, "run-1", newest + timedelta(minutes=30), backfill=False)
    assert all(c.ok for c in fine)
    late = newest + 3 * landed.cadence  # more than 2 × cadence after the newest reading
    with pytest.raises(QualityError) as caught:
        run_checks(settings, landed, 80, "run-2", late, backfill=False)
    assert "newest air_quality reading" in caught.value.message and "2 × cadence" in caught.value.message
    [freshness, _] = run_checks(settings, landed, 80, "run-3", late, backfill=True)
    assert not freshness.ok and freshness.severity == "warning"


def test_a_volume_anomaly_fails_the_run(settings, landed):
    interval_end = newest_event_time(settings, landed)
    for i, rows in enumerate((100, 110, 90)):
        run_checks(settings, landed, rows, f"steady-{i}", interval_end, backfill=False)
    with pytest.raises(QualityError) as caught:
        run_checks(settings, landed, 20, "drop", interval_end, backfill=False)  # 20 % of the trailing mean
    assert "landed 20 rows against a trailing mean of 100" in caught.value.message
    with pytest.raises(QualityError):
        run_checks(settings, landed, 450, "surge", interval_end, backfill=False)
    checks = run_checks(settings, landed, 120, "normal", interval_end, backfill=False)
    assert all(c.ok for c in checks)
    again = run_checks(settings, landed, 120, "normal", interval_end, backfill=False)  # a rerun: same verdicts
    assert [c.ok for c in again] == [c.ok for c in checks]
