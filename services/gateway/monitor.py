"""Periodic gauges: live workers per component; backlog, lag, pending and dead letters per
stream (read by ``shared.admin.streamstats``, which ``pyparrot status`` uses too)."""

import asyncio
import contextlib
import logging
from collections import Counter

from services.gateway.core import Core
from shared import bus, streams
from shared.admin.streamstats import stream_stats

log = logging.getLogger(__name__)


# Every stage's component name: its gauge reads 0, not its
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
