"""The append-only, hash-chained audit log of every safe-zone request.

Each entry's ``hash`` is SHA-256 over the previous entry's hash and the entry's canonical JSON (its ``seq``
included), so an edited entry changes its hash, a removed one leaves a gap in ``seq`` and breaks the ``prev``
link of the next, and a reordered pair breaks both links. An admin who controls the database could rewrite the
whole chain consistently from some entry on; that is why the head (``seq``, ``hash``) is published on
``GET /api/v1/safezone/audit/head`` (public) for anyone to record: :func:`verify` checks the chain against such
recorded heads, and a rewritten history no longer contains them.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable

from sqlalchemy.engine import Connection, Engine

from serving.safezone.db import now_iso, one, rows, run

GENESIS = "0" * 64
FIELDS = ("seq", "at", "actor", "project_id", "action", "request", "sql", "decision", "suppressed", "answer_hash")


def entry_hash(prev: str, entry: dict) -> str:
    body = json.dumps({f: entry.get(f) for f in FIELDS}, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(f"{prev}\n{body}".encode()).hexdigest()


def append(engine: Engine, **fields) -> dict:
    """Append one entry (in its own transaction, after locking the head row) and return it."""
    with engine.begin() as conn:
        run(conn, "UPDATE audit_head SET seq = seq WHERE id = 1")  # takes the lock before reading the head
        head = one(conn, "SELECT seq, hash FROM audit_head WHERE id = 1")
        entry = {f: fields.get(f) for f in FIELDS}
        entry["seq"] = head["seq"] + 1
        entry["at"] = fields.get("at") or now_iso()
        for name in ("request", "suppressed"):
            if entry[name] is not None and not isinstance(entry[name], str):
                entry[name] = json.dumps(entry[name], sort_keys=True, ensure_ascii=False)
        entry["prev"] = head["hash"]
        entry["hash"] = entry_hash(head["hash"], entry)
        cols = ", ".join(entry)
        run(conn, f"INSERT INTO audit ({cols}) VALUES ({', '.join(':' + c for c in entry)})", **entry)
        run(conn, "UPDATE audit_head SET seq = :seq, hash = :hash WHERE id = 1", seq=entry["seq"], hash=entry["hash"])
        return entry


def head(conn: Connection) -> dict:
    return one(conn, "SELECT seq, hash FROM audit_head WHERE id = 1") or {"seq": 0, "hash": GENESIS}


def entries(conn: Connection, after: int = 0, limit: int = 10_000) -> list[dict]:
    return rows(conn, "SELECT * FROM audit WHERE seq > :after ORDER BY seq LIMIT :limit", after=after, limit=limit)


def verify(log: Iterable[dict], heads: Iterable[dict] = ()) -> list[str]:
    """Problems of the chain ``log`` (entries in storage order) and against published ``heads`` ({seq, hash});
    an empty list when it is intact."""
    problems: list[str] = []
    recomputed: dict[int, str] = {}
    prev, expected_seq = GENESIS, 1
    for entry in log:
        seq = entry["seq"]
        if seq != expected_seq:
            problems.append(f"entry {seq}: expected entry {expected_seq} here (an entry removed or reordered)")
        if entry["prev"] != prev:
            problems.append(f"entry {seq}: does not link to the entry before it")
        digest = entry_hash(entry["prev"], entry)
        if digest != entry["hash"]:
            problems.append(f"entry {seq}: its content does not match its hash (edited)")
        recomputed[seq] = digest
        prev, expected_seq = entry["hash"], seq + 1
    for published in heads:
        seq, digest = int(published["seq"]), published["hash"]
        if seq == 0:
            continue
        if seq not in recomputed:
            problems.append(f"published head {seq} is missing from the log (history truncated)")
        elif recomputed[seq] != digest:
            problems.append(f"published head {seq} does not match the log (history rewritten)")
    return problems
