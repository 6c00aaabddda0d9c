"""The outer edge for adapter tests: a third-party model server speaking the HTTP contract of
docs/EXTERNAL_BACKENDS.md, on a real loopback port (uvicorn in a thread), that can be
stopped, restarted on the same port, or told to fail its health check.

Its answers are derived from its input and its name, so a test can see which server served
a job and that the request reached it intact.
"""

import contextlib
import io
import os
import subprocess
import sys
import threading
import time
import wave
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import uvicorn
from fastapi import FastAPI, Form, Request, Response, UploadFile
from fastapi.responses import JSONResponse

from pyparrot import redis_server
from services.gateway.settings import GatewaySettings
from tests.apps import running_app

ROOT = Path(__file__).resolve().parents[2]
TTS_RATE_HZ = 22_050


def tone_wav(text: str, channels: int = 1) -> bytes:
    """The stand-in's speech: 10 ms of a tone per character of ``text`` (s16 WAV)."""
    t = np.arange(len(text) * TTS_RATE_HZ // 100) / TTS_RATE_HZ
    mono = (np.sin(2 * np.pi * 440 * t) * 8_000).astype("<i2")
    frames = np.repeat(mono[:, None], channels, axis=1) if channels > 1 else mono
    out = io.BytesIO()
    with wave.open(out, "wb") as wav:
        wav.setnchannels(channels)
        wav.setsampwidth(2)
        wav.setframerate(TTS_RATE_HZ)
        wav.writeframes(frames.tobytes())
    return out.getvalue()


@dataclass
class Standin:
    name: str
    port: int = field(default_factory=redis_server.free_port)
    healthy: bool = True
    tts_channels: int = 1
    calls: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    health_calls: int = 0
    _server: uvicorn.Server | None = None
    _thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def jobs(self, path: str) -> int:
        return sum(1 for p, _body in self.calls if p == path)

    def start(self) -> None:
        config = uvicorn.Config(_app(self), port=self.port, log_level="error", lifespan="off")
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, daemon=True)
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self._server.started:  # bounded wait for the socket, not a blind sleep
            assert time.monotonic() < deadline and self._thread.is_alive(), "no start"
            time.sleep(0.01)

    def stop(self) -> None:
        """Close the socket: calls to this server now fail with "connection refused"."""
        if self._server is not None and self._thread is not None:
            self._server.should_exit = True
            self._thread.join(10)
            self._server = self._thread = None


def _app(state: Standin) -> FastAPI:
    app = FastAPI()

    @app.get("/health")
    def health() -> Response:
        state.health_calls += 1
        return JSONResponse({"ok": state.healthy}, 200 if state.healthy else 503)

    @app.post("/asr")
    async def asr(
        file: UploadFile, language: str = Form(""), task: str = Form(""), prompt: str = Form("")
    ) -> dict[str, str]:
        audio = await file.read()
        with wave.open(io.BytesIO(audio), "rb") as wav:
            seconds = wav.getnframes() / wav.getframerate()
            shape = (wav.getframerate(), wav.getnchannels(), wav.getsampwidth())
        state.calls.append(("/asr", {"language": language, "task": task, "shape": shape}))
        return {"text": f"{state.name} heard {seconds:.2f} s", "language": language or "en"}

    @app.post("/translate")
    async def translate(request: Request) -> Response:
        body = await request.json()
        state.calls.append(("/translate", body))
        if body["text"] == "reject me":
            return JSONResponse({"detail": "this server refuses that text"}, 400)
        if body["text"] == "garble":
            return JSONResponse({"wrong": "field"})
        return JSONResponse({"translation": f"<{body['target']}>{body['text'][::-1]}"})

    @app.post("/tts")
    async def tts(request: Request) -> Response:
        body = await request.json()
        state.calls.append(("/tts", body))
        return Response(tone_wav(body["text"], state.tts_channels), media_type="audio/wav")

    @app.post("/summarize")
    async def summarize(request: Request) -> dict[str, str]:
        body = await request.json()
        state.calls.append(("/summarize", body))
        first = body["text"].split(". ")[0]
        return {"summary": f"{state.name}: {first}."}

    return app


@contextlib.asynccontextmanager
async def gateway_client(redis_url: str) -> AsyncIterator[httpx.AsyncClient]:
    """The real gateway app (lifespan included) on ``redis_url``, in this process."""
    settings = GatewaySettings(redis_url=redis_url, request_timeout_s=15, registry_cache_s=0)
    async with running_app(settings) as app:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://gw") as http:
            yield http


async def register(
    gateway: httpx.AsyncClient, component: str, server: Standin, **extra: Any
) -> None:
    body = {"component": component, "name": server.name, "server": server.url, **extra}
    response = await gateway.post("/ltapi/register_worker", json=body)
    assert response.status_code == 200, response.text


async def externals(gateway: httpx.AsyncClient, component: str) -> list[dict[str, Any]]:
    """External workers of ``component`` that ``GET /v1/workers`` lists."""
    workers = (await gateway.get("/v1/workers")).json()
    return [w for w in workers if w["kind"] == "external" and w["component"] == component]


@contextlib.contextmanager
def standins(*names: str) -> Iterator[list[Standin]]:
    servers = [Standin(name) for name in names]
    for server in servers:
        server.start()
    try:
        yield servers
    finally:
        for server in servers:
            server.stop()


@contextlib.contextmanager
def adapter_process(redis_url: str, log: Path, **env: str) -> Iterator[subprocess.Popen[bytes]]:
    """The real adapter (``python -m services.external``) with fast discovery and re-checks."""
    settings = {
        "REDIS_URL": redis_url,
        "EXT_DISCOVERY_INTERVAL_S": "0.1",
        "EXT_RECHECK_INTERVAL_S": "0.3",
        "EXT_HEALTH_TIMEOUT_S": "1",
        "EXT_BLOCK_MS": "50",
        "EXT_HEARTBEAT_INTERVAL_S": "0.2",
        "EXT_REQUEST_TIMEOUT_S": "10",
        "EXT_SHUTDOWN_GRACE_S": "5",
        **env,
    }
    with log.open("wb") as out:
        child = subprocess.Popen(
            [sys.executable, "-m", "services.external"],
            cwd=ROOT,
            env={**os.environ, **settings},
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        yield child
    finally:
        child.terminate()
        try:
            child.wait(15)
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait(5)
