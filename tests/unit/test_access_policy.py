"""The access table (api/security/policy.py) covers every route, refuses an app with a route
it lacks, names only known actions, and the README shows it as it is."""

from __future__ import annotations

import pytest
from fastapi import APIRouter
from fastapi.routing import APIRoute

from api.app import create_app
from api.security import policy
from gridcore.settings import Settings
from tests.support.data import REPO


def _app():  # type: ignore[no-untyped-def]
    tree = Settings()
    tree.security = tree.security.model_copy(update={"env": "development"})
    return create_app(tree)


def test_every_route_has_one_line_and_every_line_a_route() -> None:
    routes = {(method, path) for method, path, _ in policy.app_routes(_app())}
    lines = set(policy.LINES)
    assert routes - lines == set(), "routes without a line"
    assert lines - routes == set(), "lines of routes that do not exist"


def test_the_route_walk_equals_fastapis_own() -> None:
    """``app_routes`` walks the included routers itself (FastAPI's iter_route_contexts builds
    every route's dependencies on the way): the same routes, paths and guards."""
    from fastapi.routing import iter_route_contexts

    app = _app()
    nested, inner = APIRouter(prefix="/outer"), APIRouter(prefix="/inner")

    @inner.get("/{rest:path}")
    def deep(rest: str) -> dict[str, str]:
        return {}

    nested.include_router(inner, prefix="/mid")
    app.include_router(nested, prefix="/top")
    fastapi_own = sorted(
        (method, str(route.path_format), isinstance(route.original_route, APIRoute))
        for route in iter_route_contexts(app.routes)
        for method in (route.methods or set()) - {"HEAD"})
    assert sorted(policy.app_routes(app)) == fastapi_own
    assert ("GET", "/top/outer/mid/inner/{rest}", True) in fastapi_own


def test_a_route_without_a_line_stops_the_app() -> None:
    app = _app()
    router = APIRouter()

    @router.get("/forgotten")
    def forgotten() -> dict[str, str]:
        return {}

    app.include_router(router)
    with pytest.raises(RuntimeError, match="GET /forgotten"):
        policy.check_routes(app)


def test_two_lines_for_one_route_are_refused() -> None:
    twice = (policy.line("GET /x", policy.ANYONE), policy.line("GET /x", policy.ANYONE))
    with pytest.raises(ValueError, match="two lines"):
        policy.lines_by_route(twice)
    with pytest.raises(ValueError, match="unknown action"):
        policy.lines_by_route((policy.line("GET /y", policy.may("case.fly")),))


def test_the_readme_shows_the_table_as_it_is() -> None:
    readme = (REPO / "README.md").read_text("utf-8")
    assert policy.markdown_table() in readme, (
        "README.md's access table differs from api/security/policy.py; paste "
        "`python -c 'from api.security.policy import markdown_table; print(markdown_table())'`")


def test_production_default_anonymous_routes() -> None:
    anonymous = {f"{e.method} {e.path}" for e in policy.TABLE if e.who.action is None}
    data = anonymous - {"GET /healthz", "GET /readyz", "GET /", "GET /conformance"}
    # beyond the probes and the OGC documents: the API description, the pages' shells and
    # their files (the phone app's too), the words, signing in and the device sessions'
    # refresh-token routes (the token is the credential), the category list and Open311's
    # service catalogue — never data
    assert data <= {"GET /openapi.json", "GET /openapi-3.0.json", "GET /docs",
                    "GET /docs/oauth2-redirect", "GET /redoc", "GET /static/{path}",
                    "GET /map/static/{path}", "GET /i18n/{lang}.json", "GET /i18n/switch",
                    "GET /map", "GET /desk", "GET /health/map", "GET /evaluation/board",
                    "POST /auth/token",
                    "GET /m", "GET /m/", "GET /m/manifest.webmanifest", "GET /m/sw.js",
                    "POST /auth/refresh", "POST /auth/signout", "GET /categories",
                    "GET /open311/v2/discovery.{fmt}", "GET /open311/v2/services.{fmt}",
                    "GET /open311/v2/services/{code}.{fmt}"}, data
