"""``cityhub bench ingest``: the landing path's throughput as a ratio to kafka-python's bare fetch rate,
both measured in the same run on the same messages (never a timed assertion in a test)."""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

from kafka import TopicPartition

from catalog import get_contract
from infra import kafka as kafka_io
from infra.broker import EmbeddedBroker, free_port
from infra.errors import BadRequest
from infra.settings import Settings
from ingest.landing import land_validated, plan_slice, stage, validate_staged
from ingest.produce import send
from ingest.simulate import simulate


def _bare_fetch(settings: Settings, topic: str) -> float:
    """Seconds kafka-python needs just to fetch every message of the topic (the ceiling)."""
    consumer = kafka_io.consumer(settings, group="bench-baseline")
    try:
        tps = kafka_io.partitions_of(consumer, topic)
        ends = kafka_io.true_end_offsets(consumer, tps)
        start = time.perf_counter()
        for tp in tps:
            consumer.assign([tp])
            consumer.seek(tp, 0)
            seen = 0
            while seen < ends[tp]:
                seen += len(consumer.poll(timeout_ms=1000, max_records=100_000).get(TopicPartition(*tp), []))
        return time.perf_counter() - start
    finally:
        consumer.close()


def bench_ingest(rows: int, dataset_id: str = "traffic_flow") -> dict:
    contract = get_contract(dataset_id)
    with tempfile.TemporaryDirectory() as home, EmbeddedBroker(free_port()) as broker:
        settings = Settings(home=Path(home), broker_port=broker.port)
        records, _ = simulate(contract, rows, seed=1, bad_ratio=0.01)
        send(settings, contract, records)
        baseline_s = _bare_fetch(settings, settings.topic_for(dataset_id))
        validate_staged(contract, [])  # warm the GX import outside the timed part
        from quality.suite import suite_for

        suite_for(contract)
        timings = {}
        start = time.perf_counter()
        slice_path = plan_slice(settings, contract, "bench")
        staged = stage(settings, contract, slice_path)
        timings["fetch_decode_s"] = time.perf_counter() - start
        t = time.perf_counter()
        validated = validate_staged(contract, staged)
        timings["validate_s"] = time.perf_counter() - t
        t = time.perf_counter()
        result = land_validated(settings, contract, slice_path, validated)
        timings["land_s"] = time.perf_counter() - t
        total = time.perf_counter() - start
    return {
        "suite": "ingest",
        "dataset": dataset_id,
        "rows": rows,
        "landed_rows": result.clean_rows + result.quarantined_rows,
        "kafka_fetch_msgs_per_s": round(rows / baseline_s),
        "pipeline_msgs_per_s": round(rows / total),
        "ratio_to_kafka_fetch": round(baseline_s / total, 3),
        **{k: round(v, 3) for k, v in timings.items()},
    }


def run_bench(settings: Settings, suite: str, rows: int) -> dict:
    if suite != "ingest":
        raise BadRequest(f"unknown benchmark suite {suite!r}", hint="available: ingest")
    return bench_ingest(rows)
