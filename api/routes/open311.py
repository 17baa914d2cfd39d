"""Open311 GeoReport v2 (http://wiki.open311.org/GeoReport_v2) at ``/open311/v2``.

Services are the taxonomy's classes (service_code = category key, ``P0120`` / ``E0103``);
``POST requests`` goes through the same intake as ``POST /cases`` (source ``open311``).
Errors use the GeoReport document (a list of ``{code, description}``) rather than
problem+json, because that is what Open311 clients parse.

API keys: ``POST requests`` accepts real API keys of purpose ``open311`` or ``iot`` (``gridcore
keys add``) and, as a stand-in kept for now, the keys listed in ``GRIDCORE_OPEN311_API_KEYS``.

GeoReport has no idempotency key; a client may send an ``Idempotency-Key`` header, otherwise the
key is derived from the api_key and the request's fields, so an identical re-post returns the
first request instead of a duplicate.
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Header, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import Response

from api.deps import CaseSettingsDep, EngineDep, ReadEngineDep
from api.errors import status_for
from api.filing import file_report
from api.routes import open311_format as fmt311
from gridcore.errors import GridcoreError, ValidationError
from gridcore.intake import Filing, Report
from gridcore.lifecycle import OPEN_STATES, TERMINAL_STATES, State
from gridcore.taxonomy import default_taxonomy
from layers.cases.queries import CaseFilter, get_case, list_cases
from layers.security.users import principal_for_key

router = APIRouter(prefix="/open311/v2", tags=["open311"])
MAX_SPAN = timedelta(days=90)
MAX_REQUESTS = 1000


def _fmt(value: str) -> str:
    if value not in ("json", "xml"):
        raise ValidationError(f"format {value!r} must be json or xml", field="format")
    return value


def _error(exc: GridcoreError, fmt: str) -> Response:
    status = status_for(exc)
    return fmt311.errors(400 if status == 422 else status, status, exc.message, fmt)


@router.get("/discovery.{fmt}")
def discovery(request: Request, fmt: str) -> Response:
    base = str(request.base_url).rstrip("/") + "/open311/v2"
    doc = {"changeset": "2026-11-22T00:00:00Z", "contact": "gridcore operator",
           "key_service": "ask the operator for an api_key",
           "endpoints": [{"specification": "http://wiki.open311.org/GeoReport_v2", "url": base,
                          "changeset": "2026-11-22T00:00:00Z", "type": "production",
                          "formats": ["application/json", "text/xml"]}]}
    return fmt311.render(doc, _fmt(fmt), "discovery")


@router.get("/services.{fmt}")
def services(fmt: str) -> Response:
    return fmt311.render([fmt311.service(c) for c in default_taxonomy()], _fmt(fmt), "services",
                         "service")


@router.get("/services/{code}.{fmt}")
def service_definition(code: str, fmt: str) -> Response:
    fmt = _fmt(fmt)
    if code not in default_taxonomy():
        return fmt311.errors(404, 404, f"service_code {code!r} is not a service", fmt)
    return fmt311.render(fmt311.definition(default_taxonomy().get(code)), fmt, "service_definition")


def _key_may_report(engine: Any, key: str, stand_in_keys: set[str]) -> bool:
    """A real API key (``gridcore keys add --purpose open311``) or, as a stand-in, one of
    ``GRIDCORE_OPEN311_API_KEYS``."""
    if not key:
        return False
    if key in stand_in_keys:
        return True
    try:
        return principal_for_key(engine, key).may("case.report")
    except GridcoreError:
        return False


def _number(form: Any, name: str) -> float:
    try:
        return float(form[name])
    except (KeyError, ValueError):
        raise ValidationError(f"{name} is required and must be a number", field=name) from None


@router.post("/requests.{fmt}")
async def post_request(request: Request, fmt: str, engine: EngineDep,
                       settings: CaseSettingsDep,
                       idempotency_key: Annotated[str | None, Header()] = None) -> Response:
    fmt = _fmt(fmt)
    form = await request.form()
    if not await run_in_threadpool(_key_may_report, engine, str(form.get("api_key") or ""),
                                   settings.api_keys()):
        return fmt311.errors(403, 403, "a valid api_key is required to post requests", fmt)
    try:
        code = str(form.get("service_code") or "")
        if not code:
            raise ValidationError("service_code is required", field="service_code")
        source = str(form.get("attribute[source]") or "citizen")
        if source not in fmt311.SOURCE_VALUES:
            raise ValidationError(f"attribute[source] must be one of "
                                  f"{', '.join(fmt311.SOURCE_VALUES)}", field="source")
        lat, lon = _number(form, "lat"), _number(form, "long")
        reporter = " ".join(str(form.get(k) or "") for k in ("first_name", "last_name",
                                                             "email")).strip()
        fields = [str(form.get("api_key")), code, f"{lat:.7f}", f"{lon:.7f}",
                  str(form.get("description") or ""), reporter, str(form.get("device_id") or "")]
        key = idempotency_key or "open311:" + hashlib.sha256(
            "\x1f".join(fields).encode()).hexdigest()[:48]
        report = Report(key, code, lon, lat, description=str(form.get("description") or ""),
                        source="machine" if source == "machine" else "open311",
                        reporter=reporter)
        result = await file_report(request, Filing(report, "open311", "system"))
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


@router.get("/requests.{fmt}")
def get_requests(fmt: str, engine: ReadEngineDep, settings: CaseSettingsDep,
                 service_request_id: str | None = None, service_code: str | None = None,
                 start_date: str | None = None, end_date: str | None = None,
                 status: str | None = None) -> Response:
    fmt = _fmt(fmt)
    try:
        if service_request_id:  # overrides every other filter (GeoReport v2)
            out = []
            for sid in service_request_id.split(","):
                if sid.strip().isdigit():
                    try:
                        out.append(fmt311.service_request(get_case(engine, settings,
                                                                   int(sid))))
                    except GridcoreError:
                        continue
            return fmt311.render(out, fmt, "service_requests", "request")
        end = _date(end_date, "end_date") or datetime.now(UTC)
        start = _date(start_date, "start_date") or end - MAX_SPAN
        if end - start > MAX_SPAN or start > end:
            raise ValidationError("start_date..end_date must be an ordered span of at most "
                                  "90 days", field="start_date")
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
        cases, _ = list_cases(engine, settings, f, limit=MAX_REQUESTS)
    except GridcoreError as exc:
        return _error(exc, fmt)
    return fmt311.render([fmt311.service_request(c) for c in cases], fmt, "service_requests",
                         "request")


@router.get("/requests/{request_id}.{fmt}")
def get_request(request_id: str, fmt: str, engine: EngineDep,
                settings: CaseSettingsDep) -> Response:
    fmt = _fmt(fmt)
    if not request_id.isdigit():
        return fmt311.errors(404, 404, f"service request {request_id!r} does not exist", fmt)
    try:
        case = get_case(engine, settings, int(request_id))
    except GridcoreError as exc:
        return _error(exc, fmt)
    return fmt311.render([fmt311.service_request(case)], fmt, "service_requests", "request")
