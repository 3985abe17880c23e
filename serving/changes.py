"""``GET /api/v1/datasets/{id}/changes?after=TOKEN``: rows in landing order after a position, for sync.

Landing order is Kafka order: within each topic partition, rows land in offset order, chunk by chunk, and a
chunk's rows become visible together. A position token is therefore the last offset a client has seen per
(topic, partition); the rows after it are those with a higher offset in a known partition, or in a partition
the token does not name yet. A client stores ``next_after`` and asks again later — unlike event-time filters,
this never misses a reading that arrives late for its time. Rows that a replay (``cityhub offsets replay``,
``cityhub quarantine replay``) lands again keep their offsets and are not sent twice.
"""

from __future__ import annotations

import base64
import binascii
import json
from typing import Annotated

import pyarrow as pa
import pyarrow.compute as pc
from fastapi import APIRouter, Depends, Query, Request

from catalog.contract import Contract
from infra.errors import BadRequest, NotFound
from serving.deps import lake_of, open_dataset
from serving.formats import json_response, json_rows

router = APIRouter(prefix="/api/v1/datasets/{dataset_id}", dependencies=[Depends(open_dataset)], tags=["open data"])
Position = dict[tuple[str, int], int]


def encode_position(position: Position) -> str:
    listed = sorted([topic, partition, offset] for (topic, partition), offset in position.items())
    return base64.urlsafe_b64encode(json.dumps(listed, separators=(",", ":")).encode()).decode().rstrip("=")


def decode_position(token: str) -> Position:
    try:
        listed = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
        position = {}
        for topic, partition, offset in listed:
            if not (isinstance(topic, str) and type(partition) is int and type(offset) is int):
                raise ValueError
            position[topic, partition] = offset
        return position
    except (ValueError, TypeError, binascii.Error, json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise BadRequest(
            "after is not a position token this API issued",
            hint="pass next_after from the previous answer unchanged, or leave it out to start from the beginning",
        ) from exc


def _position_table(position: Position) -> pa.Table:
    return pa.table(
        {
            "_topic": pa.array([t for t, _ in position], pa.string()),
            "_partition": pa.array([p for _, p in position], pa.int32()),
            "_seen": pa.array(list(position.values()), pa.int64()),
        }
    )


@router.get("/changes", summary="Rows in landing order after a position token (incremental sync)")
def changes(
    request: Request,
    contract: Annotated[Contract, Depends(open_dataset)],
    after: Annotated[
        str | None, Query(description="next_after of the previous answer; none: from the beginning")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=10_000, description="rows (≤ 10000)")] = 1000,
) -> dict:
    if contract.is_derived:
        raise NotFound(
            f"dataset {contract.id!r} has no changes feed: it is recomputed per release, not landed from Kafka",
            hint="read it with /records (since/until select its release days)",
        )
    lake = lake_of(request)
    position = decode_position(after) if after else {}
    limit = min(limit, lake.settings.max_page_rows)
    sql = (
        f"SELECT s.* FROM {lake.source(contract)} s LEFT JOIN _position p USING (_topic, _partition) "
        "WHERE p._seen IS NULL OR s._offset > p._seen "
        f"ORDER BY s._topic, s._partition, s._offset LIMIT {limit + 1}"
    )
    table = lake.table(sql, tables={"_position": _position_table(position)})
    truncated = table.num_rows > limit
    table = table.slice(0, limit)
    position = dict(position)
    if table.num_rows:
        last = table.group_by(["_topic", "_partition"]).aggregate([("_offset", "max")])
        for topic, partition, offset in zip(
            last.column("_topic").to_pylist(),
            last.column("_partition").to_pylist(),
            pc.cast(last.column("_offset_max"), pa.int64()).to_pylist(),
            strict=True,
        ):
            position[topic, partition] = offset
    return json_response(
        {
            "dataset": contract.id,
            "count": table.num_rows,
            "rows": json_rows(table),
            "truncated": truncated,
            "next_after": encode_position(position),
        }
    )
