"""Server-rendered pages: Jinja2 with autoescaping, the caller's language, no inline script.

Every HTML page gridcore serves is a template under ``api/templates/`` rendered here — never a
string built by formatting or ``str.replace`` (a query parameter's name or value reaching a page
unescaped is a cross-site-scripting hole). Templates get:

- ``lang``: the caller's language (``zh-CN`` or ``en``, see :mod:`api.i18n`) and ``t(key,
  **values)``, the catalogue lookup in that language;
- ``root``: the app's root path, for links that work behind a reverse proxy;
- ``static(path)``: the URL of a file under ``api/static/``.

Pages carry no inline ``<script>`` or ``style=""``: the Content-Security-Policy
(:mod:`api.security.headers`) allows scripts and styles from the app itself only. Data a page
needs at load time goes in a ``<script type="application/json">`` block through the ``tojson``
filter (a data block is never executed, and ``tojson`` escapes ``<``, ``>``, ``&`` and quotes).
"""

from __future__ import annotations

from functools import cache
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse
from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape

from api import i18n


@cache
def environment() -> Environment:
    env = Environment(
        loader=PackageLoader("api", "templates"),
        autoescape=select_autoescape(("html", "htm", "xml"), default_for_string=True,
                                     default=True),
        undefined=StrictUndefined,  # a misspelt variable fails the test, not the user
        trim_blocks=True, lstrip_blocks=True,
    )
    return env


def request_language(request: Request) -> str:
    """The caller's language, worked out once per request."""
    cached = getattr(request.state, "language", None)
    if cached is None:
        cached = i18n.negotiate(request.query_params, request.cookies,
                                request.headers.get("accept-language"))
        request.state.language = cached
    return str(cached)


def root_path(request: Request) -> str:
    return str(request.scope.get("root_path", "")).rstrip("/")


def render(request: Request, template: str, *, status_code: int = 200,
           headers: dict[str, str] | None = None, **context: Any) -> HTMLResponse:
    """The page ``template`` in the caller's language."""
    lang = request_language(request)
    root = root_path(request)

    def t(key: str, **values: Any) -> str:
        return i18n.translate(lang, key, **values)

    def static(path: str) -> str:
        return f"{root}/static/{path.lstrip('/')}"

    html = environment().get_template(template).render(
        lang=lang, languages=i18n.LANGUAGES, t=t, root=root, static=static, **context)
    return HTMLResponse(html, status_code=status_code, headers={
        "Cache-Control": "no-cache", "Content-Language": lang,
        "Vary": "Accept-Language, Cookie", **(headers or {})})
