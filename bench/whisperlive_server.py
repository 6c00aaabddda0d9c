"""WhisperLive's server, as its own ``run_server.py`` starts it (not shipped in the wheel).

Run by the interpreter of WhisperLive's private venv (``bench/whisperlive.py``), never
imported by PyParrot. Two settings WhisperLive does not expose are pinned here so every
system in the benchmark decodes alike: ``cpu_threads`` (WhisperLive leaves CTranslate2's
default) and ``beam_size`` (WhisperLive's transcriber defaults to 5). Everything else,
including its temperature fallback and per-decode VAD, is WhisperLive's own.
"""

import argparse
import functools

from whisper_live.backend import faster_whisper_backend
from whisper_live.server import TranscriptionServer
from whisper_live.transcriber.transcriber_faster_whisper import WhisperModel


def pinned_model(cpu_threads: int, beam_size: int) -> type[WhisperModel]:
    """WhisperLive's model class with the thread count and beam width fixed."""

    class Pinned(WhisperModel):  # type: ignore[misc,valid-type]
        def __init__(self, *args: object, **kwargs: object) -> None:
            kwargs["cpu_threads"] = cpu_threads
            super().__init__(*args, **kwargs)

        @functools.wraps(WhisperModel.transcribe)
        def transcribe(self, *args: object, **kwargs: object) -> object:
            kwargs["beam_size"] = beam_size
            return super().transcribe(*args, **kwargs)

    return Pinned


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--model", required=True, help="a CTranslate2 Whisper directory")
    parser.add_argument("--cpu-threads", type=int, default=2)
    parser.add_argument("--beam-size", type=int, default=1)
    parser.add_argument("--max-clients", type=int, default=4)
    args = parser.parse_args()
    faster_whisper_backend.WhisperModel = pinned_model(args.cpu_threads, args.beam_size)
    TranscriptionServer().run(
        "127.0.0.1",
        port=args.port,
        backend="faster_whisper",
        faster_whisper_custom_model_path=args.model,
        single_model=True,  # run_server.py's default: one model shared by every client
        max_clients=args.max_clients,
        max_connection_time=3_600,
    )


if __name__ == "__main__":
    main()
