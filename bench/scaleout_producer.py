"""Producer processes for the scale-out benchmark: the gateway's real submission path.

Each producer is one gateway's worth of bus code: a ``Bridge`` (its own reply stream and
reader task) and ``requesters`` tasks, each keeping one ``Bridge.request`` in flight with
the gateway's backlog bound (the Lua-checked XADD the gateway uses). It counts every reply
entry its reader routes, by job id, so the benchmark can check that every job got exactly
one reply. Children are forked from the benchmark and report through a pipe.
"""

import asyncio
import contextlib
import time
from collections import Counter
from dataclasses import dataclass, field
from multiprocessing.connection import Connection

import msgpack
import uvloop
from prometheus_client import CollectorRegistry

from bench import standin
from bench.scaleout_worker import warm_pool
from services.gateway.bridge import Bridge
from services.gateway.metrics import gateway_metrics
from services.gateway.settings import GatewaySettings
from shared import bus
from shared.messages import TranscribeRequest, Transcript

MAX_BACKLOG = int(GatewaySettings.model_fields["max_backlog"].default)
SETTLE_S = 0.5  # after the last request: time for a late duplicate reply to show up
PAYLOAD_BYTES = 1_024


@dataclass(frozen=True)
class ProducerPlan:
    url: str
    stream: str
    name: str  # gateway id: names this producer's reply stream
    requesters: int  # requests kept in flight
    timeout_s: float


@dataclass(frozen=True)
class Schedule:
    """Wall-clock times shared by every producer: start, measured window, stop."""

    start_s: float
    window_from_s: float
    window_to_s: float  # no new request after this


@dataclass
class ProducerResult:
    submitted: int = 0
    answered: int = 0  # requests that returned a Transcript
    window_done_s: list[float] = field(default_factory=list)  # completion times in the window
    window_latency_s: list[float] = field(default_factory=list)
    replies: int = 0  # reply entries the reader routed
    once: int = 0  # jobs with exactly one reply
    missing: int = 0  # jobs with no reply
    duplicated: int = 0  # jobs with more than one
    stray: int = 0  # replies to jobs this producer never sent
    errors: list[str] = field(default_factory=list)  # first few failures, for the report


class CountingBridge(Bridge):
    """The gateway's Bridge, also counting every reply entry by the job it answers."""

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.replies: Counter[str] = Counter()

    def _route(self, raw: bytes | None) -> None:
        # A msgpack peek (a few µs), not a second validated decode: the Bridge's own work
        # stays what the gateway does.
        with contextlib.suppress(Exception):
            self.replies[msgpack.unpackb(raw or b"", raw=False).get("parent") or ""] += 1
        super()._route(raw)


async def _requester(
    bridge: Bridge, plan: ProducerPlan, when: Schedule, sent: list[str], out: ProducerResult
) -> None:
    payload = TranscribeRequest(audio=bytes(PAYLOAD_BYTES))
    while time.time() < when.window_to_s:
        job = bridge.job(payload, plan.timeout_s)
        sent.append(job.id)
        started = time.perf_counter()
        try:
            reply = await bridge.request(
                plan.stream, job, standin.COMPONENT, plan.timeout_s, MAX_BACKLOG
            )
        except Exception as exc:  # JobTimeout, Backlogged, a bus error: the check fails on it
            if len(out.errors) < 5:
                out.errors.append(f"{type(exc).__name__}: {exc}")
            continue
        latency_s, done_s = time.perf_counter() - started, time.time()
        if not isinstance(reply.payload, Transcript):
            if len(out.errors) < 5:
                out.errors.append(f"answered {reply.payload!r}")
            continue
        out.answered += 1
        if when.window_from_s <= done_s < when.window_to_s:
            out.window_done_s.append(done_s)
            out.window_latency_s.append(latency_s)


def _tally(sent: list[str], replies: Counter[str], out: ProducerResult) -> None:
    out.submitted = len(sent)
    out.replies = sum(replies.values())
    counts = [replies.get(job_id, 0) for job_id in sent]
    out.once = counts.count(1)
    out.missing = counts.count(0)
    out.duplicated = sum(1 for c in counts if c > 1)
    known = set(sent)
    out.stray = sum(n for job_id, n in replies.items() if job_id not in known)


async def _produce(plan: ProducerPlan, control: Connection) -> ProducerResult:
    redis = bus.client(plan.url)
    bridge = CountingBridge(redis, plan.name, gateway_metrics(CollectorRegistry()))
    await bridge.start()
    out, sent = ProducerResult(), []
    try:
        await warm_pool(redis, plan.requesters + 2)  # a submit per requester, the reader
        control.send("ready")
        when: Schedule = await asyncio.to_thread(control.recv)
        await asyncio.sleep(max(0.0, when.start_s - time.time()))
        async with asyncio.TaskGroup() as group:
            for _ in range(plan.requesters):
                group.create_task(_requester(bridge, plan, when, sent, out))
        await asyncio.sleep(SETTLE_S)
        _tally(sent, bridge.replies, out)
        return out
    finally:
        await bridge.stop()
        await redis.aclose()


def produce(plan: ProducerPlan, control: Connection) -> None:
    """Forked-child body: say ready, wait for the schedule, run it, send the result."""
    try:
        # uvloop, as the gateway has under uvicorn (whose default loop it is when installed)
        control.send(uvloop.run(_produce(plan, control)))
    except Exception as exc:  # the parent reports it; a silent child would look like a hang
        first = exc.exceptions[0] if isinstance(exc, ExceptionGroup) else exc
        control.send(RuntimeError(f"producer {plan.name}: {type(first).__name__}: {first}"))
    finally:
        control.close()
