"""Make the OpenAPI document tell the truth about errors: every error body is RFC 9457
``application/problem+json`` (``api.errors``), while FastAPI documents its 422 as
``application/json`` with its own ``HTTPValidationError`` shape. Found by the schemathesis run
(tests/support/fuzz.py): a client generated from the spec would mis-parse every error.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

PROBLEM_SCHEMA: dict[str, Any] = {
    "title": "Problem",
    "type": "object",
    "required": ["type", "title", "status", "detail"],
    "properties": {
        "type": {"type": "string"},
        "title": {"type": "string"},
        "status": {"type": "integer"},
        "detail": {"type": "string"},
        "instance": {"type": "string"},
        # the language ``detail`` is in: the caller's when the catalogue had it, else "en"
        # (domain errors only; api.errors)
        "detail_lang": {"type": "string", "enum": ["zh-CN", "en"]},
    },
    "additionalProperties": True,
}
PROBLEM = {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}}


def problem_openapi(app: FastAPI) -> dict[str, Any]:
    if app.openapi_schema:
        return app.openapi_schema
    from api.security.policy import annotate_openapi

    spec = annotate_openapi(get_openapi(title=app.title, version=app.version,
                                        summary=app.summary, description=app.description,
                                        routes=app.routes))
    spec.setdefault("components", {}).setdefault("schemas", {})["Problem"] = PROBLEM_SCHEMA
    for operations in spec.get("paths", {}).values():
        for operation in operations.values():
            for status, response in operation.get("responses", {}).items():
                if status.startswith(("4", "5")):
                    response["content"] = PROBLEM
    app.openapi_schema = spec
    return spec


def install(app: FastAPI) -> None:
    app.openapi = lambda: problem_openapi(app)  # type: ignore[method-assign]
