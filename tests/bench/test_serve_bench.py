"""`cityhub bench serve` end to end at a small size: every named query answers through the API and in DuckDB,
and the report has every figure README quotes (the figures themselves are measured, never asserted)."""

from __future__ import annotations

from bench.serve import bench_serve


def test_serve_bench_reports_every_query_memory_and_load():
    report = bench_serve(rows=60_000, runs=1, clients=4, load_s=2)
    assert set(report["queries"]) == {
        "records_time_page",
        "records_bbox_page",
        "aggregate_hour_district",
        "download_csv",
        "download_parquet",
    }
    for figures in report["queries"].values():
        assert figures["api_ms"] > 0 and figures["duckdb_ms"] > 0 and figures["ratio"] > 0
    assert report["download_rss_growth_mb"] >= 0
    assert report["load"]["requests"] > 0 and report["load"]["errors"] == 0
    assert set(report["targets_met"]) == {"ratios", "record_pages", "rss_growth", "load_errors"}
