"""``python -m services.external``: serve job streams through registered HTTP servers."""

import asyncio
import signal

from prometheus_client import REGISTRY, start_http_server

from services.external.adapter import Adapter
from services.external.settings import ExternalSettings
from shared import bus
from shared.metrics import worker_metrics
from shared.settings import configure_logging


def main() -> None:
    settings = ExternalSettings()
    configure_logging(settings.log_level)
    if settings.metrics_port:
        start_http_server(settings.metrics_port)
    metrics = worker_metrics(REGISTRY)

    async def run() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        redis = await bus.connect(settings)
        try:
            await Adapter(redis, settings, metrics).run(stop)
        finally:
            await redis.aclose()

    asyncio.run(run())


if __name__ == "__main__":
    main()
