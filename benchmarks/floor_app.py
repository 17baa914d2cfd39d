"""The floor for bench_intake: a bare FastAPI endpoint that only inserts the same case row
into PostGIS (no resolve, no dispatch, no duplicate check, no history), on the same stack
(FastAPI, SQLAlchemy, psycopg2, a sync endpoint in the thread pool, durable commit)."""

from __future__ import annotations

import hashlib
import json
import os

from fastapi import FastAPI
from sqlalchemy import create_engine, text

_INSERT = text("""
INSERT INTO case_record (idempotency_key, payload_hash, category_key, description, geom,
    input_crs, input_x, input_y, source, reporter, state, stage, stage_started_at, stage_limit)
VALUES (:key, :hash, :category, :description, ST_SetSRID(ST_MakePoint(:lon, :lat), 4326),
    'EPSG:4326', :lon, :lat, :source, :reporter, 'reported', 'dispatch', now(), '30m')
RETURNING id
""")


def create_floor_app() -> FastAPI:
    engine = create_engine(os.environ["GRIDCORE_DATABASE_URL"], pool_size=10, max_overflow=10)
    app = FastAPI()

    @app.post("/floor", status_code=201)
    def floor(body: dict) -> dict:  # type: ignore[type-arg]
        payload_hash = hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()
        with engine.begin() as conn:
            case_id = conn.execute(_INSERT, {
                "key": body["idempotency_key"], "hash": payload_hash,
                "category": body["category"], "description": body.get("description", ""),
                "lon": body["lon"], "lat": body["lat"], "source": body.get("source", "other"),
                "reporter": body.get("reporter", "")}).scalar()
        return {"id": case_id}

    @app.get("/healthz")
    def healthz() -> dict:  # type: ignore[type-arg]
        return {"ok": True}

    return app
