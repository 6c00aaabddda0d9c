"""No API key reaches the gateway's log: a real ``python -m services.gateway`` at DEBUG is
sent keys every way a client can (headers, ``?api_key=`` under any encoding of its name,
WebSocket handshakes and ``auth`` messages, SSE URLs, refused and malformed requests), and
its whole output is searched for them afterwards."""

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus

from shared import bus
from shared.admin import keystore
from tests.security.gateway_process import GatewayProcess, gateway_process

pytestmark = [pytest.mark.redis, pytest.mark.timeout(120)]
WRONG = "pp_WrongKeyMaterial0123456789abcdef"
BOOTSTRAP = "bootstrap-Secret-0123456789"  # GATEWAY_ADMIN_API_KEY: not shaped like pp_...


async def _keys(redis_url: str) -> dict[str, str]:
    client = bus.client(redis_url)
    try:
        made = {}
        for role in keystore.ROLES:
            made[role], _ = await keystore.create(client, role, f"{role}@example.com")
        return made
    finally:
        await client.aclose()


@pytest.fixture
def keys(clean_redis: str) -> dict[str, str]:
    return asyncio.run(_keys(clean_redis))


@pytest.fixture
def gateway(clean_redis: str, tmp_path: Path, keys: dict[str, str]) -> Iterator[GatewayProcess]:
    env = {"LOG_LEVEL": "DEBUG", "GATEWAY_ADMIN_API_KEY": BOOTSTRAP}
    with gateway_process(clean_redis, tmp_path, **env) as running:
        yield running


def http_requests(gw: GatewayProcess, keys: dict[str, str]) -> None:
    admin, presenter, listener = keys["admin"], keys["presenter"], keys["listener"]
    with httpx.Client(base_url=gw.url, timeout=10) as http:
        assert http.get("/v1/workers", headers={"Authorization": f"Bearer {admin}"}).is_success
        assert http.get("/v1/workers", headers={"X-API-Key": admin}).is_success
        for name in ("api_key", "api%5Fkey", "api%5fkey", "%61pi_key"):  # all authenticate
            assert http.get(f"/v1/workers?{name}={admin}").status_code == 200, name
        assert http.get(f"/v1/workers?api_key={WRONG}").status_code == 401
        refused = http.post("/v1/translate", json={"q": 1}, headers={"X-API-Key": WRONG})
        assert refused.status_code == 401
        made = http.post(
            "/v1/sessions",
            json={"listeners": ["listener@example.com"]},
            headers={"X-API-Key": presenter},
        )
        session_id = made.json()["id"]
        for path in (f"/v1/sessions/{session_id}/events", f"/events?session_id={session_id}"):
            sep = "&" if "?" in path else "?"
            with http.stream("GET", f"{path}{sep}api_key={listener}") as sse:
                assert sse.status_code == 200  # headers only: the stream is left at once


async def malformed_request(gw: GatewayProcess, key: str) -> None:
    """A request the HTTP parser refuses, with the key in its head and its URL."""
    reader, writer = await asyncio.open_connection(gw.host, gw.port)
    head = f"POST /v1/translate?api_key={key} HTTP/1.1\r\nAuthorization: Bearer {key}\r\n"
    writer.write(head.encode() + b"Content-Length: x1\r\n\r\n")
    await writer.drain()
    assert b" 400 " in await asyncio.wait_for(reader.read(1_000), 5)
    writer.close()


async def socket_requests(gw: GatewayProcess, keys: dict[str, str]) -> None:
    presenter = keys["presenter"]
    await malformed_request(gw, presenter)
    base = f"ws://{gw.host}:{gw.port}/ws/converse"
    for query in (f"?api_key={presenter}", f"?api%5Fkey={presenter}", ""):
        async with connect(base + query) as ws:
            await ws.send(json.dumps({"type": "auth", "api_key": presenter, "sample_rate": 1}))
            assert json.loads(await ws.recv())["type"] == "error"  # a bad rate, key and all
            await ws.send(json.dumps({"type": "auth", "api_key": presenter}))
            assert json.loads(await ws.recv())["type"] == "session_started"
    for header in ({"Authorization": f"Bearer {BOOTSTRAP}"}, {"X-API-Key": BOOTSTRAP}):
        async with connect(base, additional_headers=header) as ws:  # logged at DEBUG
            await ws.send(json.dumps({"type": "auth"}))
            assert json.loads(await ws.recv())["type"] == "session_started"
    with pytest.raises(InvalidStatus):
        async with connect(f"{base}?api_key={WRONG}"):
            pass


def test_no_key_reaches_the_log(gateway: GatewayProcess, keys: dict[str, str]) -> None:
    http_requests(gateway, keys)
    asyncio.run(socket_requests(gateway, keys))
    logged = gateway.output()
    # The requests were logged (so their absence below means something)...
    assert "/ws/converse?api_key=***" in logged
    assert "api%5Fkey=***" in logged and "%61pi_key=***" in logged
    assert "401 for POST /v1/translate" in logged
    assert "authorization: Bearer ***" in logged and "x-api-key: ***" in logged
    # ...and no key, nor the secret part of one, is anywhere in the output.
    for secret in [*keys.values(), WRONG, BOOTSTRAP]:
        assert secret not in logged
        assert secret.removeprefix("pp_") not in logged
        assert secret.removeprefix("pp_")[:16] not in logged
