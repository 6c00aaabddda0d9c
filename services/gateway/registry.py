"""Which workers are live, and which stream a request should go to."""

import time

import redis.asyncio as aioredis

from shared import heartbeat
from shared.heartbeat import WorkerInfo

OPENAI_STT_ALIASES = {"whisper-1", "", "default"}


class NoWorker(LookupError):
    """No live worker can take this request; ``status`` says how to answer."""

    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.message = message
        self.status = status


class Registry:
    """A short-lived cache over the heartbeat keys."""

    def __init__(self, redis: aioredis.Redis, cache_s: float) -> None:
        self.redis = redis
        self.cache_s = cache_s
        self._cached: list[WorkerInfo] = []
        self._cached_at = float("-inf")

    async def workers(self, fresh: bool = False) -> list[WorkerInfo]:
        """Live workers, at most ``cache_s`` old unless ``fresh``."""
        if fresh or time.monotonic() - self._cached_at > self.cache_s:
            self._cached = await heartbeat.live_workers(self.redis)
            self._cached_at = time.monotonic()
        return self._cached

    async def stt_worker(
        self, model: str, language: str | None, default_model: str, live: bool = False
    ) -> WorkerInfo:
        """A live STT worker for ``model`` (or an alias) that handles ``language``. An alias
        with no language sends a file to a multilingual model, which hears any language
        (English-only ones turn other speech into made-up English), and a live session's
        audio to the default model, which is faster."""
        live_workers = [w for w in await self.workers() if w.component == "stt"]
        if not live_workers:
            raise NoWorker("no speech-to-text worker is running", 503)
        served = sorted({w.model for w in live_workers})
        if model not in OPENAI_STT_ALIASES:
            chosen = [w for w in live_workers if w.model == model]
            if not chosen:
                raise NoWorker(f"model {model!r} is not served; served models: {served}", 400)
        elif language is None and not live:
            chosen = sorted(live_workers, key=lambda w: (len(w.languages) == 1, w.model))
        else:
            chosen = sorted(
                live_workers, key=lambda w: (w.model != default_model, len(w.languages) > 1)
            )
        fit = [w for w in chosen if language is None or language in w.languages]
        if not fit:
            raise NoWorker(
                f"no running model transcribes language {language!r}; served models: {served}",
                400,
            )
        return fit[0]
