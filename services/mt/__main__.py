"""``python -m services.mt``: load the model, then serve one stream per translation pair."""

from functools import partial

from pydantic import ValidationError

from services.mt.handler import handle
from services.mt.model import ModelError, MtModel, load_model
from services.mt.settings import MtSettings
from shared import streams
from shared.multi import Loop, named, serve_many
from shared.settings import configure_logging
from shared.worker import WorkerSpec


def loops(model: MtModel, settings: MtSettings) -> list[Loop]:
    """One worker loop per served pair, each with its own heartbeat name."""
    handler = partial(handle, model, settings)
    return [
        (
            WorkerSpec(
                component="mt",
                stream=streams.jobs("mt", pair),
                handle=handler,
                model=model.name(pair),
                languages=pair.split("-"),
            ),
            named(settings, pair),
        )
        for pair in model.pairs
    ]


def main() -> None:
    # A misconfigured worker exits with one clear message, not a traceback.
    try:
        settings = MtSettings()
    except ValidationError as exc:
        raise SystemExit(f"mt: invalid settings: {exc}") from None
    configure_logging(settings.log_level)
    try:
        model = load_model(settings)
    except ModelError as exc:
        raise SystemExit(f"mt: cannot load the model: {exc}") from None
    serve_many(loops(model, settings), settings)


if __name__ == "__main__":
    main()
