"""The differencing guard: per dataset, across every project of every organisation, cell by cell.

Two published cells P (an earlier answer's) and Q (the new one's) whose row populations differ in only a few
persons let an analyst subtract one from the other and learn about those few: "all riders in 강남구" minus "all
riders in 강남구 but not by bike". Every published cell is remembered (``published_cells``: its dataset, its
dimension values and its answer's filters, its persons — kept when a project's answers are deleted), and a new
answer is refused (409) when one of its published cells and a remembered cell of the same dataset overlap and

* the persons with a row in exactly one of the two cells (on the current data) number 1 to MIN_PERSONS − 1; or
* the persons in exactly one of the two populations number 1 to MIN_PERSONS − 1; or
* they are the same cell (same dimension values and filters) and its persons changed by 1 to MIN_PERSONS − 1
  since (new rows landed: the difference is the newcomers).

Pairs that cannot be close are skipped: cells with different values of a shared dimension are disjoint, and
both differences are at least |persons(P) − persons(Q)|, so pairs whose sizes differ by MIN_PERSONS or more are
never closer.
"""

from __future__ import annotations

import json

from sqlalchemy.engine import Connection

from catalog.contract import KEY_VERSION
from infra.errors import CityhubError
from infra.settings import Settings
from serving.safezone import sandbox
from serving.safezone.compile import AggRequest, Vocabulary, predicate
from serving.safezone.db import new_id, now_iso, one, rows, run

CHUNK = 64


class Differencing(CityhubError):
    status = 409
    code = "differencing_refused"


def _canon(value) -> str:
    return json.dumps(value, sort_keys=True, ensure_ascii=False, default=str)


def check(
    settings: Settings, conn: Connection, vocab: Vocabulary, src: sandbox.Source, request: AggRequest, cells: list[dict]
) -> None:
    k = settings.min_persons
    # taken first in the answer's transaction: two answers of a dataset are checked and remembered one after the
    # other, so two concurrent requests cannot both pass against a state that lacks the other's cells
    run(
        conn,
        "INSERT INTO guard_locks (dataset, checks) VALUES (:d, 0) ON CONFLICT (dataset) DO NOTHING",
        d=request.dataset,
    )
    run(conn, "UPDATE guard_locks SET checks = checks + 1 WHERE dataset = :d", d=request.dataset)
    filters = request.canonical()["where"]
    new = [c for c in cells if not c["suppressed"]]
    if not new:
        return
    # only remembered cells whose size is within k of a new cell's can be that close (see above)
    low, high = min(c["persons"] for c in new) - k + 1, max(c["persons"] for c in new) + k - 1
    earlier = rows(
        conn,
        "SELECT dims, filters, persons FROM published_cells WHERE dataset = :d AND persons BETWEEN :lo AND :hi",
        d=request.dataset,
        lo=low,
        hi=high,
    )
    pairs = []
    for cell in new:
        for old in earlier:
            if abs(old["persons"] - cell["persons"]) >= k:
                continue
            old_dims, old_filters = json.loads(old["dims"]), json.loads(old["filters"])
            if any(d in old_dims and old_dims[d] != v for d, v in cell["dims"].items()):
                continue
            if _canon(old_dims) == _canon(cell["dims"]) and _canon(old_filters) == _canon(filters):
                if 0 < abs(old["persons"] - cell["persons"]) < k:
                    raise _refusal()
                continue
            if not all(d in vocab.dimensions for d in [*old_dims, *(f[0] for f in old_filters)]):
                continue
            pairs.append(((cell["dims"], filters), (old_dims, old_filters)))
    for start in range(0, len(pairs), CHUNK):
        _check_chunk(settings, vocab, src, pairs[start : start + CHUNK], k)


def _check_chunk(settings: Settings, vocab: Vocabulary, src: sandbox.Source, pairs: list, k: int) -> None:
    per_person, outer, params = [], [], []
    for j, ((dims_a, filters_a), (dims_b, filters_b)) in enumerate(pairs):
        a, pa_ = predicate(vocab, dims_a, filters_a)
        b, pb = predicate(vocab, dims_b, filters_b)
        per_person.append(f"bool_or({a}) AS a{j}, bool_or({b}) AS b{j}, bool_or(({a}) <> ({b})) AS r{j}")
        per_person.append(f"count(*) FILTER (WHERE ({a}) AND ({b})) AS i{j}")
        params += pa_ + pb + pa_ + pb + pa_ + pb
        outer.append(
            f"count(*) FILTER (WHERE r{j}) AS x{j}, count(*) FILTER (WHERE a{j} <> b{j}) AS y{j}, sum(i{j}) AS i{j}"
        )
    version = f'"{KEY_VERSION}"'  # the view always has it (nulls when no file does)
    person = f'CAST("{vocab.person}" AS VARCHAR)'
    sql = (
        f"WITH pp AS (SELECT {version} AS _v, {person} AS _p, {', '.join(per_person)} FROM t GROUP BY ALL), "
        f"pv AS (SELECT _v, {', '.join(outer)} FROM pp GROUP BY _v) "
        "SELECT "
        + ", ".join(f"max(x{j}) AS x{j}, max(y{j}) AS y{j}, sum(i{j}) AS i{j}" for j in range(len(pairs)))
        + " FROM pv"
    )
    result = sandbox.run(settings, src, sql, params).to_pylist()
    if not result:
        return
    found = result[0]
    for j in range(len(pairs)):
        x, y, overlap = found[f"x{j}"] or 0, found[f"y{j}"] or 0, found[f"i{j}"] or 0
        if overlap and (0 < x < k or 0 < y < k):
            raise _refusal()


def _refusal() -> Differencing:
    return Differencing(
        "refused: a cell of this answer differs from a cell published before (in any project) by fewer than "
        "the minimum number of persons",
        hint="ask coarser questions, or ones that do not nearly repeat an earlier answer",
    )


def remember(conn: Connection, request: AggRequest, answer_id: str, project_id: str, cells: list[dict]) -> None:
    filters = _canon(request.canonical()["where"])
    for cell in cells:
        if cell["suppressed"]:
            continue
        dims = _canon(cell["dims"])
        same = "SELECT 1 FROM published_cells WHERE dataset = :d AND dims = :dims AND filters = :f AND persons = :n"
        if one(conn, same, d=request.dataset, dims=dims, f=filters, n=cell["persons"]):
            continue  # the same cell asked again: remembered once
        run(
            conn,
            "INSERT INTO published_cells (id, dataset, answer_id, project_id, dims, filters, persons, created_at) "
            "VALUES (:i, :d, :a, :p, :dims, :f, :n, :c)",
            i=new_id("cell"),
            d=request.dataset,
            a=answer_id,
            p=project_id,
            dims=dims,
            f=filters,
            n=cell["persons"],
            c=now_iso(),
        )
