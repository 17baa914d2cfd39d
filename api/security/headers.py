"""Security headers on every answer, and a Content-Security-Policy on every page.

A page may load scripts, styles, fonts and workers from the app itself only — no inline script,
no ``eval``, no CDN (government networks are often offline anyway). Images and map data may also
come from the basemap hosts the city enabled (``img-src`` / ``connect-src``), and from ``data:``
and ``blob:`` URLs (MapLibre decodes tiles in a worker it starts from a blob). ``frame-ancestors
'none'`` keeps the pages out of other sites' frames (clickjacking).
"""

from __future__ import annotations

from collections.abc import Iterable

from starlette.types import ASGIApp, Message, Receive, Scope, Send

BASE_HEADERS: tuple[tuple[bytes, bytes], ...] = (
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"same-origin"),
    (b"x-frame-options", b"DENY"),
)


def content_security_policy(extra_hosts: Iterable[str] = ()) -> str:
    hosts = " ".join(sorted({h for h in extra_hosts if h}))
    remote = f" {hosts}" if hosts else ""
    return "; ".join((
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        f"img-src 'self' data: blob:{remote}",
        f"connect-src 'self'{remote}",
        "font-src 'self'",
        "worker-src 'self' blob:",
        "child-src 'self' blob:",
        "object-src 'none'",
        "base-uri 'self'",
        "form-action 'self'",
        "frame-ancestors 'none'",
        "manifest-src 'self'",
    ))


class SecurityHeaders:
    """Plain ASGI middleware: adds the headers as the answer starts (streams untouched)."""

    def __init__(self, app: ASGIApp, csp: str) -> None:
        self.app, self.csp = app, csp.encode()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                present = {name.lower() for name, _ in headers}
                headers.extend(h for h in BASE_HEADERS if h[0] not in present)
                content_type = next((v for n, v in headers if n.lower() == b"content-type"), b"")
                if (content_type.startswith(b"text/html")
                        and b"content-security-policy" not in present):
                    headers.append((b"content-security-policy", self.csp))
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, with_headers)


def install(app: ASGIApp, basemap_origins: list[str]) -> None:
    """Added last, so it runs outermost: even a 413 or 429 answer carries the headers."""
    app.add_middleware(SecurityHeaders,  # type: ignore[attr-defined]
                       csp=content_security_policy(basemap_origins))
