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

import os
import threading
import time
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


class Listings:
    """Folder listings of the lake remembered by the folder's modification time, so that a page over a dataset's
    days costs a ``stat`` per folder instead of a directory scan and a manifest read per folder (1.7 ms for the
    14 days of the serve benchmark's bbox page, then ~0.1 ms).

    Every change the lake makes to a folder — a file renamed into it, a manifest replaced by a rename, a retired
    file deleted — changes the folder's mtime. The file system stamps mtimes with a coarse clock, though, so a
    second change within the same tick would leave the mtime as it was: a listing is remembered only once its
    folder's mtime is ``SETTLED_S`` old (git's "racy" rule), so any later change carries a newer stamp."""

    SETTLED_S = 2.0
    MAX_FOLDERS = 20_000  # datasets x days; forgotten all at once past this, relisted on demand

    def __init__(self) -> None:
        self._known: dict[Path, tuple[int, list[Path]]] = {}
        self._lock = threading.Lock()

    def _listed(self, folder: Path, list_folder) -> list[Path]:
        try:
            mtime = os.stat(folder).st_mtime_ns
        except FileNotFoundError:
            return []
        known = self._known.get(folder)
        if known is not None and known[0] == mtime:
            return known[1]
        listed = list_folder(folder)
        if time.time_ns() - mtime > self.SETTLED_S * 1e9:
            with self._lock:
                if len(self._known) >= self.MAX_FOLDERS:
                    self._known.clear()
                self._known[folder] = (mtime, listed)
        return listed

    def live_files(self, folder: Path) -> list[Path]:
        """:func:`ingest.lake.live_files` of one date partition."""
        return self._listed(folder, lake.live_files)

    def date_folders(self, base: Path) -> list[Path]:
        """A dataset zone's ``date=*`` folders, sorted."""
        return self._listed(base, lambda b: sorted(p for p in b.glob("date=*") if p.is_dir()))


class Lake:
    def __init__(self, settings: Settings):
        self.settings = settings
        self._db = duckdb.connect(config={"threads": 2})
        self._db.execute("SET TimeZone = 'UTC'")
        self._lock = threading.Lock()
        self.listings = Listings()

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
        base = lake.dataset_dir(self.settings.lake, zone, contract.id)
        folders = self.listings.date_folders(base)
        if zone == "clean" and (since is not None or until is not None):
            first = _utc_day(since) if since else ""
            last = _utc_day(until, before=True) if until else "9999-99-99"
            folders = [d for d in folders if first <= d.name[5:] <= last]
        return [f for folder in folders for f in self.listings.live_files(folder)]

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
