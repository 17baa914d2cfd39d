"""The floor for bench_intake: a bare FastAPI endpoint that only inserts the same case row
into PostGIS (no resolve, no dispatch, no duplicate check, no history, no audit), on the same
stack and with the same database habits as the real intake, so that the ratio measures the
work intake adds and not a difference in plumbing: FastAPI + uvicorn, one thread hop, the
engine of ``layers.engine.make_engine`` (same pool, pre-ping), the row written by one prepared
statement in autocommit (``layers.prepared``, ``layers.engine.autocommit``), durable commit."""

from __future__ import annotations

import hashlib
import json

from fastapi import FastAPI

from layers.engine import autocommit, make_engine
from layers.prepared import Prepared

_INSERT = Prepared("gridcore_floor_insert", """
INSERT INTO case_record (idempotency_key, payload_hash, category_key, description, geom,
    input_crs, input_x, input_y, source, reporter, state, stage, stage_started_at, stage_limit)
VALUES (:key, :hash, :category, :description, ST_SetSRID(ST_MakePoint(:lon, :lat), 4326),
    'EPSG:4326', :lon, :lat, :source, :reporter, 'reported', 'dispatch', now(), '30m')
RETURNING id
""")


def create_floor_app() -> FastAPI:
    engine = make_engine()  # GRIDCORE_DATABASE_URL, as the real service
    app = FastAPI()

    @app.post("/floor", status_code=201)
    def floor(body: dict) -> dict:  # type: ignore[type-arg]
        payload_hash = hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()
        with autocommit(engine) as conn:
            case_id = _INSERT.execute(conn, {
                "key": body["idempotency_key"], "hash": payload_hash,
                "category": body["category"], "description": body.get("description", ""),
                "lon": body["lon"], "lat": body["lat"], "source": body.get("source", "other"),
                "reporter": body.get("reporter", "")}).scalar()
        return {"id": case_id}

    @app.get("/healthz")
    def healthz() -> dict:  # type: ignore[type-arg]
        return {"ok": True}

    return app
