"""Snapshots that pin a paged query to one set of lake files, and the cursors that carry them.

The first page of ``/records`` lists the dataset's live files (:meth:`serving.db.Lake.files`: through each
partition's compaction manifest, so each row is in exactly one of them) and, when there is a next page, stores
that list as a snapshot under ``HOME/state/snapshots/<dataset>/<id>.json``. Its cursor carries the snapshot
id, a fingerprint of the query (filters and sort) and the sort key of the page's last row; later pages read
exactly the snapshot's files, so rows landed since are not seen and a compaction since changes nothing (the
files it replaced stay on disk for ``CITYHUB_COMPACTION_GRACE_S``). Pages therefore neither skip nor repeat a
row, whatever lands or is compacted meanwhile.

A snapshot is usable for ``Settings.cursor_lifetime_s`` after its first page (``CITYHUB_CURSOR_TTL_S``, capped
below the compaction grace period minus the query time limit); after that, or if one of its files is gone
(retention dropped the partition), its cursors answer 410 with a hint to start again. Snapshots are files, so
any API process sharing ``CITYHUB_HOME`` can serve a cursor another issued; expired ones are deleted when a new
one is written.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import os
import re
import threading
import time
from pathlib import Path
from typing import Any

from catalog.contract import Contract
from infra.errors import BadRequest, Gone
from infra.settings import Settings

_ID = re.compile(r"^[0-9a-f]{24}$")
RESTART = "start again without cursor (the first page pins a new snapshot) and page on from there"
_RECENT: dict[Path, tuple[str, float]] = {}  # snapshot path prefix -> (id, created) this process wrote or read
_RECENT_MAX = 4096


def _folder(settings: Settings, dataset_id: str) -> Path:
    return settings.state / "snapshots" / dataset_id


def create(settings: Settings, contract: Contract, files: list[Path]) -> str:
    """Store ``files`` as a snapshot of ``contract``'s clean zone and return its id. The same file list within
    half a lifetime reuses one snapshot, so a crawler starting over and over does not pile them up."""
    folder = _folder(settings, contract.id)
    lifetime = settings.cursor_lifetime_s
    now = time.time()
    listed = [str(f.relative_to(settings.lake)) for f in files]
    digest = hashlib.sha256("\n".join(listed).encode()).hexdigest()[:16]
    # every first page of an unchanged dataset asks for the same snapshot: remembered, that is one stat
    # instead of a folder glob and a read (a millisecond of each page)
    remembered = _RECENT.get(folder / digest)
    if remembered and now - remembered[1] < lifetime / 2 and (folder / f"{remembered[0]}.json").exists():
        return remembered[0]
    for existing in sorted(folder.glob(f"{digest}*.json"), reverse=True):
        try:
            created = json.loads(existing.read_text())["created"]
        except (OSError, ValueError, KeyError):
            continue
        if now - created < lifetime / 2:
            _remember(folder / digest, existing.stem, created)
            return existing.stem
    snapshot_id = f"{digest}{int(now * 1000) & 0xFFFFFFFF:08x}"
    _write(folder / f"{snapshot_id}.json", {"dataset": contract.id, "created": now, "files": listed})
    _remember(folder / digest, snapshot_id, now)
    _prune(folder, now, lifetime)
    return snapshot_id


def _remember(prefix: Path, snapshot_id: str, created: float) -> None:
    if len(_RECENT) >= _RECENT_MAX:  # a dataset landing all day makes a new file list every few minutes
        _RECENT.clear()
    _RECENT[prefix] = (snapshot_id, created)


def _write(path: Path, payload: dict) -> None:
    """Write-then-rename, without the fsyncs landing needs: a snapshot lost in a crash only means its cursors
    answer 410, and two fsyncs would cost every first page several milliseconds."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    tmp.write_text(json.dumps(payload, sort_keys=True))
    os.replace(tmp, path)


def _prune(folder: Path, now: float, lifetime: float) -> None:
    for path in folder.glob("*.json"):
        try:
            if now - path.stat().st_mtime > lifetime + 60:
                path.unlink(missing_ok=True)
        except OSError:
            continue


def files(settings: Settings, contract: Contract, snapshot_id: str) -> list[Path]:
    """The files of a snapshot, or 410 if it has expired or lost a file."""
    path = _folder(settings, contract.id) / f"{snapshot_id}.json"
    try:
        snapshot = json.loads(path.read_text())
    except FileNotFoundError:
        raise Gone(f"the cursor's snapshot {snapshot_id} has expired", hint=RESTART) from None
    age = time.time() - snapshot["created"]
    if snapshot["dataset"] != contract.id or age > settings.cursor_lifetime_s:
        raise Gone(
            f"the cursor's snapshot {snapshot_id} is {age:.0f}s old: cursors live "
            f"{settings.cursor_lifetime_s:g}s (CITYHUB_CURSOR_TTL_S)",
            hint=RESTART,
        )
    paths = [settings.lake / name for name in snapshot["files"]]
    missing = [p for p in paths if not p.exists()]
    if missing:
        raise Gone(
            f"{len(missing)} file(s) of the cursor's snapshot {snapshot_id} are gone (retention or compaction)",
            hint=RESTART,
        )
    return paths


def encode_cursor(snapshot_id: str, fingerprint: str, key: list[Any]) -> str:
    payload = json.dumps({"s": snapshot_id, "q": fingerprint, "k": key}, separators=(",", ":"), ensure_ascii=False)
    return base64.urlsafe_b64encode(payload.encode()).decode().rstrip("=")


def decode_cursor(cursor: str, fingerprint: str) -> tuple[str, Any]:
    """(snapshot id, raw key) of a cursor issued for a query with this fingerprint."""
    try:
        payload = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        if not (isinstance(payload, dict) and _ID.match(str(payload.get("s"))) and "k" in payload):
            raise ValueError
    except (ValueError, binascii.Error, UnicodeDecodeError) as exc:
        raise BadRequest(
            "cursor is not one this API issued",
            hint="pass next_cursor (or the Link rel=next URL) of the previous page unchanged, "
            "or leave it out to start from the first page",
        ) from exc
    if payload.get("q") != fingerprint:
        raise BadRequest(
            "cursor belongs to a query with other filters or another sort",
            hint="keep since, until, eq, bbox and sort as on the first page (fields and limit may change)",
        )
    return payload["s"], payload["k"]
