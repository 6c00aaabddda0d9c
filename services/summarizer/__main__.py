"""``python -m services.summarizer``: set up the engine, then serve the summarizer stream."""

from functools import partial

from services.summarizer.handler import handle
from services.summarizer.model import load_model
from services.summarizer.settings import SummarizerSettings
from shared import streams
from shared.multi import serve_many
from shared.settings import configure_logging
from shared.worker import WorkerSpec


def main() -> None:
    settings = SummarizerSettings()
    configure_logging(settings.log_level)
    model = load_model(settings)
    spec = WorkerSpec(
        component="summarizer",
        stream=streams.jobs("summarizer", model.name),
        handle=partial(handle, model, settings),
        model=model.name,
    )
    try:
        serve_many([(spec, settings)], settings)
    finally:
        model.close()


if __name__ == "__main__":
    main()
