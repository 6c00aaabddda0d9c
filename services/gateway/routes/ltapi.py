"""The worker registry for external HTTP backends (compatible with KIT's ``ltapi``).

``POST /ltapi/register_worker`` checks ``GET {server}/health`` (2xx within a few seconds),
then stores the server in ``streams.external_backends(component)``; the external adapter
(``python -m services.external``) discovers it there and serves the component's job stream
by calling the server (contract: docs/EXTERNAL_BACKENDS.md):

- asr / slt: ``POST {server}/asr`` multipart ``file`` (16 kHz mono WAV), form fields
  ``language``, ``task``, ``prompt`` -> ``{"text", "language"}``
- mt: ``POST {server}/translate`` ``{"text", "source", "target"}`` -> ``{"translation"}``
- tts: ``POST {server}/tts`` ``{"text", "voice", "language", "speed"}`` -> ``audio/wav``
- summarizer: ``POST {server}/summarize`` ``{"text", "max_sentences", "ratio"}`` ->
  ``{"summary"}``
"""

import json
import time
from typing import Annotated, Literal
from urllib.parse import urlparse

import httpx
from fastapi import APIRouter, Depends
from pydantic import BaseModel, Field, field_validator

from services.gateway.core import Core, get_core
from services.gateway.errors import GatewayError, bus_guard
from shared import streams

router = APIRouter(prefix="/ltapi", tags=["registry"])

HEALTH_TIMEOUT_S = 3.0
STAGES = {"asr": "stt", "slt": "stt", "mt": "mt", "tts": "tts", "summarizer": "summarizer"}
Component = Literal["asr", "mt", "tts", "slt", "summarizer"]
NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$"
PAIR_PATTERN = r"^[a-z]{2,8}-[a-z]{2,8}$"


class RegisterWorker(BaseModel):
    component: Component
    name: str = Field(pattern=NAME_PATTERN, description="unique per component")
    server: str = Field(max_length=2_000, description="base URL, e.g. http://host:5000")
    model: str | None = Field(
        None, pattern=NAME_PATTERN, description="stream variant / model name; default 'external'"
    )
    languages: list[Annotated[str, Field(pattern=r"^[a-z]{2,8}$")]] = Field(
        default_factory=lambda: ["en"], min_length=1, max_length=200
    )
    pairs: list[Annotated[str, Field(pattern=PAIR_PATTERN)]] = Field(
        default_factory=lambda: ["en-de"], min_length=1, max_length=200, description="mt only"
    )

    @field_validator("server")
    @classmethod
    def _url(cls, value: str) -> str:
        parsed = urlparse(value)
        if parsed.scheme not in ("http", "https") or not parsed.hostname:
            raise ValueError(f"{value!r} is not an http(s) URL with a host")
        return value.rstrip("/")


class UnregisterWorker(BaseModel):
    component: Component
    name: str = Field(pattern=NAME_PATTERN)


def _streams(request: RegisterWorker) -> list[str]:
    stage = STAGES[request.component]
    if stage == "mt":
        return [streams.jobs("mt", pair) for pair in request.pairs]
    return [streams.jobs(stage, request.model or "external")]


async def _check_health(server: str) -> None:
    try:
        async with httpx.AsyncClient(timeout=HEALTH_TIMEOUT_S) as http:
            response = await http.get(f"{server}/health")
    except httpx.HTTPError as exc:
        reason = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
        raise GatewayError(422, f"{server}/health unreachable: {reason}", "unhealthy") from exc
    if not response.is_success:
        message = f"{server}/health answered HTTP {response.status_code}"
        raise GatewayError(422, message, "unhealthy")


@router.post("/register_worker", summary="Register an external HTTP backend after a health check")
async def register_worker(
    body: RegisterWorker, core: Annotated[Core, Depends(get_core)]
) -> dict[str, object]:
    await _check_health(body.server)
    record = {
        **body.model_dump(),
        "stage": STAGES[body.component],
        "model": body.model or "external",
        "streams": _streams(body),
        "registered_s": time.time(),
    }
    with bus_guard():
        await core.redis.hset(
            streams.external_backends(body.component), body.name, json.dumps(record)
        )
    return {"registered": True, **record}


@router.post("/unregister_worker", summary="Remove a registered external backend")
async def unregister_worker(
    body: UnregisterWorker, core: Annotated[Core, Depends(get_core)]
) -> dict[str, object]:
    with bus_guard():
        removed = await core.redis.hdel(streams.external_backends(body.component), body.name)
    if not removed:
        message = f"no {body.component} backend named {body.name!r} is registered"
        raise GatewayError(404, message, "not_registered")
    return {"unregistered": True, "component": body.component, "name": body.name}


@router.get("/workers", summary="Registered external backends")
async def registered(core: Annotated[Core, Depends(get_core)]) -> list[dict[str, object]]:
    with bus_guard():
        rows = []
        for component in sorted(set(STAGES)):
            for raw in (await core.redis.hgetall(streams.external_backends(component))).values():
                rows.append(json.loads(raw))
    return rows
