"""Fixtures: a private real redis-server per test session, flushed between tests; with
``--redis-cluster N``, a private N-primary Redis Cluster instead."""

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
import redis.asyncio as aioredis

from pyparrot import procs, redis_cluster, redis_server
from shared import bus

DATA = Path(__file__).parent / "data"


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--redis-cluster",
        type=int,
        default=0,
        metavar="N",
        help="run the tests that use the session's Redis on a local N-primary Redis Cluster",
    )


@pytest.fixture(scope="session")
def redis_url(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """A real redis-server on a free loopback port, owned by this test session; or, with
    ``--redis-cluster N``, a local cluster of N primaries (a ``redis+cluster://`` URL)."""
    workdir = tmp_path_factory.mktemp("redis")
    primaries = int(request.config.getoption("--redis-cluster"))
    if primaries > 0:
        cluster = redis_cluster.start(primaries, workdir, workdir)
        yield cluster.url
        redis_cluster.stop(cluster)
        return
    url = f"redis://127.0.0.1:{redis_server.free_port()}/0"
    server = redis_server.start(url, workdir, workdir)
    yield url
    procs.stop([server], timeout_s=10)


@pytest.fixture
def clean_redis(redis_url: str) -> str:
    """The session's Redis, emptied before the test (on a cluster: every primary)."""
    client = bus.sync_client(redis_url)
    client.flushall()
    client.close()
    return redis_url


@pytest.fixture
async def aredis(clean_redis: str) -> AsyncIterator[aioredis.Redis]:
    client = bus.client(clean_redis)
    yield client
    await client.aclose()


@pytest.fixture(autouse=True)
def keys_marker_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Each test's own record of "API keys existed" (never the user's ~/.pyparrot)."""
    marker_dir = tmp_path / "auth-markers"
    monkeypatch.setenv("GATEWAY_KEYS_MARKER_DIR", str(marker_dir))
    return marker_dir


@pytest.fixture(scope="session")
def audio_dir() -> Path:
    return DATA


REDIS_FIXTURES = frozenset({"redis_url", "clean_redis", "aredis"})


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Every test that reaches the session's Redis carries the ``redis`` marker, so
    ``-m "not redis"`` runs exactly the tests that need no server; a module that forgets it
    fails collection instead of silently running under the wrong filter."""
    unmarked = sorted(
        {
            item.nodeid.split("::")[0]
            for item in items
            if REDIS_FIXTURES & set(getattr(item, "fixturenames", ()))
            and item.get_closest_marker("redis") is None
        }
    )
    if unmarked:
        raise pytest.UsageError(
            "tests using Redis need `pytestmark = pytest.mark.redis`: " + ", ".join(unmarked)
        )
