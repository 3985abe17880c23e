"""`cityhub bench ingest` end to end at a small size: every path runs against a real embedded broker and lands
what was produced, and the report has every figure README quotes (the figures themselves are measured, never
asserted)."""

from __future__ import annotations

import pytest

from bench.run import bench_ingest

PATHS = ("raw_fetch", "naive", "librdkafka_naive", "end_to_end", "end_to_end_1core", "end_to_end_2proc")


def test_ingest_bench_reports_every_path_its_memory_and_cores():
    report = bench_ingest(records=4_000, repeat=1)
    assert report["records"] == 4_000
    for path in PATHS:
        assert report[f"{path}_rps"] > 0
        assert report["peak_rss_mb"][path] > 0
        assert report["cores_busy"][path] >= 0  # CPU time is counted in 10 ms ticks: a tiny run may show none
    for ratio in (
        "end_to_end_vs_raw_fetch",
        "end_to_end_2proc_vs_1proc",
        "end_to_end_2proc_vs_1core",
        "librdkafka_naive_vs_raw_fetch",
    ):
        assert report[ratio] > 0
    # the ceiling is the CPUs there are over the cores one process keeps busy
    if report["end_to_end_2proc_ceiling"] is not None:  # None when the run was too short to show CPU time
        ceiling = report["cpu_count"] / report["cores_busy"]["end_to_end"]
        assert report["end_to_end_2proc_ceiling"] == pytest.approx(ceiling, rel=0.01)
