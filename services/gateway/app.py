"""The gateway's app factory: state, lifespan, error shape, request metrics, routes."""

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator

from fastapi import Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from prometheus_client import CollectorRegistry
from starlette.exceptions import HTTPException as StarletteHTTPException

from services.gateway import monitor
from services.gateway.auth import install_cors, require, require_by_method, require_for_paths
from services.gateway.bridge import Bridge
from services.gateway.core import Core
from services.gateway.errors import GatewayError, error_body
from services.gateway.gate import BodyGate
from services.gateway.httpmetrics import RequestMetrics
from services.gateway.live.engine.fanout import Fanout
from services.gateway.live.routes import router as live_router
from services.gateway.live.routes.webrtc import Peers
from services.gateway.metrics import gateway_metrics
from services.gateway.registry import Registry
from services.gateway.routes import assistant as assistant_routes
from services.gateway.routes import health, openai, page, speakers, speech, translate
from services.gateway.routes import ltapi as ltapi_routes
from services.gateway.routes import pipeline as pipeline_routes
from services.gateway.routes import text as text_routes
from services.gateway.settings import GatewaySettings
from shared import bus

log = logging.getLogger(__name__)
ADMIN_PATHS = {"/v1/workers": "admin"}  # the rest of the health router is open


def _install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(GatewayError)
    async def _gateway_error(_request: Request, exc: GatewayError) -> JSONResponse:
        headers = {"Retry-After": "5"} if exc.status in (429, 503) else None
        return JSONResponse(error_body(exc.status, exc.message, exc.code), exc.status, headers)

    @app.exception_handler(RequestValidationError)
    async def _invalid(_request: Request, exc: RequestValidationError) -> JSONResponse:
        parts = [f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors()]
        return JSONResponse(error_body(422, "; ".join(parts), "invalid_request"), 422)

    @app.exception_handler(Exception)
    async def _crash(request: Request, exc: Exception) -> JSONResponse:
        # Starlette re-raises after answering, so the traceback still reaches the log.
        log.error("unhandled error in %s %s", request.method, request.url.path)
        return JSONResponse(error_body(500, "internal error", "internal_error"), 500)

    @app.exception_handler(StarletteHTTPException)
    async def _http(_request: Request, exc: StarletteHTTPException) -> JSONResponse:
        return JSONResponse(
            error_body(exc.status_code, str(exc.detail), getattr(exc, "code", "http_error")),
            exc.status_code,
            getattr(exc, "headers", None),
        )


def create_app(settings: GatewaySettings, registry: CollectorRegistry | None = None) -> FastAPI:
    """Build the gateway; Redis is connected and the reply reader started on startup."""
    prometheus = registry or CollectorRegistry()
    metrics = gateway_metrics(prometheus)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        redis = await bus.connect(settings)
        bridge = Bridge(
            redis,
            settings.instance_id,
            metrics,
            split=settings.stream_parts,
            submit_retry_s=settings.submit_retry_s,
        )
        core = Core(
            settings, redis, bridge, Registry(redis, settings.registry_cache_s), metrics, prometheus
        )
        app.state.core = core
        app.state.peers = Peers(settings.webrtc_max_peers)
        app.state.fanout = Fanout(core)  # one Redis reader per listened-to session
        await bridge.start()  # read replies before any client can send a job
        from services.gateway.wyoming.server import start_wyoming  # only loaded by this feature

        wyoming = await start_wyoming(core)  # None unless GATEWAY_WYOMING_PORT is set
        closing = asyncio.Event()
        gauges = asyncio.create_task(monitor.run(core, closing))
        log.info("gateway %s ready", settings.instance_id)
        try:
            yield
        finally:
            if wyoming is not None:
                await wyoming.stop()  # before the bridge: in-flight Wyoming jobs end first
            await app.state.peers.close_all()
            await app.state.fanout.close()
            closing.set()
            await gauges
            await bridge.stop()
            await redis.aclose()

    app = FastAPI(
        title="PyParrot gateway",
        version="0.1.0",
        description="Speech-to-text, translation and speech over Redis Streams workers",
        lifespan=lifespan,
    )
    _install_error_handlers(app)
    app.add_middleware(BodyGate)  # innermost: inside the metrics and CORS middleware
    app.add_middleware(RequestMetrics)  # outside BodyGate: refused bodies are counted too
    install_cors(app, settings)
    # Every route's role (services/gateway/auth.py; tests/gateway/test_auth.py checks them
    # all): health/ready/metrics open, registry admin, work presenter, session reads listener.
    presenter = [Depends(require("presenter"))]
    app.include_router(health.router, dependencies=[Depends(require_for_paths(ADMIN_PATHS))])
    app.include_router(openai.router, dependencies=presenter)
    app.include_router(translate.router, dependencies=presenter)
    app.include_router(speech.router, dependencies=presenter)
    app.include_router(text_routes.router, dependencies=presenter)
    app.include_router(pipeline_routes.router, dependencies=presenter)
    app.include_router(
        live_router, dependencies=[Depends(require_by_method("listener", "presenter"))]
    )
    app.include_router(assistant_routes.router, dependencies=presenter)
    app.include_router(speakers.router, dependencies=presenter)
    app.include_router(ltapi_routes.router, dependencies=[Depends(require("admin"))])
    app.include_router(page.router)  # the page is open; its options need a listener key
    return app
