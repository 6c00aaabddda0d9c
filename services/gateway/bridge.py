"""The bridge between HTTP requests and the streams.

A request puts one job on a stage's stream with ``reply_to`` set to this gateway's reply
stream; one reader task reads that stream and routes each result to the request waiting
for it by the job id (``parent``). Results for jobs nobody waits for any more (timed out,
or a duplicate from a redelivered job) are counted and dropped.

Abandoned jobs: a request that stops waiting before any result (its client left, a live
session dropped a speculative final, a timeout) takes its job back off the stream (XDEL), so
no worker spends a model call on it. One a worker has already read just runs to its end.

Lost jobs: a worker deletes a job's entry only after publishing its last reply, so an entry
gone from its stream with no last reply to read means Redis lost it (restarted without it,
flushed, or a cluster shard failed over before its replica had it) or lost the reply the
same way. Every ``check_s``, and after a read error, the reader checks the entries of the
jobs still waited for. A lost job nobody has had a result of yet is submitted again (up to
``RESUBMITS`` times: it never ran, or its result never arrived); one that had streamed a
part fails at once (``JobLost``) rather than being left to the request timeout.

Backpressure: a job stream holds only unfinished work (``shared.streams``), so its XLEN is
the stage's backlog. A job is added only while that backlog is under the bound, checked and
added in one Lua script: atomic, and no extra round trip per request. Submits made while the
previous one is in flight go out together in one pipeline (``shared.coalesce``).
"""

import asyncio
import contextlib
import logging
import random
import time
from collections import OrderedDict
from collections.abc import AsyncIterator
from typing import NamedTuple

import redis.asyncio as aioredis
from redis.exceptions import NoScriptError

from services.gateway.metrics import GatewayMetrics
from shared import bus, streams
from shared.coalesce import Coalescer
from shared.messages import DecodeError, Envelope, pack, unpack

log = logging.getLogger(__name__)
ANSWERED_MEMORY = 50_000
CHECK_S = 2.0  # how often the entries of jobs still waited for are checked for loss
RESUBMITS = 2  # times a lost job is submitted again before the request fails


# KEYS[1] job stream, ARGV[1] packed envelope, ARGV[2] bound: nil when the backlog is full.
SUBMIT_BOUNDED = """
if redis.call('XLEN', KEYS[1]) >= tonumber(ARGV[2]) then return false end
return redis.call('XADD', KEYS[1], '*', 'e', ARGV[1])
"""


def pick_part(stream: str, split: dict[str, int]) -> str:
    """Where one job of ``stream`` goes: itself, or one of its parts at random when its
    variant (``component:variant`` in ``split``) is spread over several
    (``streams.parts``). A background lane goes to the background lane of a part."""
    lane = ""
    if stream.endswith(":background"):
        stream, lane = stream.removesuffix(":background"), ":background"
    return random.choice(streams.parts(stream, split.get(streams.tag(stream), 1))) + lane


class JobTimeout(Exception):
    """No result arrived in time."""


class JobLost(Exception):
    """The job vanished from Redis (restarted without it, or flushed) before its last reply."""


class Backlogged(Exception):
    """A stage's job stream already holds its bound of unfinished jobs; the job was not added."""

    def __init__(self, component: str, max_backlog: int) -> None:
        super().__init__(f"the {component} stage has {max_backlog}+ jobs waiting; retry later")
        self.component = component
        self.max_backlog = max_backlog


class Waited(NamedTuple):
    """A job waited for whose last reply has not been read: where its entry is, since when
    (monotonic), the job itself (to submit again if lost) and how often it was."""

    stream: str
    entry_id: bytes
    submitted: float
    job: Envelope
    resubmits: int = 0


class Submit(NamedTuple):
    """A bounded submit waiting for its pipeline: the stream, the packed job, the bound."""

    stream: str
    data: bytes
    bound: int


class Bridge:
    """Submits jobs and routes their results back to the waiting request."""

    def __init__(
        self,
        redis: aioredis.Redis,
        gateway_id: str,
        metrics: GatewayMetrics,
        check_s: float = CHECK_S,
        split: dict[str, int] | None = None,
        submit_retry_s: float = 0.0,
    ) -> None:
        self.redis = redis
        self.split = split or {}  # variants spread over several streams (``streams.parts``)
        self.submit_retry_s = submit_retry_s
        self.stream = streams.replies(gateway_id)
        self.metrics = metrics
        self.check_s = check_s
        self.waiters: dict[str, asyncio.Queue[Envelope | JobLost]] = {}
        self.entries: dict[str, Waited] = {}  # by job id
        self.started: set[str] = set()  # jobs waited for that had a result routed
        self._checked_at = time.monotonic()
        self._suspect = False  # a read failed: Redis may have restarted
        self.answered: OrderedDict[str, None] = OrderedDict()
        self.last_id = "0-0"
        self._reader: asyncio.Task[None] | None = None
        self._closed = False
        self._trimmed_at = 0.0
        self._withdrawing: set[asyncio.Task[None]] = set()
        self._submit_sha = redis.register_script(SUBMIT_BOUNDED).sha
        self._submits: Coalescer[Submit, object] = Coalescer(self._submit_batch)

    async def start(self) -> None:
        """Load the submit script, start reading replies; call before accepting clients."""
        with contextlib.suppress(*bus.TRANSIENT):  # if Redis is down now, a submit loads it
            await self.redis.script_load(SUBMIT_BOUNDED)
        self._reader = asyncio.create_task(self._read_loop())

    async def stop(self) -> None:
        """Stop the reader (a flag too: redis-py may turn a cancel into a retried error)."""
        self._closed = True
        if self._reader:
            self._reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reader
        if self._withdrawing:  # jobs abandoned just before: take them off their streams too
            await asyncio.wait(self._withdrawing)
        with contextlib.suppress(*bus.TRANSIENT):
            await self.redis.delete(self.stream)

    async def request(
        self,
        stream: str,
        job: Envelope,
        component: str,
        timeout_s: float,
        max_backlog: int | None = None,
    ) -> Envelope:
        """Submit ``job`` and wait for its single result; raise ``JobTimeout``/``Backlogged``."""
        results = self.stream_results(stream, job, component, timeout_s, max_backlog, single=True)
        # Close the generator here rather than leaving its clean-up to a later task.
        async with contextlib.aclosing(results):
            async for result in results:
                return result
        raise AssertionError("unreachable: stream_results yields or raises")

    async def stream_results(
        self,
        stream: str,
        job: Envelope,
        component: str,
        timeout_s: float,
        max_backlog: int | None = None,
        single: bool = False,
    ) -> AsyncIterator[Envelope]:
        """Submit ``job`` and yield its results in order until the last one (a result whose
        payload has ``last`` set, an error, or the only one when ``single``).
        ``timeout_s`` bounds the wait for each result; with ``max_backlog`` set, a stage
        already holding that many unfinished jobs raises ``Backlogged`` instead."""
        stream = pick_part(stream, self.split)
        queue: asyncio.Queue[Envelope | JobLost] = asyncio.Queue()
        self.waiters[job.id] = queue
        started = time.perf_counter()
        entry_id: bytes | None = None
        answered = False
        try:
            entry_id = await self._offer(stream, job, component, max_backlog)
            if queue.empty():  # else its reply came first: its entry may be rightly gone
                self.entries[job.id] = Waited(stream, entry_id, time.monotonic(), job)
            while True:
                try:
                    async with asyncio.timeout(timeout_s):
                        result = await queue.get()
                except TimeoutError as exc:
                    raise JobTimeout(f"no {component} result within {timeout_s:.0f} s") from exc
                if isinstance(result, JobLost):
                    raise result
                if result.seq == 0:
                    self.metrics.bus_roundtrip_seconds.labels(component).observe(
                        time.perf_counter() - started
                    )
                done = single or result.kind == "error" or getattr(result.payload, "last", False)
                answered = True
                yield result
                if done:
                    return
        finally:
            del self.waiters[job.id]
            self.entries.pop(job.id, None)
            self.started.discard(job.id)
            self._remember(job.id)
            if entry_id is not None and not answered:
                self._withdraw(stream, entry_id)

    def _withdraw(self, stream: str, entry_id: bytes) -> None:
        """Take an abandoned job off its stream, in the background: this runs in a ``finally``
        of a request that may itself be being cancelled."""
        task = asyncio.get_running_loop().create_task(self._xdel(stream, entry_id))
        self._withdrawing.add(task)
        task.add_done_callback(self._withdrawing.discard)

    async def _xdel(self, stream: str, entry_id: bytes) -> None:
        with contextlib.suppress(*bus.TRANSIENT):
            if await self.redis.xdel(stream, entry_id):
                self.metrics.jobs_withdrawn.inc()

    async def _offer(
        self, stream: str, job: Envelope, component: str, max_backlog: int | None
    ) -> bytes:
        """``_submit``, again after a transient fault for up to ``submit_retry_s``. A submit
        cut off may have been added all the same: the job then runs twice, and the second
        result is dropped as a duplicate, so the client still gets one."""
        backoff = bus.Backoff(cap_s=1.0)
        give_up = time.monotonic() + self.submit_retry_s
        while True:
            try:
                return await self._submit(stream, job, component, max_backlog)
            except bus.TRANSIENT as exc:
                pause_s = backoff.next_s()
                if time.monotonic() + pause_s > give_up:
                    raise
                log.warning("submit to %s failed (%s); again in %.1fs", stream, exc, pause_s)
                await asyncio.sleep(pause_s)

    async def _submit(
        self, stream: str, job: Envelope, component: str, max_backlog: int | None
    ) -> bytes:
        """Add ``job`` to ``stream``; its entry id."""
        if max_backlog is None:
            return await bus.submit(self.redis, stream, job)
        pending = self._submits.submit(Submit(stream, pack(job), max_backlog))
        try:
            added = await asyncio.shield(pending)
        except asyncio.CancelledError:  # the request is gone, its job may be added yet
            pending.add_done_callback(lambda done: self._withdraw_added(stream, done))
            raise
        if isinstance(added, Exception):
            raise added
        if added is None:
            log.warning("%s backlog at its bound (%d): job refused", component, max_backlog)
            raise Backlogged(component, max_backlog)
        return added  # type: ignore[return-value]

    def _withdraw_added(self, stream: str, done: asyncio.Future[object]) -> None:
        if not done.cancelled() and done.exception() is None and isinstance(done.result(), bytes):
            self._withdraw(stream, done.result())  # type: ignore[arg-type]

    async def _submit_batch(self, submits: list[Submit]) -> list[object]:
        """Every bounded submit queued meanwhile, in one pipeline: per submit its entry id,
        None (backlog full) or the error Redis answered for it alone."""
        results = await self._evalsha(submits)
        missing = [i for i, result in enumerate(results) if isinstance(result, NoScriptError)]
        if missing:  # a restarted Redis has forgotten the script: load it, send those again
            await self.redis.script_load(SUBMIT_BOUNDED)
            again = await self._evalsha([submits[i] for i in missing])
            for i, result in zip(missing, again, strict=True):
                results[i] = result
        return results

    async def _evalsha(self, submits: list[Submit]) -> list[object]:
        if len(submits) == 1:  # a pipeline of one costs more than the command alone
            stream, data, bound = submits[0]
            try:
                return [await self.redis.evalsha(self._submit_sha, 1, stream, data, bound)]  # type: ignore[misc]
            except NoScriptError as exc:
                return [exc]
        async with self.redis.pipeline(transaction=False) as pipe:
            for stream, data, bound in submits:
                pipe.evalsha(self._submit_sha, 1, stream, data, bound)
            return list(await pipe.execute(raise_on_error=False))

    def job(
        self, payload: object, timeout_s: float, session: str | None = None, turn: int = 0
    ) -> Envelope:
        """A job envelope addressed back to this gateway, with a deadline. A job of a live
        session's ``turn`` (> 0) is dropped by workers once that turn is cancelled."""
        return Envelope(
            payload=payload,  # type: ignore[arg-type]
            session=session,
            seq=turn,
            reply_to=self.stream,
            deadline_s=time.time() + timeout_s,
        )

    def _remember(self, job_id: str) -> None:
        self.answered[job_id] = None
        if len(self.answered) > ANSWERED_MEMORY:
            self.answered.popitem(last=False)

    def _route(self, raw: bytes | None) -> None:
        try:
            result = unpack(raw or b"")
        except DecodeError as exc:
            log.error("undecodable reply on %s: %s", self.stream, exc)
            return
        queue = self.waiters.get(result.parent or "")
        if queue is not None:
            queue.put_nowait(result)
            self.started.add(result.parent or "")
            if result.kind == "error" or getattr(result.payload, "last", True):
                self.entries.pop(result.parent or "", None)  # its entry is gone, rightly
        elif result.parent in self.answered:
            self.metrics.duplicates_dropped.inc()

    async def _read_loop(self) -> None:
        backoff = bus.Backoff(cap_s=5.0)
        while not self._closed:
            try:
                reply = await self.redis.xread({self.stream: self.last_id}, count=200, block=500)
                backoff.reset()
            except bus.TRANSIENT as exc:
                pause_s = backoff.next_s()
                log.warning("reply reader: redis error %s; retry in %.1fs", exc, pause_s)
                self._suspect = True
                await asyncio.sleep(pause_s)
                continue
            self._take(reply)
            due = self._suspect or time.monotonic() - self._checked_at > self.check_s
            if self.entries and due:
                with contextlib.suppress(*bus.TRANSIENT):
                    await self._fail_lost()
                    self._suspect = False
            if reply and time.monotonic() - self._trimmed_at > 1.0:
                # Routed entries are dead weight; trimming once a second keeps the stream
                # short without a second round trip per reply.
                self._trimmed_at = time.monotonic()
                with contextlib.suppress(*bus.TRANSIENT):
                    await self.redis.xtrim(self.stream, minid=self.last_id)

    def _take(self, reply: list[tuple[bytes, list[tuple[bytes, dict[bytes, bytes]]]]]) -> None:
        """Route what one XREAD of the reply stream returned."""
        for _stream, entries in reply or []:
            for entry_id, fields in entries:
                self._route(fields.get(b"e"))
                self.last_id = entry_id.decode()

    async def _fail_lost(self) -> None:
        """Fail each waited-for job whose entry is gone from its stream with no last reply.
        Only jobs older than a check period are looked at (most are answered sooner), all of
        them after a read error."""
        now = self._checked_at = time.monotonic()
        watched = [
            (job_id, waited)
            for job_id, waited in self.entries.items()
            if self._suspect or now - waited.submitted > self.check_s
        ]
        if not watched:
            return
        async with self.redis.pipeline(transaction=False) as pipe:
            for _job_id, waited in watched:
                pipe.xrange(waited.stream, waited.entry_id, waited.entry_id)
            found = await pipe.execute()
        gone = [job_id for (job_id, _waited), rows in zip(watched, found, strict=True) if not rows]
        if not gone:
            return
        # Replies published before those deletions are already on the reply stream: read them.
        while reply := await self.redis.xread({self.stream: self.last_id}, count=200):
            self._take(reply)
        lost = [job_id for job_id in gone if job_id in self.entries]
        if lost:
            log.error("%d job(s) vanished from Redis before an answer", len(lost))
        for job_id in lost:
            waited = self.entries[job_id]
            if job_id in self.started or waited.resubmits >= RESUBMITS:
                del self.entries[job_id]
                self.waiters[job_id].put_nowait(JobLost("the job was lost with Redis; retry it"))
                continue
            entry_id = await bus.submit(self.redis, waited.stream, waited.job)
            self.entries[job_id] = Waited(
                waited.stream, entry_id, time.monotonic(), waited.job, waited.resubmits + 1
            )
            self.metrics.jobs_resubmitted.inc()
