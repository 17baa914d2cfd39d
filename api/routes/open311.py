"""Open311 GeoReport v2 (http://wiki.open311.org/GeoReport_v2) at ``/open311/v2``.

Services are the taxonomy's classes (service_code = category key, ``P0120`` / ``E0103``);
``POST requests`` goes through the same intake as ``POST /cases`` (source ``open311``).
Errors use the GeoReport document (a list of ``{code, description}``) rather than
problem+json, because that is what Open311 clients parse.

Who may call what is the access table's (``api.security.policy``): ``POST requests`` takes an
API key of purpose ``open311`` or ``iot`` (``gridcore keys add``; as a stand-in kept for now,
the keys listed in ``GRIDCORE_OPEN311_API_KEYS``) or a signed-in user who reports; ``GET
requests`` an ``open311`` key, which reads the cases it filed, or a signed-in user, who reads
the cases of its areas. A city that publishes its cases (``GRIDCORE_OPEN311_PUBLIC_FEED``)
serves them to anyone without the classes its taxonomy marks sensitive, with locations rounded
to ``GRIDCORE_OPEN311_PUBLIC_PRECISION_M``.

GeoReport has no idempotency key; a client may send an ``Idempotency-Key`` header, otherwise the
key is derived from the api_key and the request's fields, so an identical re-post returns the
first request instead of a duplicate.
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Header, Query, Request
from fastapi.responses import Response
from sqlalchemy import Engine

from api import georeport as fmt311
from api.deps import CaseSettingsDep, EngineDep, ReadEngineDep
from api.errors import status_for
from api.filing import file_report
from api.ogc import base_url, url_with
from api.pages import request_language
from api.security.identity import identify
from gridcore.errors import GridcoreError, Unauthenticated, ValidationError
from gridcore.intake import Filing, Report
from gridcore.lifecycle import OPEN_STATES, TERMINAL_STATES, State
from gridcore.security.access import Principal
from gridcore.settings import CaseSettings
from gridcore.taxonomy import default_taxonomy, sensitive_classes
from layers.cases.queries import CaseFilter, list_cases
from layers.channels.reverse import nearest_addresses
from spatial.measure import coarsen

router = APIRouter(prefix="/open311/v2", tags=["open311"])
MAX_SPAN = timedelta(days=90)
MAX_REQUESTS = 1000  # one page at most, as GET /cases
MAX_IDS = 100  # service_request_id=1,2,… names at most this many


def _fmt(value: str) -> str:
    if value not in ("json", "xml"):
        raise ValidationError(f"format {value!r} must be json or xml", field="format")
    return value


def _error(exc: GridcoreError, fmt: str) -> Response:
    status = status_for(exc)
    return fmt311.errors(400 if status == 422 else status, status, exc.message, fmt)


@router.get("/discovery.{fmt}")
def discovery(request: Request, fmt: str) -> Response:
    base = base_url(request) + "/open311/v2"
    doc = {"changeset": "2026-11-22T00:00:00Z", "contact": "gridcore operator",
           "key_service": "ask the operator for an api_key",
           "endpoints": [{"specification": "http://wiki.open311.org/GeoReport_v2", "url": base,
                          "changeset": "2026-11-22T00:00:00Z", "type": "production",
                          "formats": ["application/json", "text/xml"]}]}
    return fmt311.render(doc, _fmt(fmt), "discovery")


@router.get("/services.{fmt}")
def services(request: Request, fmt: str) -> Response:
    lang = request_language(request)
    return fmt311.render([fmt311.service(c, lang) for c in default_taxonomy()], _fmt(fmt),
                         "services", "service")


@router.get("/services/{code}.{fmt}")
def service_definition(code: str, fmt: str) -> Response:
    fmt = _fmt(fmt)
    if code not in default_taxonomy():
        return fmt311.errors(404, 404, f"service_code {code!r} is not a service", fmt)
    return fmt311.render(fmt311.definition(default_taxonomy().get(code)), fmt, "service_definition")


def _number(form: Any, name: str) -> float:
    try:
        return float(form[name])
    except (KeyError, ValueError):
        raise ValidationError(f"{name} is required and must be a number", field=name) from None


def _filer(principal: Principal) -> tuple[str, str, str]:
    """(actor, role, caller) of a report: an API key's reports are the system's."""
    if principal.is_key:
        return principal.name, "system", principal.name
    role = principal.role.value if principal.role else "system"
    return principal.name, role, f"user:{principal.name}"


@router.post("/requests.{fmt}")
async def post_request(request: Request, fmt: str,
                       idempotency_key: Annotated[str | None, Header()] = None) -> Response:
    fmt = _fmt(fmt)
    principal = identify(request)  # the access table let through a key or a user who reports
    if principal is None:
        raise Unauthenticated("a valid api_key is required to post requests")
    form = await request.form()
    try:
        code = str(form.get("service_code") or "")
        if not code:
            raise ValidationError("service_code is required", field="service_code")
        source = str(form.get("attribute[source]") or "citizen")
        if source not in fmt311.SOURCE_VALUES:
            raise ValidationError(f"attribute[source] must be one of "
                                  f"{', '.join(fmt311.SOURCE_VALUES)}", field="source")
        # GeoReport v2: lat/long, or an address_string instead (geocoded at intake)
        address = str(form.get("address_string") or "").strip()
        lat: float | None = None
        lon: float | None = None
        if not (address and not form.get("lat") and not form.get("long")):
            lat, lon = _number(form, "lat"), _number(form, "long")
        reporter = " ".join(str(form.get(k) or "") for k in ("first_name", "last_name",
                                                             "email")).strip()
        description = str(form.get("description") or "")
        where = [f"{lat:.7f}", f"{lon:.7f}"] if lat is not None and lon is not None else [address]
        fields = [principal.name, code, *where, description, reporter,
                  str(form.get("device_id") or "")]
        fields += [address] if address else []  # keys derived before addresses stay the same
        key = idempotency_key or "open311:" + hashlib.sha256(
            "\x1f".join(fields).encode()).hexdigest()[:48]
        report = Report(key, code, lon, lat, description=description,
                        source="machine" if source == "machine" else "open311",
                        reporter=reporter, address=address)
        actor, role, caller = _filer(principal)
        result = await file_report(request, Filing(report, actor, role, caller=caller))
    except GridcoreError as exc:
        return _error(exc, fmt)
    case = result.case
    doc = [{"service_request_id": str(case["id"]), "service_notice": case["public_no"],
            "account_id": None}]
    return fmt311.render(doc, fmt, "service_requests", "request",
                         status=201 if result.created else 200)


def _date(value: str | None, name: str) -> datetime | None:
    if not value:
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise ValidationError(f"{name} must be a W3C datetime like 2025-10-01T00:00:00Z",
                              field=name) from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _ids(raw: str) -> list[int]:
    ids = [part.strip() for part in raw.split(",") if part.strip()]
    if len(ids) > MAX_IDS:
        raise ValidationError(f"service_request_id names {len(ids)} requests; at most "
                              f"{MAX_IDS} per call", field="service_request_id")
    if not all(part.isdigit() and len(part) <= 18 for part in ids):
        raise ValidationError("service_request_id must be comma-separated request ids",
                              field="service_request_id")
    return [int(part) for part in ids]


def _reader_filter(request: Request, f: CaseFilter) -> tuple[CaseFilter, bool]:
    """``f`` narrowed to what the caller may read, and whether the caller is the public
    (GRIDCORE_OPEN311_PUBLIC_FEED): an API key reads the cases it filed, a user its areas,
    the public every case of a class that is not sensitive."""
    principal = identify(request)
    if principal is None:  # the access table let an anonymous caller in: the public feed
        f.exclude_categories = sensitive_classes()
        return f, True
    if principal.is_key:
        f.caller = principal.name
    else:
        f.scope = principal.scope
    return f, False


def _public(request: Request, item: dict[str, Any]) -> dict[str, Any]:
    """A service request as the public feed shows it: the location rounded to the city's
    precision (GRIDCORE_OPEN311_PUBLIC_PRECISION_M), no account, no address."""
    metres = request.app.state.settings.cases.open311_public_precision_m
    if metres > 0:
        item["long"], item["lat"] = coarsen(item["long"], item["lat"], metres)
    item["address"] = ""  # a street address would undo the rounding
    for key in ("address_derived", "address_distance_m"):
        item["extended_attributes"].pop(key, None)
    return item


def _with_addresses(engine: Engine, settings: CaseSettings, cases: list[dict[str, Any]],
                    items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """A request reported by its point alone gets the nearest address of the address layer
    (within GRIDCORE_OPEN311_REVERSE_GEOCODE_M) as its address_string, flagged as
    derived in extended_attributes with its distance."""
    points = [(c["id"], c["location"]["lon"], c["location"]["lat"]) for c in cases
              if not c.get("address") and c["location"]["lon"] is not None]
    if not points:
        return items
    with engine.connect() as conn:
        found = nearest_addresses(conn, points, settings.open311_reverse_geocode_m)
    for case, item in zip(cases, items, strict=True):
        if case["id"] in found:
            label, metres = found[case["id"]]
            item["address"] = label
            item["extended_attributes"].update(
                {"address_derived": True, "address_distance_m": round(metres, 1)})
    return items


def _page_link(request: Request, last: int | str | None) -> dict[str, str]:
    if last is None:
        return {}
    query = dict(request.query_params)
    query["after"] = str(last)
    return {"Link": f'<{url_with(request, **query)}>; rel="next"'}


@router.get("/requests.{fmt}")
def get_requests(request: Request, fmt: str, engine: ReadEngineDep, settings: CaseSettingsDep,
                 service_request_id: str | None = None, service_code: str | None = None,
                 start_date: str | None = None, end_date: str | None = None,
                 status: str | None = None,
                 limit: Annotated[int, Query(ge=1, le=MAX_REQUESTS)] = 100,
                 after: Annotated[str | None, Query(max_length=60)] = None) -> Response:
    fmt, lang = _fmt(fmt), request_language(request)
    try:
        if service_request_id:  # overrides every other filter (GeoReport v2)
            f = CaseFilter(ids=_ids(service_request_id))
        else:
            end = _date(end_date, "end_date") or datetime.now(UTC)
            start = _date(start_date, "start_date") or end - MAX_SPAN
            if end - start > MAX_SPAN or start > end:
                raise ValidationError("start_date..end_date must be an ordered span of at "
                                      "most 90 days", field="start_date")
            wanted = {s.strip() for s in (status or "").split(",") if s.strip()}
            if wanted - {"open", "closed"}:
                raise ValidationError("status must be open and/or closed", field="status")
            states = None
            if wanted == {"open"}:
                states = ",".join(s for s in State if s in OPEN_STATES)
            elif wanted == {"closed"}:
                states = ",".join(s for s in State if s in TERMINAL_STATES)
            f = CaseFilter(state=states, category=service_code, since=start,
                           until=end + timedelta(microseconds=1))
        f, public = _reader_filter(request, f)
        cases, last = list_cases(engine, settings, f, after=after, limit=limit)
    except GridcoreError as exc:
        return _error(exc, fmt)
    items = _with_addresses(engine, settings, cases,
                            [fmt311.service_request(c, lang) for c in cases])
    if public:
        items = [_public(request, item) for item in items]
    return fmt311.render(items, fmt, "service_requests", "request",
                         headers=_page_link(request, last))


@router.get("/requests/{request_id}.{fmt}")
def get_request(request: Request, request_id: str, fmt: str, engine: EngineDep,
                settings: CaseSettingsDep) -> Response:
    fmt = _fmt(fmt)
    missing = fmt311.errors(404, 404, f"service request {request_id!r} does not exist", fmt)
    if not request_id.isdigit() or len(request_id) > 18:
        return missing
    f, public = _reader_filter(request, CaseFilter(ids=[int(request_id)]))
    try:
        cases, _ = list_cases(engine, settings, f, limit=1)
    except GridcoreError as exc:
        return _error(exc, fmt)
    if not cases:  # none, or not this caller's to read: the same answer
        return missing
    item = _with_addresses(engine, settings, cases,
                           [fmt311.service_request(cases[0], request_language(request))])[0]
    return fmt311.render([_public(request, item) if public else item], fmt,
                         "service_requests", "request")
