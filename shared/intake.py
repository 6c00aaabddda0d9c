"""How jobs reach a worker loop: its lanes, read with XREADGROUP, and the entries it takes
over from consumers that hold them too long (XAUTOCLAIM).

A loop serves one stream, or the stream and its background lane (``streams.background``):
the main stream is read first without waiting, then every lane with a block, so a backlog of
best-effort work never delays the work a client is waiting on.

A stage variant spread over several streams (``streams.parts``) gives the loop one such set
of lanes per part. Each part may live on another cluster shard, where one XREADGROUP cannot
reach two of them, so each part has its own blocking read in flight; a read that is still
waiting when another returns is kept for the next call rather than cancelled (a cancelled
read can have taken entries nobody would see). Such a call can return more entries than
asked for: the loop keeps them until it has room.
"""

import asyncio
import time
from dataclasses import dataclass

import redis.asyncio as aioredis

from shared import bus


@dataclass
class Entry:
    """One stream entry taken by this consumer."""

    stream: str
    id: bytes
    raw: bytes | None
    deliveries: int


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


class Intake:
    """One consumer's view of its lanes (most urgent first) in one group."""

    def __init__(
        self,
        redis: aioredis.Redis,
        group: str,
        consumer: str,
        parts: list[list[str]],
        idle_ms: int,
    ) -> None:
        self.redis = redis
        self.group = group
        self.consumer = consumer
        self.parts = parts  # each part's lanes, most urgent first, under one hash tag
        self.lanes = [lane for lanes in parts for lane in lanes]
        self.idle_ms = idle_ms
        self._reads: dict[int, asyncio.Task[list[Entry]]] = {}
        self.reset()

    def reset(self) -> None:
        """Forget the reclaim positions (after a lost group)."""
        self.cursors = dict.fromkeys(self.lanes, "0-0")
        self.last_claim_s = 0.0

    async def ensure_groups(self) -> None:
        for stream in self.lanes:
            await bus.ensure_group(self.redis, stream, self.group)

    async def read(self, count: int, block_ms: int) -> list[Entry]:
        """New entries: up to ``count`` per lane of one part, the main stream's first; with
        several parts, what every part that answered first brought."""
        if len(self.parts) == 1:
            return await self._read_part(self.parts[0], count, block_ms)
        for i, lanes in enumerate(self.parts):
            if i not in self._reads:
                self._reads[i] = asyncio.create_task(self._read_part(lanes, count, block_ms))
        await asyncio.wait(self._reads.values(), return_when=asyncio.FIRST_COMPLETED)
        entries: list[Entry] = []
        for i, task in list(self._reads.items()):
            if task.done():
                del self._reads[i]
                entries += task.result()
        return entries

    async def close(self) -> None:
        """Stop the reads still waiting (what they took stays pending for a reclaim)."""
        for task in self._reads.values():
            task.cancel()
        await asyncio.gather(*self._reads.values(), return_exceptions=True)
        self._reads.clear()

    async def _read_part(self, lanes: list[str], count: int, block_ms: int) -> list[Entry]:
        if len(lanes) > 1:
            # The main stream first, without waiting; then block on every lane. Should both
            # answer at once (a race of a few microseconds), the extra job simply runs too.
            urgent = await self._xreadgroup(lanes[:1], count, None)
            if urgent:
                return urgent
        return await self._xreadgroup(lanes, count, block_ms)

    async def _xreadgroup(self, lanes: list[str], count: int, block_ms: int | None) -> list[Entry]:
        reply = await self.redis.xreadgroup(
            self.group, self.consumer, dict.fromkeys(lanes, ">"), count=count, block=block_ms
        )
        return [
            Entry(_text(stream), entry_id, fields.get(b"e"), 1)
            for stream, entries in reply or []
            for entry_id, fields in entries
        ]

    async def reclaim(self, count: int) -> list[Entry]:
        """Entries another consumer has held longer than ``idle_ms`` (or a failed one of
        ours), at most every half idle time (5 s at most) unless more are waiting."""
        interval_s = min(self.idle_ms / 2000, 5.0)
        if time.monotonic() - self.last_claim_s < interval_s:
            return []
        self.last_claim_s = time.monotonic()
        entries: list[Entry] = []
        for stream in self.lanes:
            if len(entries) < count:
                entries += await self._reclaim_lane(stream, count - len(entries))
        return entries

    async def _reclaim_lane(self, stream: str, count: int) -> list[Entry]:
        cursor, claimed, *_deleted = await self.redis.xautoclaim(
            stream,
            self.group,
            self.consumer,
            min_idle_time=self.idle_ms,
            start_id=self.cursors[stream],
            count=count,
        )
        self.cursors[stream] = _text(cursor)
        entries = []
        for entry_id, fields in claimed:
            pending = await self.redis.xpending_range(
                stream, self.group, min=entry_id, max=entry_id, count=1
            )
            deliveries = pending[0]["times_delivered"] if pending else 1
            entries.append(Entry(stream, entry_id, (fields or {}).get(b"e"), deliveries))
        if len(claimed) == count and self.cursors[stream] != "0-0":
            self.last_claim_s = 0.0  # more may be waiting: look again next turn
        return entries

    async def touch(self, held: set[tuple[str, bytes]]) -> None:
        """Reset the idle time of the (lane, id) entries we are still handling (XCLAIM
        JUSTID to ourselves), so a long job is not mistaken for a crashed consumer's."""
        for stream in self.lanes:
            ids = [entry_id for lane, entry_id in held if lane == stream]
            if ids:
                await self.redis.xclaim(stream, self.group, self.consumer, 0, ids, justid=True)
