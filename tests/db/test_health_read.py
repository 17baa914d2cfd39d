"""The analysts' read API (layers.exchange.read) on the planted city."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import Engine

from gridcore.errors import ValidationError
from layers.exchange.read import read_cases, read_health, read_layer
from tests.support.health_planting import C1, G1, WINDOW, plant_city, plant_history

NOW = datetime(2026, 11, 1, tzinfo=UTC)


def test_read_layers_cases_and_health(db: Engine) -> None:
    plant_city(db)
    plant_history(db)
    grids = read_layer(db, "grids")
    assert list(grids.code) == sorted(grids.code) and len(grids) == 3
    assert grids.crs.to_epsg() == 4326 and grids.geometry.name == "geometry"
    entities = read_layer(db, "entities")
    assert "restricted_attributes" not in entities.columns and len(entities) == 3
    cases = read_cases(db, window=WINDOW, grid=G1, state="closed", now=NOW)
    assert len(cases) == 3 and set(cases.state) == {"closed"}
    assert "reporter" not in cases.columns
    # every timestamp needed to recompute the rates, and one geometry column name throughout
    a = cases.set_index("public_no").sort_index().iloc[0]
    for column in ("reported_at", "verified_at", "registered_at", "dispatched_at",
                   "handled_at", "checked_at", "closed_at", "deadline_at", "parked_seconds"):
        assert column in cases.columns, column
    assert a["registered_at"] <= a["dispatched_at"] <= a["handled_at"] <= a["checked_at"] \
        <= a["closed_at"]
    assert {f.geometry.name for f in (grids, entities, cases, read_layer(db, "parts"),
                                      read_layer(db, "areas"))} == {"geometry"}
    assert len(read_cases(db, window=WINDOW, category="E04", now=NOW)) == 1
    health = read_health(db, WINDOW, level="community", now=NOW)
    assert list(health.code)[0] == C1 and health.loc[0, "cases"] == 6
    assert health.geometry.notna().all() and "total" in health.columns
    assert health.geometry.name == "geometry"
    with pytest.raises(ValidationError):
        read_layer(db, "secrets")
