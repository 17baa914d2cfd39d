"""The floor for bench_intake: a bare FastAPI endpoint that only inserts the same case row
into PostGIS (no resolve, no dispatch, no duplicate check, no history, no audit), on the same
stack and with the same database habits as the real intake, so that the ratio measures the
work intake adds and not a difference in plumbing: FastAPI + uvicorn, the request alone as the
endpoint's parameter, one hop to a plain thread executor, the engine of
``layers.engine.make_engine`` (same pool, same checkout check), the row written by one prepared
statement in autocommit (``layers.prepared``, ``layers.engine.autocommit``), durable commit."""

from __future__ import annotations

import asyncio
import hashlib
import json
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from layers.case_settings import CaseSettings
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
    executor = ThreadPoolExecutor(CaseSettings().intake_threads)  # GRIDCORE_INTAKE_THREADS
    app = FastAPI()

    def insert(body: dict[str, Any]) -> int:
        payload_hash = hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()
        with autocommit(engine) as conn:
            return _INSERT.rows(conn, {
                "key": body["idempotency_key"], "hash": payload_hash,
                "category": body["category"], "description": body.get("description", ""),
                "lon": body["lon"], "lat": body["lat"], "source": body.get("source", "other"),
                "reporter": body.get("reporter", "")})[0]["id"]

    @app.post("/floor", status_code=201)
    async def floor(request: Request) -> JSONResponse:
        body = await request.json()
        case_id = await asyncio.get_running_loop().run_in_executor(executor, insert, body)
        return JSONResponse({"id": case_id}, status_code=201)

    @app.get("/healthz")
    def healthz() -> dict[str, bool]:
        return {"ok": True}

    return app
