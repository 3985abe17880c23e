"""The ingest service's passes over the datasets: what one pass costs in Kafka clients."""

from __future__ import annotations

from catalog import get_contract
from infra import kafka as kafka_io
from ingest.produce import send
from ingest.runner import ingest_loop
from ingest.simulate import simulate

FEEDS = ("traffic_flow", "air_quality", "noise_level")


def test_a_pass_plans_every_dataset_with_one_consumer_and_lands_them_all(settings, monkeypatch):
    for dataset_id in FEEDS:
        contract = get_contract(dataset_id)
        send(settings, contract, simulate(contract, 300, seed=3)[0])
    made = []
    real_consumer = kafka_io.consumer
    monkeypatch.setattr(kafka_io, "consumer", lambda *a, **kw: made.append(a) or real_consumer(*a, **kw))

    # weather_observed has no topic yet: the pass skips it
    totals = ingest_loop(settings, [*FEEDS, "weather_observed"])

    assert {d: sum(totals[d]) for d in FEEDS} == dict.fromkeys(FEEDS, 300)
    assert totals["weather_observed"] == (0, 0)
    # Two passes (the second finds nothing new): one consumer each reads every dataset's offsets and commits what
    # the pass landed (a consumer per dataset and pass, and one more per landed slice, had made it nine)
    assert len(made) == 2
