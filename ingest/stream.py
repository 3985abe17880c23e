"""``cityhub ingest``: the recorded-slice landing of :mod:`ingest.landing`, pipelined for throughput.

Three stages, one thread each, every one taking the chunks in order: the calling thread fetches chunk k+2
and turns it into Arrow, a decoding thread decodes chunk k+1 (DuckDB, outside the GIL), and a landing thread
deduplicates, validates (Arrow kernels) and writes chunk k. Decoding is most of the work and needs nothing
from the lake, so it is the stage that runs ahead; deduplication must see every earlier chunk landed.
Exactly-once is unchanged: the slice is recorded before anything is read, every chunk lands under names
derived from its offsets with its ledger entry last, and its end offset is committed only after that — by
the calling thread, which owns the Kafka clients. At most two chunks are landed and not yet committed; a
crash there leaves their ledger entries, and the resumed slice skips them.

Row-level verdicts come from :mod:`quality.rules` (the GX suite's expectations as Arrow kernels, kept equal
to GX by a test); the Airflow DAGs run the GX suite itself.
"""

from __future__ import annotations

import contextvars
import logging
import shutil
import sys
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

import pyarrow as pa
from kafka import KafkaConsumer, TopicPartition

from catalog.contract import Contract
from infra import kafka as kafka_io
from infra.logs import add_context, landing_context
from infra.progress import ProgressLine
from infra.settings import Settings
from ingest import lake
from ingest.decode import decode_batch, raw_batch
from ingest.fetch import range_fetcher
from ingest.landing import (
    LandResult,
    Slice,
    _commit,
    _landed_by,
    _mark_dead_letters,
    crash_hook,
    land_table,
    landed_readings,
    load_slice,
    plan_slice,
    publish,
    reading_identity,
    run_dir,
)
from quality.rules import row_reasons
from transforms.dedupe import mark_duplicates
from transforms.pseudonymise import pseudonymise

log = logging.getLogger(__name__)
Commit = Callable[[TopicPartition, int], None]
BACKFILL = 100_000  # a slice this long is a backfill: show a progress line (on a terminal)


class ChunkLander:
    """Decode → pseudonymise → deduplicate → validate → land, for the chunks of one recorded slice in order.

    :meth:`decode` runs on the decoding thread, :meth:`land` on the landing thread. A reading repeated across
    chunks lands once: each chunk is compared with the clean files already in the lake, this slice's earlier
    chunks included, within its own range of observation times (so memory does not grow with the length of a
    backfill)."""

    def __init__(self, settings: Settings, contract: Contract, recorded: Slice):
        self.settings, self.contract, self.recorded = settings, contract, recorded
        self.key = settings.pseudonym_key() if contract.personal_columns else b""
        self.identity = reading_identity(contract)
        self.dead_letters = recorded.topic == settings.dead_letter_topic_for(contract.id)

    def decode(self, batch: pa.Table) -> pa.Table:
        """The steps that need nothing landed before: decoding and pseudonymising (on the decoding thread)."""
        decoded = decode_batch(batch, self.contract)
        if self.dead_letters:
            decoded = _mark_dead_letters(decoded)
        return pseudonymise(decoded, self.contract, self.key, self.settings.hmac_key_version)

    def land(self, partition: int, first: int, end: int, decoded: Future[pa.Table]) -> tuple[int, int, list[str]]:
        """The steps that see what landed before, in chunk order (on the landing thread)."""
        settings, contract = self.settings, self.contract
        table = decoded.result()
        name = lake.file_name(self.recorded.topic, partition, first, end)
        # the slice's own earlier chunks are in the lake by now: they are read back like any landed file
        table = mark_duplicates(table, self.identity, landed_readings(settings, contract, table, name))
        crash_hook(settings, "after_stage")
        table = table.append_column("_reason", row_reasons(table, contract))
        return land_table(settings, contract, self.recorded, partition, first, end, table)


def _chunks(settings: Settings, contract: Contract, recorded: Slice) -> list[tuple[int, int, int]]:
    chunks = []
    for part in recorded.partitions:
        for first, end in part.chunks(recorded.chunk_size):
            ledger = lake.ledger_entry(settings.lake, contract.id, recorded.topic, part.partition, first, end)
            if recorded.resumed_from and _landed_by(ledger, recorded):
                continue  # the crashed run landed this chunk completely before it died
            chunks.append((part.partition, first, end))
    return chunks


def land_streaming(
    settings: Settings,
    contract: Contract,
    run_id: str,
    topic: str | None = None,
    partitions: set[int] | None = None,
    commit: Commit | None = None,
    planner: KafkaConsumer | None = None,
) -> LandResult:
    """Land everything new on the dataset's topic (or ``topic``), limited to ``partitions`` if given.

    Every log line of the run carries the dataset, the run id and the recorded slice (:mod:`infra.logs`).

    ``commit`` commits a chunk's end offset (default: a consumer of the landing group, outside group
    membership); a consumer-group member passes its own, which raises when the partition was taken away —
    the slice then stays recorded and whoever owns the partition next lands exactly its remaining chunks.
    ``planner`` reads the offsets the slice records and, without ``commit``, commits the chunks' ends (a service
    passes one for all its datasets; default: a consumer of its own for each)."""
    with landing_context(dataset=contract.id, run_id=run_id):
        return _land_streaming(settings, contract, run_id, topic, partitions, commit, planner)


def _land_streaming(
    settings: Settings,
    contract: Contract,
    run_id: str,
    topic: str | None,
    partitions: set[int] | None,
    commit: Commit | None,
    planner: KafkaConsumer | None,
) -> LandResult:
    slice_path = plan_slice(settings, contract, run_id, topic, partitions, kafka_consumer=planner)
    recorded = load_slice(slice_path)
    result = LandResult(contract.id, run_id)
    if not recorded.partitions:
        shutil.rmtree(slice_path.parent)
        return result
    add_context(slice=f"{recorded.topic}: {recorded.describe()}")
    # The fetching thread holds the GIL for long stretches; a shorter switch interval lets the worker's
    # brief Python steps between its GIL-free DuckDB and Arrow calls through sooner.
    sys.setswitchinterval(0.001)
    lander = ChunkLander(settings, contract, recorded)
    total = sum(p.end - p.start for p in recorded.partitions)
    progress = ProgressLine(f"{contract.id}", total, min_total=BACKFILL)
    fetcher = range_fetcher(settings)
    own_committer = None  # a consumer this run opened for its commits, closed at its end
    if commit is None:
        # a planner is a consumer of the landing group too, idle once the slice is recorded: it commits as well
        committer = planner if planner is not None else (own_committer := kafka_io.consumer(settings))
        commit = lambda tp, end: _commit(committer, tp, end)  # noqa: E731
    try:
        # one thread each, so that each stage takes the chunks in order (see the module's docstring)
        with (
            ThreadPoolExecutor(1, thread_name_prefix=f"decode-{contract.id}") as decoder,
            ThreadPoolExecutor(1, thread_name_prefix=f"land-{contract.id}") as worker,
        ):
            # Landing chunks in order, oldest first: chunk k is committed once chunks k+1 and k+2 are fetched and
            # queued, so that fetching, decoding and landing each have a chunk to work on.
            in_flight: deque[tuple[int, int, int, Future]] = deque()
            try:
                for partition, first, end in _chunks(settings, contract, recorded):
                    records = fetcher.fetch(TopicPartition(recorded.topic, partition), first, end)
                    # Built here rather than on the worker: turning Python lists into Arrow needs the GIL,
                    # which this thread holds anyway while it fetches.
                    batch = raw_batch(records, contract, settings.max_message_bytes)
                    del records
                    # the worker threads' log lines carry the run's context too
                    decoded = decoder.submit(contextvars.copy_context().run, lander.decode, batch)
                    del batch
                    landing = worker.submit(contextvars.copy_context().run, lander.land, partition, first, end, decoded)
                    in_flight.append((partition, first, end, landing))
                    if len(in_flight) > 2:
                        _finish(settings, contract, recorded, in_flight.popleft(), commit, result, progress)
                while in_flight:
                    _finish(settings, contract, recorded, in_flight.popleft(), commit, result, progress)
            except BaseException:
                # A failed chunk or commit (a partition taken away) ends the run: chunks still queued are not
                # landed. One already landing finishes; uncommitted, it is landed again to the same files.
                for *_, queued in in_flight:
                    queued.cancel()
                raise
    finally:
        fetcher.close()
        if own_committer is not None:
            own_committer.close()
    publish(settings, contract, result)
    _forget_run(settings, contract, recorded, slice_path)
    return result


def _finish(
    settings, contract, recorded: Slice, in_flight, commit: Commit, result: LandResult, progress: ProgressLine
) -> None:
    """Wait for the worker to land a chunk, then commit its end offset."""
    partition, first, end, future = in_flight
    clean, quarantined, files = future.result()
    crash_hook(settings, "after_ledger")
    commit(TopicPartition(recorded.topic, partition), end)
    crash_hook(settings, "after_commit")
    result.clean_rows += clean
    result.quarantined_rows += quarantined
    result.files += files
    progress(end - first)
    log.info(
        "landed offsets [%d,%d): %d clean, %d quarantined",
        first,
        end,
        clean,
        quarantined,
        extra={"partition": partition, "offsets": f"[{first},{end})"},
    )


def _forget_run(settings: Settings, contract: Contract, recorded: Slice, slice_path: Path) -> None:
    """A landed streaming run is never rerun by id (unlike a DAG run): its record goes, and so does that of
    the unfinished run it completed, so that a service polling every few seconds piles up no run folders."""
    shutil.rmtree(slice_path.parent, ignore_errors=True)
    if recorded.resumed_from:
        shutil.rmtree(run_dir(settings, contract.id, recorded.resumed_from), ignore_errors=True)
