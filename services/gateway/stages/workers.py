"""Choosing a worker: every stage client picks from the live workers through these.

A stage names its workers by model (an STT model, a voice, an LLM, a summarizer model or a
language pair's stream); a request naming one that no live worker serves is the client's
mistake (400), no live worker at all is the server's (503).
"""

from collections.abc import Callable, Iterable
from typing import Any

from services.gateway.core import Core
from services.gateway.errors import GatewayError, bus_guard
from shared.heartbeat import WorkerInfo


async def live_workers(core: Core, component: str, title: str) -> list[WorkerInfo]:
    """Live workers of ``component``; 503 if Redis is down or none runs (``title`` names it)."""
    with bus_guard():
        live = [w for w in await core.registry.workers() if w.component == component]
        if not live:  # the cached view may predate a worker that has just started
            fresh = await core.registry.workers(fresh=True)
            live = [w for w in fresh if w.component == component]
    if not live:
        raise GatewayError(503, f"no {title} worker is running", "no_worker")
    return live


def serving(live: list[WorkerInfo], model: str, noun: str, code: str) -> list[WorkerInfo]:
    """The workers serving ``model``; 400 ``code`` naming the served ones if none does."""
    chosen = [w for w in live if w.model == model]
    if not chosen:
        served = sorted({w.model for w in live})
        raise GatewayError(400, f"{noun} {model!r} is not served; served {noun}s: {served}", code)
    return chosen


def least_busy(
    workers: Iterable[WorkerInfo], tie: Callable[[WorkerInfo], Any] = lambda w: w.model
) -> WorkerInfo:
    """The worker with the fewest jobs in hand; ``tie`` orders equals (stable across calls)."""
    return min(workers, key=lambda w: (w.in_flight, tie(w)))
