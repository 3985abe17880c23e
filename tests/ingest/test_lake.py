"""The lake's durable JSON records: whole or not at all, even with several writers of one file at once."""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor

from ingest.lake import write_json_atomically


def test_writers_of_one_record_at_the_same_moment_never_rename_each_others_file(tmp_path):
    # two `cityhub ingest --group` processes sharing CITYHUB_HOME publish a dataset's record at the same moment
    target = tmp_path / "published" / "traffic_flow.json"

    def write(writer: int) -> None:
        for run in range(100):
            write_json_atomically(target, {"writer": writer, "run": run}, indent=2)

    with ThreadPoolExecutor(4) as pool:
        list(pool.map(write, range(4)))  # re-raises a writer's error

    record = json.loads(target.read_text())
    assert record["run"] == 99 and record["writer"] in range(4)
    assert sorted(p.name for p in target.parent.iterdir()) == ["traffic_flow.json"]  # no temp file left
