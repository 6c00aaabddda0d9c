"""Translation through the bus: pick the stream serving a language pair, send the job."""

from services.gateway.core import Core, GatewayError, call, check_text, live_workers
from shared import streams
from shared.heartbeat import WorkerInfo
from shared.messages import TranslateRequest, Translation

_PAIR_STREAM_PREFIX = streams.jobs("mt", "")


def pair_of(worker: WorkerInfo) -> str:
    """The pair an MT worker serves, read from the stream it consumes (``en-pt``)."""
    return worker.stream.removeprefix(_PAIR_STREAM_PREFIX)


async def served_pairs(core: Core) -> list[str]:
    """Pairs some live MT worker serves; 503 if no MT worker is running at all."""
    live = await live_workers(core, "mt", "translation")
    return sorted({pair_of(w) for w in live})


async def translate(core: Core, text: str, source: str, target: str) -> Translation:
    """Translate ``text`` from ``source`` to ``target`` on a worker serving that pair."""
    check_text(text)
    pair = f"{source}-{target}"
    served = await served_pairs(core)
    if pair not in served:
        message = f"language pair {pair!r} is not served; served pairs: {served}"
        raise GatewayError(400, message, "unsupported_pair")
    payload = TranslateRequest(text=text, source=source, target=target)
    result = await call(core, streams.jobs("mt", pair), payload, "mt")
    if not isinstance(result, Translation):
        raise GatewayError(502, f"mt answered with {getattr(result, 'kind', '?')!r}", "bad_reply")
    return result
