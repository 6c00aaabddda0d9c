"""The consumer-group worker loop every stage runs.

Each turn: reclaim entries idle too long (a crashed peer's work, XAUTOCLAIM), read new
ones (XREADGROUP), run the handler in a thread under a timeout, then publish the results
and XACK + XDEL in one transaction (on a cluster: the results first, then the transaction on
the job's shard; ``shared.settle``). Jobs finishing while the previous settlement is in
flight share the next one (``shared.coalesce``). Each job ends one way only, decided here:

- done: results published, entry acknowledged and deleted;
- retry: a ``Retryable`` error or an unexpected one leaves it pending for a later reclaim;
- rejected: a ``Rejected`` error (the client's bad input) sends an ``error`` reply with its
  code and acknowledges the job at once; it is never retried nor dead-lettered;
- dead: a ``JobFailed`` error, an undecodable entry or too many deliveries copies it to
  ``<stream>:dead`` with the reason, sends an ``error`` reply, and acknowledges it;
- expired: a job not started before its deadline is answered ``expired``, not run;
- cancelled: a job of a session turn that was cancelled (barge-in) before or while it ran
  is acknowledged with a ``cancelled`` error reply and no further results.

A worker may also serve its stream's *background lane* (``streams.background``): jobs
there (live partial transcripts) are taken only when the main stream has nothing waiting,
so a backlog of best-effort work never delays the work a client is waiting on.
"""

import asyncio
import contextlib
import logging
import time
from asyncio import FIRST_COMPLETED
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import NamedTuple

import redis.asyncio as aioredis
from pydantic import BaseModel
from redis.exceptions import ResponseError

from shared import bus, heartbeat, settle, streams
from shared.coalesce import Coalescer
from shared.errors import ClientError
from shared.heartbeat import WorkerInfo
from shared.intake import Entry, Intake
from shared.messages import DecodeError, Envelope, ErrorResult, unpack
from shared.metrics import WorkerMetrics
from shared.settings import WorkerSettings
from shared.threads import iterate_in_thread

log = logging.getLogger(__name__)

Handler = Callable[[Envelope], Iterator[BaseModel]]
"""Blocking: takes a job, yields result payloads (several for streamed output)."""


class Retryable(Exception):
    """A transient fault: leave the job pending so it is delivered again."""


class JobFailed(Exception):
    """A job that can never succeed through a failure of ours (e.g. a backend's garbled
    reply): dead-letter it and tell the requester."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


class Rejected(JobFailed):
    """The client's mistake (bad input): answer at once with ``code``, which the gateway
    maps to a 4xx (``shared.errors``); neither retried nor dead-lettered."""

    def __init__(self, code: ClientError, message: str) -> None:
        super().__init__(code, message)


class Finish(NamedTuple):
    """A job's end, waiting for its transaction: the entry, its last replies, the job."""

    entry: Entry
    replies: list[Envelope]
    job: Envelope | None


@dataclass(frozen=True)
class WorkerSpec:
    """What a service hands the loop: its stream, its handler and what it advertises."""

    component: str
    stream: str
    handle: Handler
    model: str = ""
    languages: list[str] = field(default_factory=list)
    audio_field: str = ""  # payload field whose duration feeds the real-time-factor metric
    background_lane: bool = False  # also serve streams.background(stream), at low priority
    extra: dict[str, str] = field(default_factory=dict)  # advertised too, e.g. a TTS engine

    @property
    def lanes(self) -> list[str]:
        """The streams served, most urgent first."""
        return self.lanes_of(self.stream)

    def lanes_of(self, stream: str) -> list[str]:
        """One stream's lanes, most urgent first."""
        return [stream, streams.background(stream)] if self.background_lane else [stream]

    def parts(self, split: dict[str, int]) -> list[list[str]]:
        """The lanes of each part the stream is spread over (``streams.parts``)."""
        count = split.get(streams.tag(self.stream), 1)
        return [self.lanes_of(part) for part in streams.parts(self.stream, count)]


class Worker:
    """State of one running loop; use ``run_worker`` rather than this class directly."""

    def __init__(
        self,
        redis: aioredis.Redis,
        spec: WorkerSpec,
        settings: WorkerSettings,
        metrics: WorkerMetrics,
    ) -> None:
        self.redis = redis
        self.spec = spec
        self.settings = settings
        self.metrics = metrics
        self.group = streams.group(spec.component)
        self.in_flight: set[asyncio.Task[None]] = set()
        self.active_ids: set[tuple[str, bytes]] = set()  # (lane, entry id) being handled
        self._ending = False
        self._finishes: Coalescer[Finish, None] = Coalescer(self._commit)
        self.intake = Intake(redis, self.group, settings.worker_name,
                             spec.parts(settings.stream_parts), settings.claim_idle_ms)  # fmt: skip
        self.waiting: list[Entry] = []  # taken beyond free capacity (several parts answered)
        for outcome in ("done", "rejected", "retry", "dead", "invalid", "expired", "cancelled"):
            metrics.jobs.labels(spec.component, outcome)  # export zeros, not "no data"
        metrics.reclaimed.labels(spec.component)
        self.info = WorkerInfo(
            component=spec.component,
            name=settings.worker_name,
            stream=spec.stream,
            model=spec.model,
            languages=spec.languages,
            concurrency=settings.concurrency,
            extra=dict(spec.extra),
        )

    async def run(self, stop: asyncio.Event, burst: bool = False) -> None:
        """Serve until ``stop`` is set (or, in burst mode, until no work is left)."""
        await self.intake.ensure_groups()
        await heartbeat.beat(self.redis, self.info, self.settings.heartbeat_ttl_s)
        beating = asyncio.create_task(self._heartbeat(stop))
        self._stopping = asyncio.create_task(stop.wait())
        log.info("ready: %s worker %s on %s", self.spec.component, self.info.name, self.spec.stream)
        backoff = bus.Backoff(self.settings.redis_backoff_max_s)
        try:
            while not stop.is_set():
                try:
                    got = await self._turn()
                    backoff.reset()
                except bus.TRANSIENT as exc:
                    pause_s = backoff.next_s()
                    log.warning("redis error: %s; retry in %.1fs", exc, pause_s)
                    await asyncio.sleep(pause_s)
                    continue
                if burst and not got and not self.in_flight:
                    break
        finally:
            await self.intake.close()
            await self._drain()
            self._stopping.cancel()
            # A flag as well as the cancel: redis-py can turn a cancel that lands inside a
            # command into a retried connection error, which the heartbeat loop survives.
            self._ending = True
            beating.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await beating
            with contextlib.suppress(*bus.TRANSIENT):
                await heartbeat.remove(self.redis, self.info)
            log.info("stopped: %s worker %s", self.spec.component, self.info.name)

    async def _turn(self) -> bool:
        """Take what free capacity allows and start handling it; True if anything came."""
        free = self.settings.concurrency - len(self.in_flight)
        if free <= 0:  # full: wait for a free slot, or for the stop signal
            await asyncio.wait([*self.in_flight, self._stopping], return_when=FIRST_COMPLETED)
            return True
        if self.waiting:
            taken, self.waiting = self.waiting[:free], self.waiting[free:]
            self._start(taken)
            return True
        try:
            entries = await self._reclaim(free) or await self.intake.read(
                free, 10 if self.in_flight else self.settings.block_ms
            )
        except ResponseError as exc:
            # XAUTOCLAIM and XREADGROUP alike: a Redis restarted without persistence has
            # lost the group (and the stream); recreate it and carry on.
            if "NOGROUP" not in str(exc) and "no longer exists" not in str(exc):
                raise
            log.warning("group %s vanished from %s; recreating it", self.group, self.spec.stream)
            await self.intake.ensure_groups()
            self.intake.reset()
            return False
        fresh = [e for e in entries if (e.stream, e.id) not in self.active_ids]  # else just slow
        self.active_ids.update((e.stream, e.id) for e in fresh)  # from now on kept from peers
        self._start(fresh[:free])
        self.waiting += fresh[free:]
        return bool(entries)

    def _start(self, entries: list[Entry]) -> None:
        for entry in entries:
            key = (entry.stream, entry.id)
            task = asyncio.create_task(self._process(entry))
            self.in_flight.add(task)
            task.add_done_callback(self.in_flight.discard)
            task.add_done_callback(lambda _t, k=key: self.active_ids.discard(k))

    async def _reclaim(self, count: int) -> list[Entry]:
        """Take over entries another consumer has held too long (a crashed peer's work)."""
        entries = await self.intake.reclaim(count)
        if entries:
            self.metrics.reclaimed.labels(self.spec.component).inc(len(entries))
            log.info("reclaimed %d idle job(s) on %s", len(entries), self.spec.stream)
        return entries

    async def _process(self, entry: Entry) -> None:
        """Decide how one job ends: done, retry or dead."""
        try:
            envelope = unpack(entry.raw or b"")
        except DecodeError as exc:
            await self._dead(entry, None, "invalid_message", str(exc))
            return
        if entry.deliveries > self.settings.max_deliveries:
            message = f"gave up after {entry.deliveries - 1} deliveries"
            await self._dead(entry, envelope, "max_deliveries", message)
            return
        if envelope.deadline_s is not None and bus.now_s() > envelope.deadline_s:
            await self._refuse(entry, envelope, "expired", "not started before its deadline")
            return
        if await self._cancelled(envelope):
            await self._refuse(entry, envelope, "cancelled", "the turn was cancelled")
            return
        component = self.spec.component
        self.metrics.in_flight.labels(component).inc()
        started = time.perf_counter()
        try:
            async with asyncio.timeout(self.settings.job_timeout_s):
                await self._handle(entry, envelope)
        except Rejected as exc:
            await self._refuse(entry, envelope, "rejected", exc.message, exc.code)
        except JobFailed as exc:
            await self._dead(entry, envelope, exc.code, exc.message)
        except Exception as exc:  # transient or unexpected: try again, up to max_deliveries
            await self._retry(entry, envelope, exc)
        finally:
            self.metrics.in_flight.labels(component).dec()
        elapsed = time.perf_counter() - started
        self.metrics.job_seconds.labels(component).observe(elapsed)
        self._observe_rtf(envelope, elapsed)

    async def _handle(self, entry: Entry, envelope: Envelope) -> None:
        """Run the handler in a thread. A result marked ``last=False`` is published at once
        (streamed speech); the final one goes out with the ack in one transaction."""
        held: BaseModel | None = None  # a result that may be the final one
        seq = 0
        async for item in iterate_in_thread(self.spec.handle, envelope):
            if seq + (held is not None) > 0 and await self._cancelled(envelope):
                await self._refuse(entry, envelope, "cancelled", "the turn was cancelled")
                return
            if held is not None:
                await self._publish([envelope.reply(held, seq)], envelope)
                seq, held = seq + 1, None
            if getattr(item, "last", None) is False:
                await self._publish([envelope.reply(item, seq)], envelope)  # type: ignore[arg-type]
                seq += 1
            else:
                held = item  # type: ignore[assignment]
        final = [envelope.reply(held, seq)] if held is not None else []
        await self._finish(entry, final, "done", envelope)

    async def _publish(self, replies: list[Envelope], job: Envelope) -> None:
        if job.reply_to:
            await settle.send(self.redis, [(job.reply_to, reply) for reply in replies])

    async def _finish(
        self, entry: Entry, replies: list[Envelope], outcome: str, job: Envelope | None = None
    ) -> None:
        """Publish the last results, XACK and XDEL (``shared.settle``)."""
        await self._finishes.add(Finish(entry, replies, job))
        self.metrics.jobs.labels(self.spec.component, outcome).inc()

    async def _commit(self, finishes: list[Finish]) -> list[None]:
        """Settle every job finishing now together: each job's replies, XACK and XDEL."""
        replies = [
            (job.reply_to, reply)
            for _entry, job_replies, job in finishes
            if job is not None and job.reply_to
            for reply in job_replies
        ]
        await settle.settle(self.redis, self.group, replies, [f.entry for f in finishes])
        return [None] * len(finishes)

    async def _cancelled(self, job: Envelope) -> bool:
        """Whether ``job`` belongs to a session turn that has been cancelled (barge-in).

        Only jobs that name a session and a turn (``seq`` > 0) can be cancelled; the
        contract is ``streams.session_cancel`` (the newest cancelled turn of a session)."""
        if job.session is None or job.seq <= 0:
            return False
        marker = await self.redis.get(streams.session_cancel(job.session))
        return marker is not None and int(marker) >= job.seq

    async def _refuse(
        self, entry: Entry, job: Envelope, outcome: str, message: str, code: str = ""
    ) -> None:
        """End a job without running it (any further): acknowledge it and answer ``code``
        (by default ``outcome``), so a waiting requester hears at once. Leaving the handler's
        ``async for`` also closes its generator, which stops the model."""
        log.info("job %s (session %s, turn %d) %s: %s", job.id, job.session, job.seq, outcome,
                 code or message)  # fmt: skip
        error = ErrorResult(code=code or outcome, message=message, stage=self.spec.component)
        await self._finish(entry, [job.reply(error)], outcome, job)

    async def _retry(self, entry: Entry, envelope: Envelope, exc: Exception) -> None:
        reason = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
        if entry.deliveries >= self.settings.max_deliveries:
            await self._dead(entry, envelope, "failed", reason)
            return
        log.warning(
            "job %s failed (delivery %d), will retry: %s", envelope.id, entry.deliveries, reason
        )
        self.metrics.jobs.labels(self.spec.component, "retry").inc()

    async def _dead(self, entry: Entry, envelope: Envelope | None, code: str, message: str) -> None:
        """Copy the entry to the dead-letter stream, tell the requester, acknowledge it."""
        log.error("dead-lettering %s on %s: %s: %s", entry.id, entry.stream, code, message)
        copy: settle.DeadCopy = {
            b"e": entry.raw or b"",
            b"code": code,
            b"error": message[:2_000],
            b"source_id": entry.id,
            b"deliveries": entry.deliveries,
            b"consumer": self.info.name,
        }
        replies = []
        if envelope is not None and envelope.reply_to:
            error = ErrorResult(code=code, message=message, stage=self.spec.component)
            replies.append((envelope.reply_to, envelope.reply(error)))
        await settle.settle(self.redis, self.group, replies, [entry], copy)
        outcome = "invalid" if envelope is None else "dead"
        self.metrics.jobs.labels(self.spec.component, outcome).inc()

    def _observe_rtf(self, envelope: Envelope, elapsed_s: float) -> None:
        if not self.spec.audio_field:
            return
        audio = getattr(envelope.payload, self.spec.audio_field, None)
        fmt = getattr(envelope.payload, "audio_format", None)
        if isinstance(audio, bytes) and fmt is not None and audio:
            self.metrics.realtime_factor.labels(self.spec.component).observe(
                elapsed_s / fmt.duration_s(audio)
            )

    async def _heartbeat(self, stop: asyncio.Event) -> None:
        """Refresh the heartbeat, and keep in-flight jobs from looking idle to peers."""
        period_s = min(self.settings.heartbeat_interval_s, self.settings.claim_idle_ms / 3000)
        while not stop.is_set() and not self._ending:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), period_s)
            if self._ending:
                return
            self.info.in_flight = len(self.in_flight)
            try:
                await heartbeat.beat(self.redis, self.info, self.settings.heartbeat_ttl_s)
                await self.intake.touch(self.active_ids)
            except bus.TRANSIENT as exc:
                log.warning("heartbeat failed: %s", exc)

    async def _drain(self) -> None:
        """Let in-flight jobs finish within the grace period; the rest stay pending."""
        if not self.in_flight:
            return
        log.info("finishing %d job(s) before stopping", len(self.in_flight))
        _done, late = await asyncio.wait(self.in_flight, timeout=self.settings.shutdown_grace_s)
        for task in late:
            task.cancel()
        if late:
            await asyncio.wait(late)
            log.warning("%d job(s) left pending for another worker", len(late))


async def run_worker(
    redis: aioredis.Redis,
    spec: WorkerSpec,
    settings: WorkerSettings,
    metrics: WorkerMetrics,
    stop: asyncio.Event | None = None,
    burst: bool = False,
) -> None:
    """Run the consumer-group loop for one stage until stopped (or drained, in burst mode)."""
    worker = Worker(redis, spec, settings, metrics)
    await worker.run(stop or asyncio.Event(), burst=burst)
