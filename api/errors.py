"""Domain errors → HTTP status, in one table, rendered as RFC 9457 problem+json."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import ValidationError as PydanticError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import ClientDisconnect
from starlette.responses import Response

from api import i18n, validation_text
from gridcore import errors as e

PROBLEM_JSON = "application/problem+json"

# Most specific class first: the first isinstance match wins.
STATUS_TABLE: list[tuple[type[e.GridcoreError], int]] = [
    (e.DatabaseUnsuitable, 503),
    (e.ServiceUnavailable, 503),
    (e.InsecureConfiguration, 500),
    (e.InvalidConfiguration, 500),
    (e.Unauthenticated, 401),
    (e.Forbidden, 403),
    (e.TooManyRequests, 429),
    (e.PayloadTooLarge, 413),
    (e.NotFound, 404),
    (e.Conflict, 409),
    (e.OutsideManagedArea, 422),
    (e.InvalidParameter, 400),
    (e.ImportRejected, 422),
    (e.UnknownParameter, 400),
    (e.InvalidCode, 422),
    (e.ValidationError, 422),
    (e.GridcoreError, 400),
]


def status_for(error: e.GridcoreError) -> int:
    for cls, status in STATUS_TABLE:
        if isinstance(error, cls):
            return status
    return 500


def localised_title(request: Request | None, kind: str, fallback: str) -> str:
    """The problem's title in the caller's language (``Accept-Language``, ``?lang=``); the
    ``detail`` stays the precise message of the error, which names fields and values."""
    if request is None:
        return fallback
    from api.pages import request_language

    lang = request_language(request)
    return i18n.catalogue(lang).get(f"problem.{kind}", fallback)


# Values of these details are codes the catalogue names (an action, a state, a role…).
_NAMED = {"action": "case.action_", "state": "case.state_", "role": "case.role_",
          "allowed": "case.action_", "missing": "case.field_", "roles": "case.role_"}


def _asked_language(request: Request) -> bool:
    """Whether the caller named a language (``?lang=``, the language cookie,
    ``Accept-Language``): only then is a detail worded in one, else the English stands."""
    return bool("lang" in request.query_params or i18n.COOKIE in request.cookies
                or request.headers.get("accept-language"))


def localised_detail(request: Request | None, error: e.GridcoreError) -> str | None:
    """The error's message in the caller's language, when the caller named one (``?lang=``,
    the language cookie, ``Accept-Language``: the pages always do) and the catalogue has it;
    otherwise None and the precise English ``message`` stands."""
    if request is None or error.msg_key is None or not _asked_language(request):
        return None
    from api.pages import request_language

    lang = request_language(request)
    template = i18n.catalogue(lang).get(f"problem_detail.{error.msg_key}")
    if template is None:
        return None
    values: dict[str, Any] = {}
    names = i18n.catalogue(lang)
    for key, value in error.details.items():
        prefix = _NAMED.get(key)
        if prefix and isinstance(value, list | tuple):
            sep = "、" if lang == "zh-CN" else ", "
            values[key] = sep.join(names.get(prefix + str(v), str(v)) for v in value) \
                or names.get("problem_detail.nothing", "—")
        elif prefix:
            values[key] = names.get(prefix + str(value), str(value))
        else:
            values[key] = value
    return i18n.translate(lang, f"problem_detail.{error.msg_key}", **values)


def problem(status: int, title: str, detail: str, kind: str, instance: str | None = None,
            /, headers: dict[str, str] | None = None, request: Request | None = None,
            **extra: Any) -> JSONResponse:
    """An RFC 9457 problem+json answer; ``extra``: the error's own members (an error's details
    may be named like a parameter here, e.g. an evaluation ``kind``: hence positional-only)."""
    title = localised_title(request, kind, title)
    body: dict[str, Any] = {"type": f"https://gridcore.dev/problems/{kind}", "title": title,
                            "status": status, "detail": detail}
    if instance:
        body["instance"] = instance
    # the standard members stay what they are; a detail of the same name goes beside them
    body.update({(f"{k}_value" if k in body or k in _STANDARD else k): v
                 for k, v in extra.items() if v is not None})
    return JSONResponse(body, status_code=status, media_type=PROBLEM_JSON, headers=headers)


OPEN311 = "/open311/v2/"
_STANDARD = frozenset({"type", "title", "status", "detail", "instance"})


def open311_error(request: Request, exc: e.GridcoreError, status: int) -> Response:
    """Open311 clients parse GeoReport v2's error document (a list of ``{code,
    description}``), not problem+json; GeoReport answers a missing or invalid api_key with
    403 and a bad request with 400."""
    from api.georeport import errors as georeport_errors

    if status == 401:
        status = 403
    elif status == 422:
        status = 400
    fmt = "xml" if request.url.path.endswith(".xml") else "json"
    return georeport_errors(status, status, exc.message, fmt)


def pydantic_problem(exc: PydanticError) -> e.ValidationError:
    """A pydantic error as one precise domain ValidationError (field + reason for each)."""
    errors = [{"field": ".".join(str(p) for p in err["loc"]), "reason": err["msg"]}
              for err in exc.errors()]
    detail = "; ".join(f"{err['field']}: {err['reason']}" for err in errors)
    error = e.ValidationError(detail, errors=errors,
                              field=errors[0]["field"] if errors else None)
    error.pydantic_errors = exc.errors()  # type: ignore[attr-defined]  # worded by domain_error
    return error


def _worded(request: Request, raw: list[Any], errors: list[dict[str, Any]]
            ) -> tuple[str, str] | None:
    """The detail of pydantic's ``raw`` errors in the caller's language, and that language
    (each of ``errors`` gains its sentence as ``message``); None: the English stands."""
    if not _asked_language(request):
        return None
    from api.pages import request_language

    lang = request_language(request)
    worded = validation_text.localised(lang, raw)
    if worded is None:
        return None
    for err, text in zip(errors, worded, strict=True):
        err["message"] = text
    return ("；" if lang == "zh-CN" else "; ").join(worded), lang


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set):
        return [_jsonable(v) for v in value]
    if isinstance(value, str | int | float | bool) or value is None:
        return value
    return str(value)


def install(app: FastAPI) -> None:
    @app.exception_handler(e.GridcoreError)
    async def domain_error(request: Request, exc: e.GridcoreError) -> Response:
        status = status_for(exc)
        if request.url.path.startswith(OPEN311):
            return open311_error(request, exc, status)
        headers = {"Retry-After": "5"} if status == 503 else None
        if status == 401:
            headers = {"WWW-Authenticate": "Bearer"}
        elif status == 429:
            headers = {"Retry-After": str(exc.details.get("retry_after_s", 1))}
        localised = localised_detail(request, exc)
        detail = localised or exc.message
        # which language the detail is in: a client showing it under its own localised
        # reason (the phone's outbox) leaves out a detail not in the page's language
        from api.pages import request_language

        detail_lang = request_language(request) if localised else "en"
        raw = getattr(exc, "pydantic_errors", None)
        if raw is not None and not localised:
            detail, detail_lang = _worded(request, raw, exc.details["errors"]) \
                or (detail, detail_lang)
        details = {(f"{k}_value" if k in ("headers", "request", "detail_lang") else k): v
                   for k, v in _jsonable(exc.details).items()}
        return problem(status, exc.title, detail, exc.kind, str(request.url.path),
                       request=request, headers=headers, detail_lang=detail_lang, **details)

    @app.exception_handler(RequestValidationError)
    async def request_invalid(request: Request, exc: RequestValidationError) -> Response:
        errors = [{"field": ".".join(str(p) for p in err.get("loc", ()) if p != "body"),
                   "reason": err.get("msg", ""), "location": (err.get("loc") or ["?"])[0]}
                  for err in exc.errors()]
        detail = "; ".join(f"{err['field'] or err['location']}: {err['reason']}"
                           for err in errors)
        if request.url.path.startswith(OPEN311):
            return open311_error(request, e.ValidationError(detail), 422)
        # in the caller's language when it named one and every error has words there
        detail, detail_lang = _worded(request, list(exc.errors()), errors) or (detail, "en")
        return problem(422, "Invalid request", detail, "validation-error",
                       str(request.url.path), request=request, errors=errors,
                       detail_lang=detail_lang)

    @app.exception_handler(ClientDisconnect)
    async def client_gone(request: Request, exc: ClientDisconnect) -> Response:
        # The client hung up while sending its body (a phone losing signal mid-upload): nothing
        # was stored and nobody is listening, so no traceback in the log; 499 as nginx logs it.
        return Response(status_code=499)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
        if request.url.path.startswith(OPEN311) and exc.status_code < 500:
            return open311_error(request, e.GridcoreError(str(exc.detail)), exc.status_code)
        return problem(exc.status_code, str(exc.detail), str(exc.detail),
                       f"http-{exc.status_code}", str(request.url.path), request=request,
                       headers=getattr(exc, "headers", None))


def install_database_errors(app: FastAPI) -> None:
    """A lost or restarting database is a retryable 503, never a 500 or a hang."""
    import psycopg2
    import psycopg2.errors
    from sqlalchemy.exc import DataError, DBAPIError, OperationalError
    from sqlalchemy.exc import TimeoutError as PoolTimeout

    # psycopg2's own errors: the connections kept outside the pool (the tiles' layer
    # versions, the grid index's version poll) raise them unwrapped by SQLAlchemy
    @app.exception_handler(OperationalError)
    @app.exception_handler(PoolTimeout)
    @app.exception_handler(psycopg2.OperationalError)
    @app.exception_handler(psycopg2.InterfaceError)
    async def database_down(request: Request, exc: Exception) -> JSONResponse:
        if isinstance(getattr(exc, "orig", exc), psycopg2.errors.QueryCanceled):
            return query_timeout(request)
        return problem(503, "Database unavailable",
                       "the database is unreachable or restarting; retry shortly",
                       "database-unavailable", str(request.url.path), request=request,
                       headers={"Retry-After": "2"})

    def query_timeout(request: Request) -> JSONResponse:
        # A statement that ran past GRIDCORE_STATEMENT_TIMEOUT_MS was cancelled by the server:
        # the database is up, so "unreachable or restarting" would send the caller to retry
        # the same request; it says what happened and what helps instead.
        return problem(503, "Query took too long",
                       "the request took longer than the database's time limit and was "
                       "cancelled; narrow it (a smaller area or window, a filter) or retry later",
                       "query-timeout", str(request.url.path), request=request,
                       headers={"Retry-After": "10"})

    @app.exception_handler(ValueError)
    async def nul_in_text(request: Request, exc: ValueError) -> JSONResponse:
        # psycopg2 refuses NUL in a text value before it reaches the server; it came from the
        # request body (found by the schemathesis run), so it is the request that is wrong.
        if "NUL (0x00)" not in str(exc):
            raise exc
        return problem(422, "Invalid value", "NUL characters are not accepted in text",
                       "validation-error", str(request.url.path), request=request)

    @app.exception_handler(DataError)
    async def database_refused_value(request: Request, exc: DataError) -> JSONResponse:
        # A request value PostgreSQL cannot represent (a time-zone offset beyond ±15:59, an
        # integer beyond bigint…) reached a query: the request is wrong, not the server.
        # Found by the schemathesis run (tests/support/fuzz.py) on GET /cases?until=….
        reason = str(getattr(exc.orig, "pgerror", None) or exc.orig).strip().splitlines()[0]
        return problem(422, "Invalid value", f"a request value is out of range: {reason}",
                       "validation-error", str(request.url.path), request=request)

    @app.exception_handler(DBAPIError)
    async def database_error(request: Request, exc: DBAPIError) -> JSONResponse:
        if exc.connection_invalidated:
            return await database_down(request, exc)
        raise exc
