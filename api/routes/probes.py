"""Liveness, readiness and the catalogue of layers."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.concurrency import run_in_threadpool

from api.deps import EngineDep
from layers.db.engine import check_server
from layers.db.migrate import current_revision
from layers.ogc.summaries import layer_summaries

router = APIRouter(tags=["service"])


@router.get("/healthz", summary="Liveness: the process answers")
def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get("/readyz", summary="Readiness: database reachable, PostGIS version, schema revision")
async def readyz(engine: EngineDep) -> dict[str, object]:
    versions = await run_in_threadpool(check_server, engine)
    revision = await run_in_threadpool(current_revision, engine)
    return {"status": "ready", "database": versions.as_dict(), "schema_revision": revision}


@router.get("/layers", summary="Every layer with its feature count, extent and version")
def layers(engine: EngineDep) -> dict[str, object]:
    return {"layers": [summary.as_dict() for summary in layer_summaries(engine)]}
