"""Authentication survives a Redis that lost its keys: `up`'s Redis keeps them on disk, and a
gateway that once saw keys never falls back to the loopback open mode."""

import re
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
import redis
import redis.asyncio as aioredis

from pyparrot import procs, redis_server
from services.gateway.settings import GatewaySettings
from shared.admin import keystore
from tests.apps import running_app
from tests.gateway.test_auth import OPEN, ROUTES

pytestmark = pytest.mark.redis


def protected_routes() -> list[tuple[str, str]]:
    """Every (method, path) of the route table that needs a key, path parameters filled."""
    return [(m, re.sub(r"\{[^}]+\}", "abc123", p)) for m, p in ROUTES if p not in OPEN]


@pytest.fixture
async def gateway(clean_redis: str) -> AsyncIterator[httpx.AsyncClient]:
    settings = GatewaySettings(redis_url=clean_redis, auth_cache_s=0)
    async with (
        running_app(settings) as app,
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://gateway"
        ) as client,
    ):
        yield client


async def test_an_emptied_key_store_does_not_open_the_gateway(
    gateway: httpx.AsyncClient, aredis: aioredis.Redis, caplog: pytest.LogCaptureFixture
) -> None:
    assert (await gateway.get("/v1/workers")).status_code == 200  # a fresh demo is open
    token, _record = await keystore.create(aredis, "admin", "ada@example.com")
    admin = {"Authorization": f"Bearer {token}"}
    assert (await gateway.get("/v1/workers", headers=admin)).status_code == 200
    assert (await gateway.get("/v1/workers")).status_code == 401

    await aredis.flushall()  # what a restart of a Redis without persistence does
    routes = protected_routes()
    assert len(routes) > 30
    for method, path in routes:
        for headers in ({}, {"Authorization": "Bearer made-up"}, admin):
            refused = await gateway.request(method, path, headers=headers)
            assert refused.status_code == 401, (method, path, headers, refused.text)
    assert "key store in Redis is EMPTY" in caplog.text


async def test_a_new_gateway_on_an_emptied_store_stays_closed(
    clean_redis: str, aredis: aioredis.Redis
) -> None:
    await keystore.create(aredis, "admin", "ada@example.com")
    for _ in range(2):  # the first gateway sees the key; the second starts after the wipe
        settings = GatewaySettings(redis_url=clean_redis, auth_cache_s=0)
        async with (
            running_app(settings) as app,
            httpx.AsyncClient(
                transport=httpx.ASGITransport(app=app), base_url="http://gateway"
            ) as client,
        ):
            for method, path in protected_routes():
                answer = await client.request(method, path)
                assert answer.status_code == 401, (method, path, answer.text)
        await aredis.flushall()


def test_ups_redis_keeps_keys_across_a_restart(tmp_path: Path) -> None:
    url = f"redis://127.0.0.1:{redis_server.free_port()}/0"
    data = tmp_path / "redis"
    server = redis_server.start(url, tmp_path / "logs", data, persist=True)
    try:
        client = redis.Redis.from_url(url)
        client.sadd("pp:test:kept", "key-hash")
        client.close()
    finally:
        procs.stop([server], timeout_s=10)
    server = redis_server.start(url, tmp_path / "logs", data, persist=True)
    try:
        client = redis.Redis.from_url(url)
        assert client.smembers("pp:test:kept") == {b"key-hash"}
        client.close()
    finally:
        procs.stop([server], timeout_s=10)
