"""The one DuckDB owner of the serving side: a database with one view per open dataset, handing out cursors.

Views are derived from the catalog and read the clean zone's Parquet files directly. Each query reads the list
of live files made at its start (:func:`ingest.lake.zone_files`), not a ``date=*/*.parquet`` glob: newly landed
files are visible at once, and while a compaction replaces a partition's chunk files by one compacted file, both
sets are on disk but a query lists exactly one of them (the partition's manifest says which), so no row is seen
twice or missed. Replaced files are deleted only after ``CITYHUB_COMPACTION_GRACE_S``, far longer than a query
may run, so a query that listed them can still open them. Every query is bounded: a time limit enforced with
``interrupt()``, and a row cap applied by the callers.
"""

from __future__ import annotations

import threading
import warnings
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

import duckdb
import pyarrow as pa

from catalog import all_contracts
from catalog.contract import Contract
from infra.errors import QueryTimeout
from infra.settings import Settings
from ingest import lake

# ``cursor.execute(...).to_arrow_table()`` warns that it copies the result once more than ``cursor.sql(...)``;
# for a page of at most ``max_page_rows`` rows that copy is microseconds, while ``sql()`` binds the statement
# twice (once for the relation, once to run it), which over a dataset's file list costs milliseconds a page.
warnings.filterwarnings("ignore", message="Arrow output on a DB-API result", category=UserWarning)


class Lake:
    def __init__(self, settings: Settings):
        self.settings = settings
        self._db = duckdb.connect(config={"threads": 2})
        self._db.execute("SET TimeZone = 'UTC'")
        self._lock = threading.Lock()

    def files(
        self, contract: Contract, zone: str = "clean", since: datetime | None = None, until: datetime | None = None
    ) -> list[Path]:
        """The zone's live files now: each row in exactly one of them, compacted or not. A derived dataset has
        one zone: its day files under ``lake/derived/<dataset>`` (each replaced whole by one rename).

        With an event-time range [``since``, ``until``) only the clean zone's date partitions it touches are
        listed: rows land in the partition of their event time's UTC date, so the others hold none of them, and
        a query over a day of a year-long dataset opens that day's files rather than every file's footer."""
        if contract.is_derived:
            from ingest.derived import derived_files

            return derived_files(self.settings.lake, contract.id) if zone == "clean" else []
        if zone != "clean" or (since is None and until is None):
            return lake.zone_files(self.settings.lake, zone, contract.id)
        first = _utc_day(since) if since else ""
        last = _utc_day(until, before=True) if until else "9999-99-99"
        base = lake.dataset_dir(self.settings.lake, zone, contract.id)
        dates = [d.name[5:] for d in sorted(base.glob("date=*")) if first <= d.name[5:] <= last]
        return lake.zone_files(self.settings.lake, zone, contract.id, dates)

    def has_files(self, contract: Contract, zone: str = "clean") -> bool:
        return bool(self.files(contract, zone))

    def source(
        self, contract: Contract, zone: str = "clean", since: datetime | None = None, until: datetime | None = None
    ) -> str:
        """SQL relation for a dataset's zone (the partitions of an event-time range, if given); an empty typed
        relation when nothing has landed yet."""
        return self.relation(contract, self.files(contract, zone, since, until))

    def relation(self, contract: Contract, files: list[Path], file_column: str | None = None) -> str:
        """SQL relation over exactly ``files`` (a snapshot's), typed by the contract when there are none.

        ``file_column`` names an extra column holding each row's file (as listed here)."""
        if not files:
            cols = ", ".join(f'NULL::{_duck_type(f.type)} AS "{f.name}"' for f in contract.schema)
            extra = f', NULL::VARCHAR AS "{file_column}"' if file_column else ""
            return f"(SELECT {cols}{extra} LIMIT 0)"
        listed = ", ".join("'" + str(f).replace("'", "''") + "'" for f in files)
        extra = f", filename = '{file_column}'" if file_column else ""
        return f"read_parquet([{listed}], union_by_name = true, hive_partitioning = false{extra})"

    def view_sql(self, contract: Contract) -> str:
        return f'CREATE OR REPLACE VIEW "{contract.id}" AS SELECT * FROM {self.source(contract)}'

    def views(self) -> list[str]:
        """The view of every open dataset (safe-zone data gets no public view at all)."""
        return [c.id for c in all_contracts() if c.is_open]

    @contextmanager
    def cursor(self) -> Iterator[duckdb.DuckDBPyConnection]:
        with self._lock:
            cur = self._db.cursor()
        try:
            yield cur
        finally:
            cur.close()

    def table(self, sql: str, params: Sequence = (), tables: dict[str, pa.Table] | None = None) -> pa.Table:
        """Run one bounded query (``tables`` registered by name first) and return its whole result: for JSON
        answers, whose callers cap the rows with ``LIMIT``; downloads stream from :meth:`cursor` instead."""
        with self.cursor() as cur, self.time_limit(cur):
            for name, table in (tables or {}).items():
                cur.register(name, table)
            return cur.execute(sql, list(params)).to_arrow_table()

    @contextmanager
    def time_limit(self, cursor: duckdb.DuckDBPyConnection, seconds: float | None = None) -> Iterator[None]:
        """Interrupt the cursor's query if it runs past the limit and report a 504 with a hint."""
        limit = seconds or self.settings.query_timeout_s
        fired = threading.Event()

        def interrupt() -> None:
            fired.set()
            cursor.interrupt()

        timer = threading.Timer(limit, interrupt)
        timer.start()
        try:
            yield
        except duckdb.InterruptException as exc:
            raise QueryTimeout(
                f"query took longer than {limit:g}s and was stopped",
                hint="narrow the time range or lower the limit",
            ) from exc
        except duckdb.Error:
            if fired.is_set():
                raise QueryTimeout(
                    f"query took longer than {limit:g}s and was stopped",
                    hint="narrow the time range or lower the limit",
                ) from None
            raise
        finally:
            timer.cancel()

    def close(self) -> None:
        self._db.close()


def _duck_type(arrow_type) -> str:
    import pyarrow as pa

    if pa.types.is_timestamp(arrow_type):
        return "TIMESTAMPTZ" if arrow_type.tz else "TIMESTAMP"
    if pa.types.is_date(arrow_type):
        return "DATE"
    return {
        pa.string(): "VARCHAR",
        pa.float64(): "DOUBLE",
        pa.int64(): "BIGINT",
        pa.int32(): "INTEGER",
        pa.bool_(): "BOOLEAN",
    }.get(arrow_type, "VARCHAR")


def _utc_day(moment: datetime, before: bool = False) -> str:
    """The UTC date of ``moment`` (of the instant just before it, for an exclusive end) as a partition name sorts;
    a moment within a day of year 1 or 9999 has no UTC date in Python, and lies beyond every partition."""
    try:
        return (moment.astimezone(UTC) - timedelta(microseconds=1 if before else 0)).date().isoformat()
    except OverflowError:
        return "0000-00-00" if moment.year == 1 else "9999-99-99"
