"""Liveness, readiness, the worker registry listing and Prometheus metrics."""

from typing import Annotated, Any

from fastapi import APIRouter, Depends
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from services.gateway.core import Core, get_core
from shared import bus

router = APIRouter(tags=["health"])


@router.get("/live", summary="Liveness: the process serves HTTP (Redis is not asked)")
async def live() -> Response:
    # A liveness probe that asked Redis would restart every gateway on a Redis blip.
    return JSONResponse({"status": "ok"})


@router.get("/health", summary="Health: the gateway runs and Redis answers")
async def health(core: Annotated[Core, Depends(get_core)]) -> Response:
    try:
        await core.redis.ping()
    except bus.TRANSIENT as exc:
        return JSONResponse({"status": "degraded", "redis": f"unreachable: {exc}"}, 503)
    return JSONResponse({"status": "ok", "redis": "ok"})


@router.get("/ready", summary="Readiness: a live worker for every required stage")
async def ready(core: Annotated[Core, Depends(get_core)]) -> Response:
    try:
        workers = await core.registry.workers(fresh=True)
    except bus.TRANSIENT as exc:
        return JSONResponse({"ready": False, "reason": f"redis unreachable: {exc}"}, 503)
    live = {w.component for w in workers}
    missing = [s for s in core.settings.required_stages if s not in live]
    body = {"ready": not missing, "missing": missing, "workers": len(workers)}
    return JSONResponse(body, 503 if missing else 200)


@router.get("/v1/workers", summary="Live workers from their heartbeats")
async def workers(core: Annotated[Core, Depends(get_core)]) -> list[dict[str, Any]]:
    try:
        live = await core.registry.workers(fresh=True)
    except bus.TRANSIENT as exc:
        return JSONResponse({"detail": f"redis unreachable: {exc}"}, 503)  # type: ignore[return-value]
    return [
        {
            "component": w.component,
            "name": w.name,
            "host": w.host,
            "pid": w.pid,
            "languages": w.languages,
            "model": w.model,
            "stream": w.stream,
            "kind": w.kind,
            "concurrency": w.concurrency,
            "in_flight": w.in_flight,
            "last_seen": w.last_seen_s,
            "extra": w.extra,  # e.g. an external adapter's servers, "(down)" marked
        }
        for w in live
    ]


@router.get("/metrics", summary="Prometheus metrics", include_in_schema=False)
async def metrics(core: Annotated[Core, Depends(get_core)]) -> Response:
    return Response(generate_latest(core.prometheus), media_type=CONTENT_TYPE_LATEST)
