"""``cityhub poll``: fetch an open-data source, skip it when unchanged, split it into records, produce them.

Unchanged content is recognised three ways, whichever the server allows: ETag (``If-None-Match`` → 304),
Last-Modified (``If-Modified-Since`` → 304), and the SHA-256 of the body. The source's state is saved only
after the broker acknowledged every record: a crash in between re-produces the content, and landing then
quarantines the copies (they fail the suite's uniqueness expectation) — nothing is lost and the clean zone
holds each reading once.
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass, replace
from email.utils import formatdate
from pathlib import Path
from urllib.parse import urlparse

import httpx

from catalog import get_contract
from catalog.sources import PollSource
from infra.errors import BadRequest, CityhubError
from infra.settings import Settings
from ingest import lake
from ingest.produce import entities_from_bytes, records_from_entities, send

log = logging.getLogger(__name__)


@dataclass
class PollResult:
    source: str
    status: str  # "produced" | "unchanged"
    records: int = 0


def _state_path(settings: Settings, source: PollSource) -> Path:
    return settings.state / "poll" / f"{source.id}.json"


def _fetch(settings: Settings, url: str, state: dict) -> tuple[int, bytes, dict]:
    """(status, body, validators) for an http(s) URL or a local file."""
    parsed = urlparse(url)
    if parsed.scheme in ("", "file"):
        path = Path(parsed.path if parsed.scheme else url)
        if not path.exists():
            raise BadRequest(f"source file {path} does not exist", hint="check the path")
        modified = formatdate(path.stat().st_mtime, usegmt=True)
        return 200, path.read_bytes(), {"last_modified": modified}
    headers = {}
    if state.get("etag"):
        headers["If-None-Match"] = state["etag"]
    if state.get("last_modified"):
        headers["If-Modified-Since"] = state["last_modified"]
    try:
        response = httpx.get(
            url.format(data_go_kr_key=settings.data_go_kr_key or ""), headers=headers, timeout=60, follow_redirects=True
        )
    except httpx.HTTPError as exc:
        raise CityhubError(
            f"could not fetch {parsed.netloc}{parsed.path}: {exc}",
            status=502,
            code="source_unreachable",
            hint="the source may be down; the next poll retries",
        ) from exc
    if response.status_code not in (200, 304):
        raise CityhubError(
            f"{parsed.netloc}{parsed.path} answered {response.status_code}",
            status=502,
            code="source_error",
            hint="check the URL and, for data.go.kr, CITYHUB_DATA_GO_KR_KEY",
        )
    validators = {"etag": response.headers.get("etag"), "last_modified": response.headers.get("last-modified")}
    return response.status_code, response.content, validators


def poll(settings: Settings, source: PollSource) -> PollResult:
    if source.id in settings.source_urls:
        source = replace(source, url=settings.source_urls[source.id])  # a mirror or a local copy
    state_path = _state_path(settings, source)
    state = json.loads(state_path.read_text()) if state_path.exists() else {}
    status, body, validators = _fetch(settings, source.url, state)
    if status == 304:
        log.info("%s: not modified (304)", source.id)
        return PollResult(source.id, "unchanged")
    digest = hashlib.sha256(body).hexdigest()
    if digest == state.get("sha256"):
        log.info("%s: content unchanged (same SHA-256)", source.id)
        return PollResult(source.id, "unchanged")
    suffix = Path(urlparse(source.url).path).suffix
    records = records_from_entities(entities_from_bytes(body, suffix))
    send(settings, get_contract(source.dataset), records, source_tz=source.source_tz)
    lake.write_json_atomically(state_path, {**validators, "sha256": digest})
    log.info("%s: produced %d record(s) to %s", source.id, len(records), source.dataset)
    return PollResult(source.id, "produced", len(records))
