"""Jobs lost with Redis are submitted again, and answered once a worker serves again; a job
lost again and again fails at once (503), not at the request timeout; jobs Redis kept, or
merely slow, are not taken for lost. The gateway's Bridge against a private redis-server
that the tests kill and restart, and the real worker loop."""

import asyncio
import contextlib
import os
import signal
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest
import redis.asyncio as aioredis
from prometheus_client import CollectorRegistry

from pyparrot import procs, redis_server
from services.gateway.bridge import RESUBMITS, Bridge, JobLost
from services.gateway.metrics import gateway_metrics
from services.gateway.settings import GatewaySettings
from shared import bus, heartbeat, streams
from shared.messages import AudioFormat, Envelope, SpeechChunk, TranslateRequest, Translation
from shared.settings import WorkerSettings
from shared.worker import WorkerSpec
from tests.apps import running_app, running_workers
from tests.polling import eventually

pytestmark = [pytest.mark.redis, pytest.mark.timeout(90)]

STREAM = streams.jobs("mt", "xx-yy")
TIMEOUT_S = 60.0  # the request timeout, which a lost job must not wait out


class Server:
    """A private redis-server that a test may kill and start again on the same port."""

    def __init__(self, tmp: Path, persist: bool) -> None:
        self.url = f"redis://127.0.0.1:{redis_server.free_port()}/0"
        self.tmp, self.persist = tmp, persist
        self.proc = self.start()

    def start(self) -> procs.Proc:
        return redis_server.start(
            self.url, self.tmp / "logs", self.tmp / "data", persist=self.persist
        )

    def restart(self, sig: signal.Signals) -> None:
        os.kill(self.proc.pid, sig)
        procs.stop([self.proc], timeout_s=10)
        self.proc = self.start()


@pytest.fixture
def server(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Server]:
    server = Server(tmp_path, persist=getattr(request, "param", False))
    yield server
    procs.stop([server.proc], timeout_s=10)


@pytest.fixture
async def bridge(server: Server) -> AsyncIterator[Bridge]:
    redis = bus.client(server.url)
    bridge = Bridge(redis, "lost", gateway_metrics(CollectorRegistry()), check_s=0.2)
    await bridge.start()
    yield bridge
    await bridge.stop()
    await redis.aclose()


def job(bridge: Bridge, text: str = "hello") -> Envelope:
    return bridge.job(TranslateRequest(text=text, source="xx", target="yy"), TIMEOUT_S)


async def queued(redis: aioredis.Redis, count: int) -> bool:
    return bool(await redis.xlen(STREAM) == count)


def reverse(envelope: Envelope) -> Iterator[Translation]:
    """Stand-in handler: the text reversed."""
    text = envelope.payload.text  # type: ignore[union-attr]
    yield Translation(text=text[::-1], source="xx", target="yy")


def worker_settings(url: str) -> WorkerSettings:
    return WorkerSettings(redis_url=url, worker_name="w", block_ms=50, heartbeat_interval_s=0.1)


def reversing(url: str) -> contextlib.AbstractAsyncContextManager[None]:
    """A real worker loop serving STREAM with ``reverse``."""
    spec = WorkerSpec(component="mt", stream=STREAM, handle=reverse)
    return running_workers(url, [(spec, worker_settings(url))])


def resubmitted(bridge: Bridge) -> float:
    return bridge.metrics.jobs_resubmitted._value.get()


async def test_jobs_lost_with_a_restarted_redis_are_submitted_again_and_answered(
    server: Server, bridge: Bridge
) -> None:
    jobs = [job(bridge, text) for text in ("abc", "hello", "xyz")]
    requests = [asyncio.create_task(bridge.request(STREAM, j, "mt", TIMEOUT_S)) for j in jobs]
    await eventually(lambda: queued(bridge.redis, 3), timeout_s=10)
    server.restart(signal.SIGKILL)  # an empty Redis comes back: the jobs are gone
    await eventually(lambda: queued(bridge.redis, 3), timeout_s=10)  # ...and submitted again
    assert resubmitted(bridge) == 3
    async with reversing(server.url):
        replies = await asyncio.wait_for(asyncio.gather(*requests), timeout=TIMEOUT_S / 3)
    assert [r.payload.text for r in replies] == ["cba", "olleh", "zyx"]  # type: ignore[union-attr]
    assert not bridge.waiters and not bridge.entries


async def test_a_job_lost_again_and_again_fails_at_once(server: Server, bridge: Bridge) -> None:
    request = asyncio.create_task(bridge.request(STREAM, job(bridge), "mt", TIMEOUT_S))
    for _ in range(RESUBMITS + 1):
        await eventually(lambda: queued(bridge.redis, 1), timeout_s=10)
        server.restart(signal.SIGKILL)
    # Bounded well under the request timeout: JobLost, not JobTimeout after 60 s.
    outcome = await asyncio.wait_for(
        asyncio.gather(request, return_exceptions=True), timeout=TIMEOUT_S / 3
    )
    assert [type(o) for o in outcome] == [JobLost]
    assert resubmitted(bridge) == RESUBMITS
    assert not bridge.waiters and not bridge.entries


@pytest.mark.parametrize("server", [True], indirect=True)
async def test_jobs_a_persistent_redis_kept_are_answered(server: Server, bridge: Bridge) -> None:
    jobs = [job(bridge, text) for text in ("abc", "hello")]
    requests = [asyncio.create_task(bridge.request(STREAM, j, "mt", TIMEOUT_S)) for j in jobs]
    await eventually(lambda: queued(bridge.redis, 2), timeout_s=10)
    server.restart(signal.SIGTERM)  # a clean shutdown writes the append-only file out

    await eventually(lambda: queued(bridge.redis, 2), timeout_s=10)  # kept, and Redis is back
    await asyncio.sleep(5 * bridge.check_s)  # a negative: several checks, and no job failed
    assert not any(r.done() for r in requests)
    assert resubmitted(bridge) == 0
    async with reversing(server.url):
        replies = await asyncio.wait_for(asyncio.gather(*requests), timeout=TIMEOUT_S / 3)
    assert [r.payload.text for r in replies] == ["cba", "olleh"]  # type: ignore[union-attr]


async def test_a_slow_streamed_job_is_not_taken_for_lost(server: Server, bridge: Bridge) -> None:
    def slow_chunks(envelope: Envelope) -> Iterator[SpeechChunk]:
        fmt = AudioFormat()
        for index in range(3):
            time.sleep(5 * bridge.check_s)  # a model call: several checks while the job runs
            yield SpeechChunk(audio=b"\0\0", audio_format=fmt, index=index, last=index == 2)

    spec = WorkerSpec(component="tts", stream=STREAM, handle=slow_chunks)
    async with running_workers(server.url, [(spec, worker_settings(server.url))]):
        results = [r async for r in bridge.stream_results(STREAM, job(bridge), "tts", TIMEOUT_S)]
    assert [(r.kind, r.payload.index) for r in results] == [("tts.audio", i) for i in range(3)]  # type: ignore[union-attr]


async def test_the_gateway_answers_a_lost_translation_503(server: Server) -> None:
    redis = bus.client(server.url)
    # A worker that says it serves the pair but never reads: the job waits on the stream.
    info = heartbeat.WorkerInfo(component="mt", name="idle", stream=STREAM, model="idle")
    await heartbeat.beat(redis, info, ttl_s=TIMEOUT_S)
    settings = GatewaySettings(redis_url=server.url, request_timeout_s=TIMEOUT_S)
    try:
        async with running_app(settings) as app:
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://gw") as http:
                body = {"text": "hello", "source": "xx", "target": "yy"}
                request = asyncio.create_task(http.post("/v1/translate", json=body))
                for _ in range(RESUBMITS + 1):  # lost, submitted again, lost, ...
                    await eventually(lambda: queued(redis, 1), timeout_s=10)
                    server.restart(signal.SIGKILL)
                response = await asyncio.wait_for(request, timeout=TIMEOUT_S / 3)
    finally:
        await redis.aclose()
    assert response.status_code == 503, response.text
    assert response.json()["error"]["code"] == "job_lost"
