"""The Wyoming TCP listener, started and stopped with the gateway's lifespan."""

import asyncio
import logging
from functools import partial

from wyoming.server import AsyncTcpServer

from services.gateway.core import Core
from services.gateway.wyoming.handler import WyomingHandler

log = logging.getLogger(__name__)


class WyomingServer:
    """Accepts Wyoming clients; each connection runs its own handler task."""

    def __init__(self, core: Core, host: str, port: int) -> None:
        self.core = core
        self.host = host
        self.port = port
        self._tcp = AsyncTcpServer(host, port)
        self._live: set[asyncio.Task[None]] = set()

    async def start(self) -> None:
        """Listen; returns once the socket is bound (an address in use raises here)."""
        await self._tcp.start(partial(WyomingHandler, core=self.core, live=self._live))
        log.info("wyoming server listening on tcp://%s:%d", self.host, self.port)

    async def stop(self) -> None:
        """Stop listening and end every connection, including jobs still in flight."""
        await self._tcp.stop()
        tasks = list(self._live)
        for task in tasks:
            task.cancel()  # a handler may be waiting on a job for minutes
        await asyncio.gather(*tasks, return_exceptions=True)


async def start_wyoming(core: Core) -> WyomingServer | None:
    """Start the server when ``wyoming_port`` is set; None when it is disabled."""
    if not core.settings.wyoming_port:
        return None
    server = WyomingServer(core, core.settings.wyoming_host, core.settings.wyoming_port)
    await server.start()
    return server
