"""What every client-facing route shares: the app's state, and the one way a job goes on a
stream and its replies come back (``call``, ``stream_replies``), with bus faults mapped to
``GatewayError``. The stage clients in ``stages/`` are built on these."""

from collections.abc import AsyncIterator
from dataclasses import dataclass

import redis.asyncio as aioredis
from fastapi import Request
from prometheus_client import CollectorRegistry

from services.gateway.bridge import Backlogged, Bridge, JobLost, JobTimeout
from services.gateway.errors import GatewayError, bus_down, worker_error
from services.gateway.metrics import GatewayMetrics
from services.gateway.registry import Registry
from services.gateway.settings import GatewaySettings
from shared import bus, errors
from shared.messages import Envelope, ErrorResult


def check_text(text: str) -> None:
    """400 for text no worker can take (a NUL or other control character), before any job."""
    if problem := errors.text_problem(text):
        raise GatewayError(400, problem, "invalid_text")


@dataclass
class Core:
    settings: GatewaySettings
    redis: aioredis.Redis
    bridge: Bridge
    registry: Registry
    metrics: GatewayMetrics
    prometheus: CollectorRegistry


def get_core(request: Request) -> Core:
    """FastAPI dependency: the app's shared state."""
    return request.app.state.core  # type: ignore[no-any-return]


def backlogged(exc: Backlogged) -> GatewayError:
    """A full stage: 503 with Retry-After (the server is saturated, not this client)."""
    return GatewayError(503, str(exc), "overloaded")


async def stream_replies(
    core: Core, stream: str, job: Envelope, component: str, single: bool = False
) -> AsyncIterator[Envelope]:
    """Submit ``job`` and yield its replies; bus faults become ``GatewayError`` (503/504)."""
    timeout_s = core.settings.request_timeout_s
    replies = core.bridge.stream_results(
        stream, job, component, timeout_s, core.settings.max_backlog, single=single
    )
    try:
        async for reply in replies:
            yield reply
    except Backlogged as exc:
        raise backlogged(exc) from exc
    except JobTimeout as exc:
        raise GatewayError(504, str(exc), "timeout") from exc
    except JobLost as exc:
        raise GatewayError(503, str(exc), "job_lost") from exc
    except bus.TRANSIENT as exc:
        raise bus_down(exc) from exc
    finally:
        await replies.aclose()  # type: ignore[attr-defined]


async def call(
    core: Core, stream: str, payload: object, component: str, start_within_s: float | None = None
) -> object:
    """Send one job to ``stream`` and return its result payload, or raise ``GatewayError``.
    ``start_within_s``: a job no worker has started by then is answered ``expired`` (stale
    work, e.g. a live partial, is dropped rather than queued on)."""
    timeout_s = core.settings.request_timeout_s
    job = core.bridge.job(payload, min(start_within_s or timeout_s, timeout_s))
    async for reply in stream_replies(core, stream, job, component, single=True):
        if isinstance(reply.payload, ErrorResult):
            raise worker_error(component, reply.payload)
        return reply.payload
    raise GatewayError(502, f"{component} sent no result", "bad_reply")
