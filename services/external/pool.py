"""Registered servers of one stream: round robin over the healthy ones, with failover."""

import itertools
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import httpx


@dataclass
class Server:
    name: str
    url: str
    healthy: bool = True


@dataclass
class Pool:
    """The servers behind one stream; shared by the handler threads and the checker."""

    servers: dict[str, Server] = field(default_factory=dict)
    on_mark: Callable[[Server, bool], None] | None = None  # e.g. metrics; any thread
    _turn: Iterator[int] = field(default_factory=itertools.count)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def update(self, urls: dict[str, str]) -> None:
        """Replace the registered set (name -> URL), keeping health of unchanged ones."""
        with self._lock:
            kept = {
                name: self.servers[name]
                for name, url in urls.items()
                if name in self.servers and self.servers[name].url == url
            }
            new = {name: Server(name, url) for name, url in urls.items() if name not in kept}
            self.servers = {**kept, **new}

    def order(self) -> list[Server]:
        """Healthy servers, rotated one step further on each call (round robin)."""
        with self._lock:
            healthy = [s for s in self.servers.values() if s.healthy]
            if not healthy:
                return []
            start = next(self._turn) % len(healthy)
            return healthy[start:] + healthy[:start]

    def mark(self, server: Server, healthy: bool) -> None:
        server.healthy = healthy
        if self.on_mark is not None:
            self.on_mark(server, healthy)


def check(server: Server, timeout_s: float) -> bool:
    """``GET {server}/health`` answers 2xx within ``timeout_s``."""
    try:
        return httpx.get(f"{server.url}/health", timeout=timeout_s).is_success
    except httpx.HTTPError:
        return False
