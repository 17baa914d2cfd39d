"""Reading 9+X entities (综治 9+X) with personal data masked unless a purpose is stated.

The record is looked up *inside* the caller's scope (an entity outside it is simply not
found); unmasking needs the ``entity.unmask`` permission and a purpose, and writes an audit
row in the same transaction as the read, so no unmasked value leaves without its trail.
"""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import Engine, func, select

from gridcore.errors import NotFound
from gridcore.security.access import Principal
from gridcore.security.masking import mask_attributes, stated_purpose
from layers.schema.city import governance_entity as ge
from layers.security import audit
from layers.security.scoping import grid_condition


def read_entity(engine: Engine, code: str, principal: Principal, unmask: bool = False,
                purpose: str | None = None, remote_addr: str | None = None) -> dict[str, Any]:
    principal.require("entity.read")
    if unmask:
        principal.require("entity.unmask")
        purpose = stated_purpose(purpose)  # normalised, with visible letters, as audited
    query = (select(ge.c.code, ge.c.area, ge.c.type, ge.c.name, ge.c.grid_code,
                    ge.c.sensitivity, ge.c.attributes, ge.c.restricted_attributes,
                    ge.c.updated_at, func.ST_AsGeoJSON(ge.c.geom).label("geometry"))
             .where(ge.c.code == code, grid_condition(ge.c.grid_code, principal.scope)))
    with engine.begin() as conn:
        row = conn.execute(query).first()
        if row is None:
            raise NotFound(f"no entity {code!r} in your areas", code=code)
        restricted = dict(row.restricted_attributes or {})
        if unmask:
            audit.record(conn, principal.name, "entity.unmask", f"entity:{code}",
                         {"purpose": purpose or "",
                          "fields": sorted(restricted)}, remote_addr)
    return {
        "code": row.code, "area": row.area, "type": row.type, "name": row.name,
        "grid_code": row.grid_code, "sensitivity": row.sensitivity,
        "attributes": row.attributes,
        "restricted_attributes": restricted if unmask else mask_attributes(restricted),
        "masked": not unmask, "updated_at": row.updated_at.isoformat(),
        "geometry": json.loads(row.geometry),
    }
