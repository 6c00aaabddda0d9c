"""``python -m services.gateway``: serve the gateway with uvicorn."""

import asyncio
import logging
import sys

import uvicorn

from services.gateway import auth, redaction
from services.gateway.app import create_app
from services.gateway.deadlines import with_head_deadline
from services.gateway.settings import GatewaySettings
from shared import bus
from shared.admin import keystore
from shared.settings import configure_logging

log = logging.getLogger("services.gateway")
MAX_HEAD_BYTES = 64 * 1024  # a request line and headers; keys and SDP travel in bodies


async def _stored_keys(settings: GatewaySettings) -> int:
    redis = await bus.connect(settings)
    try:
        return await keystore.count(redis)
    finally:
        await redis.aclose()


def check_exposure(settings: GatewaySettings) -> str | None:
    """Why the gateway must not start (exposed without any API key), or None."""
    if auth.startup_problem(settings, 0) is None:
        return None  # loopback, or a key in the settings: no need to ask Redis
    try:
        stored = asyncio.run(_stored_keys(settings))
    except bus.TRANSIENT as exc:
        return f"cannot check for API keys in Redis ({exc}); refusing to serve on {settings.host}"
    return auth.startup_problem(settings, stored)


def main() -> None:
    redaction.install()  # before anything logs: keys in URLs, headers and messages
    settings = GatewaySettings()
    configure_logging(settings.log_level)
    problem = check_exposure(settings)
    if problem is not None:
        log.error("%s", problem)
        sys.exit(2)
    uvicorn.run(
        create_app(settings),
        host=settings.host,
        port=settings.port,
        log_level=settings.log_level.lower(),
        timeout_graceful_shutdown=10,
        timeout_keep_alive=settings.keep_alive_timeout_s,
        http=with_head_deadline(settings.header_timeout_s, MAX_HEAD_BYTES),
        # A socket message larger than an audio chunk may be is refused by uvicorn itself,
        # before it is buffered (its default would take 16 MiB).
        ws_max_size=settings.live_max_chunk_bytes + 64 * 1024,
    )


if __name__ == "__main__":
    main()
