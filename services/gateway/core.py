"""What every client-facing route shares: state, and the calls that become stream jobs.

Routes (OpenAI-style, our own, WebSocket, ...) are thin adapters over these functions,
so each capability is implemented once.
"""

from collections.abc import AsyncIterator
from dataclasses import dataclass

import redis.asyncio as aioredis
from fastapi import Request
from prometheus_client import CollectorRegistry

from services.gateway.bridge import Backlogged, Bridge, JobLost, JobTimeout
from services.gateway.errors import GatewayError, bus_down, bus_guard, worker_error
from services.gateway.metrics import GatewayMetrics
from services.gateway.registry import NoWorker, Registry
from services.gateway.settings import GatewaySettings
from shared import bus, errors, streams
from shared.heartbeat import WorkerInfo
from shared.messages import Envelope, ErrorResult, TranscribeRequest, Transcript


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


async def live_workers(core: Core, component: str, title: str) -> list[WorkerInfo]:
    """Live workers of ``component``; 503 if Redis is down or none runs (``title`` names it)."""
    with bus_guard():
        live = [w for w in await core.registry.workers() if w.component == component]
    if not live:
        raise GatewayError(503, f"no {title} worker is running", "no_worker")
    return live


@dataclass(frozen=True)
class SttOptions:
    model: str = "whisper-1"
    language: str | None = None
    prompt: str | None = None
    task: str = "transcribe"
    word_timestamps: bool = False
    final: bool = True  # False: a live partial, sent to the background lane
    start_within_s: float | None = None  # not started by then: answered expired
    fallback: bool = True  # Whisper's temperature-fallback re-decodes (file jobs)
    live: bool = False  # a live session's job: the worker may trade a little accuracy for time


async def transcribe(core: Core, pcm16: bytes, options: SttOptions) -> Transcript:
    """Send 16 kHz mono PCM through an STT worker and return its transcript."""
    try:
        live = options.live or not options.final
        worker = await core.registry.stt_worker(
            options.model, options.language, core.settings.default_stt_model, live
        )
    except NoWorker as exc:
        raise GatewayError(exc.status, exc.message, "no_worker") from exc
    except bus.TRANSIENT as exc:
        raise bus_down(exc) from exc
    payload = TranscribeRequest(
        audio=pcm16,
        language=options.language,
        prompt=options.prompt,
        task=options.task,  # type: ignore[arg-type]
        word_timestamps=options.word_timestamps,
        final=options.final,
        fallback=options.fallback,
        live=options.live,
    )
    stream = streams.jobs("stt", worker.model)
    if not options.final:
        stream = streams.background(stream)  # finals and file jobs go first
    result = await call(core, stream, payload, "stt", options.start_within_s)
    if not isinstance(result, Transcript):
        raise GatewayError(502, f"stt answered with {result.kind!r}", "bad_reply")
    return result


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
