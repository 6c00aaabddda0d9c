"""Ids in paths and queries are validated before they reach Redis: ``<id>:events`` names a
session's event stream, and reading it as a session hash was a 500 (WRONGTYPE)."""

import re
from collections.abc import AsyncIterator

import httpx
import pytest
import redis.asyncio as aioredis
from fastapi.routing import APIRoute, iter_route_contexts
from prometheus_client import CollectorRegistry

from services.gateway.app import create_app
from services.gateway.live.engine.store import Cue, SessionStore
from services.gateway.settings import GatewaySettings
from shared.admin import keystore
from tests.apps import running_app

pytestmark = pytest.mark.redis
SUFFIXES = (":events", ":cues", ":transcript", ":listeners", "/..", ":")


def id_routes() -> list[tuple[str, str]]:
    """(method, path) of every route with a path parameter."""
    app = create_app(GatewaySettings(), CollectorRegistry())
    found = []
    for context in iter_route_contexts(app.routes):
        route, path = context.original_route, str(context.path)
        if isinstance(route, APIRoute) and "{" in path:
            found += [(method, path) for method in sorted(route.methods)]
    return found


@pytest.fixture
async def admin(clean_redis: str, aredis: aioredis.Redis) -> AsyncIterator[httpx.AsyncClient]:
    key, _ = await keystore.create(aredis, "admin", "ada@example.com")
    settings = GatewaySettings(redis_url=clean_redis, auth_cache_s=0)
    headers = {"Authorization": f"Bearer {key}"}
    async with running_app(settings) as app:
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        async with httpx.AsyncClient(
            transport=transport, base_url="http://gw", headers=headers
        ) as http:
            yield http


def test_there_are_id_routes_to_check() -> None:
    assert ("GET", "/v1/sessions/{session_id}") in id_routes()


@pytest.mark.parametrize(("method", "path"), id_routes())
async def test_a_key_name_in_a_path_is_refused(
    admin: httpx.AsyncClient, aredis: aioredis.Redis, method: str, path: str
) -> None:
    store = SessionStore(aredis, 600, 100)
    info = await store.create(owner="ada@example.com", listeners=["*"])
    await store.append(info, Cue(0, 0.0, 1.0, "hello", "en"))
    await store.publish(info.id, {"type": "stt_final", "text": "hello"})
    for suffix in SUFFIXES:
        url = re.sub(r"\{[^}]+\}", info.id + suffix, path)
        json = {"identity": "x"} if method == "POST" else None
        response = await admin.request(method, url, json=json)
        assert 400 <= response.status_code < 500, (url, response.status_code, response.text)


async def test_a_key_name_in_a_query_is_refused(admin: httpx.AsyncClient) -> None:
    for url in ("/events?session_id=a:events", "/memory/summary?user_id=a/b"):
        assert (await admin.get(url)).status_code == 422
