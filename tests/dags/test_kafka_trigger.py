"""The AssetWatcher's trigger on its own, against the embedded broker: fires on offsets landing has not
committed, once per announcement, never commits or consumes; and every dataset DAG is scheduled by it."""

from __future__ import annotations

import asyncio
import contextlib
import time

from catalog import get_contract, landed_contracts
from infra.broker import free_port
from infra.kafka import consumer, ensure_topics, partitions_of
from infra.kafka_trigger import Announcer, BacklogProbe, KafkaBacklogTrigger
from ingest.landing import land_once, new_run_id
from ingest.produce import send
from ingest.simulate import simulate


def _trigger(settings, topic: str, **kwargs) -> KafkaBacklogTrigger:
    return KafkaBacklogTrigger(
        bootstrap_servers=settings.bootstrap, topic=topic, group_id=settings.consumer_group, **kwargs
    )


def _committed(settings, topic: str) -> dict[int, int | None]:
    client = consumer(settings)
    try:
        return {tp.partition: client.committed(tp) for tp in partitions_of(client, topic)}
    finally:
        client.close()


class Running:
    """A trigger's run() in a task of its own, as the triggerer runs it; its events collect in a queue."""

    def __init__(self, trigger: KafkaBacklogTrigger):
        self.trigger = trigger
        self.events: asyncio.Queue = asyncio.Queue()

    async def _run(self):
        async for event in self.trigger.run():
            self.events.put_nowait(event)

    async def __aenter__(self) -> Running:
        self.task = asyncio.create_task(self._run())
        return self

    async def __aexit__(self, *exc):
        self.task.cancel()  # what the triggerer does when the watcher goes
        with contextlib.suppress(asyncio.CancelledError):
            await self.task

    async def next(self, timeout_s: float):
        """The next event, or None after ``timeout_s``; a trigger that raised or stopped fails the test."""
        try:
            return await asyncio.wait_for(self.events.get(), timeout_s)
        except TimeoutError:
            assert not self.task.done(), self.task.exception() if not self.task.cancelled() else "cancelled"
            return None


def test_serializes_to_an_importable_classpath_and_plain_kwargs():
    from airflow._shared.module_loading import import_string  # what the triggerer uses
    from airflow.serialization.encoders import encode_trigger
    from airflow.triggers.base import BaseEventTrigger

    trigger = KafkaBacklogTrigger(bootstrap_servers="k1:9092,k2:9092", topic="cityhub.air_quality", group_id="g")
    classpath, kwargs = trigger.serialize()
    assert classpath == "infra.kafka_trigger.KafkaBacklogTrigger"
    assert kwargs == {
        "bootstrap_servers": "k1:9092,k2:9092",
        "topic": "cityhub.air_quality",
        "group_id": "g",
        "poll_interval": 5.0,
        "rearm_after": 600.0,
    }
    again = import_string(classpath)(**kwargs)
    assert isinstance(again, BaseEventTrigger) and again.serialize() == (classpath, kwargs)
    encoded = encode_trigger(trigger)  # what the DAG processor stores for the triggerer
    assert encoded["classpath"] == classpath
    assert BaseEventTrigger.hash(classpath, kwargs) == BaseEventTrigger.hash(*again.serialize())


def test_announces_a_backlog_once_until_landing_reaches_it():
    announcer = Announcer(rearm_after=600)
    assert not announcer.should_fire({}, now=0)
    assert announcer.should_fire({0: (0, 5)}, now=1)
    assert not announcer.should_fire({0: (0, 9)}, now=6)  # a run is landing [0, 5): new offsets wait for it
    assert not announcer.should_fire({0: (3, 9), 1: (0, 2)}, now=11)
    assert announcer.should_fire({0: (5, 9), 1: (0, 2)}, now=16)  # what was announced landed: announce the rest
    assert not announcer.should_fire({0: (5, 9), 1: (0, 2)}, now=21)
    assert announcer.should_fire({0: (5, 9), 1: (0, 2)}, now=16 + 600)  # no progress for rearm_after: again
    assert not announcer.should_fire({}, now=700)
    assert announcer.should_fire({2: (7, 8)}, now=701)


def test_fires_on_new_messages_once_and_never_commits(settings):
    contract = get_contract("air_quality")
    topic = settings.topic_for(contract.id)

    async def scenario():
        async with Running(_trigger(settings, topic, poll_interval=0.2)) as running:
            assert await running.next(2) is None  # the topic does not exist yet
            ensure_topics(settings, [topic])
            assert await running.next(1.5) is None  # empty
            await asyncio.to_thread(send, settings, contract, simulate(contract, 30, seed=1)[0])
            started = time.monotonic()
            event = await running.next(10)
            assert event is not None and time.monotonic() - started < 5
            assert event.payload["topic"] == topic and event.payload["group_id"] == settings.consumer_group
            assert event.payload["backlog"] == 30  # the true ends, not tansu's last batch's base offset + 1
            assert set(event.payload["partitions"]) <= {"0", "1", "2"}
            assert await running.next(1.5) is None  # not again while it is not landed

            landed = await asyncio.to_thread(land_once, settings, contract, new_run_id("test"))
            assert landed.clean_rows + landed.quarantined_rows == 30
            assert await running.next(1.5) is None  # caught up (tansu's short end offsets included)

            await asyncio.to_thread(send, settings, contract, simulate(contract, 5, seed=2)[0])
            event = await running.next(10)
            assert event is not None and event.payload["backlog"] == 5

    asyncio.run(scenario())
    # the watcher's reads left the group where landing put it: the 5 new messages are still to be landed
    assert sum(_committed(settings, topic).values()) == 30


def test_the_backlog_is_the_landing_groups_own(settings):
    contract = get_contract("noise_level")
    topic = settings.topic_for(contract.id)
    send(settings, contract, simulate(contract, 12, seed=3)[0])
    landing = BacklogProbe(settings.bootstrap, topic, settings.consumer_group)
    other = BacklogProbe(settings.bootstrap, topic, "another-group")
    try:
        backlog = landing.backlog()
        assert backlog and all(start == 0 and end > 0 for start, end in backlog.values())
        land_once(settings, contract, new_run_id("test"))
        assert landing.backlog() == {}
        assert other.backlog() == backlog  # another group landed nothing
    finally:
        landing.close()
        other.close()


def test_an_unreachable_broker_is_retried_quietly():
    trigger = KafkaBacklogTrigger(
        bootstrap_servers=f"127.0.0.1:{free_port()}", topic="nowhere", group_id="g", poll_interval=0.2
    )

    async def scenario():
        async with Running(trigger) as running:
            assert await running.next(3) is None  # neither an event nor an exception

    asyncio.run(scenario())


def test_every_dataset_dag_is_scheduled_by_its_topic_or_its_cadence(settings):
    from airflow.sdk import Asset, AssetOrTimeSchedule

    from dags.cityhub_datasets import build_dag

    for contract in landed_contracts():
        dag = build_dag(contract, settings)
        assert isinstance(dag.timetable, AssetOrTimeSchedule)
        assert dag.timetable.timetable.delta == contract.cadence
        assert dag.max_active_runs == 1
        asset = dag.timetable.asset_condition
        assert isinstance(asset, Asset) and asset.name == f"cityhub.kafka.{contract.id}"
        (watcher,) = asset.watchers
        assert watcher.trigger.serialize()[1] == {
            "bootstrap_servers": settings.bootstrap,
            "topic": settings.topic_for(contract.id),
            "group_id": settings.consumer_group,
            "poll_interval": 5.0,
            "rearm_after": 600.0,
        }
