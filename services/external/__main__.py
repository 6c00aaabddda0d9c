"""``python -m services.external``: serve job streams through registered HTTP servers."""

from services.external.adapter import Adapter
from services.external.settings import ExternalSettings
from shared.multi import serve_process
from shared.settings import configure_logging


def main() -> None:
    settings = ExternalSettings()
    configure_logging(settings.log_level)
    serve_process(
        settings, lambda redis, metrics, stop: Adapter(redis, settings, metrics).run(stop)
    )


if __name__ == "__main__":
    main()
