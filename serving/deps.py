"""Request dependencies shared by every router: the dataset a path names, the safe-zone gate, the lake, the row
query of /records and /download."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Path, Request

from catalog import get_contract
from catalog.contract import Contract
from infra.errors import Forbidden
from serving import query
from serving.db import Lake


def lake_of(request: Request) -> Lake:
    return request.app.state.lake


# The dataset dependencies are ``async`` on purpose: they only look the id up in the catalog, and FastAPI runs a
# plain ``def`` dependency on its thread pool, one thread hand-off (and wake-up) per dependency per request.
async def known_dataset(dataset_id: Annotated[str, Path(description="Dataset id from the catalog")]) -> Contract:
    return get_contract(dataset_id)


async def open_dataset(contract: Annotated[Contract, Depends(known_dataset)]) -> Contract:
    """The single gate of the safe zone: its data never leaves as rows through the public API."""
    if not contract.is_open:
        raise Forbidden(
            f"dataset {contract.id!r} is in the data safe zone: only its metadata is public",
            hint="apply for a safe-zone project to analyse it; answers are aggregate-only",
        )
    return contract


async def row_query(
    contract: Annotated[Contract, Depends(open_dataset)],
    since: query.Since = None,
    until: query.Until = None,
    eq: query.Eq = None,
    bbox: query.Bbox = None,
    fields: query.Fields = None,
    sort: query.Sort = None,
) -> query.RowQuery:
    """The filters, fields and order /records and /download share, validated: a 400 names what to fix. ``async``
    as the dataset dependencies are: parsing is microseconds of Python, not worth a thread hand-off."""
    return query.RowQuery.parse(contract, since=since, until=until, eq=eq, bbox=bbox, fields=fields, sort=sort)
