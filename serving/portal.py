"""The open-data portal: a catalog page at ``/`` and a page per dataset at ``/datasets/{id}``.

Both pages are static shells (``serving/portal/``: HTML, CSS and vanilla JS, no build step) whose script reads
the public API — ``/api/v1/datasets``, ``…/{id}``, ``…/{id}/quality`` and ``…/{id}/records`` — and draws the
catalog, the schema, freshness and quality, a preview table, a time-series chart (inline SVG) and a map of the
sensor locations in the data (SVG points on a projected frame, no tiles). Every asset is served from
``/portal/``: nothing is fetched from another host, so the portal works offline. Labels are in Korean and
English (``portal/i18n.js``).

The HTML routes stay out of ``/openapi.json``: they are pages, not API operations.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, FastAPI
from fastapi.responses import FileResponse, RedirectResponse
from starlette.staticfiles import StaticFiles

from catalog import all_contracts

ASSETS = Path(__file__).parent / "portal"
PREFIX = "/portal"

router = APIRouter(include_in_schema=False)


def _page(name: str, status: int = 200) -> FileResponse:
    # no-cache: the shell is tiny and must follow a redeploy; the assets it names are revalidated by ETag
    headers = {"Cache-Control": "no-cache"}
    return FileResponse(ASSETS / name, status_code=status, media_type="text/html", headers=headers)


@router.get("/")
def catalog_page() -> FileResponse:
    return _page("catalog.html")


@router.get("/datasets")
def catalog_redirect() -> RedirectResponse:
    return RedirectResponse("/", status_code=308)


@router.get("/datasets/{dataset_id}")
def dataset_page(dataset_id: str) -> FileResponse:
    # An unknown id still gets the page (its script shows the API's error readably), with the status it deserves.
    known = {c.id for c in all_contracts()}
    return _page("dataset.html", status=200 if dataset_id in known else 404)


def install(app: FastAPI) -> None:
    app.include_router(router)
    app.mount(PREFIX, StaticFiles(directory=ASSETS), name="portal")
