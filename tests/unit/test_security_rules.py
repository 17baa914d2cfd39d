"""Pure security rules: the roles × actions matrix, area scopes, masking, GeoJSON limits."""

from __future__ import annotations

import pytest

from gridcore.errors import Forbidden, PayloadTooLarge, ValidationError
from gridcore.lifecycle import transition_allowed
from gridcore.security.access import (
    ACTIONS,
    Principal,
    Role,
    Scope,
    require_in_scope,
    scope_for,
    validate_area_codes,
)
from gridcore.security.input_limits import GeoJsonLimits, check_coordinate, check_geojson
from gridcore.security.masking import mask_attributes, mask_id_number, mask_name, mask_phone

GRID = "320582110152102"
OTHER_GRID = "320582110153001"


@pytest.mark.parametrize(("role", "action", "allowed"), [
    ("grid_worker", "case.report", True),
    ("analyst", "case.report", False),
    ("department_handler", "case.report", False),
    ("analyst", "case.export", True),
    ("grid_worker", "case.export", False),
    ("analyst", "entity.unmask", False),
    ("grid_worker", "entity.unmask", True),
    ("department_handler", "entity.read", False),
    ("manager", "users.admin", False),
    ("admin", "users.admin", True),
    ("grid_worker", "health.details", True),
    ("analyst", "health.details", False),
    ("analyst", "health.read", True),
])
def test_role_action_matrix(role: str, action: str, allowed: bool) -> None:
    assert Principal("u", Role(role)).may(action) is allowed


def test_admin_may_do_everything() -> None:
    assert all(Principal("root", Role.ADMIN).may(a) for a in ACTIONS)


@pytest.mark.parametrize(("role", "step", "allowed"), [
    ("grid_worker", "verify", True), ("grid_worker", "dispatch", False),
    ("dispatcher", "dispatch", True), ("department_handler", "dispatch", False),
    ("department_handler", "accept", True), ("dispatcher", "accept", False),
    ("grid_worker", "check", True), ("dispatcher", "close", True),
    ("manager", "supervise", True), ("analyst", "verify", False),
    ("analyst", "supervise", False), ("admin", "reopen", True), ("dispatcher", "nonsense", False),
])
def test_lifecycle_steps_by_role(role: str, step: str, allowed: bool) -> None:
    assert transition_allowed(role, step) is allowed


def test_api_keys_act_only_for_their_purpose() -> None:
    iot = Principal("key:abc:sensor", key_purpose="iot")
    assert iot.may("case.report") and not iot.may("case.read")
    assert Principal("key:x:app", key_purpose="open311").may("case.read")
    with pytest.raises(Forbidden):
        iot.require("users.admin")


def test_scopes_nest_by_code_prefix() -> None:
    worker = scope_for(Principal("w", Role.GRID_WORKER, areas=(GRID,)))
    assert worker.covers_grid(GRID) and not worker.covers_grid(OTHER_GRID)
    street = scope_for(Principal("s", Role.MANAGER, areas=("320582110",)))
    assert street.covers_grid(GRID) and street.covers_grid(OTHER_GRID)
    assert not street.covers_grid("320582111000001") and not street.covers_grid(None)
    handler = scope_for(Principal("h", Role.DEPARTMENT_HANDLER, department="D01"))
    assert handler.covers_case(OTHER_GRID, "D01") and not handler.covers_case(GRID, "D02")
    assert scope_for(Principal("d", Role.DISPATCHER)).city_wide
    assert scope_for(Principal("a", Role.ANALYST)).city_wide
    assert scope_for(Principal("k", key_purpose="open311")).city_wide
    assert Scope().empty


def test_action_outside_area_is_forbidden() -> None:
    worker = Principal("w", Role.GRID_WORKER, areas=(GRID,))
    require_in_scope(worker, "case.act", GRID)
    with pytest.raises(Forbidden):
        require_in_scope(worker, "case.act", OTHER_GRID)


def test_area_codes_are_validated() -> None:
    assert validate_area_codes(["320582", " 320582110152102 "]) == ("320582", GRID)
    for bad in ("3205", "32058211015210x", "1234567"):
        with pytest.raises(ValidationError):
            validate_area_codes([bad])


def test_masks() -> None:
    assert mask_name("张三") == "张**" and mask_name("欧阳娜娜") == "欧**"
    assert mask_id_number("320582199001011234") == "3205**********1234"
    assert mask_phone("13812345678") == "138****5678"
    masked = mask_attributes({"姓名": "李四", "id_number": "320582199001011234",
                              "phone": "13812345678", "address": "苏州市姑苏区平江路88号",
                              "diagnosis": "secret", "contacts": [{"name": "王五"}]})
    assert masked == {"姓名": "李**", "id_number": "3205**********1234",
                      "phone": "138****5678", "address": "苏州市姑苏区****",
                      "diagnosis": "***", "contacts": [{"name": "王**"}]}


def _polygon(n: int) -> dict:
    ring = [[120.0 + i * 1e-5, 31.0 + (i % 2) * 1e-5] for i in range(n)] + [[120.0, 31.0]]
    return {"type": "Polygon", "coordinates": [ring]}


def test_geojson_limits() -> None:
    assert check_geojson({"type": "Point", "coordinates": [120.6, 31.3]}) == 1
    assert check_geojson(_polygon(99), GeoJsonLimits(max_vertices=100)) == 100
    with pytest.raises(PayloadTooLarge):
        check_geojson(_polygon(100), GeoJsonLimits(max_vertices=100))
    nested: dict = {"type": "Point", "coordinates": [1, 2]}
    for _ in range(20):
        nested = {"type": "GeometryCollection", "geometries": [nested]}
    with pytest.raises(ValidationError, match="nested deeper"):
        check_geojson(nested)
    fc = {"type": "FeatureCollection",
          "features": [{"type": "Feature", "geometry": None}] * 5}
    with pytest.raises(PayloadTooLarge):
        check_geojson(fc, GeoJsonLimits(max_features=4))
    with pytest.raises(ValidationError, match="lon, lat"):
        check_geojson({"type": "Point", "coordinates": [31.3, 120.6]})
    with pytest.raises(ValidationError):
        check_coordinate(float("nan"), 0)
    with pytest.raises(ValidationError, match="unknown GeoJSON type"):
        check_geojson({"type": "Circle", "coordinates": [1, 2]})
