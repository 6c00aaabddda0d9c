"""The request paths the bus benchmark times, one round trip per call, into a ``Series``.

Baselines (a PING over a plain socket and over redis-py, an asyncio.Queue echo, bare stream
consumers) and the real path: ``Bridge.request`` to a ``shared.worker`` consumer.
"""

import asyncio
import socket
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlparse

import redis.asyncio as aioredis

from bench import standin
from services.gateway.bridge import Bridge
from shared.messages import Envelope, TranscribeRequest, Transcript, pack, unpack

TIMEOUT_S = 30.0
RAW, RAW_ENVELOPE, RAW_THREADS = "raw", "raw-envelope", "raw-threads"
RAW_FLAGS = {RAW: [], RAW_ENVELOPE: ["--envelope"], RAW_THREADS: ["--envelope", "--threads"]}


@dataclass
class Series:
    """Round-trip times of one path; ``job_leg``/``reply_leg`` split bus round trips."""

    samples: list[float] = field(default_factory=list)
    job_leg: list[float] = field(default_factory=list)
    reply_leg: list[float] = field(default_factory=list)


async def bus_trip(bridge: Bridge, stream: str, payload: TranscribeRequest, out: Series) -> None:
    """The real path: ``Bridge.request`` to a ``shared.worker`` consumer, split in two legs."""
    started = time.perf_counter()
    job = bridge.job(payload, TIMEOUT_S)
    reply = await bridge.request(stream, job, standin.COMPONENT, TIMEOUT_S)
    out.samples.append(time.perf_counter() - started)
    received_s = time.time()
    if not isinstance(reply.payload, Transcript):
        raise RuntimeError(f"stand-in answered {reply.payload!r}")
    # Wall clocks of two processes on one machine: good to a few microseconds.
    out.job_leg.append(reply.created_s - job.created_s)
    out.reply_leg.append(received_s - reply.created_s)


class RawPath:
    """Requests to a bare stand-in consumer: XADD, then XREAD its reply stream."""

    def __init__(self, client: aioredis.Redis, name: str, payload: TranscribeRequest) -> None:
        self.client = client
        self.name = name
        self.envelope = "--envelope" in RAW_FLAGS[name]
        self.replies = f"pp:replies:bench-{name}-{len(payload.audio)}"
        self.cursor = "0-0"  # the last reply read; never "$", which could miss a fast one
        self.payload = payload
        self.data = pack(self._job())  # sent as is unless ``envelope``

    def _job(self) -> Envelope:
        deadline_s = time.time() + TIMEOUT_S
        return Envelope(payload=self.payload, reply_to=self.replies, deadline_s=deadline_s)

    async def trip(self, out: Series) -> None:
        started = time.perf_counter()
        data = pack(self._job()) if self.envelope else self.data
        fields = {b"e": data, standin.REPLY_FIELD: self.replies}
        await self.client.xadd(standin.stream(self.name), fields)  # type: ignore[arg-type]
        block_ms = int(TIMEOUT_S * 1000)
        # redis-py types a reply as a union of RESP2/RESP3 shapes; this is RESP2's.
        reply: Any = await self.client.xread({self.replies: self.cursor}, count=1, block=block_ms)
        entry_id, reply_fields = reply[0][1][0]
        if self.envelope:
            unpack(reply_fields[b"e"])
        out.samples.append(time.perf_counter() - started)
        self.cursor = entry_id.decode()


async def ping(client: aioredis.Redis, out: Series) -> None:
    """PING through the same redis-py client the Bridge uses."""
    started = time.perf_counter()
    await client.ping()
    out.samples.append(time.perf_counter() - started)


class QueueEcho:
    """An in-process hop each way: two asyncio.Queues and an echo task."""

    def __init__(self) -> None:
        self.jobs: asyncio.Queue[object] = asyncio.Queue()
        self.replies: asyncio.Queue[object] = asyncio.Queue()
        self.task = asyncio.create_task(self._echo())

    async def _echo(self) -> None:
        while True:
            self.replies.put_nowait(await self.jobs.get())

    async def trip(self, item: object, out: Series) -> None:
        started = time.perf_counter()
        self.jobs.put_nowait(item)
        await self.replies.get()
        out.samples.append(time.perf_counter() - started)


class SocketPing:
    """PING over a plain blocking socket: what Redis and the kernel cost without a client
    library (it blocks the event loop for one round trip; nothing else is in flight)."""

    def __init__(self, url: str) -> None:
        parsed = urlparse(url)
        self.sock = socket.create_connection((parsed.hostname, parsed.port or 6379))
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    async def trip(self, out: Series) -> None:
        started = time.perf_counter()
        self.sock.sendall(b"*1\r\n$4\r\nPING\r\n")
        answer = b""
        while not answer.endswith(b"\r\n"):
            answer += self.sock.recv(64)
        out.samples.append(time.perf_counter() - started)
        if answer != b"+PONG\r\n":
            raise RuntimeError(f"unexpected PING answer {answer!r}")

    def close(self) -> None:
        self.sock.close()


Trip = Callable[[Series], Awaitable[None]]
