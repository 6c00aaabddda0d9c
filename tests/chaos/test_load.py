"""Load through the real gateway (in-process ASGI) and a real worker loop on a real Redis:
200 requests from 20 concurrent clients, one of them a poison job and one a slow uploader.

Every request gets exactly one answer, and its own (each clip has a distinct length the
stand-in reports back); the poison job gets a clean error after its deliveries run out
and is dead-lettered; the slow client holds up nobody; nothing is left pending.
"""

import asyncio
import io
import wave
from collections import Counter
from collections.abc import AsyncIterator

import httpx
import pytest
import redis.asyncio as aioredis
from fastapi import FastAPI

from services.gateway.settings import GatewaySettings
from shared import streams
from shared.settings import WorkerSettings
from shared.worker import WorkerSpec
from tests.apps import running_app, running_workers
from tests.chaos.standin_worker import STREAM, transcribe

pytestmark = [pytest.mark.redis, pytest.mark.timeout(120)]
CLIENTS = 20
PER_CLIENT = 10
POISON = (7, 3)  # (client, request) that sends the poison job
URL = "/v1/audio/transcriptions"


def clip(index: int) -> tuple[bytes, str]:
    """A 16 kHz mono WAV whose length (0.50 s + index * 10 ms) names the request."""
    duration_s = 0.5 + index * 0.01
    frames = round(duration_s * 16_000)
    out = io.BytesIO()
    with wave.open(out, "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(16_000)
        wav.writeframes(b"\x00\x01" * frames)
    return out.getvalue(), f"{frames / 16_000:.2f} seconds"


@pytest.fixture
async def gateway(clean_redis: str) -> AsyncIterator[FastAPI]:
    settings = GatewaySettings(redis_url=clean_redis, request_timeout_s=30, registry_cache_s=0.5)
    async with running_app(settings) as app:
        yield app


@pytest.fixture
async def worker(clean_redis: str) -> AsyncIterator[None]:
    """Two replicas of the real loop; a failed delivery is reclaimed after 200 ms."""
    spec = WorkerSpec(
        component="stt", stream=STREAM, handle=lambda j: transcribe(j, 5), model="tiny.en"
    )
    loops = [
        (
            spec,
            WorkerSettings(
                redis_url=clean_redis,
                worker_name=name,
                block_ms=50,
                concurrency=8,
                claim_idle_ms=200,
                max_deliveries=2,
            ),
        )
        for name in ("a", "b")
    ]
    async with running_workers(clean_redis, loops):
        yield


async def slow_body(data: bytes) -> AsyncIterator[bytes]:
    """An upload trickling in: 20 pieces, 20 ms apart."""
    step = len(data) // 20 + 1
    for start in range(0, len(data), step):
        await asyncio.sleep(0.02)
        yield data[start : start + step]


async def one_client(http: httpx.AsyncClient, client: int) -> list[tuple[str, int, str]]:
    """Send this client's requests one after another; return (expected, status, text)."""
    answers = []
    for request in range(PER_CLIENT):
        audio, expected = clip(client * PER_CLIENT + request)
        prompt = "poison" if (client, request) == POISON else ""
        response = await http.post(URL, files={"file": ("a.wav", audio)}, data={"prompt": prompt})
        answers.append((expected, response.status_code, response.text))
    return answers


@pytest.mark.usefixtures("worker")
async def test_every_request_gets_exactly_its_own_answer(
    gateway: FastAPI, aredis: aioredis.Redis
) -> None:
    transport = httpx.ASGITransport(app=gateway)
    async with httpx.AsyncClient(transport=transport, base_url="http://gw", timeout=60) as http:
        slow_audio, slow_expected = clip(999)
        slow = http.post(
            URL,
            content=slow_body(multipart(slow_audio)),
            headers={"Content-Type": f"multipart/form-data; boundary={BOUNDARY}"},
        )
        results = await asyncio.gather(slow, *(one_client(http, c) for c in range(CLIENTS)))
    slow_response, per_client = results[0], results[1:]
    assert slow_response.status_code == 200, slow_response.text
    assert slow_response.json()["text"] == slow_expected
    answers = [a for client in per_client for a in client]
    assert len(answers) == CLIENTS * PER_CLIENT  # one answer per request
    statuses = Counter(status for _e, status, _t in answers)
    assert statuses == Counter({200: CLIENTS * PER_CLIENT - 1, 502: 1}), statuses
    poison = answers[POISON[0] * PER_CLIENT + POISON[1]]
    assert poison[1] == 502 and "poison job" in poison[2]
    ok = [(expected, text) for expected, status, text in answers if status == 200]
    assert all(f'"text":"{expected}"' in text for expected, text in ok)  # its own answer
    assert await aredis.xlen(STREAM) == 0  # nothing left unprocessed
    assert (await aredis.xpending(STREAM, streams.group("stt")))["pending"] == 0
    assert await aredis.xlen(streams.dead(STREAM)) == 1  # only the poison job


BOUNDARY = "loadtestboundary"


def multipart(audio: bytes) -> bytes:
    """A multipart/form-data body with one ``file`` field."""
    head = (
        f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="file"; filename="s.wav"\r\n'
        "Content-Type: audio/wav\r\n\r\n"
    ).encode()
    return head + audio + f"\r\n--{BOUNDARY}--\r\n".encode()
