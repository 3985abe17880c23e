"""The public API: catalog metadata, open-data records and streamed downloads, over DuckDB and the lake.

Safe-zone datasets show metadata only. Every route under ``/api/v1/datasets/{dataset_id}/`` lives on one
router whose dependency refuses safe-zone datasets with 403 — enforced in one place, and
``tests/serving/test_safezone.py`` walks every route in ``/openapi.json`` to prove it.
"""

from __future__ import annotations

import pathlib
from contextlib import asynccontextmanager
from datetime import date
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, FastAPI, Path, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, StreamingResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from catalog import all_contracts
from catalog.contract import Contract
from infra.errors import BadRequest, CityhubError, NotFound
from infra.settings import Settings, get_settings
from ingest.kanon_reports import read_reports
from quality.report import partition_reports
from quality.suite import expectation_specs, required_columns
from serving import formats, query, snapshots
from serving.aggregate import router as aggregate_router
from serving.changes import router as changes_router
from serving.db import Lake
from serving.deps import known_dataset, lake_of, open_dataset, row_query
from serving.http import ConditionalGet, GzipExceptDownloads, RateLimit
from serving.metadata import dataset_metadata, last_modified, matches
from serving.metrics import install as install_metrics
from serving.metrics import ledger_entries
from serving.portal import install as install_portal
from serving.quality_docs import install as install_quality_docs
from serving.safezone.routes import public as safezone_public_router
from serving.safezone.routes import router as safezone_router

API = "/api/v1"


def error_response(error: CityhubError) -> JSONResponse:
    return JSONResponse({"error": error.to_dict()}, status_code=error.status)


router = APIRouter(prefix=f"{API}/datasets/{{dataset_id}}", dependencies=[Depends(open_dataset)], tags=["open data"])


@router.get(
    "/records",
    summary="Records of an open dataset a page at a time: filters, fields, sort, cursors pinned to a snapshot",
)
def records(
    request: Request,
    contract: Annotated[Contract, Depends(open_dataset)],
    rows_query: Annotated[query.RowQuery, Depends(row_query)],
    limit: Annotated[int, Query(ge=1, le=10_000, description="rows per page (≤ 10000)")] = 100,
    cursor: Annotated[
        str | None, Query(description="next_cursor of the previous page (410 once its snapshot has expired)")
    ] = None,
) -> dict:
    lake = lake_of(request)
    settings = lake.settings
    limit = min(limit, settings.max_page_rows)
    fingerprint = rows_query.fingerprint()
    key, snapshot_id = None, None
    if cursor:
        snapshot_id, raw_key = snapshots.decode_cursor(cursor, fingerprint)
        try:
            key = rows_query.check_key(raw_key)
        except (ValueError, BadRequest) as exc:
            raise BadRequest("cursor is not one this API issued", hint=snapshots.RESTART) from exc
        files = snapshots.files(settings, contract, snapshot_id)
    else:
        files = lake.files(contract, since=rows_query.since, until=rows_query.until)
    order = [name for name, _ in rows_query.order_columns]
    sql, params = rows_query.sql(
        lake.relation(contract, files), rows_query.select_columns(order), key=key, limit=limit + 1
    )
    table = lake.table(sql, params)
    truncated = table.num_rows > limit
    page = table.slice(0, limit)
    next_cursor, headers = None, {}
    if truncated:
        snapshot_id = snapshot_id or snapshots.create(settings, contract, files)
        last = page.slice(limit - 1, 1).select(list(dict.fromkeys(order))).to_pylist()[0]
        next_cursor = snapshots.encode_cursor(snapshot_id, fingerprint, rows_query.key_of(last))
        headers["Link"] = f'<{request.url.include_query_params(cursor=next_cursor)}>; rel="next"'
    rows = formats.json_rows(page.select(rows_query.fields))
    body = {
        "dataset": contract.id,
        "count": len(rows),
        "rows": rows,
        "truncated": truncated,
        "next_cursor": next_cursor,
        "snapshot": snapshot_id,
    }
    return formats.json_response(body, headers)


@router.get(
    "/download",
    summary="The dataset (filtered as /records), streamed: CSV, Parquet, JSON Lines, GeoJSON, Arrow IPC, NGSI-LD",
    response_description="the file, streamed; X-Total-Rows gives its row count up front",
)
def download(
    request: Request,
    contract: Annotated[Contract, Depends(open_dataset)],
    rows_query: Annotated[query.RowQuery, Depends(row_query)],
    format: Annotated[formats.Format, Query(description="file format")] = "csv",
    bom: Annotated[bool, Query(description="CSV only: a UTF-8 byte-order mark first, for Excel")] = False,
    encoding: Annotated[
        Literal["utf-8", "cp949"],
        Query(description="CSV only: `cp949` for Korean Excel; characters CP949 lacks are written as `?`"),
    ] = "utf-8",
) -> StreamingResponse:
    lake = lake_of(request)
    if format != "csv" and (bom or encoding != "utf-8"):
        raise BadRequest(f"bom and encoding apply to CSV, not {format}", hint="leave them out, or use format=csv")
    if bom and encoding == "cp949":
        raise BadRequest("a byte-order mark is for UTF-8, not CP949", hint="use bom=true or encoding=cp949, not both")
    if format == "geojson" and query.location_columns(contract) is None:
        raise BadRequest(f"dataset {contract.id!r} has no location for GeoJSON", hint="use csv, jsonl or parquet")
    spec = formats.Spec(
        format, contract, formats.default_fields(format, rows_query.fields, rows_query.fields_given), bom, encoding
    )
    # one file list for the count and the rows
    files = lake.files(contract, since=rows_query.since, until=rows_query.until)
    rows_of = _matching_rows_by_file(lake, contract, rows_query, files)
    columns = rows_query.select_columns(spec.needed())
    parts = [
        rows_query.sql(lake.relation(contract, part.files), columns, window=part.window)
        for part in formats.download_parts(rows_query, files, rows_of, lake.settings.download_sort_rows)
    ]
    total = sum(rows_of.values())
    headers = {"Content-Disposition": f'attachment; filename="{spec.filename}"', "X-Total-Rows": str(total)}
    if encoding == "cp949":
        headers["X-Unencodable-Replacement"] = "?"
    if format == "ngsi-ld":
        headers["Link"] = (
            f'<{formats.NGSI_LD_CONTEXT}>; rel="http://www.w3.org/ns/json-ld#context"; type="application/ld+json"'
        )
    stream = formats.stream(lake, parts, spec, formats.failure_of(request.scope))
    return StreamingResponse(stream, media_type=spec.media_type, headers=headers)


def _matching_rows_by_file(
    lake: Lake, contract: Contract, rows_query: query.RowQuery, files: list[pathlib.Path]
) -> dict[pathlib.Path, int]:
    """Each file's rows that the query selects (files without any left out): the download's X-Total-Rows, and how
    its parts are cut. One grouped count, nearly as cheap as a plain one (Parquet footers, filter columns)."""
    if not files:
        return {}
    file_column = "_cityhub_file"
    sql, params = rows_query.count_by_file_sql(lake.relation(contract, files, file_column), file_column)
    with lake.cursor() as cur, lake.time_limit(cur):
        counted = cur.execute(sql, params).fetchall()
    by_name = {str(f): f for f in files}
    return {by_name[name]: rows for name, rows in counted}


@router.get("/rollups/{grain}/{by}", summary="Hourly (UTC) or daily (Seoul) rollups by district or 250 m cell")
def rollups(
    request: Request,
    contract: Annotated[Contract, Depends(open_dataset)],
    grain: Annotated[Literal["hour", "day"], Path(description="hour (UTC hours) or day (days in Asia/Seoul)")],
    by: Annotated[Literal["district", "cell"], Path(description="district (Seoul 자치구) or cell (250 m grid)")],
    since: Annotated[date | None, Query(description="first date (inclusive): the hour's UTC date, or the day")] = None,
    until: Annotated[date | None, Query(description="last date (exclusive)")] = None,
    limit: Annotated[int, Query(ge=1, le=10_000, description="rows (≤ 10000)")] = 1000,
) -> dict:
    from ingest.rollups import FILE_NAME, rollup_dir
    from transforms.rollup import PLACE_COLUMN, rollup_spec

    if rollup_spec(contract) is None:
        raise NotFound(
            f"dataset {contract.id!r} has no rollups",
            hint="rollups exist for open datasets with coordinates and numeric measures",
        )
    lake = lake_of(request)
    folder = rollup_dir(lake.settings.lake, contract.id, grain, by)
    if not any(folder.glob(f"date=*/{FILE_NAME}")):
        return {"dataset": contract.id, "grain": grain, "by": by, "count": 0, "rows": [], "truncated": False}
    where = [f'CAST("{grain}" AS DATE) {op} ?' for value, op in ((since, ">="), (until, "<")) if value]
    sql = (
        f"SELECT * FROM read_parquet('{folder}/date=*/{FILE_NAME}', hive_partitioning = false) "
        f"{'WHERE ' + ' AND '.join(where) if where else ''} "
        f'ORDER BY "{grain}", "{PLACE_COLUMN[by]}" NULLS LAST LIMIT {min(limit, lake.settings.max_page_rows) + 1}'
    )
    table = lake.table(sql, [v for v in (since, until) if v])
    truncated = table.num_rows > limit
    rows = formats.json_rows(table.slice(0, limit))
    return formats.json_response(
        {"dataset": contract.id, "grain": grain, "by": by, "count": len(rows), "rows": rows, "truncated": truncated}
    )


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        app.state.lake = Lake(settings)
        yield
        app.state.lake.close()

    app = FastAPI(
        title="cityhub API",
        version="0.1.0",
        lifespan=lifespan,
        description="Open smart-city data (FIWARE NGSI-LD models) and the catalog of the data safe zone.",
    )

    @app.exception_handler(CityhubError)
    async def cityhub_error(request: Request, exc: CityhubError) -> JSONResponse:
        return error_response(exc)

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
        problems = "; ".join(f"{'.'.join(str(p) for p in e['loc'][1:])}: {e['msg']}" for e in exc.errors())
        return error_response(BadRequest(f"invalid request: {problems}", hint="see /docs for each parameter"))

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
        hint = "see /docs for the routes" if exc.status_code in (404, 405) else ""
        return error_response(CityhubError(str(exc.detail), hint=hint, status=exc.status_code, code=code))

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> JSONResponse:
        return error_response(CityhubError("internal error", hint="the server log has the details"))

    @app.get("/healthz", tags=["service"], summary="Liveness and what the server reads")
    def healthz() -> dict:
        return {"status": "ok", "datasets": len(all_contracts()), "lake": str(settings.lake)}

    @app.get(f"{API}/datasets", tags=["catalog"], summary="The catalog: every dataset's metadata, searchable")
    def list_datasets(
        request: Request,
        q: Annotated[
            str | None, Query(max_length=200, description="words to find in titles (ko/en), id, description, keywords")
        ] = None,
        tier: Annotated[Literal["open", "safezone"] | None, Query(description="only this tier")] = None,
    ) -> dict:
        lake = lake_of(request)
        found = [c for c in all_contracts() if (tier is None or c.tier == tier) and matches(c, q)]
        return {"count": len(found), "datasets": [dataset_metadata(c, lake) for c in found]}

    @app.get(f"{API}/datasets/{{dataset_id}}", tags=["catalog"], summary="One dataset's metadata and columns")
    def get_dataset(request: Request, contract: Annotated[Contract, Depends(known_dataset)]) -> dict:
        return dataset_metadata(contract, lake_of(request), detail=True)

    @app.get(
        f"{API}/datasets/{{dataset_id}}/quality",
        tags=["quality"],
        summary="Quality results per partition (event date): counts and expectation names, never values",
    )
    def dataset_quality(contract: Annotated[Contract, Depends(known_dataset)]) -> dict:
        # Counts and names only, so the safe zone's report is public too (outside the 403 gate on purpose).
        if contract.is_derived:  # not landed, so not validated by a GX suite: computed from its source's clean rows
            return {
                "dataset": contract.id,
                "tier": contract.tier,
                "derived_from": contract.derived_from,
                "suite": [],
                "partitions": [],
            }
        reports = [entry.get("quality", {}) for entry in ledger_entries(settings.lake, contract.id)]
        required = required_columns(contract)
        quality = {
            "dataset": contract.id,
            "tier": contract.tier,
            "suite": [spec.name for spec in expectation_specs(contract, required)],
            "partitions": partition_reports(reports),
        }
        if contract.quasi_identifiers:
            # class sizes over the generalised quasi-identifiers, per partition: what a reviewer of a row-level
            # extract needs, and counts only
            quality["k_anonymity"] = read_reports(settings, contract.id)
        return quality

    app.include_router(router)
    app.include_router(aggregate_router)
    app.include_router(changes_router)
    app.include_router(safezone_router)
    app.include_router(safezone_public_router)
    # innermost first: ETags are computed on the plain body, gzip wraps it, the rate limit sees every request
    app.add_middleware(ConditionalGet, last_modified=lambda path: last_modified(settings, path))
    app.add_middleware(GzipExceptDownloads)
    app.add_middleware(RateLimit, per_minute=settings.rate_limit_per_min)
    formats.install_abort_guard(app)  # a download failing mid-stream aborts the connection, whatever middleware
    install_metrics(app, settings)
    install_quality_docs(app, settings)
    install_portal(app)
    return app
