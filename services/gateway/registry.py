"""Which workers are live (a short-lived cache over their heartbeats); the stage clients in
``stages/`` choose among them."""

import time

import redis.asyncio as aioredis

from shared import heartbeat
from shared.heartbeat import WorkerInfo


class Registry:
    """A short-lived cache over the heartbeat keys."""

    def __init__(self, redis: aioredis.Redis, cache_s: float) -> None:
        self.redis = redis
        self.cache_s = cache_s
        self._cached: list[WorkerInfo] = []
        self._cached_at = float("-inf")

    async def workers(self, fresh: bool = False) -> list[WorkerInfo]:
        """Live workers, at most ``cache_s`` old unless ``fresh``."""
        if fresh or time.monotonic() - self._cached_at > self.cache_s:
            self._cached = await heartbeat.live_workers(self.redis)
            self._cached_at = time.monotonic()
        return self._cached
