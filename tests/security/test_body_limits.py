"""Body limits hold for every content type, and no body is read for a key that may not send
one, over real HTTP (``services/gateway/gate.py``).

A body announced but never sent can only be answered in time by a gateway that does not
read it: each refusal here must come within ``ANSWER_S``.
"""

import asyncio
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass

import pytest
import redis.asyncio as aioredis
from fastapi.routing import APIRoute, iter_route_contexts
from prometheus_client import CollectorRegistry

from services.gateway import auth
from services.gateway.app import create_app
from services.gateway.settings import GatewaySettings
from shared.admin import keystore
from tests.apps import running_app
from tests.gateway.live_helpers import listening
from tests.gateway.test_body_limit import Reply, read_reply

pytestmark = pytest.mark.redis
ANSWER_S = 5.0
HUGE = 60 * 1024 * 1024  # under the upload limit, far over the in-memory one
IN_MEMORY_TYPES = (
    "application/json",
    "application/vnd.x+json",
    "application/json-patch+json",
    "text/plain",
    "application/x-www-form-urlencoded",
    "application/octet-stream",
    None,
)


@dataclass
class Gateway:
    host: str
    port: int
    presenter: str
    listener: str
    settings: GatewaySettings


@pytest.fixture
async def gateway(clean_redis: str, aredis: aioredis.Redis) -> AsyncIterator[Gateway]:
    presenter, _ = await keystore.create(aredis, "presenter", "pat@example.com")
    listener, _ = await keystore.create(aredis, "listener", "lena@example.com")
    settings = GatewaySettings(redis_url=clean_redis, auth_cache_s=0, rate_limit_burst=10_000)
    async with running_app(settings) as app, listening(app) as address:
        host, port = address.rsplit(":", 1)
        yield Gateway(host, int(port), presenter, listener, settings)


def body_routes() -> list[tuple[str, str]]:
    """(method, path) of every route a body may be sent to (any method but GET/HEAD)."""
    app = create_app(GatewaySettings(), CollectorRegistry())
    found = []
    for context in iter_route_contexts(app.routes):
        route, path = context.original_route, str(context.path)
        if isinstance(route, APIRoute):
            methods = sorted(set(route.methods) - auth.READ_METHODS)
            found += [(m, re.sub(r"\{[^}]+\}", "x", path)) for m in methods]
    return found


def head(method: str, path: str, headers: dict[str, str]) -> bytes:
    lines = [f"{method} {path} HTTP/1.1", "Host: gw", *(f"{k}: {v}" for k, v in headers.items())]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


async def announce(gw: Gateway, method: str, path: str, headers: dict[str, str]) -> Reply:
    """Send a request head announcing a body, none of the body, and read the answer."""
    reader, writer = await asyncio.open_connection(gw.host, gw.port)
    try:
        writer.write(head(method, path, headers))
        await writer.drain()
        return await asyncio.wait_for(read_reply(reader), ANSWER_S)
    finally:
        writer.close()


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


@pytest.mark.parametrize("content_type", IN_MEMORY_TYPES)
async def test_a_huge_body_of_any_type_is_refused_unread(
    gateway: Gateway, content_type: str | None
) -> None:
    typed = {"Content-Type": content_type} if content_type else {}
    headers = bearer(gateway.presenter) | typed | {"Content-Length": str(HUGE)}
    reply = await announce(gateway, "POST", "/v1/translate", headers)
    assert reply.status == 413, reply.body
    assert str(gateway.settings.max_json_bytes) in str(reply.body["detail"])


async def test_a_chunked_body_of_a_json_variant_is_cut_off(gateway: Gateway) -> None:
    limit = gateway.settings.max_json_bytes
    reader, writer = await asyncio.open_connection(gateway.host, gateway.port)
    typed = {"Content-Type": "application/vnd.x+json", "Transfer-Encoding": "chunked"}
    writer.write(head("POST", "/v1/translate", bearer(gateway.presenter) | typed))
    answer = asyncio.create_task(read_reply(reader))
    chunk = 64 * 1024
    frame = f"{chunk:x}\r\n".encode() + b" " * chunk + b"\r\n"
    sent = 0
    try:
        while sent < HUGE and not answer.done():
            writer.write(frame)
            try:
                await asyncio.wait_for(writer.drain(), 1.0)
            except TimeoutError:
                continue  # it stopped reading: its answer is due
            except ConnectionError:
                break
            sent += chunk
        reply = await asyncio.wait_for(answer, ANSWER_S)
    finally:
        writer.close()
    assert reply.status == 413
    assert sent < HUGE // 4, sent  # answered near the limit, not after the whole body
    assert limit < HUGE


@pytest.mark.parametrize(("method", "path"), body_routes())
async def test_a_listener_key_sends_no_body(gateway: Gateway, method: str, path: str) -> None:
    announced = {"Content-Type": "application/json", "Content-Length": "1000"}
    refused = await announce(gateway, method, path, bearer(gateway.listener) | announced)
    assert refused.status == 403, (method, path, refused.body)
    no_key = await announce(gateway, method, path, announced)
    assert no_key.status == 401, (method, path, no_key.body)


def test_there_are_body_routes() -> None:
    assert ("POST", "/v1/translate") in body_routes() and len(body_routes()) > 10
