"""How a finished job leaves its stream: its replies published, its entry acknowledged and
deleted (copied to the dead letters first when it failed), in one step as far as Redis
allows.

On one Redis that is one MULTI. On a cluster the reply streams live on other shards than
the job's: each job stream's XACK + XDEL (+ copy) is one script on its own shard (atomic as
a MULTI, which redis-py would run command by command through threads), sent in one pipeline
with the replies, which the shards apply in any order. A worker dying between them leaves
either a job delivered again with its reply already out (the gateway drops the second
reply) or a job gone without a reply (the gateway submits it again): either way the client
gets each result once (``services.gateway.bridge``).
"""

import redis.asyncio as aioredis

from shared import bus, streams
from shared.intake import Entry
from shared.messages import Envelope

Replies = list[tuple[str, Envelope]]  # (reply stream, reply)
DeadCopy = dict[bytes, bytes | str | int]  # the fields of a dead-letter copy

# KEYS[1] a job stream, KEYS[2] its dead letters; ARGV: the group, n, n entry ids, then the
# field/value pairs of a dead-letter copy of the (one) entry, if it is to be copied.
_ACK_DELETE = f"""
local n = tonumber(ARGV[2])
if #ARGV > 2 + n then
  redis.call('XADD', KEYS[2], 'MAXLEN', '~', '{streams.DEAD_MAXLEN}', '*', unpack(ARGV, 3 + n))
end
redis.call('XACK', KEYS[1], ARGV[1], unpack(ARGV, 3, 2 + n))
return redis.call('XDEL', KEYS[1], unpack(ARGV, 3, 2 + n))
"""


async def send(redis: aioredis.Redis, replies: Replies) -> None:
    """Publish replies in one pipeline, outside any transaction (streamed results)."""
    if not replies:
        return
    async with redis.pipeline(transaction=False) as pipe:
        for stream, reply in replies:
            bus.publish_reply(pipe, reply, stream)
        await pipe.execute()


async def settle(
    redis: aioredis.Redis,
    group: str,
    replies: Replies,
    entries: list[Entry],
    dead: DeadCopy | None = None,
) -> None:
    """Publish ``replies``, then acknowledge and delete ``entries`` in ``group`` (copied to
    their dead-letter stream first when ``dead`` gives the copy's fields)."""
    if not bus.is_cluster(redis):
        await _one_transaction(redis, group, replies, entries, dead)
        return
    by_stream: dict[str, list[Entry]] = {}
    for entry in entries:
        by_stream.setdefault(entry.stream, []).append(entry)
    copy = [v for pair in (dead or {}).items() for v in pair]
    async with redis.pipeline(transaction=False) as pipe:
        for stream, reply in replies:
            bus.publish_reply(pipe, reply, stream)
        for stream, same in by_stream.items():
            ids = [entry.id for entry in same]
            keys = [stream, streams.dead(stream)]
            pipe.eval(_ACK_DELETE, 2, *keys, group, len(ids), *ids, *copy)
        await pipe.execute()


async def _one_transaction(
    redis: aioredis.Redis,
    group: str,
    replies: Replies,
    entries: list[Entry],
    dead: DeadCopy | None,
) -> None:
    async with redis.pipeline(transaction=True) as pipe:
        for stream, reply in replies:
            bus.publish_reply(pipe, reply, stream)
        for entry in entries:
            if dead is not None:
                pipe.xadd(streams.dead(entry.stream), dead,  # type: ignore[arg-type]
                          maxlen=streams.DEAD_MAXLEN, approximate=True)  # fmt: skip
            pipe.xack(entry.stream, group, entry.id)
            pipe.xdel(entry.stream, entry.id)
        await pipe.execute()
