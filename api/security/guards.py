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
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote_to_bytes, urlsplit

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


class Verifier:
    """Who a request's credential proves, worked out before any route runs and without the
    database: a bearer token's subject (its signature and expiry checked, the answers of
    recent tokens remembered), an API key the service has verified before (``remember``, by
    the identity code, after a database check; forgotten after ``ttl_s``)."""

    def __init__(self, signing_key: Callable[[], str], stand_in_keys: Callable[[], set[str]],
                 max_entries: int = 20_000, ttl_s: float = 300.0) -> None:
        self.signing_key, self.stand_in_keys = signing_key, stand_in_keys
        self.max_entries, self.ttl_s = max_entries, ttl_s
        self._tokens: OrderedDict[bytes, tuple[str | None, float]] = OrderedDict()
        self._keys: OrderedDict[str, float] = OrderedDict()
        self._lock = threading.Lock()  # the event loop reads, the identity's threads write

    def token_subject(self, token: bytes, now: float) -> str | None:
        with self._lock:
            known = self._tokens.get(token)
        if known is not None and now < known[1]:
            return known[0]
        import jwt

        try:
            claims = jwt.decode(token, self.signing_key(), algorithms=["HS256"],
                                options={"require": ["exp", "sub"], "verify_iss": False})
            subject, until = str(claims["sub"]), float(claims["exp"])
        except Exception:  # noqa: BLE001 - any failure: not a proof of anyone
            subject, until = None, time.time() + 60
        # remember until the token expires, in monotonic time
        self._remember(self._tokens, token, (subject, now + max(0.0, until - time.time())))
        return subject

    def remember_key(self, key: str) -> None:
        self._remember(self._keys, _digest(key.encode()), time.monotonic() + self.ttl_s)

    def key_known(self, key: bytes, now: float) -> bool:
        if key.decode("latin-1") in self.stand_in_keys():
            return True
        with self._lock:
            until = self._keys.get(_digest(key))
        return until is not None and now < until

    def _remember(self, table: OrderedDict[Any, Any], key: Any, value: Any) -> None:
        with self._lock:
            table[key] = value
            table.move_to_end(key)
            while len(table) > self.max_entries:
                table.popitem(last=False)


def _digest(value: bytes) -> str:
    return hashlib.sha256(value).hexdigest()[:32]


def client_key(scope: Scope, verifier: Verifier | None = None, now: float = 0.0) -> str:
    """Whose bucket a request takes from: the verified identity — a bearer token's user, an
    API key the service knows — else the peer address. A made-up or wrong credential proves
    nothing, so it counts against the address it came from (a new credential per request no
    longer buys a new bucket)."""
    if verifier is not None:
        for name, value in scope.get("headers", []):
            if name == b"authorization" and value[:7].lower() == b"bearer ":
                subject = verifier.token_subject(value[7:].strip(), now)
                if subject is not None:
                    return "u:" + subject
                break
            if name == b"x-api-key" and verifier.key_known(value, now):
                return "k:" + _digest(value)
        query = scope.get("query_string", b"")
        if b"api_key=" in query:
            key = unquote_to_bytes(query.split(b"api_key=", 1)[1].split(b"&")[0])
            if verifier.key_known(key, now):
                return "k:" + _digest(key)
    client = scope.get("client")
    return f"ip:{client[0] if client else '?'}"


class RateLimit:
    EXEMPT = ("/healthz", "/readyz")
    SIGN_IN = "/auth/token"

    def __init__(self, app: ASGIApp, rate: float, burst: int, signin_rate: float = 0.0,
                 signin_burst: int = 20, verifier: Verifier | None = None) -> None:
        self.app, self.verifier = app, verifier
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
            now = time.monotonic()
            wait = self.buckets.take(client_key(scope, self.verifier, now), now)
        if wait > 0:
            retry = str(max(1, math.ceil(wait)))
            await _send_problem(send, 429, "Too many requests",
                                f"rate limit exceeded; retry after {retry} s",
                                "too-many-requests", scope.get("path", ""),
                                [(b"retry-after", retry.encode())], scope=scope)
            return
        await self.app(scope, receive, send)


LOOPBACK = frozenset({"localhost", "127.0.0.1", "::1"})


def allowed_hosts(configured: str, public_url: str | None) -> frozenset[str]:
    """The hosts a request may name (``GRIDCORE_ALLOWED_HOSTS``, the host of
    ``GRIDCORE_PUBLIC_URL``, loopback for the machine's own probes); empty — no check — when
    neither is set (the service then writes only relative links: ``api.ogc.base_url``)."""
    hosts = {h.strip().lower() for h in configured.split(",") if h.strip()}
    if public_url:
        hosts.add((urlsplit(public_url).hostname or "").lower())
    return frozenset(hosts | LOOPBACK) if hosts else frozenset()


def _hostname(raw: str) -> str:
    """``Host``'s name without its port (``[::1]:8000`` → ``::1``)."""
    host = raw.strip().lower()
    if host.startswith("["):
        return host[1:host.find("]")]
    return host.rsplit(":", 1)[0] if host.count(":") == 1 else host


class AllowedHosts:
    """A request whose ``Host`` the service does not serve is refused (400) before anything
    else: links and pages never carry a host a client made up. ``*.example.org`` allows
    every subdomain."""

    def __init__(self, app: ASGIApp, hosts: frozenset[str]) -> None:
        self.app, self.hosts = app, hosts
        self.suffixes = tuple(h[1:] for h in hosts if h.startswith("*."))

    def _allowed(self, host: str) -> bool:
        return host in self.hosts or bool(self.suffixes) and host.endswith(self.suffixes)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and self.hosts:
            raw = next((v.decode("latin-1") for n, v in scope.get("headers", [])
                        if n == b"host"), "")
            if not self._allowed(_hostname(raw)):
                await _send_problem(send, 400, "Unknown host",
                                    "the Host header names a host this service does not serve "
                                    "(GRIDCORE_ALLOWED_HOSTS)", "unknown-host",
                                    scope.get("path", ""), scope=scope)
                return
        await self.app(scope, receive, send)


def install(app: Any, max_body_bytes: int, rate: float, burst: int,
            signin_rate: float = 0.0, signin_burst: int = 20) -> None:
    settings = app.state.settings
    # the identity code (api.security.identity) tells it which API keys it verified
    app.state.verifier = verifier = Verifier(settings.security.signing_key,
                                             settings.cases.api_keys)
    # Added last runs first: the rate limit answers before any body is read.
    app.add_middleware(RejectNul)
    app.add_middleware(BodySizeLimit, max_bytes=max_body_bytes)
    app.add_middleware(RateLimit, rate=rate, burst=burst, signin_rate=signin_rate,
                       signin_burst=signin_burst, verifier=verifier)
    app.add_middleware(AllowedHosts, hosts=allowed_hosts(settings.api.allowed_hosts,
                                                         settings.api.public_url))
