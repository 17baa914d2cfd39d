"""The service's OpenAPI definition in version 3.0, for OGC API clients.

FastAPI writes OpenAPI 3.1 (JSON Schema 2020-12). OGC API - Features names OpenAPI 3.0 in its
``oas30`` conformance class, and its clients look for a ``service-desc`` link of type
``application/vnd.oai.openapi+json;version=3.0`` (owslib finds the definition no other way),
so the landing page links this translation, next to the 3.1 original.

Only what FastAPI and pydantic emit is translated (no library does this downgrade): ``null``
among ``anyOf``/``oneOf``/``type`` becomes ``nullable``, a schema's ``examples`` list its
``example``, numeric ``exclusiveMinimum``/``exclusiveMaximum`` the 3.0 boolean form, ``const``
a one-value ``enum``, a ``$ref`` with sibling keywords an ``allOf``, and 3.1-only document
fields are dropped. The test validates the result against the OpenAPI 3.0 schema.
"""

from __future__ import annotations

from typing import Any

VERSION = "3.0.3"
_NULL = {"type": "null"}
# keywords whose value is one schema, or a list of schemas, or a name → schema map
_ONE = ("items", "not", "additionalProperties")
_MANY = ("allOf", "anyOf", "oneOf")
_MAP = ("properties", "patternProperties")


def schema30(schema: Any) -> Any:
    """One JSON Schema 2020-12 schema (as pydantic writes them) in OpenAPI 3.0's dialect."""
    if not isinstance(schema, dict):
        return schema
    out = dict(schema)
    for key in _ONE:
        if isinstance(out.get(key), dict):
            out[key] = schema30(out[key])
    for key in _MAP:
        if isinstance(out.get(key), dict):
            out[key] = {name: schema30(sub) for name, sub in out[key].items()}
    for key in _MANY:
        if key in out:
            out[key] = [schema30(sub) for sub in out[key]]
    if isinstance(out.get("type"), list):
        kinds = out.pop("type")
        if "null" in kinds:
            out["nullable"] = True
        kinds = [kind for kind in kinds if kind != "null"]
        if len(kinds) == 1:
            out["type"] = kinds[0]
        elif kinds:
            out["anyOf"] = [{"type": kind} for kind in kinds]
    for key in ("anyOf", "oneOf"):
        if key in out and _NULL in out[key]:
            rest = [sub for sub in out.pop(key) if sub != _NULL]
            out["nullable"] = True
            if len(rest) > 1:
                out[key] = rest
            elif rest:
                only = rest[0]  # the outer keywords (title, default…) win over the inner
                out = {**({"allOf": [only]} if "$ref" in only else only), **out}
    if "examples" in out and isinstance(out["examples"], list):
        examples = out.pop("examples")
        if examples:
            out.setdefault("example", examples[0])
    for key, bound in (("exclusiveMinimum", "minimum"), ("exclusiveMaximum", "maximum")):
        value = out.get(key)
        if isinstance(value, int | float) and not isinstance(value, bool):
            out[bound], out[key] = value, True
    if "const" in out:
        out["enum"] = [out.pop("const")]
    if "$ref" in out and len(out) > 1:  # 3.0 ignores whatever stands beside a $ref
        out["allOf"] = [{"$ref": out.pop("$ref")}, *out.get("allOf", [])]
    return out


def _parameters(params: list[Any]) -> list[Any]:
    return [{**p, "schema": schema30(p["schema"])} if isinstance(p, dict) and "schema" in p
            else p for p in params]


def _content(content: dict[str, Any]) -> dict[str, Any]:
    return {media: {**body, "schema": schema30(body["schema"])} if "schema" in body else body
            for media, body in content.items()}


def _operation(op: dict[str, Any]) -> dict[str, Any]:
    out = dict(op)
    if "parameters" in out:
        out["parameters"] = _parameters(out["parameters"])
    body = out.get("requestBody")
    if isinstance(body, dict) and "content" in body:
        out["requestBody"] = {**body, "content": _content(body["content"])}
    if "responses" in out:
        out["responses"] = {code: _response(answer) for code, answer in out["responses"].items()}
    return out


def _response(answer: Any) -> Any:
    if not isinstance(answer, dict):
        return answer
    out = dict(answer)
    if "content" in out:
        out["content"] = _content(out["content"])
    if "headers" in out:
        out["headers"] = {name: {**h, "schema": schema30(h["schema"])} if "schema" in h else h
                          for name, h in out["headers"].items()}
    return out


def openapi30(doc: dict[str, Any]) -> dict[str, Any]:
    """The whole definition (FastAPI's ``app.openapi()``) as OpenAPI 3.0."""
    info = dict(doc.get("info", {}))
    summary = info.pop("summary", None)  # 3.1 only: kept as the start of the description
    if summary:
        info["description"] = summary + ("\n\n" + info["description"]
                                         if info.get("description") else "")
    if isinstance(info.get("license"), dict):
        info["license"] = {k: v for k, v in info["license"].items() if k != "identifier"}
    paths = {}
    for path, item in doc.get("paths", {}).items():
        paths[path] = {method: _operation(op) if isinstance(op, dict) and method != "parameters"
                       else op for method, op in item.items()}
        if "parameters" in item:
            paths[path]["parameters"] = _parameters(item["parameters"])
    components = dict(doc.get("components", {}))
    if "schemas" in components:
        components["schemas"] = {name: schema30(s) for name, s in components["schemas"].items()}
    out = {key: value for key, value in doc.items()
           if key not in ("openapi", "webhooks", "jsonSchemaDialect")}
    return {**out, "openapi": VERSION, "info": info, "paths": paths, "components": components}
