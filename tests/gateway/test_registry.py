"""The worker list while Redis cannot be read: the last one serves for a while (a cluster
shard failing over takes seconds, and the job's submit waits that out), then the fault
shows; a fresh read never takes the cached list."""

import os
import signal
from pathlib import Path

import pytest

from pyparrot import procs, redis_server
from services.gateway import registry
from services.gateway.registry import Registry
from shared import bus, heartbeat
from shared.heartbeat import WorkerInfo

pytestmark = pytest.mark.timeout(60)


async def test_the_last_worker_list_serves_briefly_while_redis_is_down(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = f"redis://127.0.0.1:{redis_server.free_port()}/0"
    server = redis_server.start(url, tmp_path / "logs", tmp_path / "data")
    redis = bus.client(url)
    try:
        info = WorkerInfo(component="stt", name="w1", stream="pp:jobs:{stt:tiny.en}")
        await heartbeat.beat(redis, info, ttl_s=60)
        workers = Registry(redis, cache_s=0)
        assert [w.name for w in await workers.workers()] == ["w1"]
        os.kill(server.pid, signal.SIGKILL)
        procs.stop([server], timeout_s=10)
        assert [w.name for w in await workers.workers()] == ["w1"]  # stale, but routes
        with pytest.raises(bus.TRANSIENT):
            await workers.workers(fresh=True)
        monkeypatch.setattr(registry, "STALE_OK_S", 0.0)
        with pytest.raises(bus.TRANSIENT):
            await workers.workers()
    finally:
        await redis.aclose()
        procs.stop([server], timeout_s=10)
