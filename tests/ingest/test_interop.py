"""Messages produced by librdkafka (the C client most Kafka tools build on) land exactly like kafka-python's."""

from __future__ import annotations

import pyarrow.parquet as pq
from confluent_kafka import Producer

from catalog import get_contract
from infra.kafka import ensure_topics
from ingest.decode import SOURCE_TZ_HEADER
from ingest.runner import ingest_loop
from ingest.simulate import simulate


def _clean_rows(settings, dataset_id: str) -> list[dict]:
    rows = [
        row
        for f in sorted((settings.lake / "clean" / dataset_id).rglob("*.parquet"))
        for row in pq.read_table(f).to_pylist()
    ]
    return sorted(
        ({k: v for k, v in r.items() if not k.startswith("_")} for r in rows),
        key=lambda r: (r["segment_id"], r["observed_at"]),
    )


def test_librdkafka_messages_land_like_kafka_python_ones(settings, tmp_path):
    from infra.settings import Settings
    from ingest.produce import send

    contract = get_contract("traffic_flow")
    records, _ = simulate(contract, 2000, seed=31)

    # kafka-python, through cityhub's own producer
    send(settings, contract, records, source_tz="Asia/Seoul")
    ingest_loop(settings, [contract.id])

    # librdkafka, into a second home with its own topics
    other = Settings(
        home=tmp_path / "rdkafka", broker_port=settings.broker_port, topic_prefix=settings.topic_prefix + "rd."
    )
    topic = other.topic_for(contract.id)
    ensure_topics(other, [topic])
    producer = Producer(
        {"bootstrap.servers": other.bootstrap, "acks": "all", "linger.ms": 20, "enable.idempotence": False}
    )
    failures = []
    for record in records:
        producer.produce(
            topic,
            key=record.key,
            value=record.value,
            headers=[(SOURCE_TZ_HEADER, b"Asia/Seoul")],
            on_delivery=lambda err, _msg: err and failures.append(err),
        )
        producer.poll(0)
    assert producer.flush(30) == 0 and not failures
    totals = ingest_loop(other, [contract.id])
    assert totals[contract.id] == (2000, 0)
    assert _clean_rows(other, contract.id) == _clean_rows(settings, contract.id)


def test_both_fetch_clients_read_a_range_identically(settings):
    """Landing fetches with librdkafka by default and with kafka-python on request: the same offsets, payloads,
    timestamps and source-zone headers either way, chunk after chunk and after a jump back."""
    from kafka import TopicPartition

    from ingest.fetch import KafkaPythonFetcher, LibrdkafkaFetcher
    from ingest.produce import send

    contract = get_contract("air_quality")
    records, _ = simulate(contract, 1500, seed=7, bad_ratio=0.1)
    send(settings, contract, records, source_tz="Asia/Seoul")
    tp = TopicPartition(settings.topic_for(contract.id), 0)
    ranges = [(0, 200), (200, 450), (100, 150), (450, 451)]
    fetched = {}
    for fetcher in (KafkaPythonFetcher(settings), LibrdkafkaFetcher(settings)):
        try:
            fetched[type(fetcher).__name__] = [fetcher.fetch(tp, a, b) for a, b in ranges]
        finally:
            fetcher.close()
    python, rdkafka = fetched["KafkaPythonFetcher"], fetched["LibrdkafkaFetcher"]
    for (first, end), ours, theirs in zip(ranges, python, rdkafka, strict=True):
        assert ours.offsets == theirs.offsets == list(range(first, end))
        assert ours == theirs
    assert set(rdkafka[0].zones) == {"Asia/Seoul"} and all(rdkafka[0].values)
