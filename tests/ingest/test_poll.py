"""The open-data connector against a local HTTP server replaying the real AirKorea file."""

from __future__ import annotations

import hashlib
import threading
from email.utils import formatdate
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from catalog.sources import PollSource
from ingest.poll import poll
from ingest.runner import ingest_loop
from tests.conftest import FIXTURES

BODY = (FIXTURES / "korea" / "airkorea" / "getCtprvnRltmMesureDnsty_nationwide_2024-02-18T20.json").read_bytes()


class Portal(BaseHTTPRequestHandler):
    """Serves one file; honours If-None-Match / If-Modified-Since unless told to send no validators."""

    body = BODY
    validators = True
    requests: list[dict] = []

    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        etag = '"' + hashlib.sha256(self.body).hexdigest()[:16] + '"'
        Portal.requests.append(dict(self.headers))
        if self.validators and self.headers.get("If-None-Match") == etag:
            self.send_response(304)
            self.end_headers()
            return
        self.send_response(200)
        self.send_header("Content-Type", "application/json;charset=UTF-8")
        if self.validators:
            self.send_header("ETag", etag)
            self.send_header("Last-Modified", formatdate(0, usegmt=True))
        self.send_header("Content-Length", str(len(self.body)))
        self.end_headers()
        self.wfile.write(self.body)

    def log_message(self, *args) -> None:
        pass


@pytest.fixture
def portal():
    server = ThreadingHTTPServer(("127.0.0.1", 0), Portal)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    Portal.body, Portal.validators, Portal.requests = BODY, True, []
    yield f"http://127.0.0.1:{server.server_address[1]}/B552584/getCtprvnRltmMesureDnsty"
    server.shutdown()


def test_poll_produces_once_and_skips_unchanged_content(settings, portal):
    source = PollSource("airkorea_test", "kr_air_quality", portal, "test portal", source_tz="Asia/Seoul")
    first = poll(settings, source)
    assert (first.status, first.records) == ("produced", 656)
    assert poll(settings, source).status == "unchanged"  # 304 through If-None-Match
    assert Portal.requests[-1]["If-None-Match"]

    Portal.validators = False  # a server that sends no ETag/Last-Modified: the content hash decides
    assert poll(settings, source).status == "unchanged"
    Portal.body = BODY.replace(b'"pm10Value": "45"', b'"pm10Value": "46"', 1)
    assert Portal.body != BODY
    changed = poll(settings, source)
    assert (changed.status, changed.records) == ("produced", 656)

    clean, quarantined = ingest_loop(settings, ["kr_air_quality"])["kr_air_quality"]
    # The re-published file repeats every reading (one with a changed value): the first copy stays clean,
    # the repeats fail the suite's uniqueness expectation (first wins; corrections are not applied as updates).
    assert (clean, quarantined) == (650, 6 + 650 + 6)
