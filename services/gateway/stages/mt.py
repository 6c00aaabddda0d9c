"""Translation through the bus: pick the stream serving a language pair, send the job.

A long text goes as several jobs of at most ``mt_max_job_chars``, cut at sentence ends, and
only ``mt_jobs_in_flight`` of a request's jobs wait on the stream at once: a job stream is
served in order, so another client's short text waits behind a few of them, never behind
the whole of a long one.
"""

import asyncio

from services.gateway.core import Core, call, check_text
from services.gateway.errors import GatewayError
from services.gateway.stages.workers import live_workers
from shared import streams
from shared.heartbeat import WorkerInfo
from shared.messages import TranslateRequest, Translation
from shared.textsplit import bounded_chunks


def pair_of(worker: WorkerInfo) -> str:
    """The pair an MT worker serves, read from the stream it consumes (``en-pt``)."""
    return streams.variant(worker.stream)


async def served_pairs(core: Core) -> list[str]:
    """Pairs some live MT worker serves; 503 if no MT worker is running at all."""
    live = await live_workers(core, "mt", "translation")
    return sorted({pair_of(w) for w in live})


async def _translate_job(core: Core, text: str, source: str, target: str) -> Translation:
    payload = TranslateRequest(text=text, source=source, target=target)
    result = await call(core, streams.jobs("mt", f"{source}-{target}"), payload, "mt")
    if not isinstance(result, Translation):
        raise GatewayError(502, f"mt answered with {getattr(result, 'kind', '?')!r}", "bad_reply")
    return result


async def _translate_all(
    core: Core, texts: list[str], source: str, target: str
) -> list[Translation]:
    """Each text's translation, in order, with at most ``mt_jobs_in_flight`` jobs at once."""
    done: list[Translation | None] = [None] * len(texts)
    todo = iter(enumerate(texts))

    async def lane() -> None:
        for index, text in todo:  # the lanes share one iterator: each takes the next text
            done[index] = await _translate_job(core, text, source, target)

    width = min(len(texts), core.settings.mt_jobs_in_flight)
    lanes = [asyncio.create_task(lane()) for _ in range(width)]
    try:
        await asyncio.gather(*lanes)
    finally:
        for task in lanes:  # one job failed: the others stop taking new ones
            task.cancel()
    return [t for t in done if t is not None]


async def translate(core: Core, text: str, source: str, target: str) -> Translation:
    """Translate ``text`` from ``source`` to ``target`` on workers serving that pair."""
    check_text(text)
    pair = f"{source}-{target}"
    served = await served_pairs(core)
    if pair not in served:
        message = f"language pair {pair!r} is not served; served pairs: {served}"
        raise GatewayError(400, message, "unsupported_pair")
    chunks = bounded_chunks(text, core.settings.mt_max_job_chars)
    if len(chunks) <= 1:
        return await _translate_job(core, text, source, target)
    parts = await _translate_all(core, [chunk for chunk, _sep in chunks], source, target)
    return Translation(
        text="".join(t.text + sep for t, (_chunk, sep) in zip(parts, chunks, strict=True)),
        source=source,
        target=target,
        model=parts[0].model,
        processing_s=sum(t.processing_s for t in parts),
    )
