"""Cases (案卷): intake, lifecycle steps, lists, exports and the overdue list (督办)."""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Annotated, Any, Literal

import orjson
from fastapi import APIRouter, Query, Request, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from pydantic import ValidationError as PydanticError
from starlette.datastructures import UploadFile

from api import self_handled
from api.deps import CaseSettingsDep, EngineDep, ReadEngineDep
from api.errors import pydantic_problem
from api.filing import file_report
from api.json_body import parse_json
from api.ogc import url_with
from api.responses import FastJSONResponse
from api.security.identity import SIGN_IN, Actor, ActorDep, Viewer, identify
from api.uploads import form_photos, read_form
from gridcore.coordination import own_department
from gridcore.errors import NotFound, PayloadTooLarge, Unauthenticated, ValidationError
from gridcore.intake import (
    MAX_CRS,
    MAX_DESCRIPTION,
    MAX_KEY,
    MAX_REPORTER,
    DeviceFix,
    Filing,
    Photo,
    Report,
)
from gridcore.security.access import Role
from gridcore.security.spreadsheet import neutralise_row
from gridcore.settings import CaseSettings
from layers.cases.milestones import MILESTONE_COLUMNS, milestones
from layers.cases.queries import CaseFilter, get_case, list_cases
from layers.cases.transitions import transition
from layers.security.scoping import case_in_scope, party_to

router = APIRouter(prefix="/cases", tags=["cases"])


class CaseIn(BaseModel):
    # the limits are intake's own (gridcore.intake), the same for every channel
    idempotency_key: str = Field(min_length=1, max_length=MAX_KEY)
    # A key (P0120, E0103); longer text is looked up so that the answer can list the
    # closest classes (an unknown category is a 422 naming them). Omitted: the classifier
    # files the report when it is confident enough (智能分类), else 422 with its top 3 as
    # suggestions; the case then says ``category_source: predicted``
    category: str | None = Field(default=None, min_length=1, max_length=64,
                                 examples=["P0120", "E0103"])
    lon: float | None = Field(None, description="with lat; or give an address instead")
    lat: float | None = None
    crs: str = Field(default="EPSG:4326", max_length=MAX_CRS)
    description: str = Field(default="", max_length=MAX_DESCRIPTION)
    source: str | None = Field(None, description="default: grid_worker for a signed-in grid "
                                                 "worker, else other")
    reporter: str = Field(default="", max_length=MAX_REPORTER,
                          description="ignored for a signed-in user: the reporter is the user")
    fix_lon: float | None = Field(None, description="the phone's own GPS fix (WGS 84) when "
                                                    "the pin was moved away from it")
    fix_lat: float | None = None
    fix_accuracy_m: float | None = Field(None, ge=0)
    fix_at: str | None = Field(None, max_length=40, description="ISO 8601 time of the fix")
    address: str = Field(default="", max_length=200, description=(
        "a hotline report's address (接诉即办): without lon/lat it is geocoded at intake — at "
        "GRIDCORE_GEOCODE_MIN_CONFIDENCE or above filed at that point (location_source "
        "geocoded), else without a grid into the 待定位 queue"))
    # 自处置 in one request (api/self_handled.py): multipart with `photos` (before the work)
    # and `after_photos` (after it), at most GRIDCORE_MAX_PHOTOS files in all
    self_handled: bool = Field(False, description=(
        "solved on the spot (自处置): verified, handled and closed in this one request; needs "
        "`handling`, `photos` taken before and `after_photos` taken after the work"))
    handling: str = Field(default="", max_length=4000,
                          description="with self_handled: what was done on the spot")


class StepIn(BaseModel):
    reason: str | None = Field(None, max_length=4000)
    department: str | None = None
    check_result: Literal["pass", "fail"] | None = None
    new_limit: str | None = None
    primary_case_id: int | None = None
    assignee: str | None = Field(None, max_length=64, description="assign: the handler")
    attachments: list[dict[str, Any]] = []
    expected_version: int | None = None
    # levels and channels (gridcore.coordination)
    lon: float | None = Field(None, description="locate (定位): the place picked on the map")
    lat: float | None = None
    crs: str | None = None
    departments: list[str] | None = Field(None, description=(
        "whistle (吹哨) / assist (协同): the departments called; `department` names the one "
        "reporting in, finishing or released from its task"))
    reached: bool | None = Field(None, description="callback (回访): was the caller reached")
    resolved: bool | None = None
    satisfaction: Literal["satisfied", "basically_satisfied", "unsatisfied"] | None = None


class TransitionIn(StepIn):
    action: str


def _photo_schema(fields: type[BaseModel], extra: dict[str, Any] | None = None
                  ) -> dict[str, Any]:
    """The multipart form of a JSON body: the same fields, plus ``photos`` file parts."""
    schema = fields.model_json_schema()
    props = {k: _form_field(k, v) for k, v in schema.get("properties", {}).items()
             if k != "attachments"}
    props.update(extra or {})
    props["photos"] = {"type": "array", "items": {"type": "string", "format": "binary"},
                       "description": "JPEG, PNG or WebP, checked by content"}
    # additionalProperties: other form fields mean nothing (and the fuzz test's generator
    # cannot send numbers it invents for them as form parts)
    out: dict[str, Any] = {"type": "object", "properties": props,
                           "additionalProperties": False}
    if schema.get("required"):
        out["required"] = schema["required"]
    return out


def _form_field(name: str, prop: dict[str, Any]) -> dict[str, Any]:
    """A form field is text whatever it holds: a number or an id is sent as its digits."""
    if prop.get("type") == "string":
        return prop
    kinds = [p for p in prop.get("anyOf", [prop]) if p.get("type") != "null"]
    if len(kinds) == 1 and kinds[0].get("type") == "string":
        return {**kinds[0], "title": prop.get("title", name)}
    return {"type": "string", "title": prop.get("title", name),
            "description": f"{_json_type(prop)} as text"}


def _json_type(prop: dict[str, Any]) -> str:
    kinds = [p.get("type") for p in prop.get("anyOf", [prop]) if p.get("type") != "null"]
    return " or ".join(str(k) for k in kinds if k) or "a value"


async def _form_photos(form: Any, settings: CaseSettings) -> list[Photo]:
    return await form_photos(form, settings)


def _fix(body: CaseIn) -> DeviceFix | None:
    if body.fix_lon is None and body.fix_lat is None:
        return None
    if body.fix_lon is None or body.fix_lat is None:
        raise ValidationError("fix_lon and fix_lat go together", field="fix_lon")
    return DeviceFix(body.fix_lon, body.fix_lat, body.fix_accuracy_m, body.fix_at)


async def read_report(request: Request, settings: CaseSettings,
                      key_header: str | None = None) -> Report:
    """A report from a JSON body or a multipart form (fields + ``photos`` files)."""
    ctype = request.headers.get("content-type", "")
    photos = []
    if ctype.startswith("multipart/form-data"):
        form = await read_form(request, settings.max_photos, settings.max_photo_bytes + 1)
        data: dict[str, Any] = {k: v for k, v in form.multi_items()
                                if not isinstance(v, UploadFile)}
        photos = await _form_photos(form, settings)
    else:
        data = parse_json(await request.body(), "a report object (or multipart/form-data "
                                                "with photos)")
        if not isinstance(data, dict):
            raise ValidationError("the JSON body must be an object", field="body")
    if key_header and "idempotency_key" not in data:
        data["idempotency_key"] = key_header
    try:
        body = CaseIn.model_validate(data)
    except PydanticError as exc:
        raise pydantic_problem(exc) from None
    fields = body.model_dump(exclude={"fix_lon", "fix_lat", "fix_accuracy_m", "fix_at",
                                      "self_handled", "handling"})
    fields["source"] = fields["source"] or ""  # "": not given, decided by who files it
    if body.category is None:
        from api.routes.intelligence import predicted_category

        fields["category"] = await run_in_threadpool(predicted_category, request,
                                                     body.description)
        fields["category_source"] = "predicted"
    return Report(photos=photos, fix=_fix(body), **fields)


@dataclass(frozen=True)
class Filer:
    """Who files a report: ``actor`` and ``role`` for its history, ``caller`` the identity
    that sent it (``user:wang``, ``key:…``, ``stand-in:…``: its idempotency keys are its own)
    and ``user`` the signed-in user's name (None for keys and the stand-in)."""

    actor: str
    role: str
    caller: str
    user: str | None = None

    def files(self, report: Report) -> Filing:
        """Who files decides two fields: a signed-in user is the reporter (whatever the body
        says), and a grid worker's report is a grid worker's (source) unless it names
        another."""
        source = report.source or ("grid_worker" if self.role == "grid_worker" else "other")
        reporter = self.user if self.user is not None else report.reporter
        return Filing(replace(report, source=source, reporter=reporter), self.actor,
                      self.role, self.user, self.caller)


def filer(request: Request) -> Filer:
    """Who files a report, from the caller the access table identified
    (``api.security.policy``): the token's user, a machine source's API key (its reports are
    the system's), or in development the ``X-Actor`` / ``X-Role`` stand-in (without
    ``X-Role``: an anonymous machine source)."""
    principal = identify(request)
    if principal is None:
        raise Unauthenticated(SIGN_IN)
    if principal.is_key:
        return Filer(principal.name, "system", principal.name)
    if not principal.unscoped:
        role = principal.role.value if principal.role else "system"
        return Filer(principal.name, role, f"user:{principal.name}", principal.name)
    x_role, actor = request.headers.get("x-role"), request.headers.get("x-actor") or ""
    if not x_role:
        return Filer(actor, "system", f"stand-in:{actor}")
    if x_role not in {r.value for r in Role}:
        raise ValidationError(f"unknown role {x_role!r}", field="X-Role", value=x_role)
    return Filer(actor or x_role, x_role, f"stand-in:{actor or x_role}")


def _header(name: str, description: str) -> dict[str, Any]:
    return {"name": name, "in": "header", "required": False, "schema": {"type": "string"},
            "description": description}


# The route takes the request alone and reads its headers and the app's state itself:
# FastAPI solves every declared dependency and header parameter on each call, a cost this
# route paid on every report (benchmarks/README.md, "Design figures"). The headers stay
# documented in the OpenAPI description below.
_INTAKE_HEADERS = [
    _header("Idempotency-Key", "the report's idempotency key, when the body has none"),
    _header("Authorization", "Bearer token of the reporting user"),
    _header("X-Api-Key", "API key of a machine source (sensor, video analytics)"),
    _header("X-Actor", "development stand-in for the reporting user (with X-Role)"),
    _header("X-Role", "development stand-in for the reporter's role"),
]


@router.post("", status_code=201, summary="Report a case (JSON or multipart with photos)",
             description="JSON as below, or multipart/form-data with the same fields plus "
                         "`photos` file parts (JPEG, PNG or WebP, checked by content; at most "
                         "`GRIDCORE_MAX_PHOTOS` of `GRIDCORE_MAX_PHOTO_BYTES` each).",
             openapi_extra={"parameters": _INTAKE_HEADERS,
                            "requestBody": {"required": True, "content": {
                                "application/json": {"schema": CaseIn.model_json_schema()},
                                "multipart/form-data": {"schema": _photo_schema(CaseIn, {
                                    "after_photos": {"type": "array", "items": {
                                        "type": "string", "format": "binary"},
                                        "description": "with self_handled: photos taken "
                                                       "after the work"}})}}}})
async def create_case(request: Request) -> JSONResponse:
    headers = request.headers
    settings: CaseSettings = request.app.state.settings.cases
    length = int(headers.get("content-length") or 0)
    cap = settings.max_photo_bytes * settings.max_photos + 1_000_000
    if length > cap:
        raise PayloadTooLarge(f"request body is {length} bytes; the limit is {cap}",
                              size=length, limit=cap)
    who = filer(request)  # identified before the body is read
    report = await read_report(request, settings, headers.get("idempotency-key"))
    solved = await self_handled.self_handling_of(request, settings)
    if solved is not None:  # 自处置 in one request: all checked before anything is stored
        self_handled.check(who.role, report, solved)
    result = await file_report(request, who.files(report))
    case = result.case
    if solved is not None:
        case = await run_in_threadpool(self_handled.finish, request, who.actor, who.role,
                                       case, solved)
    return FastJSONResponse(case, status_code=201 if result.created else 200,
                            headers={"Location": f"/cases/{case['id']}"})


def _filter(grid: str | None = None, community: str | None = None, street: str | None = None,
            district: str | None = None, department: str | None = None,
            state: str | None = None, category: str | None = None, source: str | None = None,
            colour: str | None = None, since: datetime | None = None,
            until: datetime | None = None, bbox: str | None = None) -> CaseFilter:
    for name, value in (("since", since), ("until", until)):
        if value is not None and value.tzinfo is None:
            raise ValidationError(f"{name} must carry a timezone (e.g. 2025-10-01T00:00:00Z)",
                                  field=name)
    return CaseFilter(grid, community, street, district, department, state, category, source,
                      colour, since, until, bbox)


# every timestamp an analyst needs to recompute the rates (layers/cases/milestones.py)
_EXPORT_COLUMNS = ["id", "public_no", "state", "category", "description", "lon", "lat",
                   "grid_code", "community_code", "street_code", "district_code", "department",
                   "source", "created_at", *MILESTONE_COLUMNS, "deadline", "colour"]


def _flat(case: dict[str, Any], times: dict[str, Any]) -> dict[str, Any]:
    clock = case["clock"] or {}
    return {**{k: case.get(k) for k in _EXPORT_COLUMNS}, **times,
            "lon": case["location"]["lon"], "lat": case["location"]["lat"],
            "deadline": clock.get("deadline"), "colour": clock.get("colour")}


def _export(engine: Any, cases: list[dict[str, Any]], fmt: str,
            next_url: str | None) -> Response:
    headers = {"Link": f'<{next_url}>; rel="next"'} if next_url else {}
    times = milestones(engine, [c["id"] for c in cases])
    if fmt == "csv":
        buf = io.StringIO()
        writer = csv.DictWriter(buf, fieldnames=_EXPORT_COLUMNS)
        writer.writeheader()
        # no formula cells (gridcore.security.spreadsheet)
        writer.writerows(neutralise_row(_flat(c, times.get(c["id"], {}))) for c in cases)
        return Response(buf.getvalue(), media_type="text/csv; charset=utf-8", headers=headers)
    features = [{"type": "Feature", "id": c["id"],
                 "geometry": {"type": "Point",
                              "coordinates": [c["location"]["lon"], c["location"]["lat"]]},
                 "properties": {k: v for k, v in _flat(c, times.get(c["id"], {})).items()
                                if k not in ("lon", "lat")}}
                for c in cases]
    body = {"type": "FeatureCollection", "features": features,
            "links": [{"rel": "next", "href": next_url}] if next_url else []}
    return Response(orjson.dumps(body), media_type="application/geo+json", headers=headers)


class ListParams(BaseModel):
    """The filters and formats of ``GET /cases`` and ``GET /cases/overdue``."""

    grid: str | None = None
    community: str | None = None
    street: str | None = None
    district: str | None = None
    area: str | None = Field(None, description="any area code (6, 9, 12 or 15 digits)")
    department: str | None = None
    state: str | None = Field(None, description="comma-separated states")
    category: str | None = Field(None, description="comma-separated class keys")
    source: str | None = None
    colour: Literal["green", "yellow", "red"] | None = None
    since: datetime | None = None
    until: datetime | None = None
    bbox: str | None = Field(None, description="minlon,minlat,maxlon,maxlat (WGS 84)")
    limit: int = Field(100, ge=1, le=1000)
    format: Literal["json", "csv", "geojson"] = "json"


def _listing(request: Request, engine: Any, settings: CaseSettings, viewer: Any,
             p: ListParams, after: int | str | None, overdue: bool = False) -> Response:
    viewer.require("case.read" if p.format == "json" else "case.export")
    f = _filter(p.grid, p.community, p.street, p.district, p.department, p.state, p.category,
                p.source, p.colour, p.since, p.until, p.bbox)
    f.area, f.overdue = p.area, overdue
    f.scope = viewer.scope  # scoping in the query: rows outside it are never read
    cases, last = list_cases(engine, settings, f, after, p.limit)
    next_url = None
    if last is not None:
        params = {**f.query_params(), "after": str(last), "limit": str(p.limit)}
        params.pop("overdue", None)
        if p.format != "json":
            params["format"] = p.format
        next_url = url_with(request, **params)
    if p.format != "json":
        return _export(engine, cases, p.format, next_url)
    return FastJSONResponse({"cases": cases, "count": len(cases), "next": next_url},
                            headers={"Link": f'<{next_url}>; rel="next"'} if next_url else None)


@router.get("", summary="List cases (filters, keyset pages, CSV / GeoJSON export)",
            responses={200: {"content": {"text/csv": {}, "application/geo+json": {}}}})
def get_cases(request: Request, engine: ReadEngineDep, settings: CaseSettingsDep, viewer: Viewer,
              params: Annotated[ListParams, Query()],
              after: Annotated[str | None, Query(max_length=60)] = None) -> Response:
    return _listing(request, engine, settings, viewer, params, after)


@router.get("/overdue", summary="Open cases past their deadline (督办), most overdue first",
            description="The filters and formats of GET /cases; pages continue with the "
                        "`next` link (a position in deadline order).",
            responses={200: {"content": {"text/csv": {}, "application/geo+json": {}}}})
def get_overdue(request: Request, engine: ReadEngineDep, settings: CaseSettingsDep, viewer: Viewer,
                params: Annotated[ListParams, Query()],
                after: Annotated[str | None, Query(max_length=60)] = None) -> Response:
    return _listing(request, engine, settings, viewer, params, after, overdue=True)


@router.get("/{case_id}", summary="One case with its full history")
def get_one(case_id: int, engine: EngineDep, settings: CaseSettingsDep,
            viewer: Viewer) -> dict[str, Any]:
    viewer.require("case.read")
    case = get_case(engine, settings, case_id)
    if not viewer.scope.covers_case(case.get("grid_code"), case.get("department"),
                                    case.get("filed_by")) \
            and not party_to(engine, case_id, viewer.scope.department):
        # outside the caller's areas: the same answer as a case that does not exist
        raise NotFound(f"case {case_id} does not exist", case_id=case_id)
    return case


async def read_step(request: Request, settings: CaseSettings,
                    model: type[StepIn] = StepIn) -> tuple[StepIn, list[Photo]]:
    """A step's fields from a JSON body (or none), or from a multipart form with photos."""
    length = int(request.headers.get("content-length") or 0)
    cap = settings.max_photo_bytes * settings.max_photos + 1_000_000
    if length > cap:
        raise PayloadTooLarge(f"request body is {length} bytes; the limit is {cap}",
                              size=length, limit=cap)
    photos: list[Photo] = []
    if request.headers.get("content-type", "").startswith("multipart/form-data"):
        form = await read_form(request, settings.max_photos, settings.max_photo_bytes + 1)
        data: Any = {k: v for k, v in form.multi_items() if not isinstance(v, UploadFile)}
        photos = await _form_photos(form, settings)
    else:
        raw = await request.body()
        data = parse_json(raw, "a step object (or multipart/form-data with photos)") \
            if raw.strip() else {}
        if data is None:
            data = {}
        if not isinstance(data, dict):
            raise ValidationError("the JSON body must be an object", field="body")
    try:
        return model.model_validate(data), photos
    except PydanticError as exc:
        raise pydantic_problem(exc) from None


def _step_body(model: type[StepIn]) -> dict[str, Any]:
    return {"parameters": _STEP_HEADERS, "requestBody": {"required": False, "content": {
        "application/json": {"schema": model.model_json_schema()},
        "multipart/form-data": {"schema": _photo_schema(model)}}}}


def _own(actor: Actor, action: str, payload: dict[str, Any]) -> dict[str, Any]:
    """A signed-in department handler's own department on the steps it takes as a party."""
    mine = actor.principal.scope.department if actor.principal is not None else None
    return own_department(action, actor.role, mine, payload)


def _take(request: Request, case_id: int, action: str, actor: Actor, body: StepIn,
          photos: list[Photo]) -> dict[str, Any]:
    state = request.app.state
    engine, settings = state.engine, state.settings.cases
    payload = _own(actor, action, body.model_dump(exclude={"action", "expected_version"}))
    case_in_scope(engine, case_id, actor.principal, step=action)
    key = request.headers.get("idempotency-key")
    if key is not None and not 1 <= len(key) <= 128:
        raise ValidationError("Idempotency-Key must have 1–128 characters",
                              field="Idempotency-Key")
    return transition(engine, settings, state.resolver, case_id, action, actor.name,
                      actor.role, payload, expected_version=body.expected_version,
                      photos=photos, idempotency_key=key)


_STEP_DESCRIPTION = ("JSON, or multipart/form-data with the same fields plus `photos` file "
                     "parts: on-site photos go with verify, void (at verification), handle, "
                     "feed_back and check. A failed check needs a `reason` (what is still "
                     "wrong). With an `Idempotency-Key` header a resent step (a lost answer) "
                     "is answered with the case as it is (`replayed: true`), not taken twice.")
_STEP_HEADERS = [_header("Idempotency-Key", "the client's key of this step (1–128 characters)")]


@router.post("/{case_id}/transitions", summary="Take a lifecycle step (body names the action)",
             description=_STEP_DESCRIPTION, openapi_extra=_step_body(TransitionIn))
async def post_transition(case_id: int, request: Request, actor: ActorDep) -> dict[str, Any]:
    body, photos = await read_step(request, request.app.state.settings.cases, TransitionIn)
    assert isinstance(body, TransitionIn)
    return await run_in_threadpool(_take, request, case_id, body.action, actor, body, photos)


@router.post("/{case_id}/{action}", summary="Take a lifecycle step (verify, register, …)",
             description=_STEP_DESCRIPTION, openapi_extra=_step_body(StepIn))
async def post_action(case_id: int, action: str, request: Request,
                      actor: ActorDep) -> dict[str, Any]:
    body, photos = await read_step(request, request.app.state.settings.cases)
    return await run_in_threadpool(_take, request, case_id, action, actor, body, photos)
