"""Health, readiness, the worker listing and metrics."""

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
import redis.asyncio as aioredis
from fastapi import FastAPI
from fastapi.responses import StreamingResponse

from pyparrot import procs, redis_server
from services.gateway import monitor
from services.gateway.errors import GatewayError
from services.gateway.settings import GatewaySettings
from services.gateway.stages.workers import live_workers
from shared import heartbeat, streams
from shared.heartbeat import WorkerInfo
from tests.apps import running_app
from tests.audio import DATA
from tests.polling import eventually

pytestmark = pytest.mark.redis


async def test_health_reports_redis(client: httpx.AsyncClient) -> None:
    response = await client.get("/health")
    assert response.status_code == 200 and response.json()["redis"] == "ok"


async def test_not_ready_without_a_worker(client: httpx.AsyncClient) -> None:
    response = await client.get("/ready")
    assert response.status_code == 503 and response.json()["missing"] == ["stt"]


@pytest.mark.usefixtures("stt_worker")
async def test_ready_with_a_live_worker(client: httpx.AsyncClient) -> None:
    response = await client.get("/ready")
    assert response.status_code == 200 and response.json()["ready"] is True


@pytest.mark.usefixtures("stt_worker")
async def test_workers_lists_heartbeats(client: httpx.AsyncClient) -> None:
    [worker] = (await client.get("/v1/workers")).json()
    assert worker["component"] == "stt" and worker["name"] == "standin"
    assert worker["model"] == "tiny.en" and worker["languages"] == ["en", "de"]
    assert worker["pid"] > 0 and worker["host"] and worker["last_seen"] > 0


@pytest.mark.usefixtures("stt_worker")
async def test_metrics_count_requests_and_round_trips(client: httpx.AsyncClient) -> None:
    audio = (DATA / "en_short.wav").read_bytes()
    response = await client.post("/v1/audio/transcriptions", files={"file": ("a.wav", audio)})
    assert response.status_code == 200
    text = (await client.get("/metrics")).text
    assert 'pyparrot_http_requests_total{route="/v1/audio/transcriptions",status="200"} 1.0' in text
    assert 'pyparrot_bus_roundtrip_seconds_count{component="stt"} 1.0' in text


@pytest.mark.usefixtures("stt_worker")
async def test_gauges_follow_heartbeats_and_streams(
    app: FastAPI, client: httpx.AsyncClient, aredis: aioredis.Redis
) -> None:
    await eventually(lambda: aredis.exists(streams.jobs("stt", "tiny.en")))
    await monitor.refresh(app.state.core)
    text = (await client.get("/metrics")).text
    assert 'pyparrot_workers{component="stt"} 1.0' in text
    assert 'pyparrot_stream_backlog{stream="pp:jobs:{stt:tiny.en}"} 0.0' in text


async def test_every_stage_reads_zero_once_its_last_worker_is_gone(
    app: FastAPI, client: httpx.AsyncClient, aredis: aioredis.Redis
) -> None:
    components = [*sorted(monitor.STAGES), "lipsync"]  # "lipsync": a stage added later
    workers = [WorkerInfo(component=c, name=f"{c}-1", stream=f"pp:jobs:{c}:m") for c in components]
    for info in workers:
        await heartbeat.beat(aredis, info, ttl_s=30)
    seen: set[str] = set()
    await monitor.refresh(app.state.core, seen)
    text = (await client.get("/metrics")).text
    for component in components:
        assert f'pyparrot_workers{{component="{component}"}} 1.0' in text
    for info in workers:  # every worker killed: its heartbeat expires
        await heartbeat.remove(aredis, info)
    await monitor.refresh(app.state.core, seen)
    text = (await client.get("/metrics")).text
    for component in components:
        assert f'pyparrot_workers{{component="{component}"}} 0.0' in text


async def test_an_unhandled_error_is_a_counted_500(app: FastAPI) -> None:
    async def boom() -> None:
        raise RuntimeError("a bug in a route")

    app.add_api_route("/v1/boom", boom)
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://gateway") as client:
        crashed = await client.get("/v1/boom")
        assert crashed.status_code == 500
        assert crashed.json()["error"]["code"] == "internal_error"
        assert "a bug in a route" not in crashed.text  # no internals to the client
        text = (await client.get("/metrics")).text
    assert 'pyparrot_http_requests_total{route="/v1/boom",status="500"} 1.0' in text


async def test_live_answers_while_redis_is_down(tmp_path: Path) -> None:
    """The liveness probe must not restart a gateway for a Redis blip; /health reports it."""
    url = f"redis://127.0.0.1:{redis_server.free_port()}/0"
    server = redis_server.start(url, tmp_path, tmp_path)
    try:
        settings = GatewaySettings(redis_url=url, request_timeout_s=5, registry_cache_s=0)
        async with running_app(settings) as application:
            transport = httpx.ASGITransport(app=application)
            async with httpx.AsyncClient(transport=transport, base_url="http://gw") as client:
                assert (await client.get("/health")).status_code == 200
                procs.stop([server], timeout_s=10)
                assert (await client.get("/live")).json() == {"status": "ok"}
                assert (await client.get("/health")).status_code == 503
    finally:
        procs.stop([server], timeout_s=10)


async def test_a_streamed_response_is_timed_to_its_last_byte(app: FastAPI) -> None:
    async def slow_body() -> AsyncIterator[bytes]:
        for _ in range(3):
            await asyncio.sleep(0.1)
            yield b"chunk "

    app.add_api_route("/v1/slow", lambda: StreamingResponse(slow_body()))
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://gateway") as client:
        assert (await client.get("/v1/slow")).text == "chunk " * 3
        text = (await client.get("/metrics")).text
    [line] = [
        line
        for line in text.splitlines()
        if line.startswith('pyparrot_http_request_duration_seconds_sum{route="/v1/slow"}')
    ]
    assert float(line.split()[-1]) >= 0.3  # the headers left at once; the body took 0.3 s


async def test_a_worker_that_just_started_is_found_past_the_cached_listing(
    clean_redis: str, aredis: aioredis.Redis
) -> None:
    settings = GatewaySettings(redis_url=clean_redis, registry_cache_s=600)
    async with running_app(settings) as application:
        core = application.state.core
        with pytest.raises(GatewayError) as refused:
            await live_workers(core, "mt", "MT")
        assert refused.value.status == 503 and refused.value.code == "no_worker"
        info = WorkerInfo(component="mt", name="mt-1", stream=streams.jobs("mt", "en-pt"))
        await heartbeat.beat(aredis, info, ttl_s=30)
        # The empty listing is cached for 600 s; a stage with no worker in it is asked again.
        assert [w.name for w in await live_workers(core, "mt", "MT")] == ["mt-1"]
