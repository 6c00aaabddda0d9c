"""``python -m services.llm``: load the LLM (or connect its backend), then serve."""

import logging
from functools import partial

from services.llm.handler import handle
from services.llm.model import load_model
from services.llm.settings import LlmSettings, legacy_variables
from shared import streams
from shared.multi import serve_many
from shared.settings import configure_logging
from shared.worker import WorkerSpec

COMPONENT = "llm"


def main() -> None:
    settings = LlmSettings()
    configure_logging(settings.log_level)
    if renamed := legacy_variables():
        logging.getLogger(__name__).warning(
            "%s: read as LLM_* (the stage is llm now); rename them", ", ".join(renamed)
        )
    model = load_model(settings)
    spec = WorkerSpec(
        component=COMPONENT,
        stream=streams.jobs(COMPONENT, model.name),
        handle=partial(handle, model, settings),
        model=model.name,
    )
    serve_many([(spec, settings)], settings)


if __name__ == "__main__":
    main()
