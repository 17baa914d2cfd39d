"""Request guards in front of every route: a body size limit and per-client rate limits.

Both are plain ASGI middleware so that they act before FastAPI parses anything: an oversized
body is refused from its ``Content-Length`` (or, when chunked, as soon as the running count
passes the limit) without buffering it; a client over its rate gets ``429`` with
``Retry-After`` before any database work.
"""

from __future__ import annotations

import hashlib
import json
import math
import time
from dataclasses import dataclass
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api import i18n

PROBLEM_JSON = b"application/problem+json"


def _scope_language(scope: Scope | None) -> str:
    if scope is None:
        return i18n.DEFAULT_LANGUAGE
    accept = next((v.decode("latin-1") for n, v in scope.get("headers", [])
                   if n == b"accept-language"), None)
    return i18n.from_accept_language(accept) or i18n.DEFAULT_LANGUAGE


async def _send_problem(send: Send, status: int, title: str, detail: str, kind: str,
                        path: str, headers: list[tuple[bytes, bytes]] | None = None,
                        scope: Scope | None = None) -> None:
    title = i18n.catalogue(_scope_language(scope)).get(f"problem.{kind}", title)
    body = json.dumps({"type": f"https://gridcore.dev/problems/{kind}", "title": title,
                       "status": status, "detail": detail, "instance": path},
                      ensure_ascii=False).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", PROBLEM_JSON),
                            (b"content-length", str(len(body)).encode())] + (headers or [])})
    await send({"type": "http.response.body", "body": body})


class _BodyTooLarge(BaseException):  # noqa: N818
    """A BaseException on purpose: body parsers turn any ``Exception`` from ``receive`` into
    a 400, and this must reach the middleware to become a 413."""


class BodySizeLimit:
    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app, self.max_bytes = app, max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or self.max_bytes <= 0:
            await self.app(scope, receive, send)
            return
        path = scope.get("path", "")
        detail = f"the request body is larger than {self.max_bytes} bytes"
        for name, value in scope.get("headers", []):
            if name == b"content-length" and value.isdigit() and int(value) > self.max_bytes:
                await _send_problem(send, 413, "Payload too large", detail,
                                    "payload-too-large", path, scope=scope)
                return
        seen, started = 0, False

        async def counting_receive() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_bytes:
                    raise _BodyTooLarge
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counting_receive, tracking_send)
        except _BodyTooLarge:
            if not started:
                await _send_problem(send, 413, "Payload too large", detail,
                                    "payload-too-large", path, scope=scope)


class RejectNul:
    """PostgreSQL text cannot hold NUL; a NUL in the path or query would reach a query and
    fail as a 500 (found by the schemathesis run). Refused up front as a 422."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            query = scope.get("query_string", b"").lower()
            path = scope.get("path", "")
            if b"%00" in query or b"\x00" in query or "\x00" in path:
                await _send_problem(send, 422, "Invalid request",
                                    "NUL characters are not accepted in a path or query",
                                    "validation-error", path.replace("\x00", ""), scope=scope)
                return
        await self.app(scope, receive, send)


@dataclass
class _Bucket:
    tokens: float
    at: float


class TokenBuckets:
    """One token bucket per client key, in process. ``rate`` tokens per second, at most
    ``burst`` saved; ``take`` returns 0 when allowed, otherwise the seconds to wait."""

    def __init__(self, rate: float, burst: int, max_clients: int = 50_000) -> None:
        self.rate, self.burst, self.max_clients = rate, max(1, burst), max_clients
        self._buckets: dict[str, _Bucket] = {}

    def take(self, key: str, now: float | None = None) -> float:
        now = time.monotonic() if now is None else now
        bucket = self._buckets.get(key)
        if bucket is None:
            if len(self._buckets) >= self.max_clients:
                self._forget_full(now)
            bucket = self._buckets[key] = _Bucket(float(self.burst), now)
        bucket.tokens = min(self.burst, bucket.tokens + (now - bucket.at) * self.rate)
        bucket.at = now
        if bucket.tokens >= 1.0:
            bucket.tokens -= 1.0
            return 0.0
        return (1.0 - bucket.tokens) / self.rate

    def _forget_full(self, now: float) -> None:
        # A bucket that has refilled is indistinguishable from a new one: drop those first.
        full = [k for k, b in self._buckets.items()
                if b.tokens + (now - b.at) * self.rate >= self.burst]
        for key in full or list(self._buckets)[: len(self._buckets) // 2]:
            del self._buckets[key]


def client_key(scope: Scope) -> str:
    """Who is asking: the bearer token or API key presented (hashed, so one client cannot
    drain another's bucket without its credential), else the peer address."""
    for name, value in scope.get("headers", []):
        if name == b"authorization" or name == b"x-api-key":
            return "c:" + hashlib.sha256(value).hexdigest()[:32]
    query = scope.get("query_string", b"")
    if b"api_key=" in query:
        return "c:" + hashlib.sha256(query.split(b"api_key=", 1)[1].split(b"&")[0]
                                     ).hexdigest()[:32]
    client = scope.get("client")
    return f"ip:{client[0] if client else '?'}"


class RateLimit:
    EXEMPT = ("/healthz", "/readyz")
    SIGN_IN = "/auth/token"

    def __init__(self, app: ASGIApp, rate: float, burst: int, signin_rate: float = 0.0,
                 signin_burst: int = 20) -> None:
        self.app = app
        self.buckets = TokenBuckets(rate, burst) if rate > 0 else None
        # Password guessing: sign-ins get their own, much smaller bucket per address.
        self.signin = TokenBuckets(signin_rate, signin_burst) if signin_rate > 0 else None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "") if scope["type"] == "http" else ""
        if not path or path in self.EXEMPT:
            await self.app(scope, receive, send)
            return
        wait = 0.0
        if self.signin is not None and path == self.SIGN_IN:
            client = scope.get("client")
            wait = self.signin.take(f"ip:{client[0] if client else '?'}")
        if not wait and self.buckets is not None:
            wait = self.buckets.take(client_key(scope))
        if wait > 0:
            retry = str(max(1, math.ceil(wait)))
            await _send_problem(send, 429, "Too many requests",
                                f"rate limit exceeded; retry after {retry} s",
                                "too-many-requests", scope.get("path", ""),
                                [(b"retry-after", retry.encode())], scope=scope)
            return
        await self.app(scope, receive, send)


def install(app: Any, max_body_bytes: int, rate: float, burst: int,
            signin_rate: float = 0.0, signin_burst: int = 20) -> None:
    # Added last runs first: the rate limit answers before any body is read.
    app.add_middleware(RejectNul)
    app.add_middleware(BodySizeLimit, max_bytes=max_body_bytes)
    app.add_middleware(RateLimit, rate=rate, burst=burst, signin_rate=signin_rate,
                       signin_burst=signin_burst)
