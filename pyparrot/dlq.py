"""``pyparrot dlq list|replay|purge``: inspect and recover dead-lettered jobs."""

import redis

from shared import streams

DEAD_SUFFIX = streams.dead("")


def dead_streams(client: redis.Redis, source: str | None) -> list[str]:
    """Dead-letter streams, or only the one beside job stream ``source``."""
    if source:
        return [streams.dead(source)] if client.exists(streams.dead(source)) else []
    keys = client.scan_iter(match=streams.dead_letters_pattern(), count=500, _type="stream")
    return sorted(k.decode() for k in keys)


def entries(client: redis.Redis, source: str | None) -> list[dict[str, object]]:
    """Every dead letter: source stream, id, code, error, deliveries."""
    rows: list[dict[str, object]] = []
    for dead in dead_streams(client, source):
        for entry_id, fields in client.xrange(dead):
            rows.append(
                {
                    "stream": dead.removesuffix(DEAD_SUFFIX),
                    "id": entry_id.decode(),
                    "code": fields.get(b"code", b"").decode(errors="replace"),
                    "error": fields.get(b"error", b"").decode(errors="replace"),
                    "deliveries": int(fields.get(b"deliveries", b"0") or 0),
                }
            )
    return rows


def replay(client: redis.Redis, source: str | None, entry_id: str | None = None) -> int:
    """Re-queue dead letters on their source stream (original envelope bytes); return count."""
    count = 0
    for dead in dead_streams(client, source):
        target = dead.removesuffix(DEAD_SUFFIX)
        for eid, fields in client.xrange(dead):
            if entry_id and eid.decode() != entry_id:
                continue
            with client.pipeline(transaction=True) as pipe:
                pipe.xadd(target, {b"e": fields.get(b"e", b"")})
                pipe.xdel(dead, eid)
                pipe.execute()
            count += 1
    return count


def purge(client: redis.Redis, source: str | None) -> int:
    """Delete dead letters; return how many."""
    count = 0
    for dead in dead_streams(client, source):
        count += int(client.xlen(dead))
        client.delete(dead)
    return count
