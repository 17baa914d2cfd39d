"""The floor for bench_intake: a bare FastAPI endpoint that only inserts the same case row
into PostGIS (no resolve, no dispatch, no duplicate check, no history, no audit), on the same
stack and with the same process and database habits as the real intake, so that the ratio
measures the work intake adds and not a difference in plumbing: FastAPI + uvicorn on the same
supervisor, the request alone as the endpoint's parameter, one hop to a plain thread executor,
what start-up built frozen out of the collector's sight, the engine of
``layers.db.engine.make_engine`` (same pool, same checkout check), the row written by one prepared
statement in autocommit (``layers.db.prepared``, ``layers.db.engine.autocommit``), durable commit.

"The same row": every column intake fills, with values of the same kind and size. What intake
works out per report (the grid and its foreign key, the area codes, the H3 cell, the proposed
department and its rule, the deadlines, the intake document) the floor takes from one report
resolved once at start-up, in the middle of the city, and writes unchanged into every row. Its
intake document lists no duplicate candidates, so it is a little smaller than intake's average:
if anything, that flatters the floor.
"""

from __future__ import annotations

import asyncio
import gc
import hashlib
import json
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from sqlalchemy import Engine, text

from gridcore.settings import Settings
from layers.db.engine import autocommit, make_engine
from layers.db.prepared import Prepared
from layers.grids.resolver import Resolver

_INSERT = Prepared("gridcore_floor_insert", """
INSERT INTO case_record (idempotency_key, payload_hash, category_key, description, geom,
    input_crs, input_x, input_y, grid_id, grid_code, community_code, street_code,
    district_code, h3, part_code, source, reporter, state, proposed_department, proposal_rule,
    stage, stage_started_at, stage_limit, warn_at, deadline_at, intake, created_at, updated_at)
VALUES (:key, :hash, :category, :description, ST_SetSRID(ST_MakePoint(:lon, :lat), 4326),
    'EPSG:4326', :lon, :lat, :grid_id, :grid_code, :community, :street, :district, :h3, NULL,
    :source, :reporter, 'reported', :proposed, :rule, 'dispatch', now(), '30m',
    now() + interval '24 minutes', now() + interval '30 minutes', CAST(:intake AS jsonb),
    now(), now())
RETURNING id
""")


def _template(engine: Engine, settings: Settings) -> dict[str, Any]:
    """The computed columns of one real report in the middle of the city, resolved once."""
    with engine.connect() as conn:
        lon, lat = conn.execute(text(
            "SELECT ST_X(c), ST_Y(c) FROM (SELECT ST_Centroid(ST_Extent(geom)) AS c "
            "FROM unit_grid WHERE gen_to IS NULL) e")).one()
    res = Resolver(engine, settings.resolve, settings.h3_resolution).resolve(
        lon, lat, category="E0103")
    if res.grid is None:
        raise SystemExit("the floor found no grid in the middle of the city")
    proposal = res.responsible
    return {"grid_id": res.grid.grid_id, "grid_code": res.grid.grid_code,
            "community": res.community.code if res.community else None,
            "street": res.street.code if res.street else None,
            "district": res.district.code if res.district else None, "h3": res.h3,
            "proposed": proposal.department_code if proposal else None,
            "rule": proposal.rule if proposal else "",
            "intake": json.dumps({"resolution": res.as_dict(), "duplicates": []}, default=str)}


def create_floor_app() -> FastAPI:
    settings = Settings()  # the environment's, as the real service reads it
    engine = make_engine(settings.database)
    template = _template(engine, settings)
    gc.freeze()  # as api.app does after its start-up: no full collection walks what it built
    # GRIDCORE_INTAKE_THREADS threads: bench_intake runs the floor with 2 (its best at 8
    # connections, benchmarks/README.md) and with 4.
    executor = ThreadPoolExecutor(settings.cases.intake_threads)
    app = FastAPI()

    def insert(body: dict[str, Any]) -> int:
        payload_hash = hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()
        with autocommit(engine) as conn:
            return _INSERT.rows(conn, {
                **template, "key": body["idempotency_key"], "hash": payload_hash,
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
