"""Backlog, lag, pending and dead-letter counts of every job stream.

Workers XDEL every entry they finish, so a job stream holds exactly the undelivered jobs
plus the pending ones: lag (what KEDA's ``lagCount`` reads from XINFO GROUPS on Redis 7)
is XLEN minus pending, on any Redis version.
"""

import contextlib

import redis.asyncio as aioredis

from shared import streams


async def stream_stats(redis: aioredis.Redis) -> list[dict[str, int | str]]:
    """Backlog (XLEN), lag, pending and dead-letter counts of every job stream."""
    names = sorted(
        {
            key.decode()
            async for key in redis.scan_iter(match=streams.JOBS_PATTERN, count=500, _type="stream")
        }
    )
    stats = []
    for name in names:
        if name.endswith(":dead"):
            continue
        component = streams.component(name)
        backlog = await redis.xlen(name)
        pending = 0
        with contextlib.suppress(Exception):  # no group yet
            pending = (await redis.xpending(name, streams.group(component)))["pending"]
        dead = await redis.xlen(streams.dead(name))
        lag = max(backlog - pending, 0)
        row = {"stream": name, "group": streams.group(component), "backlog": backlog}
        stats.append({**row, "lag": lag, "pending": pending, "dead": dead})
    return stats
