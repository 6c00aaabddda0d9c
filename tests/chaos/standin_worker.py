"""``python -m tests.chaos.standin_worker``: a real worker process (the shared loop, heartbeat,
signals) serving ``stt``/``tiny.en`` with a stand-in handler, for plumbing chaos tests.

The handler answers with the prompt and the audio's duration after ``STANDIN_HANDLE_MS``; a
job whose prompt is ``poison`` always fails (so it is retried, then dead-lettered).
"""

import time
from collections.abc import Iterator

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from shared import streams
from shared.messages import Envelope, Segment, TranscribeRequest, Transcript
from shared.multi import serve_many
from shared.settings import WorkerSettings, configure_logging
from shared.worker import WorkerSpec

STREAM = streams.jobs("stt", "tiny.en")


class StandinSettings(WorkerSettings):
    model_config = SettingsConfigDict(env_prefix="STANDIN_", extra="ignore", populate_by_name=True)

    handle_ms: int = Field(50, ge=0, le=60_000, description="time each job takes")


def transcribe(envelope: Envelope, handle_ms: int) -> Iterator[Transcript]:
    """Stand-in STT: waits ``handle_ms``, reports the duration; ``poison`` always fails."""
    req = envelope.payload
    assert isinstance(req, TranscribeRequest)
    if req.prompt == "poison":
        raise RuntimeError("poison job: this handler always fails on it")
    time.sleep(handle_ms / 1000)
    duration = req.audio_format.duration_s(req.audio)
    text = f"{req.prompt or ''} {duration:.2f} seconds".lstrip()  # the prompt tells requests apart
    segment = Segment(id=0, start_s=0.0, end_s=duration, text=text)
    yield Transcript(
        text=text, language="en", duration_s=duration, segments=[segment], model="tiny.en"
    )


def main() -> None:
    settings = StandinSettings()
    configure_logging(settings.log_level)
    spec = WorkerSpec(
        component="stt",
        stream=STREAM,
        handle=lambda job: transcribe(job, settings.handle_ms),
        model="tiny.en",
        languages=["en"],
    )
    serve_many([(spec, settings)], settings)


if __name__ == "__main__":
    main()
