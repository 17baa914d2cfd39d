"""Who may call what (谁能调用什么): one table, route → who may call it, enforced in one place.

Every route of the app has one line in :data:`TABLE`: its method and path as FastAPI writes it,
who may call it, and the rule that narrows what that caller then sees (its scope). The whole
app depends on :func:`enforce` (``api.app``): it finds the line of the matched route and lets
the request through, or answers 401 (nobody signed in) / 403 (this role or key may not) before
the route runs. :func:`check_routes` refuses to build an app with a route that has no line, so
a new route cannot forget its line: **a new route adds its line here** (and to the README's
table, which a test holds to this one).

Who may call a route (:class:`Who`):

* ``ANYONE`` — nobody is asked who they are: the probes, the OGC landing and conformance
  documents, the API description, the pages' shells and their static files, the message
  catalogue, signing in.
* ``may(action)`` — a signed-in user whose role may do ``action`` (the roles × actions matrix
  of :mod:`gridcore.security.access`); ``keys=True``: an API key whose purpose may do it, too;
  ``public=…``: also anonymous callers when the city opened it (:data:`PUBLIC_RULES`).
* ``layer(action)`` — the OGC collection routes: the action depends on the collection (cases
  ``case.read``, 9+X entities ``entity.read``, the others ``action``), and a layer listed in
  ``GRIDCORE_PUBLIC_LAYERS`` is anonymous.

In development mode (``GRIDCORE_ENV=development``) a request without credentials acts as the
``X-Role`` / ``X-Actor`` stand-in (an admin unless ``X-Role`` says otherwise) and passes the
table like a user of that role.

The scope column is what the route itself enforces in its queries (``layers.security.scoping``);
``tests/api/test_access_table.py`` checks every line for anonymous callers, every role, and a
caller outside the scope.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from fastapi import Request
from fastapi.concurrency import run_in_threadpool
from fastapi.routing import APIRoute
from starlette.routing import compile_path

from api.security.identity import SIGN_IN, identify, needs_lookup
from gridcore.errors import Forbidden, Unauthenticated
from gridcore.security.access import ACTIONS, EVERYONE, KEY_PURPOSES, Principal, Role

# When an anonymous caller may call a line marked ``public=…`` (the city's own choices).
PUBLIC_RULES: dict[str, Callable[[Request], bool]] = {
    # a collection the city lists in GRIDCORE_PUBLIC_LAYERS
    "layer": lambda r: r.path_params.get("collection_id") in public_layers(r),
    # the list of collections, when the city publishes any (anonymous callers see those only)
    "any_layer": lambda r: bool(public_layers(r)),
    # GRIDCORE_OPEN311_PUBLIC_FEED=true (no reporter fields, no sensitive classes)
    "open311_feed": lambda r: bool(r.app.state.settings.cases.open311_public_feed),
}
# The collections whose reads need more than ``features.read``.
LAYER_ACTIONS = {"cases": "case.read", "entities": "entity.read"}


def public_layers(request: Request) -> frozenset[str]:
    layers: frozenset[str] = request.app.state.settings.security.public_layer_ids
    return layers


def may_read_layer(principal: Principal | None, public: frozenset[str], layer_id: str) -> bool:
    """Whether a caller may read a collection, as the table's ``layer()`` lines decide: the
    list of collections names only those (one the caller then gets 401 or 403 on breaks
    clients that open every listed layer, such as GDAL's ogrinfo)."""
    if principal is None:
        return layer_id in public
    return not principal.is_key and principal.may(LAYER_ACTIONS.get(layer_id, "features.read"))


@dataclass(frozen=True)
class Who:
    action: str | None  # None: anyone, nobody is asked
    keys: bool = False  # API keys of a purpose that may do ``action`` may call it too
    public: str | None = None  # a PUBLIC_RULES entry: anonymous when it holds
    per_layer: bool = False  # the action depends on the collection (LAYER_ACTIONS)
    form_key: bool = False  # the key may come as the form field api_key (Open311 POST)
    stand_in: bool = True  # in development, the X-Role stand-in counts as a caller here

    def action_for(self, request: Request) -> str | None:
        if self.per_layer:
            return LAYER_ACTIONS.get(request.path_params.get("collection_id", ""), self.action)
        return self.action

    def describe(self) -> str:
        """The line's "who" in the README's words."""
        if self.action is None:
            return "anyone"
        text = f"`{self.action}` ({_roles(self.action)})"
        if self.per_layer:
            text += "".join(f"; {layer}: `{a}` ({_roles(a)})"
                            for layer, a in LAYER_ACTIONS.items())
        if self.keys:
            purposes = sorted(p for p, allowed in KEY_PURPOSES.items() if self.action in allowed)
            text += f"; API keys ({', '.join(purposes)})"
        if not self.stand_in:
            text += "; never the development stand-in"
        if self.public:
            text += {"layer": "; anonymous for `GRIDCORE_PUBLIC_LAYERS`",
                     "any_layer": "; anonymous when `GRIDCORE_PUBLIC_LAYERS` lists any "
                                  "(those only)",
                     "open311_feed": "; anonymous with `GRIDCORE_OPEN311_PUBLIC_FEED`"
                     }[self.public]
        return text


ANYONE = Who(None)


def _roles(action: str) -> str:
    roles = ACTIONS[action]
    if roles == EVERYONE:
        return "every role"
    return ", ".join(r.value for r in Role if r in roles)


def may(action: str, keys: bool = False, public: str | None = None,
        form_key: bool = False, stand_in: bool = True) -> Who:
    return Who(action, keys=keys or form_key, public=public, form_key=form_key,
               stand_in=stand_in)


def layer(action: str = "features.read") -> Who:
    return Who(action, public="layer", per_layer=True)


@dataclass(frozen=True)
class Line:
    method: str
    path: str
    who: Who
    scope: str = "—"  # what the caller then sees, in words (enforced by the route's queries)

    @property
    def key(self) -> tuple[str, str]:
        return self.method, self.path


def line(route: str, who: Who, scope: str = "—") -> Line:
    method, path = route.split(" ", 1)
    return Line(method, path, who, scope)


CASES = "cases in the caller's areas or dispatched to its department"
CASE_404 = "outside the caller's areas: 404"
CASE_OR_FILED = "outside the caller's areas, unless the caller filed it: 404"
CASE_PARTY = ("outside the caller's areas, unless its department leads the case, assists or "
              "was whistled to it: 403")
COLLECTION = "cases: the caller's; entities: its areas (no restricted rows)"
APPEALS = "the appeals of parties the caller may see in detail"
REFRESH = ("the session of the refresh token sent (rotated, or signed out); a wrong, reused, "
           "revoked or expired token: 401")
SHIFT = "the caller's own shifts; another's: 404"
FORECAST = "rows of grids and communities inside the caller's areas"
SUBSCRIPTION = "the caller's own subscription"
WEBHOOKS = may("webhooks.admin", stand_in=False)
SIGNED_IN = may("features.read", stand_in=False)  # any signed-in user, for their own things
OPEN311_READ = may("case.read", keys=True, public="open311_feed", stand_in=False)
OPEN311_SCOPE = ("a key: the cases it filed; a user: " + CASES + "; the public feed: no "
                 "reporter, no sensitive class, locations rounded")
# One line per route: "METHOD /path" as FastAPI writes it, who, scope.
TABLE: tuple[Line, ...] = (
    # the service
    line("GET /healthz", ANYONE),
    line("GET /readyz", ANYONE),
    line("GET /layers", may("features.read")),
    # OGC API landing, conformance and the API description
    line("GET /", ANYONE),
    line("GET /conformance", ANYONE),
    line("GET /openapi.json", ANYONE),
    line("GET /openapi-3.0.json", ANYONE),
    line("GET /docs", ANYONE),
    line("GET /docs/oauth2-redirect", ANYONE),
    line("GET /redoc", ANYONE),
    # pages: the shells, their files and words (the data behind them is asked for below)
    line("GET /static/{path}", ANYONE),
    line("GET /map/static/{path}", ANYONE),
    line("GET /i18n/{lang}.json", ANYONE),
    line("GET /i18n/switch", ANYONE),
    line("GET /map", ANYONE),
    line("GET /health/map", ANYONE),
    line("GET /evaluation/board", ANYONE),
    # the grid worker's phone app (an installable web app: it signs in by itself)
    line("GET /m", ANYONE),
    line("GET /m/", ANYONE),
    line("GET /m/manifest.webmanifest", ANYONE),
    line("GET /m/sw.js", ANYONE),
    # identity
    line("POST /auth/token", ANYONE),
    line("GET /auth/me", may("features.read", stand_in=False), "oneself"),
    # device sessions: the refresh token is the credential (no access token needed to use it)
    line("POST /auth/refresh", ANYONE, REFRESH),
    line("POST /auth/signout", ANYONE, REFRESH),
    line("GET /auth/sessions", SIGNED_IN, "the caller's own sessions"),
    line("DELETE /auth/sessions/{session_id}", SIGNED_IN,
         "the caller's own sessions; another's: 404"),
    line("GET /admin/sessions", may("sessions.admin", stand_in=False)),
    line("DELETE /admin/sessions/{session_id}", may("sessions.admin", stand_in=False)),
    line("DELETE /admin/sessions", may("sessions.admin", stand_in=False)),
    # my work (the phone's and the workbench's lists)
    line("GET /me/tasks", may("case.read"),
         "the caller's next steps: a worker's grids, a handler's department, the centre's "
         "queue, a manager's overdue cases in its areas"),
    line("GET /me/reports", may("case.read"), "the cases the caller filed"),
    line("GET /me/area", may("features.read"),
         "the caller's own grids (their workers' names) and the parts in them"),
    # the department workbench (部门工作台): the page, and the caller's department and team
    line("GET /desk", ANYONE),
    line("GET /desk/team", SIGNED_IN, "the caller's own department and team"),
    # live events (SSE) and what a user is told of
    line("GET /events", may("case.read"), "events of " + CASES),
    line("GET /me/subscriptions", SIGNED_IN, SUBSCRIPTION),
    line("PUT /me/subscriptions", SIGNED_IN, SUBSCRIPTION),
    line("DELETE /me/subscriptions", SIGNED_IN, SUBSCRIPTION),
    # outgoing webhooks (事件推送) and their delivery log
    line("GET /admin/webhooks", WEBHOOKS),
    line("POST /admin/webhooks", WEBHOOKS),
    line("GET /admin/webhooks/{ref}", WEBHOOKS),
    line("PATCH /admin/webhooks/{ref}", WEBHOOKS),
    line("DELETE /admin/webhooks/{ref}", WEBHOOKS),
    line("GET /admin/webhooks/{ref}/deliveries", WEBHOOKS),
    line("POST /admin/webhooks/deliveries/{delivery_id}/retry", WEBHOOKS),
    # patrols (巡查)
    line("POST /patrol/shifts", may("patrol.record", stand_in=False)),
    line("POST /patrol/shifts/{shift_id}/points", may("patrol.record", stand_in=False),
         SHIFT),
    line("POST /patrol/shifts/{shift_id}/end", may("patrol.record", stand_in=False), SHIFT),
    line("GET /patrol/shifts", SIGNED_IN,
         "the caller's own shifts; anyone's with `patrol.read_all` (manager, admin)"),
    line("GET /patrol/shifts/{shift_id}", SIGNED_IN,
         SHIFT + "; anyone's with `patrol.read_all` (manager, admin)"),
    # cases
    line("POST /cases", may("case.report", keys=True)),
    line("GET /cases", may("case.read"), CASES + "; CSV and GeoJSON need `case.export`"),
    line("GET /cases/overdue", may("case.read"), CASES),
    line("GET /cases/{case_id}", may("case.read"), CASE_OR_FILED),
    line("GET /cases/{case_id}/photos/{n}", may("case.read"), CASE_OR_FILED),
    line("GET /categories", ANYONE),
    line("POST /cases/{case_id}/transitions", may("case.act"),
         "outside the caller's areas: 403; the step by role (gridcore/lifecycle.py)"),
    line("POST /cases/{case_id}/{action}", may("case.act"),
         "outside the caller's areas: 403; the step by role (gridcore/lifecycle.py)"),
    # intelligence (issue 22): every answer is a suggestion naming its model
    line("POST /classify", may("case.report")),
    line("POST /similar", may("case.read"), "similar earlier " + CASES),
    line("GET /cases/{case_id}/similar", may("case.read"),
         CASE_404 + "; the similar cases: " + CASES),
    line("GET /cases/{case_id}/dispatch-proposal", may("dispatch.propose"), CASE_404),
    line("GET /forecast", may("forecast.read"), FORECAST),
    line("GET /forecast/warnings", may("forecast.read"), FORECAST),
    # Open311 GeoReport v2
    line("GET /open311/v2/discovery.{fmt}", ANYONE),
    line("GET /open311/v2/services.{fmt}", ANYONE),
    line("GET /open311/v2/services/{code}.{fmt}", ANYONE),
    line("POST /open311/v2/requests.{fmt}", may("case.report", form_key=True, stand_in=False)),
    line("GET /open311/v2/requests.{fmt}", OPEN311_READ, OPEN311_SCOPE),
    line("GET /open311/v2/requests/{request_id}.{fmt}", OPEN311_READ,
         OPEN311_SCOPE + "; any other: 404"),
    # OGC API – Features and vector tiles
    line("GET /collections", may("features.read", public="any_layer"),
         "anonymous: the public layers only"),
    line("GET /collections/{collection_id}", layer()),
    line("GET /collections/{collection_id}/queryables", layer()),
    line("GET /collections/{collection_id}/items", layer(), COLLECTION),
    line("GET /collections/{collection_id}/items/{feature_id}", layer(), COLLECTION),
    line("GET /collections/{collection_id}/tiles", layer("tiles.read")),
    line("GET /collections/{collection_id}/tiles/WebMercatorQuad/tilejson.json",
         layer("tiles.read")),
    line("GET /collections/{collection_id}/tiles/WebMercatorQuad/{z}/{x}/{y}",
         layer("tiles.read"), COLLECTION),
    # the one map
    line("GET /map/config", may("features.read")),
    line("GET /map/versions", may("features.read")),
    line("GET /map/grids/{code}", may("features.read"),
         "open cases and the workers' names and phones only within the caller's areas"),
    line("GET /map/search", may("features.read"), "case hits: " + CASES),
    line("GET /map/queue", may("case.read"), CASES),
    line("GET /map/cases/{case_id}/actions", may("case.read"), CASE_404),
    # resolve
    line("GET /resolve", may("resolve")),
    line("POST /resolve", may("resolve")),
    # city health
    line("GET /grids/{code}/health", may("health.read"), "outside the caller's areas: 404"),
    line("GET /health/areas/{level}/{code}", may("health.read"),
         "outside the caller's areas: 404"),
    line("GET /health/rankings", may("health.read")),
    line("GET /health/choropleth", may("health.read")),
    line("GET /health/choropleth.png", may("health.read")),
    # evaluation (考评), appeals, briefings
    line("GET /evaluation", may("evaluation.read")),
    line("GET /evaluation/appeals", may("evaluation.details"), APPEALS),
    line("POST /evaluation/appeals", may("appeal.file"),
         "for its own party (a handler's department, a worker itself) or, a manager, one in its "
         "areas: otherwise 403"),
    line("GET /evaluation/appeals/{appeal_id}", may("evaluation.details"), APPEALS + "; 404"),
    line("POST /evaluation/appeals/{appeal_id}/{decision}", may("appeal.decide"),
         APPEALS + "; 404; never by its filer"),
    line("GET /evaluation/{kind}", may("evaluation.read"),
         "departments: the public ranking; areas: the caller's; workers: overseers in their "
         "areas, a grid worker its own row"),
    line("GET /evaluation/{kind}/{code}", may("evaluation.details"),
         "the party itself or who oversees it (module api/routes/evaluation.py): otherwise 404"),
    line("GET /briefings/{name}", may("briefing.read"), "an area outside the caller's: 404"),
    # 9+X entities
    line("GET /entities/{code}", may("entity.read", stand_in=False),
         "outside the caller's areas: 404; unmask: `entity.unmask` and a purpose, audited"),
    # channels (受理渠道) and levels: geocoding, machines' alarms, the 待定位 queue, 会商
    line("GET /geocode", may("geocode")),
    line("POST /ingest/alarms", may("alarm.ingest", keys=True, stand_in=False)),
    line("GET /devices", may("device.read")),
    line("GET /devices/{code}", may("device.read")),
    line("GET /cases/unlocated", may("case.locate")),
    line("GET /cases/party-tasks", may("case.read"), "its own department's whistles and tasks"),
    line("GET /cases/{case_id}/coordination", may("case.read"), CASE_PARTY),
    line("GET /cases/{case_id}/messages", may("case.discuss"), CASE_PARTY),
    line("POST /cases/{case_id}/messages", may("case.discuss"), CASE_PARTY),
    line("GET /cases/{case_id}/messages/{message_id}/photos/{n}", may("case.discuss"),
         CASE_PARTY),
)


def lines_by_route(table: Iterable[Line] = TABLE) -> dict[tuple[str, str], Line]:
    found: dict[tuple[str, str], Line] = {}
    for entry in table:
        if entry.key in found:
            raise ValueError(f"two lines for {entry.method} {entry.path}")
        if entry.who.action is not None and entry.who.action not in ACTIONS:
            raise ValueError(f"{entry.method} {entry.path}: unknown action {entry.who.action!r}")
        found[entry.key] = entry
    return found


LINES = lines_by_route()


def app_routes(app: Any) -> list[tuple[str, str, bool]]:
    """(method, path, runs FastAPI dependencies) of every route the app serves."""
    out: list[tuple[str, str, bool]] = []
    for route, path in _served(app.routes, ""):
        methods = sorted((getattr(route, "methods", None) or set()) - {"HEAD"})
        gated = isinstance(route, APIRoute)  # OgcRoute is one too
        out.extend((method, path, gated) for method in methods)
    return out


def _served(routes: Iterable[Any], prefix: str) -> Iterator[tuple[Any, str]]:
    """Each route with the path it is served at. FastAPI (≥ 0.16x) keeps an included router as
    one entry (its router and include prefix); its own ``iter_route_contexts`` builds every
    route's dependency tree to list them (~0.7 s an app here, paid again by each app a test
    makes), where only the paths are needed. ``tests/unit/test_access_policy.py`` checks this
    walk against ``iter_route_contexts``."""
    for route in routes:
        included, inner = getattr(route, "include_context", None), \
            getattr(route, "original_router", None)
        if included is not None and inner is not None:
            yield from _served(inner.routes, prefix + included.prefix)
        elif prefix:
            yield route, compile_path(prefix + route.path)[1]
        else:
            yield route, str(route.path_format)


def check_routes(app: Any) -> None:
    """Refuse an app with a route that has no line (fail closed, at start-up), or a route that
    the dependency cannot guard (not a FastAPI route) whose line asks for more than anyone."""
    missing, unguarded = [], []
    for method, path, gated in app_routes(app):
        entry = LINES.get((method, path))
        if entry is None:
            missing.append(f"{method} {path}")
        elif not gated and entry.who.action is not None:
            unguarded.append(f"{method} {path}")
    if missing:
        raise RuntimeError("routes without a line in the access table (api/security/policy.py"
                           ": add one line per route): " + ", ".join(missing))
    if unguarded:
        raise RuntimeError("routes the access table cannot guard: " + ", ".join(unguarded))


def _line_of(request: Request) -> Line:
    route = request.scope.get("route")
    path = str(getattr(route, "path_format", None) or getattr(route, "path", ""))
    entry = LINES.get((request.method, path))
    if entry is None:  # check_routes makes this unreachable; fail closed all the same
        raise Forbidden(f"{request.method} {path} has no line in the access table")
    return entry


async def enforce(request: Request) -> None:
    """The app-wide dependency: the matched route's line decides (401 / 403 or through). The
    caller it identified stays on ``request.state.principal`` for the route."""
    entry = _line_of(request)
    who = entry.who
    if who.action is None:
        return
    form_key = None
    # Open311 clients send their api_key as a form field of the POST (GeoReport v2)
    if who.form_key and not _credentials(request) and \
            request.headers.get("content-type", "").startswith(FORMS):
        form_key = str((await request.form()).get("api_key") or "") or None
    if needs_lookup(request) or form_key:
        principal = await run_in_threadpool(identify, request, form_key)
    else:
        principal = identify(request)
    if principal is not None and principal.unscoped and not who.stand_in:
        # a real credential only (an audited read, a machine API): the route sees nobody
        principal = request.state.principal = None
    if principal is None:
        if who.public and PUBLIC_RULES[who.public](request):
            return
        raise Unauthenticated(SIGN_IN)
    action = who.action_for(request)
    assert action is not None
    route = f"{request.method} {entry.path}"
    if principal.is_key and not who.keys:
        raise Forbidden(f"API keys may not call {route}; sign in", action=action, route=route)
    if not principal.may(action):
        who_is = (f"an API key of purpose {principal.key_purpose}" if principal.is_key
                  else f"role {principal.role}")
        raise Forbidden(f"{who_is} may not call {route} ({action})", action=action,
                        route=route)


FORMS = ("application/x-www-form-urlencoded", "multipart/form-data")


def _credentials(request: Request) -> bool:
    headers = request.headers
    return bool(headers.get("authorization") or headers.get("x-api-key")
                or request.query_params.get("api_key"))


PROBLEM_REF = {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}}


def annotate_openapi(spec: dict[str, Any]) -> dict[str, Any]:
    """Say in the OpenAPI document who may call each operation: its security requirements
    (a bearer token, an API key where the table takes keys) and its 401 / 403 answers."""
    components = spec.setdefault("components", {})
    components.setdefault("securitySchemes", {}).update({
        "bearer": {"type": "oauth2", "flows": {"password": {"tokenUrl": "/auth/token",
                                                            "scopes": {}}}},
        "apiKey": {"type": "apiKey", "in": "header", "name": "X-Api-Key"},
    })
    for path, operations in spec.get("paths", {}).items():
        for method, operation in operations.items():
            entry = LINES.get((method.upper(), path))
            if entry is None or entry.who.action is None:
                continue
            requirements: list[dict[str, list[str]]] = [{"bearer": []}]
            if entry.who.keys:
                requirements.append({"apiKey": []})
            if entry.who.public:
                requirements.append({})  # anonymous, when the city opened it
            operation["security"] = requirements
            if path.startswith("/open311/"):
                continue  # GeoReport's own error document, not problem+json
            responses = operation.setdefault("responses", {})
            responses.setdefault("401", {"description": "nobody signed in",
                                         "content": PROBLEM_REF})
            responses.setdefault("403", {"description": "this role or key may not call it",
                                         "content": PROBLEM_REF})
    return spec


def markdown_table(table: Iterable[Line] = TABLE) -> str:
    """The table as the README shows it."""
    rows = ["| route | who may call it | what they see |", "|---|---|---|"]
    rows += [f"| `{e.method} {e.path}` | {e.who.describe()} | {e.scope} |" for e in table]
    return "\n".join(rows)
