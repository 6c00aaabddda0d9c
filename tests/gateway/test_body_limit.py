"""Request bodies over real HTTP: a declared length over the limit gets 413 before the body
is read, a chunked body is cut off at the limit, and a body is never read before its key is
checked (``services/gateway/gate.py``)."""

import asyncio
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass

import httpx
import pytest
import redis.asyncio as aioredis

from services.gateway.settings import GatewaySettings
from shared.admin import keystore
from tests.apps import running_app
from tests.gateway.live_helpers import listening

pytestmark = pytest.mark.redis

LIMIT = 64 * 1024
CHUNK = 16 * 1024
ROUTE = "/v1/audio/transcriptions"
ANSWER_S = 5.0  # every refusal here must come at once, not after a body is read


def settings_for(redis_url: str) -> GatewaySettings:
    return GatewaySettings(
        redis_url=redis_url, max_upload_bytes=LIMIT, auth_cache_s=0, request_timeout_s=3
    )


@dataclass
class Reply:
    status: int
    headers: dict[str, str]
    body: dict[str, object]


@dataclass
class Gateway:
    host: str
    port: int
    key: str


@pytest.fixture
async def gateway(clean_redis: str, aredis: aioredis.Redis) -> AsyncIterator[Gateway]:
    key, _ = await keystore.create(aredis, "presenter", "pat@example.com")
    async with running_app(settings_for(clean_redis)) as app, listening(app) as address:
        host, port = address.rsplit(":", 1)
        yield Gateway(host, int(port), key)


def head(headers: dict[str, str]) -> bytes:
    lines = [f"POST {ROUTE} HTTP/1.1", "Host: gateway", *(f"{k}: {v}" for k, v in headers.items())]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


async def read_reply(reader: asyncio.StreamReader) -> Reply:
    status_line, *header_lines = (await reader.readuntil(b"\r\n\r\n")).decode().split("\r\n")
    headers = {}
    for line in header_lines:
        if line:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
    body = await reader.readexactly(int(headers["content-length"]))
    return Reply(int(status_line.split()[1]), headers, json.loads(body))


async def send_head_only(gateway: Gateway, headers: dict[str, str]) -> Reply:
    """Send the request head, none of the body it announces, and read the answer."""
    reader, writer = await asyncio.open_connection(gateway.host, gateway.port)
    try:
        writer.write(head(headers))
        await writer.drain()
        return await asyncio.wait_for(read_reply(reader), ANSWER_S)
    finally:
        writer.close()


BOUNDARY = "pyparrot-test-boundary"
MULTIPART = {"Content-Type": f"multipart/form-data; boundary={BOUNDARY}"}
FILE_PART = (
    f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="file"; filename="a.wav"\r\n'
    "Content-Type: audio/wav\r\n\r\n"
).encode()


async def send_chunked(gateway: Gateway, headers: dict[str, str], total: int) -> tuple[Reply, int]:
    """Stream a multipart upload of a file of up to ``total`` bytes, chunk by chunk, until
    the gateway answers; return its answer and the bytes sent."""
    reader, writer = await asyncio.open_connection(gateway.host, gateway.port)
    sent = 0
    try:
        writer.write(head(headers | MULTIPART | {"Transfer-Encoding": "chunked"}))
        writer.write(f"{len(FILE_PART):x}\r\n".encode() + FILE_PART + b"\r\n")
        answer = asyncio.create_task(read_reply(reader))
        frame = f"{CHUNK:x}\r\n".encode() + b"\0" * CHUNK + b"\r\n"
        while sent < total and not answer.done():
            try:
                writer.write(frame)
                await asyncio.wait_for(writer.drain(), 1.0)
            except TimeoutError:
                continue  # the gateway stopped reading: its answer is due
            except ConnectionError:
                break  # it answered and hung up
            sent += CHUNK
        return await asyncio.wait_for(answer, ANSWER_S), sent
    finally:
        writer.close()


async def test_a_declared_length_over_the_limit_is_refused_before_reading(
    gateway: Gateway,
) -> None:
    for headers in ({"Authorization": f"Bearer {gateway.key}"}, {}):  # with a key or not
        reply = await send_head_only(gateway, headers | {"Content-Length": str(10**12)})
        assert reply.status == 413
        assert reply.body["error"]["code"] == "too_large"  # type: ignore[index]
        assert str(LIMIT) in str(reply.body["detail"])


async def test_a_body_is_not_read_before_its_key_is_checked(gateway: Gateway) -> None:
    # The announced body never comes: only an answer without reading it can arrive in time.
    for headers in ({}, {"Authorization": "Bearer pp_not-a-key"}):
        reply = await send_head_only(gateway, headers | {"Content-Length": "1000"})
        assert reply.status == 401
        assert reply.headers["www-authenticate"] == "Bearer"
    refused, sent = await send_chunked(gateway, {}, total=100 * LIMIT)
    assert refused.status == 401
    assert sent < 100 * LIMIT


async def test_a_chunked_body_is_cut_off_at_the_limit(gateway: Gateway) -> None:
    total = 2_000 * LIMIT  # 128 MiB: far more than loopback socket buffers hold
    auth = {"Authorization": f"Bearer {gateway.key}"}
    reply, sent = await send_chunked(gateway, auth, total)
    assert reply.status == 413
    assert reply.body["error"]["code"] == "too_large"  # type: ignore[index]
    assert sent < total  # the gateway answered long before the client was done
    async with httpx.AsyncClient(base_url=f"http://{gateway.host}:{gateway.port}") as http:
        assert (await http.get("/health")).status_code == 200  # and still serves


async def test_a_json_body_has_its_own_smaller_limit(
    clean_redis: str, aredis: aioredis.Redis
) -> None:
    key, _ = await keystore.create(aredis, "presenter", "pat@example.com")
    settings = settings_for(clean_redis).model_copy(update={"max_json_bytes": LIMIT // 4})
    auth = {"Authorization": f"Bearer {key}"}
    big = {"text": "x" * (LIMIT // 2), "source": "en", "target": "pt"}
    upload = {"file": ("a.wav", b"x" * (LIMIT // 2), "audio/wav")}
    async with running_app(settings) as app, listening(app) as address:
        async with httpx.AsyncClient(base_url=f"http://{address}") as http:
            refused = await http.post("/v1/translate", headers=auth, json=big)
            as_upload = await http.post(ROUTE, headers=auth, files=upload)
    assert refused.status_code == 413 and refused.json()["error"]["code"] == "too_large"
    assert as_upload.status_code == 400  # the same size as an upload reaches its route


async def test_a_body_within_the_limit_reaches_the_route(gateway: Gateway) -> None:
    auth = {"Authorization": f"Bearer {gateway.key}"}
    files = {"file": ("a.wav", b"not audio" * 100, "audio/wav")}
    async with httpx.AsyncClient(base_url=f"http://{gateway.host}:{gateway.port}") as http:
        response = await http.post(ROUTE, headers=auth, files=files, data={"model": "whisper-1"})
    assert response.status_code == 400, response.text  # the route read it: no valid audio
    assert response.json()["error"]["code"] == "invalid_audio"


async def test_the_routes_never_get_more_than_the_limit(clean_redis: str) -> None:
    # In process, counting what the app pulls from an endless chunked body.
    pulled = 0

    async def endless() -> AsyncIterator[bytes]:
        nonlocal pulled
        while True:
            pulled += CHUNK
            yield b"\0" * CHUNK

    async with (
        running_app(settings_for(clean_redis)) as app,
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://gateway"
        ) as http,
    ):
        response = await http.post("/v1/translate", content=endless())
    assert response.status_code == 413
    assert LIMIT < pulled <= LIMIT + CHUNK
