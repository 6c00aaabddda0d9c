"""Worker heartbeats: what a live worker can do, kept in an expiring key.

A worker writes its heartbeat only after its model is loaded, so the gateway lists and
routes to workers that can actually work. A worker that dies stops refreshing and its
key expires.
"""

import os
import socket
import time

import redis.asyncio as aioredis
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from shared import bus, streams


class WorkerInfo(BaseModel):
    """One live worker as the registry sees it."""

    model_config = ConfigDict(extra="ignore")

    component: str
    name: str
    stream: str
    model: str = ""
    languages: list[str] = []
    host: str = Field(default_factory=socket.gethostname)
    pid: int = Field(default_factory=os.getpid)
    concurrency: int = 1
    in_flight: int = 0
    started_s: float = Field(default_factory=time.time)
    last_seen_s: float = Field(default_factory=time.time)
    kind: str = "local"
    extra: dict[str, str] = {}


async def beat(redis: aioredis.Redis, info: WorkerInfo, ttl_s: float) -> None:
    """Write or refresh a worker's heartbeat."""
    info.last_seen_s = time.time()
    key = streams.heartbeat(info.component, info.name)
    await redis.set(key, info.model_dump_json(), px=int(ttl_s * 1000))


async def remove(redis: aioredis.Redis, info: WorkerInfo) -> None:
    """Drop a worker's heartbeat on clean shutdown."""
    await redis.delete(streams.heartbeat(info.component, info.name))


async def live_workers(redis: aioredis.Redis) -> list[WorkerInfo]:
    """Every worker whose heartbeat has not expired, sorted by component and name."""
    keys = [key async for key in redis.scan_iter(match=streams.HEARTBEAT_PATTERN, count=500)]
    if not keys:
        return []
    workers = []
    for raw in await bus.mget(redis, keys):
        if raw is None:  # expired between SCAN and MGET
            continue
        try:
            workers.append(WorkerInfo.model_validate_json(raw))
        except ValidationError:
            continue  # a foreign or corrupt key is not a worker
    return sorted(workers, key=lambda w: (w.component, w.name))
