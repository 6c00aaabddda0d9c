"""``python -m services.tts``: load the voice(s), then serve one TTS stream per voice."""

import asyncio
from functools import partial

import redis.asyncio as aioredis

from services.tts.engine import TtsEngine
from services.tts.handler import handle
from services.tts.model import load_models
from services.tts.settings import TtsSettings
from shared import streams
from shared.metrics import WorkerMetrics
from shared.multi import named, serve_process
from shared.settings import configure_logging
from shared.worker import Worker, WorkerSpec


def worker_spec(engine: TtsEngine, settings: TtsSettings) -> WorkerSpec:
    """What a worker for one voice serves; its heartbeat says which engine speaks it."""
    return WorkerSpec(
        component="tts",
        stream=streams.jobs("tts", engine.name),
        handle=partial(handle, engine, settings),
        model=engine.name,
        languages=engine.languages,
        extra={"engine": engine.engine},  # GET /v1/voices shows it
    )


def voice_worker(
    redis: aioredis.Redis,
    engine: TtsEngine,
    settings: TtsSettings,
    metrics: WorkerMetrics,
    several: bool,
) -> Worker:
    """A consumer-group loop for one voice."""
    # Each loop of a process needs its own consumer name (and heartbeat key).
    loop_settings = named(settings, engine.name) if several else settings
    return Worker(redis, worker_spec(engine, settings), loop_settings, metrics)


async def serve_voices(
    redis: aioredis.Redis,
    engines: list[TtsEngine],
    settings: TtsSettings,
    metrics: WorkerMetrics,
    stop: asyncio.Event,
    burst: bool = False,
) -> None:
    """Serve every loaded voice until ``stop``; if one loop fails, all stop."""
    several = len(engines) > 1
    workers = [voice_worker(redis, e, settings, metrics, several) for e in engines]
    async with asyncio.TaskGroup() as group:
        for worker in workers:
            group.create_task(worker.run(stop, burst=burst))


def main() -> None:
    settings = TtsSettings()
    configure_logging(settings.log_level)
    engines = load_models(settings)
    serve_process(
        settings, lambda redis, metrics, stop: serve_voices(redis, engines, settings, metrics, stop)
    )


if __name__ == "__main__":
    main()
