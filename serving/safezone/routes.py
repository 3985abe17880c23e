"""The safe zone's routes under ``/api/v1/safezone``. Keys travel as ``Authorization: Bearer <key>``; every error
is the one JSON shape; every request — answered or refused — is appended to the audit log (:class:`Audited`)."""

from __future__ import annotations

import csv
import hashlib
import io
import json
from collections.abc import Callable
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response, StreamingResponse
from fastapi.routing import APIRoute
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy.engine import Engine

from catalog import get_contract
from infra.errors import BadRequest, CityhubError, Forbidden, Gone, NotFound
from infra.settings import Settings
from serving.safezone import audit, guard, projects, sandbox
from serving.safezone.auth import ROLES, Principal, authenticate, bearer, issue_key
from serving.safezone.compile import Refused, compile_cells, from_json, from_sql, full_vocabulary, vocabulary
from serving.safezone.db import engine_for, new_id, now_iso, one, rows, run
from serving.safezone.disclosure import control, export_view
from serving.safezone.projects import Conflict

PREFIX = "/api/v1/safezone"


def _settings(request: Request) -> Settings:
    return request.app.state.lake.settings


def _engine(request: Request) -> Engine:
    return engine_for(_settings(request))


def _ctx(request: Request) -> dict:
    return request.scope.setdefault("cityhub.safezone", {})


class Audited(APIRoute):
    """Every request through these routes leaves one audit entry: who, project, request, compiled SQL, decision,
    suppressed cells, answer hash — after the answer is made, refusals included."""

    def get_route_handler(self) -> Callable:
        original = super().get_route_handler()

        async def handler(request: Request) -> Response:
            ctx = _ctx(request)
            try:
                response = await original(request)
            except CityhubError as exc:
                ctx["decision"] = f"refused {exc.status} {exc.code}"
                await run_in_threadpool(_append, request, ctx)
                raise
            except RequestValidationError:
                ctx["decision"] = "refused 400 bad_request"
                await run_in_threadpool(_append, request, ctx)
                raise
            except Exception:
                ctx["decision"] = "error 500"
                await run_in_threadpool(_append, request, ctx)
                raise
            ctx.setdefault("decision", f"answered {response.status_code}")
            await run_in_threadpool(_append, request, ctx)
            return response

        return handler


def _append(request: Request, ctx: dict) -> None:
    action = f"{request.method} {request.url.path}"
    audit.append(
        _engine(request),
        actor=ctx.get("actor"),
        project_id=ctx.get("project_id"),
        action=action,
        request=ctx.get("request"),
        sql=ctx.get("sql"),
        decision=ctx["decision"],
        suppressed=ctx.get("suppressed"),
        answer_hash=ctx.get("answer_hash"),
    )


def principal(request: Request) -> Principal:
    token = bearer(request)
    with _engine(request).begin() as conn:
        projects.expire_due(conn)
        who = authenticate(conn, token)
    _ctx(request)["actor"] = who.user_id
    return who


Who = Annotated[Principal, Depends(principal)]
router = APIRouter(prefix=PREFIX, tags=["safe zone"], route_class=Audited)
public = APIRouter(prefix=PREFIX, tags=["safe zone"])


class OrgIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1, max_length=200)


class UserIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    org: str = Field(max_length=100)
    name: str = Field(min_length=1, max_length=200)
    role: Literal["applicant", "analyst", "reviewer", "admin"]


class KeyIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    user: str = Field(max_length=100)
    project: str | None = Field(None, max_length=100)


class ProjectIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    org: str = Field(max_length=100)
    datasets: list[str] = Field(min_length=1, max_length=10)
    columns: list[str] = Field(min_length=1, max_length=100)
    purpose: str = Field(min_length=1, max_length=5000)
    analysts: list[str] = Field(min_length=1, max_length=50)
    days: int = Field(ge=1, le=3650)


class Decision(BaseModel):
    model_config = ConfigDict(extra="forbid")
    reason: str = Field(min_length=1, max_length=2000)


class QueryIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    sql: str | None = Field(None, max_length=10_000)
    dataset: str | None = Field(None, max_length=100)
    group_by: list[str] | None = Field(None, max_length=10)
    measures: list[dict[str, Any] | str] | None = Field(None, max_length=10)
    where: list[dict[str, Any]] | None = Field(None, max_length=20)


# -- people and keys ---------------------------------------------------------------------------------------------


@router.post("/orgs", status_code=201, summary="Register an organisation (admin)")
def create_org(request: Request, who: Who, body: OrgIn) -> dict:
    who.require("admin")
    _ctx(request)["request"] = body.model_dump()
    with _engine(request).begin() as conn:
        if one(conn, "SELECT id FROM orgs WHERE name = :n", n=body.name):
            raise Conflict("an organisation of that name exists", hint="names are unique")
        org_id = new_id("org")
        run(conn, "INSERT INTO orgs (id, name, created_at) VALUES (:i, :n, :t)", i=org_id, n=body.name, t=now_iso())
    return {"id": org_id, "name": body.name}


@router.post("/users", status_code=201, summary="Register a user of an organisation with a role (admin)")
def create_user(request: Request, who: Who, body: UserIn) -> dict:
    who.require("admin")
    _ctx(request)["request"] = body.model_dump()
    assert body.role in ROLES
    with _engine(request).begin() as conn:
        if not one(conn, "SELECT id FROM orgs WHERE id = :o", o=body.org):
            raise NotFound("no such organisation", hint="POST /api/v1/safezone/orgs creates one")
        user_id = new_id("usr")
        run(
            conn,
            "INSERT INTO users (id, org_id, name, role, created_at) VALUES (:i, :o, :n, :r, :t)",
            i=user_id,
            o=body.org,
            n=body.name,
            r=body.role,
            t=now_iso(),
        )
    return {"id": user_id, "org": body.org, "name": body.name, "role": body.role}


@router.post("/keys", status_code=201, summary="Issue a personal key, or a query key bound to one approved project")
def create_key(request: Request, who: Who, body: KeyIn) -> dict:
    _ctx(request)["request"] = body.model_dump()
    _ctx(request)["project_id"] = body.project
    with _engine(request).begin() as conn:
        user = one(conn, "SELECT id, role FROM users WHERE id = :u", u=body.user)
        if user is None:
            raise NotFound("no such user", hint="POST /api/v1/safezone/users creates one")
        if body.project is None:
            if who.role != "admin":
                raise Forbidden("personal keys are issued by an admin", hint="ask an admin")
            return issue_key(conn, body.user)
        if who.role != "admin" and (who.user_id != body.user or who.project_id is not None):
            raise Forbidden("a query key is issued to yourself, with your personal key (or by an admin)", hint="")
        project = projects.get(conn, body.project)
        if project["status"] == "expired":
            raise Gone("the project has expired", hint="apply for a new project")
        if project["status"] != "approved":
            raise Conflict(f"the project is {project['status']}, not approved", hint="wait for an admin's approval")
        if body.user not in project["analysts"]:
            raise Forbidden("query keys are for the project's named analysts", hint="the application names them")
        return issue_key(conn, body.user, body.project, project["expires_at"])


@router.delete("/keys/{key_id}", summary="Revoke a key (admin, or the key's own user)")
def revoke_key(request: Request, who: Who, key_id: str) -> dict:
    with _engine(request).begin() as conn:
        key = one(conn, "SELECT id, user_id, revoked_at FROM keys WHERE id = :k", k=key_id)
        if key is None:
            raise NotFound("no such key", hint="the id is the one returned with the key")
        if who.role != "admin" and key["user_id"] != who.user_id:
            raise Forbidden("only an admin or the key's user revokes a key", hint="")
        if not key["revoked_at"]:
            run(conn, "UPDATE keys SET revoked_at = :t WHERE id = :k", t=now_iso(), k=key_id)
    return {"id": key_id, "revoked": True}


# -- projects ----------------------------------------------------------------------------------------------------


@router.post("/projects", status_code=201, summary="Apply for a project (applicant or admin) → pending")
def create_project(request: Request, who: Who, body: ProjectIn) -> dict:
    who.require("applicant", "admin")
    _ctx(request)["request"] = body.model_dump()
    with _engine(request).begin() as conn:
        project = projects.create(conn, _settings(request), who, body.model_dump())
    _ctx(request)["project_id"] = project["id"]
    return project


@router.get("/projects", summary="Projects: all for admins and reviewers, your organisation's otherwise")
def list_projects(request: Request, who: Who) -> dict:
    with _engine(request).connect() as conn:
        found = projects.listing(conn, who)
    return {"count": len(found), "projects": found}


@router.get("/projects/{project_id}", summary="One project")
def get_project(request: Request, who: Who, project_id: str) -> dict:
    _ctx(request)["project_id"] = project_id
    with _engine(request).connect() as conn:
        project = projects.get(conn, project_id)
    if who.role not in ("admin", "reviewer") and project["org"] != who.org_id:
        raise NotFound("no such project", hint="GET /api/v1/safezone/projects lists yours")
    return project


def _decide(request: Request, who: Principal, project_id: str, body: Decision, approve: bool) -> dict:
    who.require("admin")
    _ctx(request).update(project_id=project_id, request=body.model_dump())
    with _engine(request).begin() as conn:
        return projects.decide(conn, project_id, who, approve, body.reason)


@router.post("/projects/{project_id}/approve", summary="Approve a pending project with a reason (admin)")
def approve_project(request: Request, who: Who, project_id: str, body: Decision) -> dict:
    return _decide(request, who, project_id, body, True)


@router.post("/projects/{project_id}/reject", summary="Reject a pending project with a reason (admin)")
def reject_project(request: Request, who: Who, project_id: str, body: Decision) -> dict:
    return _decide(request, who, project_id, body, False)


# -- analysis ----------------------------------------------------------------------------------------------------


def _analyst_project(conn, who: Principal, project_id: str) -> dict:
    project = projects.get(conn, project_id)
    if who.project_id is None:
        raise Forbidden("analysis needs a query key of this project", hint="POST /api/v1/safezone/keys with project")
    if who.project_id != project_id:
        raise Forbidden("this query key is bound to another project", hint="use the key issued for this project")
    if project["status"] == "expired":
        raise Gone("the project has expired: its access ended and its answers were deleted", hint="apply again")
    if project["status"] != "approved" or who.user_id not in project["analysts"]:
        raise Forbidden("the project is not open to you", hint="only named analysts of an approved project")
    return project


@router.post("/projects/{project_id}/queries", status_code=201, summary="Ask an aggregate question (query key)")
def ask(request: Request, who: Who, project_id: str, body: QueryIn) -> dict:
    settings = _settings(request)
    ctx = _ctx(request)
    ctx.update(project_id=project_id, request=body.model_dump(exclude_none=True))
    engine = _engine(request)
    with engine.connect() as conn:
        project = _analyst_project(conn, who, project_id)
    granted = project["columns"]
    if body.sql is not None:
        if any(v is not None for v in (body.dataset, body.group_by, body.measures, body.where)):
            raise Refused("send either sql or a structured request, not both", hint="")
        agg = from_sql(body.sql, project["datasets"], granted)
    else:
        agg = from_json(body.model_dump(exclude_none=True), project["datasets"], granted)
    contract = get_contract(agg.dataset)
    vocab = vocabulary(contract, granted[agg.dataset])
    sql, params = compile_cells(vocab, agg)
    ctx["sql"] = sql
    ctx["request"] = {"asked": ctx["request"], "compiled": agg.canonical()}
    full = full_vocabulary(contract)
    src = sandbox.source(settings, contract, full)
    raw = sandbox.run(settings, src, sql, params)
    if raw.num_rows > settings.safezone_max_cells:
        raise Refused(
            f"the answer would have more than {settings.safezone_max_cells} cells", hint="group by fewer dimensions"
        )
    answer = control(raw, agg, settings)
    ctx["suppressed"] = answer.suppressed
    answer_id = new_id("ans")
    result = {"id": answer_id, "columns": answer.columns, "rows": answer.rows, "suppressed": answer.suppressed}
    digest = hashlib.sha256(json.dumps(result, sort_keys=True, default=str).encode()).hexdigest()
    with engine.begin() as conn:
        guard.check(settings, conn, full, src, agg, answer.cells)
        guard.remember(conn, agg, answer_id, project_id, answer.cells)
        run(
            conn,
            "INSERT INTO answers (id, project_id, user_id, dataset, request, sql, result, answer_hash, created_at) "
            "VALUES (:i, :p, :u, :d, :r, :s, :res, :h, :t)",
            i=answer_id,
            p=project_id,
            u=who.user_id,
            d=agg.dataset,
            r=json.dumps(agg.canonical(), ensure_ascii=False),
            s=sql,
            res=json.dumps(result, ensure_ascii=False, default=str),
            h=digest,
            t=now_iso(),
        )
    ctx["answer_hash"] = digest
    ctx["decision"] = "answered"
    return result


def _answer(conn, who: Principal, answer_id: str) -> dict:
    row = one(conn, "SELECT * FROM answers WHERE id = :a", a=answer_id)
    if row is None:
        raise NotFound("no such answer", hint="answers of an expired project are deleted")
    if who.role not in ("admin", "reviewer"):
        _analyst_project(conn, who, row["project_id"])
    return row


@router.get("/queries/{answer_id}", summary="A stored answer (its project's query key, or a reviewer)")
def get_answer(request: Request, who: Who, answer_id: str) -> dict:
    with _engine(request).connect() as conn:
        row = _answer(conn, who, answer_id)
    _ctx(request).update(project_id=row["project_id"], answer_hash=row["answer_hash"])
    return json.loads(row["result"])


# -- export (반출) -----------------------------------------------------------------------------------------------


@router.post("/queries/{answer_id}/export", status_code=201, summary="Request the export of an answer (analyst)")
def request_export(request: Request, who: Who, answer_id: str) -> dict:
    settings = _settings(request)
    with _engine(request).begin() as conn:
        row = _answer(conn, who, answer_id)
        if who.project_id is None:
            raise Forbidden("an export is requested by the project's analyst", hint="use the project's query key")
        result = json.loads(row["result"])
        out, redacted = export_view(result["columns"], result["rows"], json.loads(row["request"]), settings)
        export_id = new_id("exp")
        released = {"columns": result["columns"], "rows": out, "redacted_rows": redacted}
        run(
            conn,
            "INSERT INTO exports (id, answer_id, project_id, requester_id, status, result, created_at) "
            "VALUES (:i, :a, :p, :u, 'pending', :r, :t)",
            i=export_id,
            a=answer_id,
            p=row["project_id"],
            u=who.user_id,
            r=json.dumps(released, ensure_ascii=False, default=str),
            t=now_iso(),
        )
        _ctx(request).update(project_id=row["project_id"], answer_hash=row["answer_hash"])
        return _export(one(conn, "SELECT * FROM exports WHERE id = :e", e=export_id))


def _export(row: dict) -> dict:
    return {
        "id": row["id"],
        "answer": row["answer_id"],
        "project": row["project_id"],
        "requester": row["requester_id"],
        "status": row["status"],
        "reason": row["reason"],
        "reviewer": row["reviewer_id"],
        "created_at": row["created_at"],
        "decided_at": row["decided_at"],
        "preview": json.loads(row["result"]) if row["result"] else None,
    }


@router.get("/exports", summary="Export requests, e.g. the pending ones (reviewer or admin)")
def list_exports(
    request: Request, who: Who, status: Annotated[Literal["pending", "approved", "rejected"] | None, Query()] = None
) -> dict:
    who.require("reviewer", "admin")
    with _engine(request).connect() as conn:
        if status:
            found = rows(conn, "SELECT * FROM exports WHERE status = :s ORDER BY created_at", s=status)
        else:
            found = rows(conn, "SELECT * FROM exports ORDER BY created_at")
    return {"count": len(found), "exports": [_export(r) for r in found]}


def _review(request: Request, who: Principal, export_id: str, body: Decision, approve: bool) -> dict:
    who.require("reviewer")
    _ctx(request)["request"] = body.model_dump()
    with _engine(request).begin() as conn:
        row = one(conn, "SELECT * FROM exports WHERE id = :e", e=export_id)
        if row is None:
            raise NotFound("no such export", hint="GET /api/v1/safezone/exports?status=pending")
        _ctx(request)["project_id"] = row["project_id"]
        if row["requester_id"] == who.user_id:
            raise Forbidden("a reviewer may not decide their own export request", hint="another reviewer must")
        if row["status"] != "pending":
            raise Conflict(f"the export is {row['status']}, not pending", hint="")
        run(
            conn,
            "UPDATE exports SET status = :s, reason = :r, reviewer_id = :v, decided_at = :t WHERE id = :e",
            s="approved" if approve else "rejected",
            r=body.reason,
            v=who.user_id,
            t=now_iso(),
            e=export_id,
        )
        return _export(one(conn, "SELECT * FROM exports WHERE id = :e", e=export_id))


@router.post("/exports/{export_id}/approve", summary="Approve an export with a reason (a reviewer, not the requester)")
def approve_export(request: Request, who: Who, export_id: str, body: Decision) -> dict:
    return _review(request, who, export_id, body, True)


@router.post("/exports/{export_id}/reject", summary="Reject an export with a reason (a reviewer, not the requester)")
def reject_export(request: Request, who: Who, export_id: str, body: Decision) -> dict:
    return _review(request, who, export_id, body, False)


@router.get("/exports/{export_id}/download", summary="An approved export as CSV (its requester or a reviewer)")
def download_export(request: Request, who: Who, export_id: str) -> Response:
    settings = _settings(request)
    with _engine(request).connect() as conn:
        row = one(conn, "SELECT * FROM exports WHERE id = :e", e=export_id)
    if row is None:
        raise NotFound("no such export", hint="GET /api/v1/safezone/exports")
    _ctx(request)["project_id"] = row["project_id"]
    if who.user_id != row["requester_id"] and who.role not in ("reviewer", "admin"):
        raise Forbidden("an export is downloaded by its requester or a reviewer", hint="")
    if row["status"] != "approved":
        raise Conflict(f"the export is {row['status']}: only an approved export is downloadable", hint="")
    released = json.loads(row["result"])
    if len(released["rows"]) > settings.safezone_export_max_rows:
        raise BadRequest(
            f"the export has more than {settings.safezone_export_max_rows} rows", hint="ask a coarser question"
        )
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(released["columns"])
    writer.writerows(released["rows"])
    return Response(
        out.getvalue(),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{export_id}.csv"'},
    )


# -- audit -------------------------------------------------------------------------------------------------------


@router.get("/audit", summary="The audit log as a JSON Lines stream (admin)")
def audit_log(
    request: Request, who: Who, after: Annotated[int, Query(ge=0, le=2**62, description="entries after this seq")] = 0
) -> StreamingResponse:
    who.require("admin")
    with _engine(request).connect() as conn:
        found = audit.entries(conn, after)
    body = "".join(json.dumps(e, ensure_ascii=False) + "\n" for e in found)
    return StreamingResponse(iter([body.encode()]), media_type="application/x-ndjson")


@public.get("/audit/head", summary="The audit chain's head (public): record it to verify history later")
def audit_head(request: Request) -> dict:
    with _engine(request).connect() as conn:
        return audit.head(conn)
