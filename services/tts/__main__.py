"""``python -m services.tts``: load the voice, then serve the TTS stream."""

from functools import partial

from services.tts.handler import handle
from services.tts.model import load_model
from services.tts.settings import TtsSettings
from shared import streams
from shared.multi import serve_many
from shared.settings import configure_logging
from shared.worker import WorkerSpec


def main() -> None:
    settings = TtsSettings()
    configure_logging(settings.log_level)
    model = load_model(settings)
    spec = WorkerSpec(
        component="tts",
        stream=streams.jobs("tts", model.name),
        handle=partial(handle, model, settings),
        model=model.name,
        languages=model.languages,
    )
    serve_many([(spec, settings)], settings)


if __name__ == "__main__":
    main()
