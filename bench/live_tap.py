"""Where PyParrot's live latency goes: every STT job of a run, as the bus saw it.

A tap in the benchmark process follows (XREAD) the STT job stream, its background lane
(the live partials' lane) and the gateway's reply stream while the sessions run: workers
XDEL a job once answered and the gateway trims replies it has read, so neither can be read
afterwards. Entry ids carry Redis's clock, so per job: submitted (job entry), handler
start (reply entry minus the worker's processing time), answered (reply entry), or how it
ended otherwise (e.g. ``expired``: a stale partial no worker started in time).
"""

import asyncio
import contextlib
from dataclasses import dataclass, replace
from typing import Any

import msgpack
import redis.asyncio as aioredis

from shared import streams
from shared.messages import SttMode


@dataclass(frozen=True)
class Job:
    kind: str  # "partial" or "final"
    session: str | None
    audio_s: float
    submitted: float  # epoch seconds (Redis clock)
    started: float | None = None
    answered: float | None = None
    outcome: str = ""  # "done", or the error code of the reply (e.g. "expired")

    @property
    def queued_s(self) -> float | None:
        return None if self.started is None else self.started - self.submitted

    @property
    def processing_s(self) -> float | None:
        if self.started is None or self.answered is None:
            return None
        return self.answered - self.started


def _entry_s(entry_id: bytes) -> float:
    return int(entry_id.split(b"-")[0]) / 1000


def _envelope(fields: dict[bytes, bytes]) -> dict[str, Any]:
    data = msgpack.unpackb(fields[b"e"], raw=False)
    return data if isinstance(data, dict) else {}


class Tap:
    """Records the jobs added to ``job_stream`` (and its background lane) while running."""

    def __init__(self, url: str, job_stream: str, reply_stream: str) -> None:
        self.redis = aioredis.Redis.from_url(url)
        self.cursors = {job_stream: "0-0", streams.background(job_stream): "0-0"}
        self.cursors[reply_stream] = "0-0"
        self.reply_stream = reply_stream
        self.jobs: dict[str, Job] = {}
        self.task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        """Take the streams' current ends as the cursors, then follow them."""
        for stream in self.cursors:
            if await self.redis.exists(stream):
                info = await self.redis.xinfo_stream(stream)
                self.cursors[stream] = info["last-generated-id"].decode()
        self.task = asyncio.create_task(self._follow())

    async def _follow(self) -> None:
        while True:
            read: Any = await self.redis.xread(self.cursors, block=1_000)  # type: ignore[arg-type]
            for stream, entries in read or []:
                name = stream.decode()
                for entry_id, fields in entries:
                    self.cursors[name] = entry_id.decode()
                    if name == self.reply_stream:
                        self._reply(entry_id, fields)
                    else:
                        self._job(entry_id, fields)

    def _job(self, entry_id: bytes, fields: dict[bytes, bytes]) -> None:
        env = _envelope(fields)
        payload = env.get("payload") or {}
        if payload.get("kind") != "stt.request":
            return
        fmt = payload.get("audio_format") or {}
        rate = fmt.get("sample_rate_hz", 16_000) * fmt.get("sample_width_bytes", 2)
        kind = "partial" if payload.get("mode") == SttMode.PARTIAL else "final"
        audio_s = len(payload.get("audio", b"")) / rate
        self.jobs[env["id"]] = Job(kind, env.get("session"), audio_s, _entry_s(entry_id))

    def _reply(self, entry_id: bytes, fields: dict[bytes, bytes]) -> None:
        env = _envelope(fields)
        job = self.jobs.get(env.get("parent") or "")
        if job is None:
            return
        payload = env.get("payload") or {}
        answered = _entry_s(entry_id)
        if payload.get("kind") == "stt.result":
            started = answered - float(payload.get("processing_s", 0.0))
            self.jobs[env["parent"]] = replace(
                job, started=started, answered=answered, outcome="done"
            )
        else:
            self.jobs[env["parent"]] = replace(job, outcome=str(payload.get("code", "error")))

    async def stop(self) -> list[Job]:
        """Stop following; every job seen, with its timings."""
        await asyncio.sleep(0.2)  # the last replies are on their way
        if self.task is not None:
            self.task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.task
        await self.redis.aclose()
        return list(self.jobs.values())
