"""Connecting to Redis and the few stream operations both workers and the gateway use.

``REDIS_URL`` names either one Redis (``redis://host:port/db``) or a Redis Cluster by one or
more seed nodes (``redis+cluster://host:port[,host:port...]``; ``rediss+cluster`` for TLS).
Every process gets its client from here, so each runs unchanged on either.
"""

import asyncio
import inspect
import logging
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any
from urllib.parse import unquote, urlsplit

import redis
import redis.asyncio as aioredis
from redis._parsers.commands import AsyncCommandsParser
from redis.asyncio.cluster import ClusterNode
from redis.asyncio.cluster import RedisCluster as AsyncRedisCluster
from redis.asyncio.retry import Retry
from redis.backoff import EqualJitterBackoff
from redis.exceptions import (
    ClusterError,
    ReadOnlyError,
    RedisClusterUnreachableError,
    ResponseError,
    SlotNotCoveredError,
    TryAgainError,
)
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from shared import streams
from shared.messages import Envelope, pack
from shared.settings import ServiceSettings

log = logging.getLogger(__name__)
# A Redis that cannot answer now but may soon: unreachable, or (on a cluster) a shard failing
# over: CLUSTERDOWN, TRYAGAIN, slots not covered, a write reaching a demoted primary.
TRANSIENT = (
    RedisConnectionError,
    RedisTimeoutError,
    OSError,
    ClusterError,
    RedisClusterUnreachableError,
    SlotNotCoveredError,
    TryAgainError,
    ReadOnlyError,
)


class Backoff:
    """Pauses between reconnection attempts: doubling from ``base_s`` up to ``cap_s``, each
    drawn between half and all of that (redis-py's equal jitter), so processes that lost
    Redis together do not all retry in the same instant when it returns."""

    def __init__(self, cap_s: float, base_s: float = 0.1) -> None:
        self._policy = EqualJitterBackoff(cap=cap_s, base=base_s)
        self.failures = 0

    def next_s(self) -> float:
        """The pause after one more failure in a row."""
        pause_s = self._policy.compute(self.failures)
        self.failures += 1
        return float(pause_s)

    def reset(self) -> None:
        """A success: the next failure starts from ``base_s`` again."""
        self.failures = 0


MAX_CONNECTIONS = 256  # per process; beyond it a command waits for a free connection
POOL_WAIT_S = 10.0  # ...this long at most, then fails as a (transient) connection error


CLUSTER_SCHEMES = {"redis+cluster": "redis", "rediss+cluster": "rediss"}


def is_cluster_url(url: str) -> bool:
    """Whether ``url`` names a Redis Cluster (``redis+cluster://``) rather than one Redis."""
    return urlsplit(url).scheme in CLUSTER_SCHEMES


def is_cluster(client: object) -> bool:
    """Whether ``client`` talks to a Redis Cluster (sync or asyncio)."""
    return isinstance(client, AsyncRedisCluster | redis.RedisCluster)


def cluster_seeds(url: str) -> tuple[list[tuple[str, int]], dict[str, Any]]:
    """The seed nodes of a cluster URL and the connection options it carries (credentials,
    TLS). A database other than 0 is refused: a cluster has only one."""
    parts = urlsplit(url)
    if parts.scheme not in CLUSTER_SCHEMES:
        raise ValueError(f"not a cluster URL (redis+cluster://host:port,...): {url!r}")
    if parts.path.strip("/") not in ("", "0"):
        raise ValueError(f"a Redis Cluster has only database 0, not {parts.path!r}")
    credentials, _, hosts = parts.netloc.rpartition("@")
    user, _, password = credentials.partition(":")
    seeds = []
    for hostport in hosts.split(","):
        host, _, port = hostport.strip().rpartition(":")
        if not host or not port.isdigit():
            raise ValueError(f"cluster seed {hostport!r} is not host:port in {url!r}")
        seeds.append((host.strip("[]"), int(port)))
    options: dict[str, Any] = {"ssl": parts.scheme.startswith("rediss")}
    if user:
        options["username"] = unquote(user)
    if password:
        options["password"] = unquote(password)
    return seeds, options


def client(url: str, backoff_max_s: float = 5.0) -> aioredis.Redis:
    """A client that retries a command a few times across a dropped connection.

    The pool blocks rather than fails when every connection is busy: redis-py's default pool
    raises "Too many connections" at 100 concurrent commands, which a busy gateway reaches
    (each waiting request holds one for its submit)."""
    if is_cluster_url(url):
        return _cluster_client(url, backoff_max_s)  # type: ignore[return-value]
    pool = aioredis.BlockingConnectionPool.from_url(
        url,
        max_connections=MAX_CONNECTIONS,
        timeout=POOL_WAIT_S,
        decode_responses=False,
        retry=Retry(EqualJitterBackoff(cap=backoff_max_s, base=0.05), retries=3),
        retry_on_error=[RedisConnectionError, RedisTimeoutError],
        health_check_interval=15,
        socket_connect_timeout=5,
    )
    return aioredis.Redis.from_pool(pool)


class _StreamKeys(AsyncCommandsParser):
    """redis-py's cluster client asks a node for the keys of every XREAD and XREADGROUP
    (COMMAND GETKEYS: an extra round trip per read, all to one node); they are the first half
    of what follows STREAMS, so read them from the command."""

    async def get_keys(self, *args: Any) -> tuple[Any, ...] | None:
        name = str(args[0]).upper()
        if name not in ("XREAD", "XREADGROUP"):
            return await super().get_keys(*args)
        words = [a.decode(errors="replace") if isinstance(a, bytes) else str(a) for a in args]
        start = 4 if name == "XREADGROUP" else 1  # past GROUP <group> <consumer>
        at = next(i for i in range(start, len(words)) if words[i].upper() == "STREAMS")
        rest = args[at + 1 :]
        return tuple(rest[: len(rest) // 2])


def _cluster_client(url: str, backoff_max_s: float) -> AsyncRedisCluster:
    """redis-py's cluster client: it follows MOVED/ASK, and after a connection error it
    reloads the slot map, so a failed-over shard is found again without a restart."""
    seeds, options = cluster_seeds(url)
    cluster = AsyncRedisCluster(
        startup_nodes=[ClusterNode(host, port) for host, port in seeds],
        max_connections=MAX_CONNECTIONS,  # per node
        retry=Retry(EqualJitterBackoff(cap=backoff_max_s, base=0.05), retries=6),
        decode_responses=False,
        health_check_interval=15,
        socket_connect_timeout=5,
        **options,
    )
    cluster.commands_parser = _StreamKeys()
    return cluster


def sync_client(url: str, **options: Any) -> redis.Redis:
    """A blocking client for the command line and tests, for one Redis or a cluster."""
    if not is_cluster_url(url):
        return redis.Redis.from_url(url, **options)
    seeds, from_url = cluster_seeds(url)
    nodes = [redis.cluster.ClusterNode(host, port) for host, port in seeds]
    return redis.RedisCluster(startup_nodes=nodes, **from_url, **options)  # type: ignore[return-value]


async def connect(settings: ServiceSettings) -> aioredis.Redis:
    """Connect and PING with bounded, logged retries; raise the last error if all fail."""
    redis = client(settings.redis_url, settings.redis_backoff_max_s)
    backoff = Backoff(settings.redis_backoff_max_s)
    for attempt in range(1, settings.redis_connect_attempts + 1):
        try:
            await redis.ping()
            return redis
        except TRANSIENT as exc:
            if attempt == settings.redis_connect_attempts:
                await redis.aclose()
                raise
            delay_s = backoff.next_s()
            log.warning(
                "redis not reachable (attempt %d): %s; retry in %.1fs", attempt, exc, delay_s
            )
            await asyncio.sleep(delay_s)
    raise AssertionError("unreachable")


async def ensure_group(redis: aioredis.Redis, stream: str, group: str) -> None:
    """Create the consumer group (and the stream) unless it exists."""
    try:
        await redis.xgroup_create(stream, group, id="0", mkstream=True)
        log.info("created group %s on %s", group, stream)
    except ResponseError as exc:
        if "BUSYGROUP" not in str(exc):
            raise


async def submit(redis: aioredis.Redis, stream: str, envelope: Envelope) -> bytes:
    """Put a job on a stage's stream; returns the entry id."""
    return await redis.xadd(stream, {b"e": pack(envelope)})


def publish_reply(pipe: aioredis.client.Pipeline, envelope: Envelope, stream: str) -> None:
    """Queue a reply on ``pipe``: capped, and expiring once its reader is gone."""
    pipe.xadd(stream, {b"e": pack(envelope)}, maxlen=streams.REPLY_MAXLEN, approximate=True)
    pipe.expire(stream, streams.REPLY_TTL_S)


_REDIS_OPTIONS = set(inspect.signature(aioredis.Redis.__init__).parameters) - {"self"}


@asynccontextmanager
async def transaction(redis: aioredis.Redis, key: str) -> AsyncIterator[Any]:
    """A MULTI/EXEC pipeline for keys sharing ``key``'s hash tag.

    On a cluster it runs on a connection of its own to the primary holding that slot:
    redis-py's cluster MULTI queues each command through a thread and a private event loop
    (slow, and what it connects there is left to a loop that is gone)."""
    if not is_cluster(redis):
        async with redis.pipeline(transaction=True) as pipe:
            yield pipe
        return
    await redis.initialize()  # type: ignore[attr-defined]  # a new client has no slot map yet
    node = redis.get_node_from_key(key)  # type: ignore[attr-defined]
    options = {k: v for k, v in node.connection_kwargs.items() if k in _REDIS_OPTIONS}
    shard = aioredis.Redis(**options)
    try:
        async with shard.pipeline(transaction=True) as pipe:
            yield pipe
    finally:
        await shard.aclose()


async def mget(redis: aioredis.Redis, keys: list[Any]) -> list[bytes | None]:
    """GET of many keys in one round trip per node: one MGET on a single Redis, one per
    slot on a cluster (where a multi-key command must stay within a slot)."""
    if is_cluster(redis):
        return await redis.mget_nonatomic(keys)  # type: ignore[attr-defined,no-any-return]
    return await redis.mget(keys)  # type: ignore[no-any-return]


def now_s() -> float:
    """Wall-clock seconds, for heartbeats and deadlines."""
    return time.time()
