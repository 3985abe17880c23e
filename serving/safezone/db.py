"""The safe zone's state in a real database: SQLite under ``CITYHUB_HOME`` by default, PostgreSQL when
``CITYHUB_DATABASE_URL`` says so (SQLAlchemy Core, no ORM).

**Migrations** are an ordered list of SQL steps (portable between SQLite and PostgreSQL: TEXT ids, ISO-8601
UTC timestamps as TEXT, BIGINT counters); ``schema_migrations`` records each applied version, and
:func:`migrate` applies the missing ones in order, each in its own transaction. A new step is appended, never
edited.
"""

from __future__ import annotations

import threading
import uuid
from datetime import UTC, datetime

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from infra.settings import Settings

MIGRATIONS: list[tuple[int, str, list[str]]] = [
    (
        1,
        "orgs, users, keys, projects, answers, exports, audit log",
        [
            "CREATE TABLE orgs (id TEXT PRIMARY KEY, name TEXT NOT NULL UNIQUE, created_at TEXT NOT NULL)",
            """CREATE TABLE users (
                id TEXT PRIMARY KEY, org_id TEXT NOT NULL REFERENCES orgs(id), name TEXT NOT NULL,
                role TEXT NOT NULL CHECK (role IN ('applicant', 'analyst', 'reviewer', 'admin')),
                created_at TEXT NOT NULL)""",
            """CREATE TABLE projects (
                id TEXT PRIMARY KEY, org_id TEXT NOT NULL REFERENCES orgs(id), applicant_id TEXT NOT NULL,
                datasets TEXT NOT NULL, columns TEXT NOT NULL, purpose TEXT NOT NULL, analysts TEXT NOT NULL,
                days BIGINT NOT NULL,
                status TEXT NOT NULL CHECK (status IN ('pending', 'approved', 'rejected', 'expired')),
                reason TEXT, decided_by TEXT, created_at TEXT NOT NULL, decided_at TEXT, expires_at TEXT)""",
            """CREATE TABLE keys (
                id TEXT PRIMARY KEY, user_id TEXT NOT NULL REFERENCES users(id), project_id TEXT,
                hash TEXT NOT NULL UNIQUE, created_at TEXT NOT NULL, expires_at TEXT, revoked_at TEXT)""",
            """CREATE TABLE answers (
                id TEXT PRIMARY KEY, project_id TEXT NOT NULL, user_id TEXT NOT NULL, dataset TEXT NOT NULL,
                request TEXT NOT NULL, sql TEXT NOT NULL, result TEXT NOT NULL, answer_hash TEXT NOT NULL,
                created_at TEXT NOT NULL)""",
            """CREATE TABLE exports (
                id TEXT PRIMARY KEY, answer_id TEXT NOT NULL, project_id TEXT NOT NULL, requester_id TEXT NOT NULL,
                status TEXT NOT NULL CHECK (status IN ('pending', 'approved', 'rejected')),
                result TEXT, reason TEXT, reviewer_id TEXT, created_at TEXT NOT NULL, decided_at TEXT)""",
            """CREATE TABLE audit (
                seq BIGINT PRIMARY KEY, at TEXT NOT NULL, actor TEXT, project_id TEXT, action TEXT NOT NULL,
                request TEXT, sql TEXT, decision TEXT NOT NULL, suppressed TEXT, answer_hash TEXT,
                prev TEXT NOT NULL, hash TEXT NOT NULL)""",
            # one row: the chain's head, updated first in every append so appends serialise (a row lock in
            # PostgreSQL, the write lock in SQLite)
            "CREATE TABLE audit_head (id BIGINT PRIMARY KEY, seq BIGINT NOT NULL, hash TEXT NOT NULL)",
            "INSERT INTO audit_head (id, seq, hash) VALUES (1, 0, '" + "0" * 64 + "')",
        ],
    ),
    (
        2,
        "published cells of every answer, for the differencing guard; lookup indexes",
        [
            # kept when a project's answers are deleted: the guard remembers what was ever published
            """CREATE TABLE published_cells (
                id TEXT PRIMARY KEY, dataset TEXT NOT NULL, answer_id TEXT NOT NULL, project_id TEXT NOT NULL,
                dims TEXT NOT NULL, filters TEXT NOT NULL, persons BIGINT NOT NULL, created_at TEXT NOT NULL)""",
            "CREATE INDEX published_cells_dataset ON published_cells (dataset, persons)",
            "CREATE INDEX keys_user ON keys (user_id)",
            "CREATE INDEX answers_project ON answers (project_id)",
            "CREATE INDEX exports_status ON exports (status)",
        ],
    ),
    (
        3,
        "one lock row per dataset: differencing checks of one dataset run one at a time",
        ["CREATE TABLE guard_locks (dataset TEXT PRIMARY KEY, checks BIGINT NOT NULL)"],
    ),
]

_engines: dict[str, Engine] = {}
_lock = threading.Lock()


def database_url(settings: Settings) -> str:
    if settings.database_url:
        url = settings.database_url
        if url.startswith("postgresql://"):  # the plain URL people write: drive it with psycopg 3
            url = "postgresql+psycopg://" + url[len("postgresql://") :]
        return url
    path = settings.state / "safezone.db"
    path.parent.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{path}"


def engine_for(settings: Settings) -> Engine:
    """The engine of the configured database, migrated to the latest version (once per process and URL)."""
    url = database_url(settings)
    with _lock:
        engine = _engines.get(url)
        if engine is None:
            if url.startswith("sqlite"):
                engine = sa.create_engine(url, connect_args={"timeout": 30, "check_same_thread": False})
            else:
                engine = sa.create_engine(url, pool_pre_ping=True)
            migrate(engine)
            _engines[url] = engine
        return engine


def dispose_all() -> None:
    with _lock:
        for engine in _engines.values():
            engine.dispose()
        _engines.clear()


def migrate(engine: Engine) -> list[int]:
    """Apply the missing migrations in order; returns the versions applied now."""
    with engine.begin() as conn:
        conn.exec_driver_sql(
            "CREATE TABLE IF NOT EXISTS schema_migrations (version BIGINT PRIMARY KEY, name TEXT NOT NULL, "
            "applied_at TEXT NOT NULL)"
        )
    with engine.connect() as conn:
        done = {row[0] for row in conn.exec_driver_sql("SELECT version FROM schema_migrations")}
    applied = []
    for version, name, steps in MIGRATIONS:
        if version in done:
            continue
        with engine.begin() as conn:
            for step in steps:
                conn.exec_driver_sql(step)
            conn.execute(
                sa.text("INSERT INTO schema_migrations (version, name, applied_at) VALUES (:v, :n, :t)"),
                {"v": version, "n": name, "t": now_iso()},
            )
        applied.append(version)
    return applied


def schema_version(engine: Engine) -> int:
    with engine.connect() as conn:
        return conn.exec_driver_sql("SELECT coalesce(max(version), 0) FROM schema_migrations").scalar_one()


def now() -> datetime:
    return datetime.now(UTC)


def now_iso() -> str:
    return iso(now())


def iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def parse_iso(text: str) -> datetime:
    return datetime.strptime(text, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)


def new_id(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex[:16]}"


def one(conn: Connection, sql: str, /, **params) -> dict | None:
    row = conn.execute(sa.text(sql), params).mappings().first()
    return dict(row) if row else None


def rows(conn: Connection, sql: str, /, **params) -> list[dict]:
    return [dict(r) for r in conn.execute(sa.text(sql), params).mappings()]


def run(conn: Connection, sql: str, /, **params) -> int:
    return conn.execute(sa.text(sql), params).rowcount
