"""Disk full: a clear error, no partial file visible, offsets not committed — and a later run lands it all."""

from __future__ import annotations

import os
import resource
import signal
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pyarrow.parquet as pq

from catalog import get_contract
from ingest.offsets import show_offsets
from ingest.produce import send
from ingest.simulate import simulate


def _small_disk() -> None:
    """In the child: files may not grow past 48 KiB, as on a full disk (EFBIG instead of ENOSPC)."""
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (48 * 1024, 48 * 1024))


def test_disk_full_fails_cleanly_and_commits_nothing(settings):
    contract = get_contract("traffic_flow")
    # 8 hours of readings inside one UTC day: every chunk's first file is far more than 48 KiB of Parquet (a
    # chunk straddling midnight would write a small file for its few rows of the other day first)
    yesterday = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0) - timedelta(days=1)
    send(settings, contract, simulate(contract, 20_000, seed=51, start=yesterday)[0])
    cli = Path(sys.executable).with_name("cityhub")
    env = {**os.environ}
    full = subprocess.run(
        [str(cli), "ingest", "traffic_flow", "--until-idle"],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        preexec_fn=_small_disk,
    )
    assert full.returncode != 0
    assert "error: could not write" in full.stderr and "check free disk space" in full.stderr
    assert "Traceback" not in full.stderr
    assert not list(settings.lake.rglob("*.parquet")) and not list(settings.root.rglob("*.tmp"))
    assert all(row["committed"] == 0 for row in show_offsets(settings, "traffic_flow"))

    again = subprocess.run(
        [str(cli), "ingest", "traffic_flow", "--until-idle"], env=env, capture_output=True, text=True, timeout=300
    )
    assert again.returncode == 0, again.stderr[-2000:]
    rows = sum(pq.ParquetFile(f).metadata.num_rows for f in (settings.lake / "clean").rglob("*.parquet"))
    assert rows == 20_000
