"""Which workers are live (a short-lived cache over their heartbeats); the stage clients in
``stages/`` choose among them."""

import time

import redis.asyncio as aioredis

from shared import bus, heartbeat
from shared.heartbeat import WorkerInfo

STALE_OK_S = 10.0  # the longest a worker list serves while Redis cannot be read


class Registry:
    """A short-lived cache over the heartbeat keys."""

    def __init__(self, redis: aioredis.Redis, cache_s: float) -> None:
        self.redis = redis
        self.cache_s = cache_s
        self._cached: list[WorkerInfo] = []
        self._cached_at = float("-inf")

    async def workers(self, fresh: bool = False) -> list[WorkerInfo]:
        """Live workers, at most ``cache_s`` old unless ``fresh``. While Redis cannot be read
        (a cluster shard failing over) the last list serves for up to ``STALE_OK_S``: the
        job's submit waits out the fault (``Bridge``), where this read would fail at once."""
        if fresh or time.monotonic() - self._cached_at > self.cache_s:
            try:
                workers = await heartbeat.live_workers(self.redis)
            except bus.TRANSIENT:
                if fresh or time.monotonic() - self._cached_at > STALE_OK_S:
                    raise
                return self._cached
            self._cached, self._cached_at = workers, time.monotonic()
        return self._cached
