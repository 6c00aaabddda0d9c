"""Connections that hold the gateway without using it are let go, over a real
``python -m services.gateway``: a silent TCP connection, a request head sent a byte at a time
(slowloris) or without end, a body that stops coming, an idle keep-alive, a WebSocket that
never authenticates; and a key opening live sessions in a loop gets 429 with ``Retry-After``."""

import asyncio
import contextlib
import json
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from shared import bus
from shared.admin import keystore
from tests.security.gateway_process import GatewayProcess, gateway_process

pytestmark = [pytest.mark.redis, pytest.mark.timeout(120)]
DEADLINE_S = 1.0
OPENS_BURST = 3
LET_GO_S = DEADLINE_S + 3.0  # the deadline, and slack for a loaded machine


async def _presenter(redis_url: str) -> str:
    client = bus.client(redis_url)
    try:
        return (await keystore.create(client, "presenter", "pat@example.com"))[0]
    finally:
        await client.aclose()


@pytest.fixture
def key(clean_redis: str) -> str:
    return asyncio.run(_presenter(clean_redis))


@pytest.fixture
def gateway(clean_redis: str, tmp_path: Path, key: str) -> Iterator[GatewayProcess]:
    limits = {
        "GATEWAY_HEADER_TIMEOUT_S": str(DEADLINE_S),
        "GATEWAY_KEEP_ALIVE_TIMEOUT_S": str(int(DEADLINE_S)),
        "GATEWAY_LIVE_AUTH_TIMEOUT_S": str(DEADLINE_S),
        "GATEWAY_BODY_IDLE_TIMEOUT_S": str(DEADLINE_S),
        "GATEWAY_LIVE_OPENS_PER_MIN": "1",
        "GATEWAY_LIVE_OPENS_BURST": str(OPENS_BURST),
    }
    with gateway_process(clean_redis, tmp_path, **limits) as running:
        yield running


async def closed_within(reader: asyncio.StreamReader, timeout_s: float) -> None:
    """Return once the gateway closes the connection (reading whatever it sends); fail if
    it is still open after ``timeout_s``."""
    async with asyncio.timeout(timeout_s):
        with contextlib.suppress(ConnectionError):
            while await reader.read(4096):
                pass


async def close(writer: asyncio.StreamWriter) -> None:
    writer.close()
    with contextlib.suppress(ConnectionError):
        await writer.wait_closed()


async def silent_and_slow(gw: GatewayProcess) -> None:
    reader, writer = await asyncio.open_connection(gw.host, gw.port)
    await closed_within(reader, LET_GO_S)  # never sent a byte
    await close(writer)

    reader, writer = await asyncio.open_connection(gw.host, gw.port)
    writer.write(b"GET /health HTTP/1.1\r\nHost: gw\r\n")
    closed = asyncio.create_task(closed_within(reader, LET_GO_S))
    with contextlib.suppress(ConnectionError):
        while not closed.done():  # a header byte every 0.2 s: a head that never ends
            writer.write(b"X")
            await writer.drain()
            await asyncio.sleep(0.2)
    await closed
    await close(writer)


async def endless_head(gw: GatewayProcess) -> None:
    reader, writer = await asyncio.open_connection(gw.host, gw.port)
    started = time.monotonic()
    with contextlib.suppress(ConnectionError):
        writer.write(b"GET /health HTTP/1.1\r\n" + b"X-Pad: " + b"a" * 200_000 + b"\r\n")
        await writer.drain()
    # Closed for its size, well before the deadline would have closed it.
    await closed_within(reader, DEADLINE_S / 2)
    assert time.monotonic() - started < DEADLINE_S
    await close(writer)


async def head_and_big_body_in_one_write(gw: GatewayProcess, key: str) -> None:
    """A body arriving in the same packets as its head is not counted as head."""
    reader, writer = await asyncio.open_connection(gw.host, gw.port)
    body = json.dumps({"text": "a" * 200_000}).encode()
    head = (
        "POST /v1/translate HTTP/1.1\r\nHost: gw\r\nContent-Type: application/json\r\n"
        f"Authorization: Bearer {key}\r\nContent-Length: {len(body)}\r\n\r\n"
    )
    writer.write(head.encode() + body)
    await writer.drain()
    async with asyncio.timeout(LET_GO_S):
        answer = await reader.readuntil(b"\r\n\r\n")
    assert answer.startswith(b"HTTP/1.1 4"), answer  # an answer (too long), not a reset
    await close(writer)


async def idle_keep_alive(gw: GatewayProcess) -> None:
    reader, writer = await asyncio.open_connection(gw.host, gw.port)
    writer.write(b"GET /health HTTP/1.1\r\nHost: gw\r\n\r\n")
    await writer.drain()
    assert b" 200 " in await reader.readuntil(b"\r\n\r\n")
    await closed_within(reader, LET_GO_S)  # kept alive, then let go
    await close(writer)


async def stalled_body(gw: GatewayProcess, key: str) -> None:
    reader, writer = await asyncio.open_connection(gw.host, gw.port)
    head = (
        "POST /v1/translate HTTP/1.1\r\nHost: gw\r\nContent-Type: application/json\r\n"
        f"Authorization: Bearer {key}\r\nContent-Length: 1000\r\n\r\n"
    )
    writer.write(head.encode() + b'{"text": "Good')  # and then nothing more
    await writer.drain()
    async with asyncio.timeout(LET_GO_S):
        answer = await reader.readuntil(b"\r\n\r\n")
    assert answer.startswith(b"HTTP/1.1 408 "), answer
    await close(writer)


def test_a_body_that_stops_coming_gets_408(gateway: GatewayProcess, key: str) -> None:
    asyncio.run(stalled_body(gateway, key))


def test_a_big_body_sent_with_its_head_is_answered(gateway: GatewayProcess, key: str) -> None:
    asyncio.run(head_and_big_body_in_one_write(gateway, key))


def test_connections_that_send_nothing_useful_are_closed(gateway: GatewayProcess) -> None:
    asyncio.run(silent_and_slow(gateway))
    asyncio.run(endless_head(gateway))
    asyncio.run(idle_keep_alive(gateway))
    assert httpx.get(f"{gateway.url}/health").status_code == 200  # and it still serves


async def unauthenticated_socket(gw: GatewayProcess) -> None:
    async with connect(f"ws://{gw.host}:{gw.port}/ws/converse") as ws:
        started = time.monotonic()
        with pytest.raises(ConnectionClosed) as closed:
            async with asyncio.timeout(LET_GO_S):
                await ws.recv()
        assert time.monotonic() - started >= DEADLINE_S * 0.9
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 1008
    assert "auth" in closed.value.rcvd.reason


def test_a_socket_that_never_authenticates_is_closed(gateway: GatewayProcess) -> None:
    asyncio.run(unauthenticated_socket(gateway))


async def socket_open(gw: GatewayProcess, key: str) -> dict[str, object]:
    async with connect(f"ws://{gw.host}:{gw.port}/ws/converse") as ws:
        await ws.send(json.dumps({"type": "auth", "api_key": key}))
        return json.loads(await ws.recv())  # type: ignore[no-any-return]


def test_opening_live_sessions_is_rate_limited(gateway: GatewayProcess, key: str) -> None:
    auth = {"Authorization": f"Bearer {key}"}
    with httpx.Client(base_url=gateway.url, headers=auth) as http:
        made = [http.post("/v1/sessions").status_code for _ in range(OPENS_BURST)]
        assert made == [201] * OPENS_BURST
        refused = http.post("/v1/sessions")
        assert refused.status_code == 429, refused.text
        assert int(refused.headers["Retry-After"]) >= 1
        assert "live sessions a minute" in refused.json()["detail"]
        assert http.get("/health").status_code == 200  # other requests are not counted
    event = asyncio.run(socket_open(gateway, key))
    assert event["type"] == "error" and event["code"] == "rate_limited", event
