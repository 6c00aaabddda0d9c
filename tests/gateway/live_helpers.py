"""Helpers for the live-session tests: real workers in-process, a real uvicorn socket, and a
client that streams a clip at a chosen pace."""

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from functools import partial
from typing import Any

import numpy as np
import uvicorn
from fastapi import FastAPI
from websockets.asyncio.client import ClientConnection

from pyparrot import redis_server
from services.gateway.settings import GatewaySettings
from services.mt.__main__ import loops as mt_loops
from services.mt.model import load_model as load_mt
from services.mt.settings import MtSettings
from services.stt.__main__ import worker_spec as stt_spec
from services.stt.model import SttModel
from services.stt.settings import SttSettings
from shared.settings import WorkerSettings
from shared.worker import WorkerSpec
from tests.polling import eventually

CHUNK_S = 0.1


@contextlib.asynccontextmanager
async def listening(app: FastAPI) -> AsyncIterator[str]:
    """The app (lifespan running) behind a real uvicorn socket; yields host:port."""
    config = uvicorn.Config(app, port=redis_server.free_port(), lifespan="off", log_level="error")
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    try:
        await eventually(partial(asyncio.to_thread, lambda: server.started), 10.0)
        yield f"127.0.0.1:{config.port}"
    finally:
        server.should_exit = True
        await task


async def next_event(ws: ClientConnection, timeout_s: float = 10.0) -> dict[str, Any]:
    """The next JSON event (binary audio frames are skipped)."""
    async with asyncio.timeout(timeout_s):
        while True:
            message = await ws.recv()
            if isinstance(message, str):
                return json.loads(message)  # type: ignore[no-any-return]


async def auth(ws: ClientConnection, **fields: Any) -> dict[str, Any]:
    """Authenticate and return the ``session_started`` event."""
    await ws.send(json.dumps({"type": "auth", "api_key": "k", **fields}))
    event = await next_event(ws)
    assert event["type"] == "session_started", event
    return event


async def stream(ws: ClientConnection, pcm16: bytes, speed: float, complete: bool = True) -> None:
    """Send 16 kHz s16 audio as float32 chunks at ``speed`` times real time, then say so."""
    samples = np.frombuffer(pcm16, dtype="<i2").astype(np.float32) / 32768
    step = int(16_000 * CHUNK_S)
    loop = asyncio.get_running_loop()
    started = loop.time()
    for i, offset in enumerate(range(0, len(samples), step)):
        await ws.send(samples[offset : offset + step].astype("<f4").tobytes())
        # Pace against the clock (not a sleep per chunk), as a microphone would.
        await asyncio.sleep(max(0.0, started + (i + 1) * CHUNK_S / speed - loop.time()))
    if complete:
        await ws.send(json.dumps({"type": "audio_complete"}))


async def collect(
    ws: ClientConnection, until: str, timeout_s: float = 30.0, events: list[Any] | None = None
) -> list[dict[str, Any]]:
    """Every JSON event up to and including the first of type ``until`` (into ``events``)."""
    events = [] if events is None else events
    async with asyncio.timeout(timeout_s):
        while not events or events[-1]["type"] != until:
            events.append(await next_event(ws, timeout_s))
    return events


def live_gateway_settings(redis_url: str, **overrides: object) -> GatewaySettings:
    """The gateway settings of the live-session tests: small socket queues, no caching."""
    base: dict[str, object] = dict(
        redis_url=redis_url,
        request_timeout_s=30,
        registry_cache_s=0,
        live_send_queue=16,
        live_send_timeout_s=1.0,
    )
    return GatewaySettings(**(base | overrides))  # type: ignore[arg-type]


def live_loops(
    redis_url: str, live_whisper: tuple[SttModel, SttSettings]
) -> list[tuple[WorkerSpec, WorkerSettings]]:
    """The worker loops of ``live_workers``: real STT (tiny.en) and MT (Bergamot en-pt)."""
    model, stt_settings = live_whisper
    stt = stt_spec(model, stt_settings)
    mt_settings = MtSettings(redis_url=redis_url, pairs=["en-pt"], block_ms=50)
    return [
        (stt, SttSettings(redis_url=redis_url, worker_name="stt-a", block_ms=50)),
        *mt_loops(load_mt(mt_settings), mt_settings),
    ]
