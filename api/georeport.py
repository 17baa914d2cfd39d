"""Open311 GeoReport v2 documents: JSON and XML renderings, cases → service requests."""

from __future__ import annotations

import re
from typing import Any
from xml.etree import ElementTree as ET

from fastapi.responses import Response

from gridcore.lifecycle import TERMINAL_STATES, State
from gridcore.taxonomy import CategoryClass, CategoryKind, default_taxonomy

STATE_NOTES = {
    "reported": "已上报 reported", "verified": "已核实 verified", "voided": "已作废 voided",
    "registered": "已立案 registered", "dispatched": "已派遣 dispatched",
    "accepted": "已签收 accepted", "sent_back": "已退单 sent back", "handled": "已处置 handled",
    "fed_back": "已反馈 fed back", "checked": "已核查 checked", "closed": "已结案 closed",
    "rework": "返工 rework", "merged": "已并案 merged into another request",
}
SOURCE_VALUES = ["citizen", "hotline", "grid_worker", "machine"]


def class_name(c: CategoryClass, lang: str) -> str:
    """The class's name as an Open311 client shows it: one name, in the caller's language."""
    return (c.name_en if lang == "en" else c.name_zh) or c.name_zh or c.key


def service(c: CategoryClass, lang: str) -> dict[str, Any]:
    group = "部件 city parts" if c.kind is CategoryKind.PART else "事件 events"
    return {"service_code": c.key, "service_name": class_name(c, lang),
            "description": c.register_condition, "metadata": True, "type": "realtime",
            "keywords": f"{c.name_en},{c.name_zh}", "group": f"{group} {c.major}"}


def definition(c: CategoryClass) -> dict[str, Any]:
    return {"service_code": c.key, "attributes": [{
        "variable": True, "code": "source", "datatype": "singlevaluelist", "required": False,
        "datatype_description": "How the problem was found", "order": 1,
        "description": "来源 source of the report",
        "values": [{"key": v, "name": v} for v in SOURCE_VALUES]}]}


def service_request(case: dict[str, Any], lang: str) -> dict[str, Any]:
    """A case as a GeoReport service request. ``address`` is the address the report gave (empty
    when it gave none: a grid code is no address); the grid, its areas and the department are
    in ``extended_attributes``, GeoReport's place for a city's own fields."""
    clock = case.get("clock") or {}
    closed = State(case["state"]) in TERMINAL_STATES
    taxonomy = default_taxonomy()
    code = case["category"]
    name = class_name(taxonomy.get(code), lang) if code in taxonomy else code
    department = case["department"] or (case.get("proposal") or {}).get("department") or ""
    return {
        "service_request_id": str(case["id"]), "status": "closed" if closed else "open",
        "status_notes": STATE_NOTES.get(case["state"], case["state"]),
        "service_name": name, "service_code": code,
        "description": case["description"], "agency_responsible": department,
        "service_notice": case["public_no"], "requested_datetime": case["created_at"],
        "updated_datetime": case["updated_at"], "expected_datetime": clock.get("deadline"),
        "address": case.get("address") or "", "address_id": "",
        "zipcode": "", "lat": case["location"]["lat"], "long": case["location"]["lon"],
        "media_url": "",
        "extended_attributes": {
            "grid_code": case["grid_code"] or "", "community_code": case["community_code"] or "",
            "street_code": case["street_code"] or "", "district_code": case["district_code"] or "",
            "department_code": department, "state": case["state"]},
    }


# What XML 1.0 cannot hold at all, even escaped (control characters but tab, LF and CR;
# surrogates; U+FFFE/U+FFFF): one such character in a description made the whole document
# ill-formed for every client. Intake refuses them now; rows stored before are cleaned here.
_NOT_XML = re.compile("[^\u0009\u000a\u000d\u0020-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def xml_text(value: Any) -> str:
    return _NOT_XML.sub("\ufffd", str(value))


def _xml_value(parent: ET.Element, key: str, value: Any) -> None:
    if isinstance(value, list):
        holder = ET.SubElement(parent, key)
        child = key[:-1] if key.endswith("s") else "item"
        for item in value:
            _xml_obj(ET.SubElement(holder, child), item)
        return
    el = ET.SubElement(parent, key)
    if isinstance(value, dict):
        _xml_obj(el, value)
    elif isinstance(value, bool):
        el.text = "true" if value else "false"
    elif value is not None:
        el.text = xml_text(value)


def _xml_obj(el: ET.Element, obj: Any) -> None:
    if isinstance(obj, dict):
        for k, v in obj.items():
            _xml_value(el, k, v)
    else:
        el.text = xml_text(obj)


def render(data: Any, fmt: str, root: str, item: str | None = None,
           status: int = 200, headers: dict[str, str] | None = None) -> Response:
    """JSON as is; XML with ``root`` wrapping ``item`` elements (lists) or fields (objects)."""
    if fmt == "json":
        import json

        return Response(json.dumps(data, ensure_ascii=False), status_code=status,
                        media_type="application/json", headers=headers)
    top = ET.Element(root)
    if isinstance(data, list):
        for obj in data:
            _xml_obj(ET.SubElement(top, item or "item"), obj)
    else:
        _xml_obj(top, data)
    body = b'<?xml version="1.0" encoding="utf-8"?>' + ET.tostring(top, encoding="utf-8")
    return Response(body, status_code=status, media_type="text/xml; charset=utf-8",
                    headers=headers)


def errors(status: int, code: int | str, description: str, fmt: str) -> Response:
    """The GeoReport error document: a list of {code, description}."""
    return render([{"code": code, "description": description}], fmt, "errors", "error",
                  status=status)
