"""The serving side's folder listings: remembered for speed, never at the cost of a file that landed since."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from serving.db import Listings


def _land(folder: Path, name: str) -> Path:
    path = folder / name
    pq.write_table(pa.table({"x": [1]}), path)
    return path


def _stamp(folder: Path, mtime_ns: int) -> None:
    os.utime(folder, ns=(mtime_ns, mtime_ns))


def test_a_settled_folder_is_listed_once_and_relisted_when_it_changes(tmp_path: Path):
    folder = tmp_path / "date=2026-03-01"
    folder.mkdir()
    first = _land(folder, "a.parquet")
    settled = time.time_ns() - 10 * 10**9
    _stamp(folder, settled)
    listings = Listings()
    assert listings.live_files(folder) == [first]

    hidden = _land(folder, "b.parquet")
    _stamp(folder, settled)  # as if the clock had not moved: the remembered listing answers
    assert listings.live_files(folder) == [first]

    os.utime(folder)  # what the rename of a landed file does to its folder
    assert listings.live_files(folder) == [first, hidden]


def test_a_folder_changed_within_the_settling_time_is_listed_afresh_every_time(tmp_path: Path):
    folder = tmp_path / "date=2026-03-01"
    folder.mkdir()
    first = _land(folder, "a.parquet")
    tick = time.time_ns()
    _stamp(folder, tick)
    listings = Listings()
    assert listings.live_files(folder) == [first]

    second = _land(folder, "b.parquet")
    _stamp(folder, tick)  # a coarse clock gave the second change the same stamp: it must be seen all the same
    assert listings.live_files(folder) == [first, second]


def test_date_folders_and_a_missing_dataset(tmp_path: Path):
    listings = Listings()
    assert listings.date_folders(tmp_path / "nothing_landed") == []
    for day in ("2026-03-02", "2026-03-01"):
        (tmp_path / f"date={day}").mkdir()
    (tmp_path / "date=notes.txt").write_text("not a partition")
    assert [p.name for p in listings.date_folders(tmp_path)] == ["date=2026-03-01", "date=2026-03-02"]
