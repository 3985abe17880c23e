"""Inspecting and resetting the landing group's offsets (no Kafka tool works against the embedded broker)."""

from __future__ import annotations

from kafka.structs import OffsetAndMetadata

from catalog import get_contract, landed_contracts
from infra import kafka as kafka_io
from infra.settings import Settings
from ingest import lake


def show_offsets(settings: Settings, dataset_id: str | None = None) -> list[dict]:
    contracts = [get_contract(dataset_id)] if dataset_id else landed_contracts()
    consumer = kafka_io.consumer(settings)
    rows = []
    try:
        for contract in contracts:
            topic = settings.topic_for(contract.id)
            tps = kafka_io.partitions_of(consumer, topic)
            ends = kafka_io.true_end_offsets(consumer, tps)
            landed = lake.landed_ends(settings.lake, contract.id, topic)
            for tp in tps:
                committed = consumer.committed(tp) or 0
                rows.append(
                    {
                        "dataset": contract.id,
                        "partition": tp.partition,
                        "committed": committed,
                        "end": ends[tp],
                        "landed": landed.get(tp.partition, 0),
                        "lag": ends[tp] - max(committed, landed.get(tp.partition, 0)),
                    }
                )
    finally:
        consumer.close()
    return rows


def reset_offsets(settings: Settings, dataset_id: str | None = None, to_start: bool = True) -> None:
    """Move the group back to the start of each partition. Landing still skips what the lake already holds."""
    contracts = [get_contract(dataset_id)] if dataset_id else landed_contracts()
    consumer = kafka_io.consumer(settings)
    try:
        for contract in contracts:
            tps = kafka_io.partitions_of(consumer, settings.topic_for(contract.id))
            begins = consumer.beginning_offsets(tps)
            consumer.assign(tps)
            consumer.commit({tp: OffsetAndMetadata(begins[tp], "", -1) for tp in tps})
    finally:
        consumer.close()
