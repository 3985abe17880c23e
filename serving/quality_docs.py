"""``/quality/``: the GX Data Docs the DAGs build (:mod:`quality.docs`), served as static files.

``/quality/`` itself is a page of every catalog dataset, linking to its Data Docs site once one is built — so
it renders before any DAG ran. Like ``/api/v1/datasets/{id}/quality`` it is public for safe-zone datasets too:
their docs hold counts and expectation names only.
"""

from __future__ import annotations

import os
from datetime import UTC, datetime
from html import escape

from fastapi import FastAPI
from fastapi.responses import HTMLResponse, RedirectResponse
from starlette.staticfiles import StaticFiles

from catalog import landed_contracts
from catalog.contract import Contract
from infra.settings import Settings
from quality.docs import docs_root, site_index

PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>cityhub data quality</title>
<style>body{{font-family:sans-serif;max-width:60rem;margin:2rem auto;line-height:1.4}}
table{{border-collapse:collapse;width:100%}}td,th{{border-bottom:1px solid #ddd;padding:.4rem;text-align:left}}</style>
</head><body>
<h1>cityhub data quality</h1>
<p>Each dataset's Airflow DAG validates every batch with the dataset's Great Expectations suite, generated from
its catalog contract, and its validate task renders the results as GX Data Docs here. Safe-zone datasets show
counts and expectation names only, never values. The same counts per event date are in
<code>/api/v1/datasets/{{id}}/quality</code>.</p>
{note}
<table><tr><th>dataset</th><th>tier</th><th>title</th><th>Data Docs</th><th>counts (JSON)</th></tr>
{rows}
</table></body></html>
"""


class BuiltDocs(StaticFiles):
    """The Data Docs sites. Until a DAG built the first one their folder does not exist: a 404, not an error."""

    async def check_config(self) -> None:
        if self.directory is not None and os.path.isdir(self.directory):
            await super().check_config()


def _row(settings: Settings, contract: Contract) -> str:
    index = site_index(settings, contract.id)
    if index.exists():
        built = datetime.fromtimestamp(index.stat().st_mtime, UTC).strftime("%Y-%m-%d %H:%M UTC")
        docs = f'<a href="{contract.id}/index.html">Data Docs</a> (built {built})'
    else:
        docs = f"not built yet: the next run of the DAG <code>{contract.dag_id}</code> builds them"
    cells = (
        f"<code>{contract.id}</code>",
        contract.tier,
        f"{escape(contract.title_en)} ({escape(contract.title_ko)})",
        docs,
        f'<a href="/api/v1/datasets/{contract.id}/quality">quality</a>',
    )
    return "<tr>" + "".join(f"<td>{cell}</td>" for cell in cells) + "</tr>"


def index_page(settings: Settings) -> str:
    contracts = landed_contracts()
    built = any(site_index(settings, c.id).exists() for c in contracts)
    note = (
        ""
        if built
        else "<p><strong>No Data Docs yet.</strong> They appear once a dataset's DAG has validated a batch "
        "(<code>cityhub demo</code> or <code>cityhub airflow</code> runs them); <code>cityhub ingest</code> "
        "checks rows with the same expectations as Arrow kernels and builds no Data Docs.</p>"
    )
    return PAGE.format(note=note, rows="\n".join(_row(settings, c) for c in contracts))


def install(app: FastAPI, settings: Settings) -> None:
    @app.get("/quality", include_in_schema=False)
    def quality_redirect() -> RedirectResponse:
        return RedirectResponse("/quality/")

    @app.get("/quality/", response_class=HTMLResponse, tags=["quality"], summary="GX Data Docs of every dataset")
    def quality_docs() -> HTMLResponse:
        return HTMLResponse(index_page(settings))

    # After the routes above, so that /quality/ is the page and everything below it the built sites.
    app.mount("/quality", BuiltDocs(directory=docs_root(settings), html=True, check_dir=False), name="quality")
