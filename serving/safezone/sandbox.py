"""A fresh, locked, in-memory DuckDB per request, that can read the granted dataset's files and nothing else.

Before anything runs, the database gets ``allowed_paths`` = exactly the dataset's live files
(``ingest.lake.zone_files``) and ``enable_external_access = false``, so no other file, no directory listing
(globs), no URL, no ``ATTACH``, ``COPY … TO`` or ``EXPORT`` can reach anything; extensions are neither
auto-installed, auto-loaded, community nor unsigned; Python replacement scans are off (no variable of this
process can be scanned by name); memory and thread limits are set, with no spill directory (DuckDB would
otherwise allow its ``.tmp`` for reads and writes); then one view is made, ``t``, and
``lock_configuration = true`` so no ``SET`` can undo any of it. The time limit is enforced with ``interrupt()``.

``t`` holds the dataset's columns as analysts may use them: quasi-identifiers generalised exactly as
:mod:`transforms.generalise` does (a coordinate pair → its district, through the same 250 m raster registered as
a small Arrow table, or its cell id; a time → its 15-minute bucket, floored in UTC; an age → its 5-year band),
the person column as text, the key version, and the numeric measures. ``tests/safezone/test_sandbox.py`` checks
the view against :func:`transforms.generalise.generalise` row by row.

Errors never carry DuckDB's message (it can quote data values): they are replaced by a fixed one, and only the
exception's type is logged.
"""

from __future__ import annotations

import functools
import logging
import threading
from dataclasses import dataclass
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq

from catalog.contract import KEY_VERSION, Contract
from infra.errors import CityhubError, QueryTimeout
from infra.settings import Settings
from ingest import lake
from serving.db import _duck_type
from serving.query import quote as _q
from transforms import geo
from transforms.generalise import AGE_BAND_YEARS, BUCKET_MINUTES

log = logging.getLogger("cityhub.safezone")


class SandboxError(CityhubError):
    status = 400
    code = "query_failed"


@dataclass(frozen=True)
class Source:
    """The granted files of one dataset and the view ``t`` made over them."""

    contract: Contract
    files: tuple[Path, ...]
    view: str  # CREATE VIEW t AS …


def _lit(path: Path) -> str:
    return "'" + str(path).replace("'", "''") + "'"


def _index(column: str, origin: float, metres_per_degree: float) -> str:
    # the same float operations in the same order as transforms.geo.cell_indices
    return f"CAST(floor((r.{_q(column)} - {origin!r}) * {metres_per_degree!r} / {geo.CELL_M!r}) AS BIGINT)"


def source(settings: Settings, contract: Contract, vocab) -> Source:
    files = tuple(lake.zone_files(settings.lake, "clean", contract.id))
    present: set[str] = set()
    for f in files:
        present.update(pq.read_schema(f).names)
    types = {f.name: _duck_type(f.type) for f in contract.schema}

    def raw(name: str) -> str:
        return f"r.{_q(name)}" if name in present else f"NULL::{types.get(name, 'VARCHAR')}"

    select, joins = [], []
    person = contract.person_column or ""
    select.append(f"CAST({raw(person)} AS VARCHAR) AS {_q(person)}")
    select.append(f"CAST({raw(KEY_VERSION)} AS VARCHAR) AS {_q(KEY_VERSION)}")
    for dim in vocab.dimensions.values():
        col = contract.column(dim.sources[0])
        if col.generalise in ("cell_250m", "district"):
            lon, lat = col.name, col.partner or ""
            if lon not in present or lat not in present:
                select.append(f"NULL::VARCHAR AS {_q(dim.name)}")
                continue
            east = _index(lon, geo.GRID_ORIGIN[0], geo._M_PER_DEG_LON)
            north = _index(lat, geo.GRID_ORIGIN[1], geo._M_PER_DEG_LAT)
            if col.generalise == "district":
                alias = f"d{len(joins)}"
                joins.append(f"LEFT JOIN _districts {alias} ON {alias}.e = {east} AND {alias}.n = {north}")
                select.append(f"{alias}.district AS {_q(dim.name)}")
            else:
                select.append(
                    f"CASE WHEN r.{_q(lon)} IS NULL OR r.{_q(lat)} IS NULL THEN NULL ELSE "
                    f"'250m:' || CAST({east} AS VARCHAR) || ':' || CAST({north} AS VARCHAR) END AS {_q(dim.name)}"
                )
        elif col.generalise == "bucket_15min":
            select.append(f"time_bucket(INTERVAL {BUCKET_MINUTES} MINUTE, {raw(col.name)}) AS {_q(dim.name)}")
        elif col.generalise == "age_5y":
            low = f"CAST(floor(CAST({raw(col.name)} AS DOUBLE) / {AGE_BAND_YEARS}) * {AGE_BAND_YEARS} AS BIGINT)"
            select.append(
                f"CAST({low} AS VARCHAR) || '-' || CAST({low} + {AGE_BAND_YEARS - 1} AS VARCHAR) AS {_q(dim.name)}"
            )
        else:
            select.append(f"{raw(col.name)} AS {_q(dim.name)}")
    for name in vocab.measures:
        select.append(f"{raw(name)} AS {_q(name)}")
    if files:
        listed = ", ".join(_lit(f) for f in files)
        relation = f"read_parquet([{listed}], union_by_name = true, hive_partitioning = false) AS r"
    else:
        relation = "(SELECT 1 AS _none LIMIT 0) AS r"
    view = f"CREATE VIEW t AS SELECT {', '.join(select)} FROM {relation} {' '.join(joins)}"
    return Source(contract, files, view)


@functools.cache
def _district_table() -> pa.Table:
    raster, (e0, n0), names = geo._district_raster()
    east = [int(e0) + i for i in range(raster.shape[0]) for _ in range(raster.shape[1])]
    north = [int(n0) + j for _ in range(raster.shape[0]) for j in range(raster.shape[1])]
    codes = raster.reshape(-1)
    return pa.table(
        {"e": pa.array(east, pa.int64()), "n": pa.array(north, pa.int64()), "district": [names[c] for c in codes]}
    )


def connect(settings: Settings, src: Source) -> duckdb.DuckDBPyConnection:
    con = duckdb.connect(
        ":memory:",
        config={
            "autoinstall_known_extensions": False,
            "autoload_known_extensions": False,
            "allow_community_extensions": False,
            "allow_unsigned_extensions": False,
            "memory_limit": settings.safezone_memory_limit,
            "threads": settings.safezone_threads,
            # no spill directory: DuckDB would otherwise allow its temp directory (./.tmp) for reads and writes
            "temp_directory": "",
        },
    )
    try:
        con.execute("SET TimeZone = 'UTC'")  # 15-minute buckets floored in UTC, as transforms.generalise does
        con.register("_districts", _district_table())
        con.execute("SET allowed_directories = []")
        con.execute(f"SET allowed_paths = [{', '.join(_lit(f) for f in src.files)}]")
        con.execute("SET enable_external_access = false")
        con.execute("SET python_enable_replacements = false")
        con.execute(src.view)
        con.execute("SET lock_configuration = true")
    except BaseException:
        con.close()
        raise
    return con


def run(settings: Settings, src: Source, sql: str, params: list, timeout_s: float | None = None) -> pa.Table:
    """Run one server-compiled query in a fresh locked database over the view ``t`` of ``src``."""
    limit = timeout_s or settings.safezone_query_timeout_s
    try:
        con = connect(settings, src)
    except duckdb.Error as exc:
        log.warning("safe-zone sandbox could not be prepared: %s", type(exc).__name__)
        raise SandboxError("the dataset could not be opened in the sandbox", hint="try again later") from None
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
