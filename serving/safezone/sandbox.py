"""A fresh, locked, in-memory DuckDB per request, that can read nothing but the granted data.

The granted dataset's live files (``ingest.lake.zone_files``) are read with Arrow — only the columns the
vocabulary needs — and generalised (:func:`transforms.generalise.generalise`: coordinates → districts or cells,
times → 15-minute buckets, ages → 5-year bands), then registered as the one relation ``t``. Only after that is
the database locked: ``allowed_paths``/``allowed_directories`` empty and ``enable_external_access = false`` (no
file, URL, ATTACH, COPY or extension install can reach anything), extensions neither auto-installed,
auto-loaded nor community-loadable, Python replacement scans off (no variable of this process can be scanned by
name), memory and thread limits, and ``lock_configuration = true`` so no ``SET`` can undo any of it. The time
limit is enforced with ``interrupt()``. Errors never carry DuckDB's message (it can quote data values): they
are replaced by a fixed one.
"""

from __future__ import annotations

import logging
import threading

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq

from catalog.contract import KEY_VERSION, Contract
from infra.errors import CityhubError, QueryTimeout
from infra.settings import Settings
from ingest import lake
from transforms.generalise import generalise

log = logging.getLogger("cityhub.safezone")


class SandboxError(CityhubError):
    status = 400
    code = "query_failed"


def source_columns(contract: Contract, vocab) -> list[str]:
    """The contract columns a vocabulary's table is made from (its person and key version included)."""
    wanted = {contract.person_column or ""}
    for dim in vocab.dimensions.values():
        wanted.update(dim.sources)
    wanted.update(vocab.measures)
    stored = [f.name for f in contract.schema]
    return [c for c in stored if c in wanted or c == KEY_VERSION]


def load_table(settings: Settings, contract: Contract, vocab) -> pa.Table:
    """The granted dataset's generalised rows (only the columns asked for), as Arrow."""
    columns = source_columns(contract, vocab)
    files = lake.zone_files(settings.lake, "clean", contract.id)
    schema = pa.schema([contract.schema.field(c) for c in columns])
    if not files:
        table = schema.empty_table()
    else:
        parts = [pq.read_table(f, columns=[c for c in columns if c in pq.read_schema(f).names]) for f in files]
        table = pa.concat_tables(parts, promote_options="permissive")
    for name in columns:  # a column no file has yet (an older file, a new contract column): typed nulls
        if name not in table.column_names:
            table = table.append_column(schema.field(name), pa.nulls(table.num_rows, schema.field(name).type))
    table = table.select(columns)
    person = contract.person_column
    if person in table.column_names and pa.types.is_dictionary(table.schema.field(person).type):
        table = table.set_column(table.column_names.index(person), person, table.column(person).cast(pa.string()))
    return generalise(table, contract)


def connect(settings: Settings, table: pa.Table) -> duckdb.DuckDBPyConnection:
    con = duckdb.connect(
        ":memory:",
        config={
            "autoinstall_known_extensions": False,
            "autoload_known_extensions": False,
            "allow_community_extensions": False,
            "allow_unsigned_extensions": False,
            "memory_limit": settings.safezone_memory_limit,
            "threads": settings.safezone_threads,
        },
    )
    try:
        con.execute("SET TimeZone = 'UTC'")
        con.register("t", table)
        con.execute("SET allowed_directories = []")
        con.execute("SET allowed_paths = []")
        con.execute("SET enable_external_access = false")
        con.execute("SET python_enable_replacements = false")
        con.execute("SET lock_configuration = true")
    except BaseException:
        con.close()
        raise
    return con


def run(settings: Settings, table: pa.Table, sql: str, params: list, timeout_s: float | None = None) -> pa.Table:
    """Run one server-compiled query in a fresh locked database over ``table`` (registered as ``t``)."""
    limit = timeout_s or settings.safezone_query_timeout_s
    con = connect(settings, table)
    fired = threading.Event()

    def interrupt() -> None:
        fired.set()
        con.interrupt()

    timer = threading.Timer(limit, interrupt)
    timer.start()
    try:
        return con.sql(sql, params=params).to_arrow_table()
    except duckdb.Error as exc:
        if fired.is_set() or isinstance(exc, duckdb.InterruptException):
            raise QueryTimeout(
                f"the query took longer than {limit:g}s and was stopped", hint="group by fewer dimensions"
            ) from None
        # DuckDB's message may quote a value: log only its type, answer a fixed message
        log.warning("safe-zone query failed in its sandbox: %s", type(exc).__name__)
        raise SandboxError(
            "the query failed in its sandbox", hint="the message is withheld: it could quote data values"
        ) from None
    finally:
        timer.cancel()
        con.close()
