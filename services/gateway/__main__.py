"""``python -m services.gateway``: serve the gateway with uvicorn."""

import uvicorn

from services.gateway.app import create_app
from services.gateway.settings import GatewaySettings
from shared.settings import configure_logging


def main() -> None:
    settings = GatewaySettings()
    configure_logging(settings.log_level)
    uvicorn.run(
        create_app(settings),
        host=settings.host,
        port=settings.port,
        log_level=settings.log_level.lower(),
        timeout_graceful_shutdown=10,
    )


if __name__ == "__main__":
    main()
