"""HTTP behaviour around every route, as plain ASGI middleware: rate limits, gzip, ETag / Last-Modified.

* **Rate limit** per client (its ``X-API-Key`` header, else its address): a token bucket of
  ``CITYHUB_RATE_LIMIT_PER_MIN`` requests refilled continuously. Every ``/api/`` answer carries
  ``X-RateLimit-Limit``, ``X-RateLimit-Remaining`` and ``X-RateLimit-Reset`` (seconds until the bucket is full);
  an empty bucket answers 429 in the one JSON error shape with ``Retry-After``.
* **gzip** for clients that accept it, except downloads: their formats are compressed already (Parquet) or
  are streamed at full speed; compressing them would only cost the server CPU a client can spend itself.
* **ETag** (a digest of the body) on every whole JSON or HTML answer, **Last-Modified** where the route knows
  the data's age; a matching ``If-None-Match`` (or a not-newer ``If-Modified-Since`` without one) answers 304
  with no body. Answers are computed before their digest, so a 304 saves the transfer, not the query.
"""

from __future__ import annotations

import hashlib
import json
import math
import threading
import time
from collections.abc import Awaitable, Callable, MutableMapping
from email.utils import parsedate_to_datetime
from typing import Any

from starlette.middleware.gzip import GZipMiddleware

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

MAX_KEY_LENGTH = 128
MAX_CLIENTS = 100_000  # buckets kept; full ones are forgotten first
CACHEABLE = (b"application/json", b"text/html")


def _header(scope: Scope, name: bytes) -> bytes | None:
    for key, value in scope.get("headers", []):
        if key == name:
            return value
    return None


class TokenBuckets:
    """Per-client token buckets, thread-safe; ``take`` answers (allowed, remaining, reset_s, retry_after_s)."""

    def __init__(self, per_minute: int):
        self.capacity = float(per_minute)
        self.rate = per_minute / 60.0
        self._buckets: dict[str, tuple[float, float]] = {}  # client -> (tokens, at)
        self._lock = threading.Lock()

    def take(self, client: str, now: float | None = None) -> tuple[bool, int, int, int]:
        now = time.monotonic() if now is None else now
        with self._lock:
            tokens, at = self._buckets.get(client, (self.capacity, now))
            tokens = min(self.capacity, tokens + (now - at) * self.rate)
            allowed = tokens >= 1.0
            if allowed:
                tokens -= 1.0
            self._buckets[client] = (tokens, now)
            if len(self._buckets) > MAX_CLIENTS:
                self._forget_full(now)
        reset = math.ceil((self.capacity - tokens) / self.rate)
        retry = 0 if allowed else math.ceil((1.0 - tokens) / self.rate)
        return allowed, int(tokens), reset, retry

    def _forget_full(self, now: float) -> None:
        for client, (tokens, at) in list(self._buckets.items()):
            if tokens + (now - at) * self.rate >= self.capacity:
                del self._buckets[client]


class RateLimit:
    def __init__(self, app: ASGIApp, per_minute: int):
        self.app = app
        self.per_minute = per_minute
        self.buckets = TokenBuckets(per_minute) if per_minute > 0 else None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or self.buckets is None or not scope["path"].startswith("/api/"):
            await self.app(scope, receive, send)
            return
        allowed, remaining, reset, retry = self.buckets.take(self._client(scope))
        limits = [
            (b"x-ratelimit-limit", str(self.per_minute).encode()),
            (b"x-ratelimit-remaining", str(remaining).encode()),
            (b"x-ratelimit-reset", str(reset).encode()),
        ]
        if not allowed:
            body = json.dumps(
                {
                    "error": {
                        "status": 429,
                        "code": "rate_limited",
                        "message": f"more than {self.per_minute} requests a minute from this client",
                        "hint": f"retry after {retry}s; each X-API-Key has a limit of its own",
                    }
                }
            ).encode()
            headers = [(b"content-type", b"application/json"), (b"retry-after", str(retry).encode()), *limits]
            await send({"type": "http.response.start", "status": 429, "headers": headers})
            await send({"type": "http.response.body", "body": body})
            return

        async def with_limits(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), *limits]
            await send(message)

        await self.app(scope, receive, with_limits)

    @staticmethod
    def _client(scope: Scope) -> str:
        key = _header(scope, b"x-api-key")
        if key:
            return "key:" + key[:MAX_KEY_LENGTH].decode("latin-1")
        client = scope.get("client")
        return "addr:" + (client[0] if client else "unknown")


# zlib's fastest level. Starlette's default, 9, took 1.3 ms for a 100-row page (45 KB of JSON) against 0.2 ms at 1 —
# the largest share of a record page's time outside its query — for a body 5.4 rather than 3.9 KB.
GZIP_LEVEL = 1


class GzipExceptDownloads:
    """Starlette's gzip for everything but ``…/download`` (streamed files keep their own encoding)."""

    def __init__(self, app: ASGIApp, minimum_size: int = 1000):
        self.app = app
        self.gzip = GZipMiddleware(app, minimum_size=minimum_size, compresslevel=GZIP_LEVEL)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and not scope["path"].endswith("/download"):
            await self.gzip(scope, receive, send)
        else:
            await self.app(scope, receive, send)


class ConditionalGet:
    """ETag on whole JSON/HTML answers to GET and HEAD; 304 when the client already has them."""

    def __init__(self, app: ASGIApp, last_modified: Callable[[str], str | None] = lambda path: None):
        self.app = app
        self.last_modified = last_modified  # path -> HTTP date of the data it answers from, if known

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] not in ("GET", "HEAD"):
            await self.app(scope, receive, send)
            return
        start: Message | None = None
        passthrough = False

        async def buffered(message: Message) -> None:
            nonlocal start, passthrough
            if passthrough:
                await send(message)
                return
            if message["type"] == "http.response.start":
                start = message
                headers = dict(message.get("headers", []))
                cacheable = message["status"] == 200 and headers.get(b"content-type", b"").startswith(CACHEABLE)
                if not cacheable:
                    passthrough = True
                    await send(message)
                return
            if message["type"] == "http.response.body" and start is not None:
                if message.get("more_body", False):  # a stream: sent as it comes, without a digest
                    passthrough = True
                    await send(start)
                    await send(message)
                    return
                modified = self.last_modified(scope["path"])
                if modified:
                    start["headers"] = [*start.get("headers", []), (b"last-modified", modified.encode())]
                await self._answer(scope, start, message.get("body", b""), send)

        await self.app(scope, receive, buffered)

    @staticmethod
    async def _answer(scope: Scope, start: Message, body: bytes, send: Send) -> None:
        # weak: the gzip layer outside may re-encode the body, and a strong tag would then be a lie
        etag = b'W/"' + hashlib.sha256(body).hexdigest()[:32].encode() + b'"'
        headers = [(k, v) for k, v in start.get("headers", []) if k != b"etag"]
        headers += [(b"etag", etag), (b"cache-control", b"no-cache")]
        if _not_modified(scope, etag, dict(headers).get(b"last-modified")):
            kept = [(k, v) for k, v in headers if k not in (b"content-length", b"content-type")]
            await send({"type": "http.response.start", "status": 304, "headers": kept})
            await send({"type": "http.response.body", "body": b""})
            return
        await send({**start, "headers": headers})
        await send({"type": "http.response.body", "body": body})


def _not_modified(scope: Scope, etag: bytes, last_modified: bytes | None) -> bool:
    match = _header(scope, b"if-none-match")
    if match is not None:
        tags = {t.strip().removeprefix(b"W/") for t in match.split(b",")}
        return etag.removeprefix(b"W/") in tags or b"*" in tags
    since = _header(scope, b"if-modified-since")
    if since is None or last_modified is None:
        return False
    try:
        return parsedate_to_datetime(last_modified.decode()) <= parsedate_to_datetime(since.decode())
    except (TypeError, ValueError):
        return False
