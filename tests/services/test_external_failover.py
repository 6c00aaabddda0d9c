"""Several external servers for one component, through the real gateway, bus and adapter
process: round robin spreads jobs, a dead or unhealthy server is skipped while the others
keep serving, and the periodic re-check brings it back."""

from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from pyparrot import redis_server
from shared import bus, heartbeat
from tests.audio import DATA
from tests.polling import eventually
from tests.services.external_standin import (
    Standin,
    adapter_process,
    externals,
    gateway_client,
    register,
    standins,
)

pytestmark = [pytest.mark.redis, pytest.mark.timeout(120)]
CLIP = (DATA / "en_short.wav").read_bytes()


@pytest.fixture
async def gateway(clean_redis: str) -> AsyncIterator[httpx.AsyncClient]:
    async with gateway_client(clean_redis) as http:
        yield http


async def transcribe(gateway: httpx.AsyncClient) -> str:
    """One transcription through the gateway; returns the name of the server that heard it."""
    response = await gateway.post(
        "/v1/audio/transcriptions", files={"file": ("a.wav", CLIP)}, data={"model": "whisper-1"}
    )
    assert response.status_code == 200, response.text
    return str(response.json()["text"]).split(" heard ")[0]


async def served_by(gateway: httpx.AsyncClient, jobs: int) -> Counter[str]:
    return Counter([await transcribe(gateway) for _ in range(jobs)])


async def external_stt(gateway: httpx.AsyncClient) -> list[dict[str, object]]:
    return await externals(gateway, "stt")


async def advertised(redis_url: str, server: str) -> bool:
    """The adapter's heartbeat lists ``server`` (with its health) among its servers."""
    redis = bus.client(redis_url)
    try:
        workers = await heartbeat.live_workers(redis)
    finally:
        await redis.aclose()
    return any(server in w.extra.get("servers", "").split(",") for w in workers)


async def no_external_stt(gateway: httpx.AsyncClient) -> bool:
    return not await external_stt(gateway)


async def scrape(port: int) -> dict[str, float]:
    """The adapter's Prometheus samples, by their exposition-format name and labels."""
    async with httpx.AsyncClient() as http:
        text = (await http.get(f"http://127.0.0.1:{port}/metrics")).text
    samples = (line.rsplit(" ", 1) for line in text.splitlines() if not line.startswith("#"))
    return {name: float(value) for name, value in samples}


async def seen_health_checks(server: Standin, more: int) -> None:
    """Wait until the adapter has health-checked ``server`` ``more`` more times."""
    target = server.health_calls + more

    async def checked() -> bool:
        return server.health_calls >= target

    await eventually(checked, 10)


async def test_round_robin_failover_and_recovery(
    gateway: httpx.AsyncClient, clean_redis: str, tmp_path: Path
) -> None:
    metrics_port = redis_server.free_port()
    with (
        standins("alpha", "beta", "gamma") as (alpha, beta, gamma),
        adapter_process(clean_redis, tmp_path / "adapter.log", EXT_METRICS_PORT=str(metrics_port)),
    ):
        for server in (alpha, beta, gamma):
            await register(gateway, "asr", server)
        for server in (alpha, beta, gamma):  # the adapter may pick them up in different turns
            await eventually(lambda s=server: advertised(clean_redis, s.url), 15)
        up = 'pyparrot_external_server_up{component="stt",server="%s"}'
        down = 'pyparrot_external_server_down_total{component="stt",server="%s"}'

        # Round robin: consecutive jobs go to each healthy server in turn.
        assert await served_by(gateway, 6) == {"alpha": 2, "beta": 2, "gamma": 2}
        assert [body["shape"] for _path, body in alpha.calls] == [(16_000, 1, 2)] * 2

        # A server that dies: every job still completes, on the others.
        beta.stop()
        assert set(await served_by(gateway, 6)) == {"alpha", "gamma"}
        assert beta.jobs("/asr") == 2
        await eventually(lambda: advertised(clean_redis, f"{beta.url} (down)"), 10)
        seen = await scrape(metrics_port)
        assert seen[up % "beta"] == 0 and seen[down % "beta"] == 1, seen
        assert seen[up % "alpha"] == 1 and seen.get(down % "alpha", 0) == 0, seen

        # It comes back on the same port: a periodic re-check takes it in again.
        beta.start()
        await seen_health_checks(beta, 2)
        assert await served_by(gateway, 6) == {"alpha": 2, "beta": 2, "gamma": 2}
        seen = await scrape(metrics_port)
        assert seen[up % "beta"] == 1 and seen[down % "beta"] == 1, seen  # back, counted once

        # A server that answers but fails its health check is skipped too, then readmitted.
        gamma.healthy = False
        await seen_health_checks(gamma, 2)  # the first check's verdict is recorded by now
        assert await served_by(gateway, 4) == {"alpha": 2, "beta": 2}
        gamma.healthy = True
        await seen_health_checks(gamma, 2)
        assert await served_by(gateway, 6) == {"alpha": 2, "beta": 2, "gamma": 2}


async def test_no_healthy_server_means_no_worker_until_one_recovers(
    gateway: httpx.AsyncClient, clean_redis: str, tmp_path: Path
) -> None:
    with (
        standins("one", "two") as (one, two),
        adapter_process(clean_redis, tmp_path / "adapter.log"),
    ):
        for server in (one, two):
            await register(gateway, "asr", server)
        await eventually(lambda: external_stt(gateway), 15)
        one.stop()
        two.healthy = False
        # The adapter stops serving the stream: its heartbeat goes, the gateway says so at once.
        await eventually(lambda: no_external_stt(gateway), 15)
        refused = await gateway.post(
            "/v1/audio/transcriptions", files={"file": ("a.wav", CLIP)}, data={"model": "whisper-1"}
        )
        assert refused.status_code == 503, refused.text
        two.healthy = True
        await eventually(lambda: external_stt(gateway), 15)
        assert await served_by(gateway, 3) == {"two": 3}
        assert one.jobs("/asr") == 0
