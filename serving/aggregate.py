"""``GET /api/v1/datasets/{id}/aggregate``: count, mean, min and max by time bucket and/or Seoul district.

Computed in DuckDB over the dataset's live files, bounded like every JSON query (time limit, row cap,
``truncated``). Districts are those of :mod:`transforms.geo` — the reading's 250 m cell looked up in the same
cell → district raster, registered with the cursor as a small table — so an aggregate by district agrees with
the published rollups. Days are the city's days (Asia/Seoul), hours and 15-minute buckets are UTC.
"""

from __future__ import annotations

import functools
from typing import Annotated, Literal

import numpy as np
import pyarrow as pa
from fastapi import APIRouter, Depends, Query, Request

from catalog.contract import Contract
from infra.errors import BadRequest
from serving.deps import lake_of, open_dataset
from serving.formats import json_response, json_rows
from serving.query import RowQuery, Since, Until, location_columns
from transforms import geo
from transforms.rollup import CITY_TZ

Bucket = Literal["none", "15min", "hour", "day"]
By = Literal["none", "district"]

router = APIRouter(prefix="/api/v1/datasets/{dataset_id}", dependencies=[Depends(open_dataset)], tags=["open data"])


def numeric_columns(contract: Contract) -> list[str]:
    """Columns whose mean means something: numbers that are not keys, coordinates, personal or labels."""
    return [
        c.name
        for c in contract.stored_columns
        if c.kind in ("float", "int")
        and c.name not in contract.key_columns
        and not c.personal
        and not c.name.endswith(("_id", "_no"))
    ]


@functools.cache
def district_table() -> pa.Table:
    """The cell → district raster of :mod:`transforms.geo` as rows (east index, north index, district)."""
    raster, (e0, n0), names = geo._district_raster()
    east, north = np.meshgrid(np.arange(raster.shape[0]) + e0, np.arange(raster.shape[1]) + n0, indexing="ij")
    codes = pa.array(raster.ravel(), pa.int32())
    return pa.table(
        {
            "_e": pa.array(east.ravel().astype(np.int64)),
            "_n": pa.array(north.ravel().astype(np.int64)),
            "district": pa.DictionaryArray.from_arrays(codes, pa.array(names)).cast(pa.string()),
        }
    )


def _bucket_sql(et: str, bucket: Bucket) -> str | None:
    if bucket == "15min":
        return f"time_bucket(INTERVAL 15 MINUTE, {et})"
    if bucket == "hour":
        return f"date_trunc('hour', {et})"
    if bucket == "day":  # the Seoul calendar day of the instant
        return f"CAST(timezone('{CITY_TZ}', {et}) AS DATE)"
    return None


def _cell_sql(value: str, origin: float, metres_per_degree: float) -> str:
    # the same arithmetic, in the same order, as transforms.geo.cell_indices
    return f"CAST(floor(({value} - {origin!r}) * {metres_per_degree!r} / {geo.CELL_M!r}) AS BIGINT)"


@router.get("/aggregate", summary="Count, mean, min and max by time bucket and/or Seoul district")
def aggregate(
    request: Request,
    contract: Annotated[Contract, Depends(open_dataset)],
    bucket: Annotated[Bucket, Query(description="time bucket: 15min or hour (UTC), day (Asia/Seoul), none")] = "hour",
    by: Annotated[By, Query(description="district (Seoul 자치구 of the reading's 250 m cell) or none")] = "none",
    columns: Annotated[
        str | None, Query(description="comma-separated numeric columns (default: every numeric measure)")
    ] = None,
    since: Since = None,
    until: Until = None,
    limit: Annotated[int, Query(ge=1, le=10_000, description="groups (≤ 10000)")] = 1000,
) -> dict:
    lake = lake_of(request)
    measures = _measures(contract, columns)
    et = f'"{contract.event_time}"'
    groups, joins = [], ""
    if (bucket_sql := _bucket_sql(et, bucket)) is not None:
        groups.append(f'{bucket_sql} AS "{bucket if bucket != "15min" else "bucket_15min"}"')
    if by == "district":
        lon, lat = _district_coordinates(contract)
        east = _cell_sql(f's."{lon}"', geo.GRID_ORIGIN[0], geo._M_PER_DEG_LON)
        north = _cell_sql(f's."{lat}"', geo.GRID_ORIGIN[1], geo._M_PER_DEG_LAT)
        joins = f" LEFT JOIN _districts d ON d._e = {east} AND d._n = {north}"
        groups.append("d.district AS district")
    # the event-time range parsed and checked as /records does it (zone, order, a daily dataset's days)
    ranged = RowQuery.parse(contract, since=since, until=until)
    where, params = ranged.where()
    where = [w.replace(et, f"s.{et}", 1) for w in where]
    stats = ["count(*) AS rows"]
    for m in measures:
        col = f's."{m}"'
        stats += [
            f'count({col}) AS "{m}_count"',
            f'avg({col}) AS "{m}_mean"',
            f'min({col}) AS "{m}_min"',
            f'max({col}) AS "{m}_max"',
        ]
    # by position: a bucket alias such as "hour" may also be a column of the dataset (bike_rentals_hourly)
    keys = [str(i + 1) for i in range(len(groups))]
    source = lake.source(contract, since=ranged.since, until=ranged.until)
    sql = (
        f"SELECT {', '.join(groups + stats)} FROM {source} s{joins}"
        f"{' WHERE ' + ' AND '.join(where) if where else ''}"
        f"{' GROUP BY ' + ', '.join(keys) if keys else ''}"
        f"{' ORDER BY ' + ', '.join(k + ' NULLS LAST' for k in keys) if keys else ''}"
        f" LIMIT {min(limit, lake.settings.max_page_rows) + 1}"
    )
    table = lake.table(sql, params, {"_districts": district_table()} if by == "district" else None)
    truncated = table.num_rows > limit
    rows = json_rows(table.slice(0, limit))
    return json_response(
        {
            "dataset": contract.id,
            "bucket": bucket,
            "by": by,
            "columns": measures,
            "count": len(rows),
            "rows": rows,
            "truncated": truncated,
        }
    )


def _measures(contract: Contract, columns: str | None) -> list[str]:
    numeric = numeric_columns(contract)
    if columns is None:
        return numeric
    asked = [c.strip() for c in columns.split(",") if c.strip()]
    unknown = [c for c in asked if c not in numeric]
    if unknown or not asked:
        raise BadRequest(
            f"cannot aggregate {', '.join(map(repr, unknown)) or 'no column'} of {contract.id!r}",
            hint=f"numeric columns: {', '.join(numeric) or 'none'}",
        )
    return list(dict.fromkeys(asked))


def _district_coordinates(contract: Contract) -> tuple[str, str]:
    coordinates = location_columns(contract)  # the location /records' bbox and the GeoJSON download use
    if coordinates is None:
        raise BadRequest(
            f"dataset {contract.id!r} has no coordinates to place its readings in districts",
            hint="use by=none",
        )
    return coordinates
