"""Reflected XSS (issue 18, finding 2): the OWASP cheat sheet's payloads go into every HTML
route — as the value of each of its parameters, as a parameter *name*, in the language cookie
and header, and in place of every path parameter of every GET route — and none comes back as
markup. Every HTML answer carries the Content-Security-Policy (no inline script)."""

from __future__ import annotations

from urllib.parse import quote, urlencode

from fastapi.routing import iter_route_contexts
from fastapi.testclient import TestClient

from tests.support.xss import PAYLOADS, unescaped

# parameters any page might read besides its own (the language, a search, a redirect)
EXTRA_NAMES = ("lang", "q", "back", "next", "callback")
# A server-sent event stream never ends, so a plain GET would wait forever; it writes no HTML
# (text/event-stream, JSON data), and tests/api/test_events_live.py drives it.
STREAMS = frozenset({"/events"})


def _get_routes(app) -> list[tuple[str, list[str]]]:  # type: ignore[no-untyped-def]
    out = []
    for route in iter_route_contexts(app.routes):
        if "GET" not in (route.methods or ()) or route.path_format in STREAMS:
            continue
        dependant = getattr(route.original_route, "dependant", None)
        names = [p.alias for p in dependant.query_params] if dependant is not None else []
        out.append((route.path_format, names))
    return out


def _is_html(response) -> bool:  # type: ignore[no-untyped-def]
    return response.headers.get("content-type", "").startswith("text/html")


def _check(response, payload: str, where: str) -> None:  # type: ignore[no-untyped-def]
    assert response.status_code < 500, (where, response.status_code, response.text[:300])
    if _is_html(response):
        assert not unescaped(payload, response.text), (where, payload)
        csp = response.headers.get("content-security-policy", "")
        assert "script-src 'self'" in csp and "unsafe-inline" not in csp, where


def test_no_page_reflects_an_xss_payload(client: TestClient) -> None:
    routes = _get_routes(client.app)
    html = [(path, names) for path, names in routes
            if "{" not in path and _is_html(client.get(path))]
    assert {"/map", "/health/map"} <= {path for path, _ in html}, html
    for path, names in html:
        for payload in PAYLOADS:
            for name in (*names, *EXTRA_NAMES):
                _check(client.get(f"{path}?{urlencode({name: payload})}"), payload,
                       f"{path} ?{name}=")
            _check(client.get(f"{path}?{urlencode({payload: '1'})}"), payload, f"{path} name")
            _check(client.get(f"{path}?{quote(payload, safe='')}"), payload, f"{path} bare")
            if payload.isascii():
                _check(client.get(path, headers={"Accept-Language": payload}), payload,
                       f"{path} Accept-Language")
            client.cookies.set("gridcore_lang", quote(payload))
            _check(client.get(path), payload, f"{path} cookie")
            client.cookies.clear()


def test_no_route_reflects_a_payload_in_its_path_as_html(client: TestClient) -> None:
    for path, _ in _get_routes(client.app):
        if "{" not in path:
            continue
        for payload in PAYLOADS[:8]:
            url = path
            while "{" in url:
                start, end = url.index("{"), url.index("}")
                url = url[:start] + quote(payload, safe="") + url[end + 1:]
            _check(client.get(url), payload, f"{path} path")
