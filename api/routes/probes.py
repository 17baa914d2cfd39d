"""Liveness, readiness and the catalogue of layers."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool

from api.deps import EngineDep, ReadEngineDep
from api.security.identity import identify
from gridcore.errors import GridcoreError
from layers.db.engine import check_server
from layers.db.migrate import current_revision
from layers.ogc.summaries import layer_summaries

router = APIRouter(tags=["service"])


@router.get("/healthz", summary="Liveness: the process answers")
def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get("/readyz", summary="Readiness: database reachable, PostGIS version, schema revision, "
                               "read replicas and their lag")
async def readyz(request: Request, engine: EngineDep) -> dict[str, object]:
    versions = await run_in_threadpool(check_server, engine)
    revision = await run_in_threadpool(current_revision, engine)
    found: dict[str, object] = {"status": "ready", "database": versions.as_dict(),
                                "schema_revision": revision}
    reads = getattr(request.app.state, "reads", None)
    if reads is not None and reads.enabled:
        # the monitor's last look (GRIDCORE_REPLICA_CHECK_INTERVAL_S); a replica down or
        # lagging beyond GRIDCORE_REPLICA_MAX_LAG_S is skipped, the primary reads instead
        replicas = reads.status()
        if not await run_in_threadpool(_may_see_details, request):
            # anyone may ask (a load balancer, an orchestrator's probe): the state and the lag
            # only — a replica's host, port and database and its connection error are the
            # operators' (an admin's token, or development mode)
            replicas = [{"state": r["state"], "lag_s": r["lag_s"]} for r in replicas]
        found["replicas"] = replicas
        found["replica_max_lag_s"] = reads.settings.replica_max_lag_s
        found["reads_on"] = ("replicas" if any(r["state"] == "streaming" for r in replicas)
                             else "primary (no replica usable)")
    return found


def _may_see_details(request: Request) -> bool:
    if request.app.state.settings.security.development:
        return True
    try:
        principal = identify(request)
    except GridcoreError:  # a bad credential: as anonymous (the probe answers all the same)
        return False
    return principal is not None and not principal.is_key and principal.may("users.admin")


@router.get("/layers", summary="Every layer with its feature count, extent and version")
def layers(engine: ReadEngineDep) -> dict[str, object]:
    return {"layers": [summary.as_dict() for summary in layer_summaries(engine)]}
