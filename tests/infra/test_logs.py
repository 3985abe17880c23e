"""JSON logs: every line is one JSON object, and every line of the landing path names its dataset, run and
offset slice."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from catalog import get_contract
from ingest.produce import send
from ingest.simulate import simulate


def test_landing_logs_are_json_with_dataset_run_and_slice(settings):
    contract = get_contract("air_quality")
    send(settings, contract, simulate(contract, 200, seed=8, bad_ratio=0.05)[0])
    cli = Path(sys.executable).with_name("cityhub")
    proc = subprocess.run(
        [str(cli), "ingest", "air_quality", "--until-idle"],
        env={**os.environ, "CITYHUB_LOG_FORMAT": "json", "CITYHUB_FETCH_MAX_RECORDS": "60"},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    lines = [json.loads(line) for line in proc.stderr.splitlines() if line.strip()]
    landed = [line for line in lines if line["message"].startswith("landed offsets")]
    assert len(landed) >= 4  # 200 records in chunks of 60, over the topic's partitions
    for line in landed:
        assert line["dataset"] == "air_quality" and line["run_id"].startswith("ingest__")
        assert line["slice"].startswith(settings.topic_for("air_quality")) and line["offsets"].startswith("[")
        assert isinstance(line["partition"], int) and line["level"] == "info" and line["ts"]
    planned = [line for line in lines if line["message"].startswith("planned slice")]
    assert planned and all(line["dataset"] == "air_quality" and line["run_id"] for line in planned)
