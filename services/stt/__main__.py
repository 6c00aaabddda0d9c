"""``python -m services.stt``: load the model, then serve the STT stream."""

from functools import partial

from services.stt.handler import handle
from services.stt.model import SttModel, load_model
from services.stt.settings import SttSettings
from shared import streams
from shared.multi import serve_many
from shared.settings import configure_logging
from shared.worker import WorkerSpec


def worker_spec(model: SttModel, settings: SttSettings) -> WorkerSpec:
    """What an STT worker serves: its model's stream, and that stream's background lane."""
    return WorkerSpec(
        component="stt",
        stream=streams.jobs("stt", model.name),
        handle=partial(handle, model, settings),
        model=model.name,
        languages=model.languages,
        audio_field="audio",
        background_lane=True,  # live partials wait there, behind finals and file jobs
    )


def main() -> None:
    settings = SttSettings()
    configure_logging(settings.log_level)
    model = load_model(settings)
    serve_many([(worker_spec(model, settings), settings)], settings)


if __name__ == "__main__":
    main()
