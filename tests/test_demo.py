"""The main job end to end, as a user runs it: `cityhub demo --once` with real Airflow DAG runs."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from catalog import derived_contracts, get_contract, landed_contracts
from tests.conftest import free_port

OPEN = tuple(c.id for c in landed_contracts() if c.is_open)
SAFE = tuple(c.id for c in landed_contracts() if not c.is_open)
DERIVED = tuple(c.id for c in derived_contracts())


def test_demo_once_lands_and_serves_every_dataset(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CITYHUB_", "AIRFLOW"))}
    env.update({"CITYHUB_HOME": str(tmp_path / "home"), "CITYHUB_BROKER_PORT": str(free_port())})
    cli = Path(sys.executable).with_name("cityhub")
    result = subprocess.run(
        [str(cli), "demo", "--once", "--port", str(free_port())],
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    out = result.stdout
    assert "OK: every dataset landed" in out
    for dag in (c.dag_id for c in landed_contracts()):
        assert (
            f"{dag}: DagRun" in out
            and "success; tasks consume=success, land=success, publish=success, validate=success"
            in out.split(f"{dag}: DagRun", 1)[1].splitlines()[0]
        )
    table = {
        line.split()[0]: line.split() for line in out.splitlines() if line.split() and line.split()[0] in OPEN + SAFE
    }
    for dataset in OPEN:
        _, tier, landed, quarantined, api_rows = table[dataset]
        assert tier == "open" and int(landed) > 0 and int(api_rows) == int(landed)
    assert sum(int(table[d][3]) for d in OPEN) > 0  # the deliberately bad readings were quarantined
    for dataset in SAFE:
        _, tier, landed, quarantined, api_rows = table[dataset]
        assert tier == "safezone" and int(landed) > 0 and api_rows == "403"
    for source in ("mobility_trips", "energy_usage"):  # open data born from the safe zone, by its derive DAG
        assert "success; tasks derive=success" in out.split(f"cityhub_derive_{source}: DagRun", 1)[1].splitlines()[0]
    derived = {line.split()[0]: line.split() for line in out.splitlines() if line.split()[:1] in [[d] for d in DERIVED]}
    assert set(derived) == set(DERIVED)
    for dataset, (_, source, cells, suppressed, api_rows) in derived.items():
        assert source == get_contract(dataset).derived_from and 0 <= int(suppressed) <= int(cells) > 0
        assert int(api_rows) == int(cells)
