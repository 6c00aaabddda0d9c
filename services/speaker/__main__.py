"""``python -m services.speaker``: load the encoder and the VAD, then serve the speaker stream."""

from functools import partial

from services.speaker.handler import handle
from services.speaker.model import SpeakerModel, load_model
from services.speaker.settings import SpeakerSettings
from shared import streams
from shared.multi import serve_many
from shared.settings import configure_logging
from shared.worker import WorkerSpec


def worker_spec(model: SpeakerModel, settings: SpeakerSettings) -> WorkerSpec:
    """What a speaker worker serves and advertises."""
    return WorkerSpec(
        component="speaker",
        stream=streams.jobs("speaker", model.name),
        handle=partial(handle, model, settings),
        model=model.name,
        audio_field="audio",
    )


def main() -> None:
    settings = SpeakerSettings()
    configure_logging(settings.log_level)
    model = load_model(settings)
    serve_many([(worker_spec(model, settings), settings)], settings)


if __name__ == "__main__":
    main()
