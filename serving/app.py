"""The public API: catalog metadata, open-data records and streamed downloads, over DuckDB and the lake.

Safe-zone datasets show metadata only. Every route under ``/api/v1/datasets/{dataset_id}/`` lives on one
router whose dependency refuses safe-zone datasets with 403 — enforced in one place, and
``tests/serving/test_safezone.py`` walks every route in ``/openapi.json`` to prove it.
"""

from __future__ import annotations

import base64
import binascii
import io
import json
from collections.abc import Iterator
from contextlib import asynccontextmanager
from datetime import date, datetime
from typing import Annotated, Literal
from zoneinfo import ZoneInfo

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
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
from serving.aggregate import router as aggregate_router
from serving.changes import router as changes_router
from serving.db import Lake
from serving.deps import known_dataset, lake_of, open_dataset
from serving.http import ConditionalGet, GzipExceptDownloads, RateLimit
from serving.metadata import dataset_metadata, last_modified, matches
from serving.metrics import install as install_metrics
from serving.metrics import ledger_entries
from serving.quality_docs import install as install_quality_docs
from serving.safezone.routes import public as safezone_public_router
from serving.safezone.routes import router as safezone_router

API = "/api/v1"


def error_response(error: CityhubError) -> JSONResponse:
    return JSONResponse({"error": error.to_dict()}, status_code=error.status)


def _lake(request: Request) -> Lake:
    return lake_of(request)


def _encode_cursor(row: dict, contract: Contract) -> str:
    key = [row[c] for c in contract.order_columns]
    return base64.urlsafe_b64encode(json.dumps(key).encode()).decode().rstrip("=")


def _decode_cursor(cursor: str, contract: Contract) -> list:
    try:
        key = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        if not (isinstance(key, list) and len(key) == len(contract.order_columns)):
            raise ValueError
        return key
    except (ValueError, binascii.Error, json.JSONDecodeError) as exc:
        raise BadRequest(
            "cursor is not one this API issued",
            hint="pass next_cursor from the previous page unchanged, or leave it out to start from the first page",
        ) from exc


def _time_filter(contract: Contract, since: datetime | None, until: datetime | None) -> tuple[list[str], list]:
    where, params = [], []
    for value, op, name in ((since, ">=", "since"), (until, "<", "until")):
        if value is None:
            continue
        if value.tzinfo is None:
            raise BadRequest(f"{name} has no time zone", hint=f"add Z or an offset, e.g. {name}=2026-11-21T09:00:00Z")
        where.append(f'"{contract.event_time}" {op} ?')
        # a daily dataset's event time is a day in its zone: the day of the instant there
        is_day = contract.column(contract.event_time).kind == "date"
        params.append(value.astimezone(ZoneInfo(contract.source_tz)).date() if is_day else value)
    if since and until and since >= until:
        raise BadRequest("since must be before until", hint="swap them, or widen the range")
    return where, params


def _json_ready(table: pa.Table) -> list[dict]:
    """Rows with timestamps as ISO-8601 UTC strings and days as ISO dates (formatted column-wise by Arrow, not
    per row)."""
    for i, field in enumerate(table.schema):
        if pa.types.is_timestamp(field.type):
            text = pc.strftime(table.column(i).cast(pa.timestamp("us", tz="UTC")), format="%Y-%m-%dT%H:%M:%SZ")
            table = table.set_column(i, field.name, text)
        elif pa.types.is_date(field.type):
            table = table.set_column(i, field.name, table.column(i).cast(pa.string()))
    return table.to_pylist()


def _order_by(contract: Contract) -> str:
    return ", ".join(f'"{c}"' for c in contract.order_columns)


def _after(contract: Contract, key: list) -> tuple[str, list]:
    """The keyset predicate "row after ``key``" in the dataset's order (event time first, typed; then the Kafka
    position or the key columns): (a > ?) OR (a = ? AND ((b > ?) OR (b = ? AND …)))."""
    kinds = {c.name: c.kind for c in contract.columns}
    cast = {"timestamp": "::TIMESTAMPTZ", "date": "::DATE"}
    predicate, params = "", []
    for name, value in reversed(list(zip(contract.order_columns, key, strict=True))):
        col, typed = f'"{name}"', f"?{cast.get(kinds.get(name, ''), '')}"
        predicate = f"({col} > {typed} OR ({col} = {typed} AND {predicate}))" if predicate else f"{col} > {typed}"
        params = [value, value, *params] if len(params) else [value]
    return f"({predicate})", params


router = APIRouter(prefix=f"{API}/datasets/{{dataset_id}}", dependencies=[Depends(open_dataset)], tags=["open data"])


@router.get("/records", summary="Records of an open dataset, oldest first, a page at a time")
def records(
    request: Request,
    contract: Annotated[Contract, Depends(open_dataset)],
    since: Annotated[datetime | None, Query(description="event time from (inclusive), ISO 8601 with zone")] = None,
    until: Annotated[datetime | None, Query(description="event time to (exclusive), ISO 8601 with zone")] = None,
    limit: Annotated[int, Query(ge=1, le=10_000, description="rows per page (≤ 10000)")] = 100,
    cursor: Annotated[str | None, Query(description="next_cursor of the previous page")] = None,
) -> dict:
    lake = _lake(request)
    limit = min(limit, lake.settings.max_page_rows)
    where, params = _time_filter(contract, since, until)
    if cursor:
        predicate, values = _after(contract, _decode_cursor(cursor, contract))
        where.append(predicate)
        params += values
    sql = (
        f"SELECT * FROM {lake.source(contract)} {'WHERE ' + ' AND '.join(where) if where else ''} "
        f"ORDER BY {_order_by(contract)} LIMIT {limit + 1}"
    )
    with lake.cursor() as cur, lake.time_limit(cur):
        table = cur.sql(sql, params=params).to_arrow_table()
    truncated = table.num_rows > limit
    rows = _json_ready(table.slice(0, limit))
    return {
        "dataset": contract.id,
        "count": len(rows),
        "rows": rows,
        "truncated": truncated,
        "next_cursor": _encode_cursor(rows[-1], contract) if truncated else None,
    }


MEDIA = {
    "csv": "text/csv; charset=utf-8",
    "jsonl": "application/x-ndjson",
    "parquet": "application/vnd.apache.parquet",
}


def _stream(lake: Lake, sql: str, params: list, fmt: str) -> Iterator[bytes]:
    with lake.cursor() as cur:
        reader = cur.sql(sql, params=params).to_arrow_reader(batch_size=50_000)
        if fmt == "parquet":
            sink = io.BytesIO()
            with pq.ParquetWriter(sink, reader.schema, compression="zstd") as writer:
                for batch in reader:
                    writer.write_batch(batch)
                    yield sink.getvalue()
                    sink.seek(0)
                    sink.truncate()
            yield sink.getvalue()
            return
        first = True
        for batch in reader:
            if fmt == "csv":
                out = io.BytesIO()
                pacsv.write_csv(pa.Table.from_batches([batch]), out, pacsv.WriteOptions(include_header=first))
                yield out.getvalue()
            else:
                rows = _json_ready(pa.Table.from_batches([batch]))
                yield ("\n".join(json.dumps(r, ensure_ascii=False) for r in rows) + "\n").encode()
            first = False
        if first and fmt == "csv":  # no rows at all: still a header, so the file has its columns
            out = io.BytesIO()
            pacsv.write_csv(reader.schema.empty_table(), out)
            yield out.getvalue()


@router.get("/download", summary="The whole dataset (or a time range), streamed as CSV, Parquet or JSON Lines")
def download(
    request: Request,
    contract: Annotated[Contract, Depends(open_dataset)],
    format: Annotated[Literal["csv", "parquet", "jsonl"], Query(description="file format")] = "csv",
    since: Annotated[datetime | None, Query(description="event time from (inclusive)")] = None,
    until: Annotated[datetime | None, Query(description="event time to (exclusive)")] = None,
) -> StreamingResponse:
    lake = _lake(request)
    where, params = _time_filter(contract, since, until)
    sql = (
        f"SELECT * FROM {lake.source(contract)} {'WHERE ' + ' AND '.join(where) if where else ''} "
        f"ORDER BY {_order_by(contract)}"
    )
    filename = f"{contract.id}.{format}"
    return StreamingResponse(
        _stream(lake, sql, params, format),
        media_type=MEDIA[format],
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )


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
    lake = _lake(request)
    folder = rollup_dir(lake.settings.lake, contract.id, grain, by)
    if not any(folder.glob(f"date=*/{FILE_NAME}")):
        return {"dataset": contract.id, "grain": grain, "by": by, "count": 0, "rows": [], "truncated": False}
    where = [f'CAST("{grain}" AS DATE) {op} ?' for value, op in ((since, ">="), (until, "<")) if value]
    sql = (
        f"SELECT * FROM read_parquet('{folder}/date=*/{FILE_NAME}', hive_partitioning = false) "
        f"{'WHERE ' + ' AND '.join(where) if where else ''} "
        f'ORDER BY "{grain}", "{PLACE_COLUMN[by]}" NULLS LAST LIMIT {min(limit, lake.settings.max_page_rows) + 1}'
    )
    with lake.cursor() as cur, lake.time_limit(cur):
        table = cur.sql(sql, params=[v for v in (since, until) if v]).to_arrow_table()
    truncated = table.num_rows > limit
    rows = _json_ready(table.slice(0, limit))
    return {"dataset": contract.id, "grain": grain, "by": by, "count": len(rows), "rows": rows, "truncated": truncated}


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
        lake = _lake(request)
        found = [c for c in all_contracts() if (tier is None or c.tier == tier) and matches(c, q)]
        return {"count": len(found), "datasets": [dataset_metadata(c, lake) for c in found]}

    @app.get(f"{API}/datasets/{{dataset_id}}", tags=["catalog"], summary="One dataset's metadata and columns")
    def get_dataset(request: Request, contract: Annotated[Contract, Depends(known_dataset)]) -> dict:
        return dataset_metadata(contract, _lake(request), detail=True)

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
    install_metrics(app, settings)
    install_quality_docs(app, settings)
    return app
