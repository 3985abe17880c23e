"""Safe projects: an organisation applies (datasets, columns, purpose, named analysts, period); an admin approves
or rejects with a reason; access ends by itself at expiry, when the project's stored answers are deleted."""

from __future__ import annotations

import json
from datetime import timedelta

from sqlalchemy.engine import Connection

from catalog import all_contracts
from infra.errors import BadRequest, CityhubError, NotFound
from infra.settings import Settings
from serving.safezone.compile import dimension_of, grantable
from serving.safezone.db import iso, new_id, now, now_iso, one, rows, run


class Conflict(CityhubError):
    status = 409
    code = "conflict"


def safezone_datasets() -> dict:
    return {c.id: c for c in all_contracts() if c.tier == "safezone" and not c.is_derived}


def expire_due(conn: Connection) -> list[str]:
    """Mark approved projects past their end expired and delete their stored answers and unreleased exports."""
    due = [
        r["id"]
        for r in rows(conn, "SELECT id FROM projects WHERE status = 'approved' AND expires_at <= :t", t=now_iso())
    ]
    for pid in due:
        run(conn, "UPDATE projects SET status = 'expired' WHERE id = :p", p=pid)
        run(conn, "DELETE FROM answers WHERE project_id = :p", p=pid)
        run(conn, "DELETE FROM exports WHERE project_id = :p AND status <> 'approved'", p=pid)
    return due


def create(conn: Connection, settings: Settings, applicant, body: dict) -> dict:
    org = body.get("org")
    if not one(conn, "SELECT id FROM orgs WHERE id = :o", o=org):
        raise NotFound("no such organisation", hint="POST /api/v1/safezone/orgs creates one")
    if applicant.role != "admin" and applicant.org_id != org:
        from infra.errors import Forbidden

        raise Forbidden("you may apply for your own organisation only", hint="use a key of a user of that organisation")
    known = safezone_datasets()
    datasets = body.get("datasets")
    if not isinstance(datasets, list) or not datasets or any(d not in known for d in datasets):
        raise BadRequest(
            "datasets must list safe-zone datasets", hint=f"safe-zone datasets: {', '.join(sorted(known))}"
        )
    columns = body.get("columns")
    if not isinstance(columns, list) or not columns or not all(isinstance(c, str) for c in columns):
        raise BadRequest("columns must list the columns asked for", hint="contract column names, e.g. mode, fare_krw")
    granted: dict[str, list[str]] = {}
    for name in columns:
        owners = [d for d in datasets if grantable(known[d], name)]
        if not owners:
            raise BadRequest(
                "a column asked for is not a dimension or a bounded numeric column of the datasets",
                hint="person ids and other direct identifiers are never granted; coordinates are granted as their "
                "district or cell",
            )
        for d in owners:
            dim = dimension_of(known[d], name)
            granted.setdefault(d, [])
            granted[d].append(dim.name if dim else name)
    for d in datasets:
        granted.setdefault(d, [])
    analysts = body.get("analysts")
    if not isinstance(analysts, list) or not analysts:
        raise BadRequest(
            "analysts must name the project's analysts", hint="user ids of role analyst of the organisation"
        )
    for a in analysts:
        user = one(conn, "SELECT org_id, role FROM users WHERE id = :u", u=a)
        if user is None or user["org_id"] != org or user["role"] != "analyst":
            raise BadRequest(
                "every named analyst must be a user of role analyst of the organisation",
                hint="POST /api/v1/safezone/users",
            )
    days = body.get("days")
    if not isinstance(days, int) or isinstance(days, bool) or not 1 <= days <= settings.safezone_max_days:
        raise BadRequest(
            f"days must be 1 to {settings.safezone_max_days}",
            hint="the longest period CITYHUB_SAFEZONE_MAX_DAYS allows",
        )
    purpose = body.get("purpose")
    if not isinstance(purpose, str) or not purpose.strip() or len(purpose) > 5000:
        raise BadRequest("purpose must say what the analysis is for", hint="a few sentences, at most 5000 characters")
    pid = new_id("prj")
    run(
        conn,
        "INSERT INTO projects (id, org_id, applicant_id, datasets, columns, purpose, analysts, days, status, "
        "created_at) VALUES (:i, :o, :a, :d, :c, :p, :an, :days, 'pending', :t)",
        i=pid,
        o=org,
        a=applicant.user_id,
        d=json.dumps(datasets),
        c=json.dumps(granted, ensure_ascii=False),
        p=purpose,
        an=json.dumps(analysts),
        days=days,
        t=now_iso(),
    )
    return get(conn, pid)


def get(conn: Connection, pid: str) -> dict:
    row = one(conn, "SELECT * FROM projects WHERE id = :p", p=pid)
    if row is None:
        raise NotFound("no such project", hint="GET /api/v1/safezone/projects lists yours")
    return _public(row)


def _public(row: dict) -> dict:
    return {
        "id": row["id"],
        "org": row["org_id"],
        "applicant": row["applicant_id"],
        "datasets": json.loads(row["datasets"]),
        "columns": json.loads(row["columns"]),
        "purpose": row["purpose"],
        "analysts": json.loads(row["analysts"]),
        "days": row["days"],
        "status": row["status"],
        "reason": row["reason"],
        "decided_by": row["decided_by"],
        "created_at": row["created_at"],
        "decided_at": row["decided_at"],
        "expires_at": row["expires_at"],
    }


def listing(conn: Connection, principal) -> list[dict]:
    if principal.role in ("admin", "reviewer"):
        found = rows(conn, "SELECT * FROM projects ORDER BY created_at")
    else:
        found = rows(conn, "SELECT * FROM projects WHERE org_id = :o ORDER BY created_at", o=principal.org_id)
    return [_public(r) for r in found]


def decide(conn: Connection, pid: str, admin, approve: bool, reason) -> dict:
    project = get(conn, pid)
    if project["status"] != "pending":
        raise Conflict(f"the project is {project['status']}, not pending", hint="only a pending application is decided")
    if not isinstance(reason, str) or not reason.strip() or len(reason) > 2000:
        raise BadRequest("a decision needs a reason", hint='send {"reason": "..."}')
    moment = now()
    run(
        conn,
        "UPDATE projects SET status = :s, reason = :r, decided_by = :b, decided_at = :t, expires_at = :e WHERE id = :p",
        s="approved" if approve else "rejected",
        r=reason,
        b=admin.user_id,
        t=iso(moment),
        e=iso(moment + timedelta(days=project["days"])) if approve else None,
        p=pid,
    )
    return get(conn, pid)
