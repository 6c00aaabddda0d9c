"""Closing a live session's turns ends its runner even when Redis holds the runner's first
read: redis-py can swallow a cancel that lands right after a command starts, and the
command then returns as if nothing happened."""

import asyncio
from typing import Any

import pytest
import redis.asyncio as aioredis

from services.gateway.auth import Identity
from services.gateway.live.engine.protocol import Auth
from services.gateway.live.engine.store import store_of
from services.gateway.live.engine.turns import Turns
from services.gateway.settings import GatewaySettings
from tests.apps import running_app

pytestmark = pytest.mark.redis


class Outlet:
    """Where the session's events would go: nowhere, no turn runs here."""

    async def emit(self, event: dict[str, Any]) -> None:
        raise AssertionError(f"no event expected, got {event}")

    async def send_audio(self, data: bytes) -> None:
        raise AssertionError("no audio expected")


@pytest.mark.timeout(30)
async def test_close_ends_the_runner_when_its_cancel_lands_in_a_redis_call(
    clean_redis: str, aredis: aioredis.Redis
) -> None:
    async with running_app(GatewaySettings(redis_url=clean_redis)) as app:
        core = app.state.core
        presenter = Identity("ada", "presenter", None)
        paused = asyncio.create_task(aredis.execute_command("CLIENT", "PAUSE", "500", "ALL"))
        await asyncio.sleep(0.05)  # every other client's commands now wait for 0.5 s
        turns = Turns(core, Auth(type="auth"), presenter, "s1", store_of(core), Outlet())
        for _ in range(5):  # the runner gets its connection and sends its first read
            await asyncio.sleep(0)
        await asyncio.wait_for(turns.close(), timeout=5)
        assert turns.runner.done()
        await paused
