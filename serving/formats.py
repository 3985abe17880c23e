"""Download writers: Arrow record batches from a DuckDB reader in, bytes out, one batch at a time.

Every writer holds one batch (``BATCH_ROWS`` rows) and its encoding at a time, whatever the size of the
download. Formats:

* ``csv`` — RFC 4180: CRLF line ends, a header row, text fields in double quotes (quotes doubled), empty
  unquoted field for null. UTF-8; ``bom=true`` puts a UTF-8 byte-order mark first (Excel then reads it as
  UTF-8); ``encoding=cp949`` writes CP949 (Korean Excel's default) — characters CP949 has no code for
  (emoji, rare Hanja, most non-Korean scripts) are written as ``?``, and the response says so in
  ``X-Unencodable-Replacement: ?``; use UTF-8 with ``bom=true`` for a lossless file Excel opens too.
* ``parquet`` — zstd, row groups of 150k rows with statistics, the lake's column types (as ``arrow``).
* ``jsonl`` — one JSON object per line (times as ISO 8601 UTC strings, as ``/records`` gives them).
* ``geojson`` — an RFC 7946 FeatureCollection of Point features (``[lon, lat]``; null geometry where either is
  null), the other fields as properties.
* ``arrow`` — the Arrow IPC streaming format (``application/vnd.apache.arrow.stream``).
* ``ngsi-ld`` — a JSON array of NGSI-LD entities in keyValues form: ``id`` (the contract's entity-id column,
  else ``urn:ngsi-ld:<Type>:<key values>``), ``type`` (the contract's entity type), one attribute per field
  (nulls left out, lineage only if asked for in ``fields``; a dataset fed as NGSI entities gets the attribute
  names its feeds used, see :func:`ngsi_attribute_names`) and ``location`` as a GeoJSON Point.

A failure while streaming is raised on, never swallowed: the server then aborts the connection instead of
ending the body, so a truncated file is never taken for a whole one.
"""

from __future__ import annotations

import contextlib
import io
import itertools
import logging
import math
import re
import threading
import time
from collections import deque
from collections.abc import Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Literal
from urllib.parse import quote as urlquote

import duckdb
import orjson
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.ipc as ipc
import pyarrow.parquet as pq
from fastapi.responses import JSONResponse

from catalog.contract import Contract
from infra.errors import QueryTimeout
from ingest.lake import partition_date
from serving.db import Lake
from serving.query import LINEAGE, RowQuery, TimeWindow, entity_id_column, location_columns

log = logging.getLogger(__name__)

Format = Literal["csv", "parquet", "jsonl", "geojson", "arrow", "ngsi-ld"]
BATCH_ROWS = 50_000
ENCODER_THREADS = 2  # threads encoding downloads, CSV slices side by side (the server's cores, as DuckDB's threads)
PARQUET_GROUP_ROWS = 150_000  # rows per row group of a Parquet download (DuckDB writes ~123k): smaller files, cheaper
PARQUET_GROUPS_AHEAD = 3  # row groups read ahead of the Parquet writer: enough to cover DuckDB sorting the next day
CSV_SLICE_ROWS = 20_000  # rows a CSV encoder takes at once: smaller than a batch, so less is held in flight
BOM = b"\xef\xbb\xbf"
NGSI_LD_CONTEXT = "https://uri.etsi.org/ngsi-ld/v1/ngsi-ld-core-context.jsonld"

MEDIA = {
    "csv": "text/csv; charset=utf-8",
    "parquet": "application/vnd.apache.parquet",
    "jsonl": "application/x-ndjson",
    "geojson": "application/geo+json",
    "arrow": "application/vnd.apache.arrow.stream",
    "ngsi-ld": "application/json",
}
EXTENSION = {"csv": "csv", "parquet": "parquet", "jsonl": "jsonl", "geojson": "geojson", "arrow": "arrows"}


@dataclass
class Spec:
    """What to write: the format, the output fields and what some formats need besides them."""

    format: Format
    contract: Contract
    fields: list[str]
    bom: bool = False
    encoding: Literal["utf-8", "cp949"] = "utf-8"

    @property
    def location(self) -> tuple[str, str] | None:
        return location_columns(self.contract)

    def lake_schema(self, schema: pa.Schema) -> pa.Schema:
        """The fields with the lake's own types (DuckDB hands back ``Etc/UTC`` zones and µs for ms)."""
        lake_types = self.contract.schema
        return pa.schema([lake_types.field(n) if n in lake_types.names else schema.field(n) for n in self.fields])

    def needed(self) -> list[str]:
        """Columns to read beyond the fields: coordinates for GeoJSON and NGSI-LD, the entity id for NGSI-LD."""
        extra: list[str] = []
        if self.format in ("geojson", "ngsi-ld") and self.location:
            extra += list(self.location)
        if self.format == "ngsi-ld":
            id_column = entity_id_column(self.contract)
            extra += [id_column] if id_column else list(self.contract.key_columns or (self.contract.event_time,))
        return extra

    @property
    def media_type(self) -> str:
        if self.format == "csv" and self.encoding == "cp949":
            return "text/csv; charset=cp949"
        return MEDIA[self.format]

    @property
    def filename(self) -> str:
        return f"{self.contract.id}.{EXTENSION.get(self.format, 'json')}"


def iso_utc(times: pa.Array | pa.ChunkedArray) -> pa.Array | pa.ChunkedArray:
    """Instants as ISO 8601 UTC text (``2026-03-01T00:05:00.000123Z``), as ``pc.strftime(…, "%Y-%m-%dT%H:%M:%SZ")``
    gives them for microseconds — at a third of its cost: the UTC wall clock, cast to text as a zone-less
    timestamp (no zone lookups per value), with its ``T`` and ``Z`` put in."""
    naive = (
        times.cast(pa.timestamp("us", tz="UTC")).view(pa.timestamp("us"))
        if isinstance(times, pa.Array)
        else pa.chunked_array(
            [c.cast(pa.timestamp("us", tz="UTC")).view(pa.timestamp("us")) for c in times.chunks],
            pa.timestamp("us"),
        )
    )
    text = pc.replace_substring(naive.cast(pa.string()), " ", "T", max_replacements=1)
    return pc.binary_join_element_wise(text, "Z", "")


def text_times(table: pa.Table | pa.RecordBatch) -> pa.Table:
    """Timestamps as ISO 8601 UTC strings and days as ISO dates (formatted column-wise by Arrow, as ``/records``
    shows them)."""
    if isinstance(table, pa.RecordBatch):
        table = pa.Table.from_batches([table])
    for i, f in enumerate(table.schema):
        if pa.types.is_timestamp(f.type):
            table = table.set_column(i, f.name, iso_utc(table.column(i)))
        elif pa.types.is_date(f.type):
            table = table.set_column(i, f.name, table.column(i).cast(pa.string()))
    return table


def json_rows(table: pa.Table | pa.RecordBatch) -> list[dict]:
    return text_times(table).to_pylist()


def _unusual(value: object) -> object:
    if isinstance(value, Decimal):  # a DuckDB HUGEINT or DECIMAL result
        return float(value)
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    raise TypeError(f"{type(value).__name__} is not JSON")


def dumps(value: object) -> bytes:
    """Compact UTF-8 JSON of rows and answers (orjson: NaN and infinities become null, as JSON has neither)."""
    return orjson.dumps(value, default=_unusual)


class RowsResponse(JSONResponse):
    def render(self, content: object) -> bytes:
        return dumps(content)


def json_response(body: dict, headers: dict[str, str] | None = None) -> JSONResponse:
    """An answer of :func:`json_rows` rows: they are JSON-ready already (Arrow formatted the times), so it is
    rendered directly rather than walked again value by value by FastAPI's encoder (several milliseconds for a
    page of 100 rows), and by orjson (the stdlib's encoder took another millisecond a page)."""
    return RowsResponse(body, headers=headers)


# ---- writers -------------------------------------------------------------------------------------------------


def write_csv(spec: Spec, schema: pa.Schema, batches: Iterable[pa.RecordBatch]) -> Iterator[bytes | memoryview]:
    """Slices of the batches encoded by ``ENCODER_THREADS`` threads at once, written in order.

    Arrow's CSV writer is single-threaded and is most of a download's CPU (~1 µs a row, mostly formatting
    doubles; several times DuckDB's fetch): one thread encoding made a 10M-row download take 1.3–1.6x DuckDB's
    own ``COPY`` on two cores. It runs without the GIL when it writes to a native buffer, so slices are encoded
    side by side while the previous ones are sent; at most ``ENCODER_THREADS`` slices of ``CSV_SLICE_ROWS`` rows are
    in flight, so memory stays bounded."""
    options = pacsv.WriteOptions(include_header=False, eol="\r\n", quoting_style="needed")
    with_header = pacsv.WriteOptions(include_header=True, eol="\r\n", quoting_style="needed")

    def encode(batch: pa.RecordBatch | pa.Table, header: bool) -> bytes | memoryview:
        sink = pa.BufferOutputStream()  # a native sink: a Python file would take the GIL for every write
        pacsv.write_csv(text_times(batch.select(spec.fields)), sink, with_header if header else options)
        if spec.encoding == "cp949":
            return sink.getvalue().to_pybytes().decode("utf-8").encode("cp949", errors="replace")
        return memoryview(sink.getvalue())  # Arrow's buffer as it is: no copy of every byte to a bytes object

    if spec.bom:
        yield BOM
    header = True
    pool = _shared_encoders()
    pending: deque[Future[bytes | memoryview]] = deque()
    failure: Exception | None = None
    try:
        try:
            for batch in batches:
                for start in range(0, batch.num_rows, CSV_SLICE_ROWS):
                    pending.append(pool.submit(encode, batch.slice(start, CSV_SLICE_ROWS), header))
                    header = False
                    if len(pending) >= ENCODER_THREADS:
                        yield pending.popleft().result()
        except Exception as error:  # the slices read before a failure go out first, then it is raised
            failure = error
        while pending:
            yield pending.popleft().result()
        if failure is not None:
            raise failure
    finally:  # a failed or abandoned download leaves no work queued for slices nobody will read
        for future in pending:
            future.cancel()
    if header:  # no rows at all: still a header, so the file has its columns
        yield encode(schema.empty_table(), True)


_encoders: ThreadPoolExecutor | None = None
_encoders_lock = threading.Lock()


def _shared_encoders() -> ThreadPoolExecutor:
    """The process's encoder threads (CSV slices, Parquet row groups), shared by every download: threads started
    per download would each take fresh allocator arenas (mimalloc's per-thread heaps), and the server's RSS would
    follow."""
    global _encoders
    with _encoders_lock:
        if _encoders is None:
            _encoders = ThreadPoolExecutor(ENCODER_THREADS, thread_name_prefix="encoder")
        return _encoders


def write_parquet(spec: Spec, schema: pa.Schema, batches: Iterable[pa.RecordBatch]) -> Iterator[bytes]:
    """Row groups of ``PARQUET_GROUP_ROWS`` rows, encoded on the shared encoder threads while the next ones are
    read from DuckDB, sent in order.

    Parquet encoding (dictionaries, statistics, zstd) costs more than DuckDB's scan and sort of the same rows, and
    one writer cannot be split: so the writer runs beside the query instead of after each batch of it — most of
    all while DuckDB sorts the next day, when nothing would be sent otherwise. The writer's calls stay strictly
    in order (:class:`_InOrder`); at most ``PARQUET_GROUPS_AHEAD`` groups wait for it, so memory stays bounded."""
    sink = io.BytesIO()
    out_schema = spec.lake_schema(schema)
    writer = pq.ParquetWriter(sink, out_schema, compression="zstd")

    def encode(group: list[pa.RecordBatch] | None) -> bytes:
        if group is None:
            writer.close()  # the footer
        else:
            table = pa.Table.from_batches([b.select(spec.fields).cast(out_schema) for b in group], out_schema)
            writer.write_table(table, row_group_size=table.num_rows)
        return _drain(sink)

    ordered = _InOrder(_shared_encoders(), encode)
    pending: deque[Future[bytes]] = deque()
    group: list[pa.RecordBatch] = []
    rows = 0
    failure: Exception | None = None
    try:
        try:
            for batch in batches:
                group.append(batch)
                rows += batch.num_rows
                if rows >= PARQUET_GROUP_ROWS:
                    pending.append(ordered.submit(group))
                    group, rows = [], 0
                while pending and (len(pending) > PARQUET_GROUPS_AHEAD or pending[0].done()):
                    yield pending.popleft().result()
        except Exception as error:  # the rows read before a failure go out first (as CSV's do), then it is raised
            failure = error
        if group:
            pending.append(ordered.submit(group))
        if failure is None:
            pending.append(ordered.submit(None))  # the footer: only a whole file gets one
        while pending:
            yield pending.popleft().result()
        if failure is not None:
            raise failure
    finally:  # a failed or abandoned download leaves no group queued that nobody will read
        for future in pending:
            future.cancel()


class _InOrder:
    """Calls of ``work`` run one at a time in submission order on a shared pool, holding a thread only while there
    is work, one item per turn (another download's work gets the thread in between)."""

    def __init__(self, pool: ThreadPoolExecutor, work) -> None:
        self._pool, self._work = pool, work
        self._queue: deque[tuple[object, Future]] = deque()
        self._lock = threading.Lock()
        self._scheduled = False

    def submit(self, item: object) -> Future:
        future: Future = Future()
        with self._lock:
            self._queue.append((item, future))
            if self._scheduled:
                return future
            self._scheduled = True
        self._pool.submit(self._turn)
        return future

    def _turn(self) -> None:
        with self._lock:
            item, future = self._queue.popleft()
        if future.set_running_or_notify_cancel():
            try:
                future.set_result(self._work(item))
            except BaseException as error:  # handed to the download, which raises it and aborts
                future.set_exception(error)
        with self._lock:
            self._scheduled = bool(self._queue)
            if not self._scheduled:
                return
        self._pool.submit(self._turn)


def write_arrow(spec: Spec, schema: pa.Schema, batches: Iterable[pa.RecordBatch]) -> Iterator[bytes]:
    sink = io.BytesIO()
    out_schema = spec.lake_schema(schema)
    with ipc.new_stream(sink, out_schema) as writer:
        yield _drain(sink)
        for batch in batches:
            writer.write_batch(batch.select(spec.fields).cast(out_schema))
            yield _drain(sink)
    yield _drain(sink)  # the end-of-stream marker


def _drain(sink: io.BytesIO) -> bytes:
    data = sink.getvalue()
    sink.seek(0)
    sink.truncate()
    return data


def write_jsonl(spec: Spec, schema: pa.Schema, batches: Iterable[pa.RecordBatch]) -> Iterator[bytes]:
    for batch in batches:
        rows = json_rows(batch.select(spec.fields))
        if rows:
            yield b"".join(dumps(r) + b"\n" for r in rows)


def _point(lon: float | None, lat: float | None) -> dict | None:
    return None if lon is None or lat is None else {"type": "Point", "coordinates": [lon, lat]}


def write_geojson(spec: Spec, schema: pa.Schema, batches: Iterable[pa.RecordBatch]) -> Iterator[bytes]:
    lon, lat = spec.location  # type: ignore[misc]  # the route refuses geojson without a location
    properties = [f for f in spec.fields if f not in (lon, lat)]
    yield b'{"type":"FeatureCollection","features":[\n'
    first = True
    for batch in batches:
        coords = zip(batch.column(lon).to_pylist(), batch.column(lat).to_pylist(), strict=True)
        rows = json_rows(batch.select(properties))
        parts = []
        for (x, y), props in zip(coords, rows, strict=True):
            feature = {"type": "Feature", "geometry": _point(x, y), "properties": props}
            parts.append((b"" if first else b",\n") + dumps(feature))
            first = False
        if parts:
            yield b"".join(parts)
    yield b"\n]}\n"


_ATTRIBUTE = re.compile(r"^[A-Za-z][A-Za-z0-9_]*$")


def ngsi_attribute_names(contract: Contract) -> dict[str, str]:
    """Column → NGSI-LD attribute name. A dataset fed as NGSI entities (it has an entity-id column) gets its
    columns back under the attribute they were decoded from (``observed_at`` → ``dateObserved``,
    ``relative_humidity`` → ``relativeHumidity``), where that was a plain top-level attribute; anything else
    (a sub-property such as ``status.observedAt``, a portal's field name, a clash) keeps the column name."""
    if entity_id_column(contract) is None:
        return {}
    names: dict[str, str] = {}
    taken = {"id", "type", "location", *(c.name for c in contract.stored_columns)}
    for column in contract.stored_columns:
        source = column.source_paths[0]
        if column.kind in ("entity_id", "lon", "lat") or source == column.name:
            continue
        if _ATTRIBUTE.match(source) and source not in taken:
            names[column.name] = source
            taken.add(source)
    return names


def write_ngsi_ld(spec: Spec, schema: pa.Schema, batches: Iterable[pa.RecordBatch]) -> Iterator[bytes]:
    contract = spec.contract
    location = spec.location
    id_column = entity_id_column(contract)
    id_parts = list(contract.key_columns or (contract.event_time,))
    attributes = [
        f for f in spec.fields if f != id_column and (not location or f not in location) and f not in ("id", "type")
    ]
    names = ngsi_attribute_names(contract)
    yield b"[\n"
    first = True
    for batch in batches:
        rows = json_rows(batch.select(list(dict.fromkeys([*attributes, *spec.needed()]))))
        parts = []
        for row in rows:
            if id_column:
                entity_id = row[id_column]
            else:
                entity_id = f"urn:ngsi-ld:{contract.entity_type}:" + ":".join(
                    urlquote(str(row[p]), safe="") for p in id_parts
                )
            entity = {"id": entity_id, "type": contract.entity_type}
            entity.update((names.get(name, name), row[name]) for name in attributes if row[name] is not None)
            if location:
                point = _point(row[location[0]], row[location[1]])
                if point:
                    entity["location"] = point
            parts.append((b"" if first else b",\n") + dumps(entity))
            first = False
        if parts:
            yield b"".join(parts)
    yield b"\n]\n"


WRITERS = {
    "csv": write_csv,
    "parquet": write_parquet,
    "jsonl": write_jsonl,
    "geojson": write_geojson,
    "arrow": write_arrow,
    "ngsi-ld": write_ngsi_ld,
}


def default_fields(spec_format: str, fields: list[str], explicit: bool) -> list[str]:
    """NGSI-LD entities carry no lineage unless it was asked for."""
    if spec_format == "ngsi-ld" and not explicit:
        return [f for f in fields if f not in (*LINEAGE, "_kafka_ts")]
    return fields


# ---- streaming -----------------------------------------------------------------------------------------------


def record_batches(reader: pa.RecordBatchReader) -> Iterator[pa.RecordBatch]:
    """The reader's batches (a seam the abort test breaks)."""
    yield from reader


def _until(deadline: float, limit: float, batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
    """The batches until the deadline: DuckDB's ``interrupt()`` stops a query still computing, this stops one
    whose result is ready but read slowly (a slow client holds the stream)."""
    for batch in batches:
        if time.monotonic() > deadline:
            raise QueryTimeout(
                f"download took longer than {limit:g}s and was stopped",
                hint="narrow it with since/until, eq or bbox (CITYHUB_DOWNLOAD_TIMEOUT_S)",
            )
        yield batch


def stream(
    lake: Lake, parts: list[tuple[str, list]], spec: Spec, failure: StreamFailure | None = None
) -> Iterator[bytes | memoryview]:
    """Run each ``(sql, params)`` part in turn and write their batches as one file; the whole stream is bounded by
    ``CITYHUB_DOWNLOAD_TIMEOUT_S``.

    A download in event-time order is one part per date partition, or per time window of a large one
    (:func:`download_parts`): DuckDB then sorts a bounded share of the rows at a time, so the server's memory
    does not follow the dataset's size; each part's sort runs while the part before it is written
    (:class:`_PartReaders`). Any failure — the time limit, a file gone, a bug — is noted in ``failure`` (for
    :class:`AbortGuard`) and propagates, so the server aborts the connection."""
    limit = lake.settings.download_timeout_s
    with _PartReaders(lake, parts) as readers:
        timer = threading.Timer(limit, readers.interrupt)
        timer.start()
        try:
            reader = _chained(iter(readers))
            batches = _until(time.monotonic() + limit, limit, record_batches(reader))
            yield from WRITERS[spec.format](spec, reader.schema, batches)
        except Exception as exc:
            if failure is not None:
                failure.error = exc
            log.exception(
                "download of %s as %s failed mid-stream (limit %gs): connection aborted",
                spec.contract.id,
                spec.format,
                limit,
            )
            raise
        finally:
            timer.cancel()


class _PartReaders:
    """The readers of a download's parts in order, each part's query started while the part before it is read.

    DuckDB sorts a part before it hands out the first batch (a day: ~0.2–0.5 s here); run strictly in turn, the
    encoders would sit idle through every sort. So the next part's query runs on a thread of its own, with a
    cursor of its own (a cursor holds one result), while the current part is written: at most two parts' results
    are alive at once. Cursors are made and closed on the calling thread; :meth:`interrupt` stops them all."""

    def __init__(self, lake: Lake, parts: list[tuple[str, list]]):
        self.lake, self.parts = lake, parts
        self.open: list[tuple[contextlib.ExitStack, duckdb.DuckDBPyConnection]] = []
        self.pool = ThreadPoolExecutor(1, thread_name_prefix="download-query")
        self.ahead: Future | None = None

    def __enter__(self) -> _PartReaders:
        return self

    def __exit__(self, *exc_info) -> None:
        if self.ahead is not None and not self.ahead.done():
            self.interrupt()  # a query still sorting for a download that stopped: it is not waited for in full
        self.pool.shutdown(wait=True)
        for stack, _ in self.open:
            stack.close()
        self.open.clear()

    def interrupt(self) -> None:
        """Stop every part's query (called by the time limit's timer thread, so a cursor may close meanwhile)."""
        for _, cur in list(self.open):
            with contextlib.suppress(duckdb.Error):
                cur.interrupt()

    def _start(self, index: int) -> Future:
        stack = contextlib.ExitStack()
        cur = stack.enter_context(self.lake.cursor())
        self.open.append((stack, cur))
        sql, params = self.parts[index]
        return self.pool.submit(lambda: cur.sql(sql, params=params).to_arrow_reader(batch_size=BATCH_ROWS))

    def __iter__(self) -> Iterator[pa.RecordBatchReader]:
        self.ahead = self._start(0)
        for index in range(len(self.parts)):
            reader = self.ahead.result()
            self.ahead = self._start(index + 1) if index + 1 < len(self.parts) else None
            yield reader
            reader = None  # read out: its result goes with its cursor
            stack, _ = self.open.pop(0)
            stack.close()


def _chained(readers: Iterator[pa.RecordBatchReader]) -> pa.RecordBatchReader:
    """One reader over several, in order, every batch in the first one's schema. Each part's reader is let go
    as soon as it is read out: a part's result (a sorted day or window) must not stay alive while the next one
    streams."""
    pending = [next(readers)]
    schema = pending[0].schema

    def batches() -> Iterator[pa.RecordBatch]:
        reader: pa.RecordBatchReader | None = pending.pop()
        while reader is not None:
            for batch in reader:
                yield batch if batch.schema.equals(schema) else batch.cast(schema)
            reader = None  # dropped before the next part's query runs
            reader = next(readers, None)

    return pa.RecordBatchReader.from_batches(schema, batches())


@dataclass(frozen=True)
class Part:
    """One query of a download: ``files``, and only the rows of ``window`` in them if given."""

    files: list[Path]
    window: TimeWindow | None = None


def download_parts(rows_query: RowQuery, files: list[Path], rows_of: dict[Path, int], sort_rows: int) -> list[Part]:
    """Queries whose results, one after the other, are the whole download in its order, each sorting at most
    about ``sort_rows`` rows (``rows_of``: each file's matching rows).

    In event-time order (either way) that is one part per date partition: each holds the rows of its UTC date
    (of its Seoul day for a derived dataset), so partitions in name order are in event-time order, and DuckDB
    sorts one day at a time — the server's memory follows the largest day, not the dataset. A day with more than
    ``sort_rows`` matching rows is cut into that many equal time windows. A window's query skips the row groups
    whose event-time statistics lie outside it — most of a day's chunk files as landing writes them, all but the
    one or two overlapping row groups of a compacted day (clustered on event time) — and where it skips none it
    still bounds what DuckDB sorts. Partitions without a matching row are not read. In any
    other order, one part."""
    contract = rows_query.contract
    lead, descending = rows_query.sort[0]
    if lead != contract.event_time or not any(rows_of.values()):
        return [Part(files)]
    days: dict[Path, list[Path]] = {}
    for f in files:
        if rows_of.get(f):
            days.setdefault(f.parent, []).append(f)
    sliceable = not contract.is_derived and contract.column(contract.event_time).kind == "timestamp"
    parts = []
    for folder in sorted(days, key=lambda folder: folder.name, reverse=descending):
        group = days[folder]
        slices = math.ceil(sum(rows_of[f] for f in group) / sort_rows)
        day = partition_date(folder) if sliceable else None
        if slices <= 1 or day is None:
            parts.append(Part(group))
            continue
        midnight = datetime(day.year, day.month, day.day, tzinfo=UTC)  # a landed partition: one UTC date's rows
        cuts = [None, *(midnight + timedelta(days=1) * i / slices for i in range(1, slices)), None]
        windows = list(itertools.pairwise(cuts))
        parts += [Part(group, window) for window in (reversed(windows) if descending else windows)]
    return parts


# ---- aborting a failed stream ---------------------------------------------------------------------------------

SCOPE_KEY = "cityhub.stream_failure"


class StreamFailure:
    """Set by a download's generator when it fails, read by :class:`AbortGuard` (shared through the scope)."""

    def __init__(self) -> None:
        self.error: BaseException | None = None


class StreamAborted(Exception):
    """Raised instead of ending the body of a response whose stream failed."""


def failure_of(scope: dict) -> StreamFailure | None:
    return scope.get(SCOPE_KEY)


class AbortGuard:
    """ASGI wrapper outside every middleware: a response whose stream failed never ends cleanly.

    Starlette's ``BaseHTTPMiddleware`` (``@app.middleware("http")``) catches an exception raised while the
    body streams, sends the closing empty chunk and only then re-raises — the client would see a complete,
    truncated file. The download's generator notes its failure in the request scope; this guard then swallows
    the closing body message and raises instead, so the server (uvicorn) closes the connection without the
    chunked body's terminator and the client sees an incomplete transfer."""

    def __init__(self, app) -> None:
        self.app = app

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        failure = StreamFailure()
        scope[SCOPE_KEY] = failure

        async def guarded_send(message: dict) -> None:
            if failure.error is not None and message["type"] == "http.response.body":
                raise StreamAborted("the response's stream failed: connection aborted") from failure.error
            await send(message)

        await self.app(scope, receive, guarded_send)
        if failure.error is not None:
            raise StreamAborted("the response's stream failed: connection aborted") from failure.error


def install_abort_guard(app) -> None:
    """Wrap the app's whole middleware stack (whatever middleware is added, before or after) in the guard."""
    build = app.build_middleware_stack

    def build_guarded():
        return AbortGuard(build())

    app.build_middleware_stack = build_guarded
