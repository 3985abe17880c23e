"""``cityhub admin bootstrap`` and ``cityhub audit verify``."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from infra.errors import CityhubError
from infra.settings import Settings

# the database layers are imported by the commands themselves: every other command starts without them


def cmd_admin(args: argparse.Namespace, settings: Settings) -> int:
    from serving.safezone.auth import bootstrap_admin
    from serving.safezone.db import engine_for

    with engine_for(settings).begin() as conn:
        issued = bootstrap_admin(conn)
    if issued is None:
        raise CityhubError(
            "an admin exists already: bootstrap prints the first admin key once",
            hint="an admin issues further keys with POST /api/v1/safezone/keys",
            status=1,
            code="already_bootstrapped",
        )
    print(f"first admin: user {issued['user']}, key id {issued['id']}")
    print(issued["key"])
    return 0


def read_heads(args: argparse.Namespace) -> list[dict]:
    heads = []
    for path in args.heads or []:
        for line in Path(path).read_text().splitlines():
            if line.strip():
                heads.append(json.loads(line))
    for text in args.head or []:
        seq, _, digest = text.partition(":")
        heads.append({"seq": int(seq), "hash": digest})
    return heads


def cmd_audit_verify(args: argparse.Namespace, settings: Settings) -> int:
    from serving.safezone import audit
    from serving.safezone.db import engine_for

    with engine_for(settings).connect() as conn:
        log = audit.entries(conn, 0, limit=10**12)
        head = audit.head(conn)
    heads = read_heads(args)
    problems = audit.verify(log, heads)
    if log and (head["seq"] != log[-1]["seq"] or head["hash"] != log[-1]["hash"]):
        problems.append("the stored head is not the last entry of the log")
    if problems:
        for problem in problems:
            print(f"FAIL {problem}")
        return 1
    print(f"ok: {len(log)} entries, head {head['seq']}:{head['hash']}, {len(heads)} published head(s) matched")
    return 0


def add_parsers(sub) -> None:
    p = sub.add_parser("admin", help="safe-zone administration")
    p.add_argument("action", choices=["bootstrap"], help="bootstrap: create the first admin and print its key")
    p.set_defaults(func=cmd_admin)
    p = sub.add_parser("audit", help="the safe zone's hash-chained audit log")
    p.add_argument("action", choices=["verify"], help="verify: check the chain and the published heads")
    p.add_argument("--heads", action="append", help="file of published heads, one JSON {seq, hash} a line")
    p.add_argument("--head", action="append", help="a published head SEQ:HASH (repeatable)")
    p.set_defaults(func=cmd_audit_verify)
