"""Users, roles and keys. A key is a random 32-byte token shown once; only its SHA-256 is stored. A personal key
acts as its user; a query key is bound to one approved project and expires with it. Keys are revocable."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass

from fastapi import Request
from sqlalchemy.engine import Connection

from infra.errors import CityhubError, Forbidden
from serving.safezone.db import new_id, now, now_iso, one, parse_iso, run

ROLES = ("applicant", "analyst", "reviewer", "admin")
KEY_PREFIX = "csz_"


class Unauthorized(CityhubError):
    status = 401
    code = "unauthorized"


@dataclass(frozen=True)
class Principal:
    key_id: str
    user_id: str
    org_id: str
    name: str
    role: str
    project_id: str | None  # set for a query key

    def require(self, *roles: str) -> None:
        if self.role not in roles:
            raise Forbidden(
                f"this needs the role {' or '.join(roles)}", hint=f"your key belongs to a user with role {self.role}"
            )


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def issue_key(conn: Connection, user_id: str, project_id: str | None = None, expires_at: str | None = None) -> dict:
    token = KEY_PREFIX + secrets.token_urlsafe(32)
    key_id = new_id("key")
    run(
        conn,
        "INSERT INTO keys (id, user_id, project_id, hash, created_at, expires_at) VALUES (:i, :u, :p, :h, :c, :e)",
        i=key_id,
        u=user_id,
        p=project_id,
        h=hash_key(token),
        c=now_iso(),
        e=expires_at,
    )
    return {"id": key_id, "key": token, "user": user_id, "project": project_id, "expires_at": expires_at}


def bearer(request: Request) -> str:
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthorized(
            "no safe-zone key",
            hint="send your key as `Authorization: Bearer <key>` (cityhub admin bootstrap prints the first)",
        )
    return token.strip()


def authenticate(conn: Connection, token: str) -> Principal:
    row = one(
        conn,
        "SELECT k.id AS key_id, k.project_id, k.expires_at, k.revoked_at, u.id AS user_id, u.org_id, u.name, u.role "
        "FROM keys k JOIN users u ON u.id = k.user_id WHERE k.hash = :h",
        h=hash_key(token),
    )
    if row is None:
        raise Unauthorized("unknown safe-zone key", hint="check the key, or ask an admin for a new one")
    if row["revoked_at"]:
        raise Unauthorized("this key was revoked", hint="ask an admin for a new key")
    if row["expires_at"] and parse_iso(row["expires_at"]) <= now():
        raise Unauthorized("this key has expired with its project", hint="a query key lives as long as its project")
    return Principal(row["key_id"], row["user_id"], row["org_id"], row["name"], row["role"], row["project_id"])


def bootstrap_admin(conn: Connection) -> dict | None:
    """The first admin (in organisation ``safezone-operator``) and its key; None when an admin exists."""
    if one(conn, "SELECT id FROM users WHERE role = 'admin'"):
        return None
    org = one(conn, "SELECT id FROM orgs WHERE name = 'safezone-operator'")
    if org is None:
        org = {"id": new_id("org")}
        run(
            conn,
            "INSERT INTO orgs (id, name, created_at) VALUES (:i, 'safezone-operator', :c)",
            i=org["id"],
            c=now_iso(),
        )
    user_id = new_id("usr")
    run(
        conn,
        "INSERT INTO users (id, org_id, name, role, created_at) VALUES (:i, :o, 'admin', 'admin', :c)",
        i=user_id,
        o=org["id"],
        c=now_iso(),
    )
    return issue_key(conn, user_id)
