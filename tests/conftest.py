"""Fixtures: a private real redis-server per test session, flushed between tests."""

import subprocess
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
import redis
import redis.asyncio as aioredis

from pyparrot import redis_server

DATA = Path(__file__).parent / "data"


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real redis-server on a free loopback port, owned by this test session."""
    port = redis_server.free_port()
    workdir = tmp_path_factory.mktemp("redis")
    server = subprocess.Popen(
        [
            redis_server.binary(),
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            str(workdir),
        ],
        stdout=subprocess.DEVNULL,
    )
    url = f"redis://127.0.0.1:{port}/0"
    deadline = time.monotonic() + 10
    while not redis_server.reachable(url, 0.2):
        if time.monotonic() > deadline or server.poll() is not None:
            server.kill()
            pytest.fail("redis-server did not start")
        time.sleep(0.05)
    yield url
    server.terminate()
    server.wait(10)


@pytest.fixture
def clean_redis(redis_url: str) -> str:
    """The session's Redis, emptied before the test."""
    client = redis.Redis.from_url(redis_url)
    client.flushall()
    client.close()
    return redis_url


@pytest.fixture
async def aredis(clean_redis: str) -> AsyncIterator[aioredis.Redis]:
    client = aioredis.Redis.from_url(clean_redis)
    yield client
    await client.aclose()


@pytest.fixture(scope="session")
def audio_dir() -> Path:
    return DATA
