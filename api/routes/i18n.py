"""The message catalogue for the pages: ``GET /i18n/{lang}.json`` and the language switch."""

from __future__ import annotations

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse, RedirectResponse, Response

from api import i18n
from api.pages import request_language
from gridcore.errors import NotFound, ValidationError

router = APIRouter(tags=["pages"])


@router.get("/i18n/{lang}.json", summary="The pages' messages in one language")
def messages(lang: str, request: Request,
             ns: str | None = Query(None, max_length=200,
                                    description="comma-separated namespaces (all by default)"),
             ) -> Response:
    found = i18n.supported(lang)
    if found is None:
        raise NotFound(f"no messages in language {lang!r}; languages: "
                       f"{', '.join(i18n.LANGUAGES)}", lang=lang)
    wanted = [n.strip() for n in ns.split(",") if n.strip()] if ns else None
    if wanted:
        unknown = sorted(set(wanted) - i18n.namespaces(found))
        if unknown:
            raise ValidationError(f"unknown message namespaces: {', '.join(unknown)}",
                                  field="ns", value=ns)
    tag = i18n.etag(found) + (f"-{','.join(sorted(wanted))}" if wanted else "")
    headers = {"ETag": tag, "Cache-Control": "no-cache", "Content-Language": found}
    if request.headers.get("if-none-match") == tag:
        return Response(status_code=304, headers=headers)
    return JSONResponse({"lang": found, "messages": i18n.messages_for(found, wanted)},
                        headers=headers)


@router.get("/i18n/switch", include_in_schema=False)
def switch(request: Request, lang: str = Query(max_length=20),
           back: str = Query("/", max_length=500)) -> Response:
    """Sets the language cookie and goes back to the page (a plain link works without JS)."""
    found = i18n.supported(lang) or request_language(request)
    # Only a path on this site: never an open redirect to another host.
    target = back if back.startswith("/") and not back.startswith("//") else "/"
    response = RedirectResponse(target, status_code=303)
    response.set_cookie(i18n.COOKIE, found, max_age=365 * 86400, samesite="lax",
                        httponly=False, path="/")
    return response
