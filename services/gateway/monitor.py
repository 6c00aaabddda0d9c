"""Periodic gauges: live workers per component; backlog, lag, pending and dead letters per stream.

Workers XDEL every entry they finish, so a job stream holds exactly the undelivered jobs
plus the pending ones: lag (what KEDA's ``lagCount`` reads from XINFO GROUPS on Redis 7)
is XLEN minus pending, on any Redis version.
"""

import asyncio
import contextlib
import logging
from collections import Counter

import redis.asyncio as aioredis

from services.gateway.core import Core
from shared import bus, streams

log = logging.getLogger(__name__)


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
        component = name.split(":")[2]
        backlog = await redis.xlen(name)
        pending = 0
        with contextlib.suppress(Exception):  # no group yet
            pending = (await redis.xpending(name, streams.group(component)))["pending"]
        dead = await redis.xlen(streams.dead(name))
        lag = max(backlog - pending, 0)
        row = {"stream": name, "group": streams.group(component), "backlog": backlog}
        stats.append({**row, "lag": lag, "pending": pending, "dead": dead})
    return stats


# Every stage's component name (the dialog worker's is "llm"): its gauge reads 0, not its
# last value, once its last worker is gone, so the stage-down alert can fire.
STAGES = frozenset({"stt", "mt", "tts", "summarizer", "llm", "speaker"})


async def refresh(core: Core, seen: set[str] | None = None) -> None:
    """Update the stream and worker gauges once; ``seen`` collects every component met so
    far, so a component outside ``STAGES`` (e.g. a new one) also drops to 0 when it dies."""
    m = core.metrics
    for row in await stream_stats(core.redis):
        m.stream_backlog.labels(row["stream"]).set(row["backlog"])
        m.stream_pending.labels(row["stream"]).set(row["pending"])
        m.stream_lag.labels(row["stream"], row["group"]).set(row["lag"])
        m.dead_letters.labels(streams.dead(str(row["stream"]))).set(row["dead"])
    counts = Counter(w.component for w in await core.registry.workers(fresh=True))
    known = seen if seen is not None else set()
    known.update(STAGES, counts)
    for component in known:
        m.workers.labels(component).set(counts.get(component, 0))


async def run(core: Core, stop: asyncio.Event) -> None:
    """Refresh the gauges until ``stop`` is set, surviving Redis outages."""
    seen: set[str] = set()
    while not stop.is_set():
        try:
            await refresh(core, seen)
        except bus.TRANSIENT as exc:
            log.warning("monitor: redis error %s", exc)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), core.settings.monitor_interval_s)
