"""The ``info`` answer to ``describe``, built from the workers that are live right now."""

from importlib import metadata

from wyoming.info import AsrModel, AsrProgram, Attribution, Info, TtsProgram, TtsVoice

from shared.heartbeat import WorkerInfo

PROGRAM = "pyparrot"  # a client may name the program instead of a model: means "default"
PYPARROT = Attribution(name="PyParrot", url="")  # no public home page to point to yet
WHISPER = Attribution(name="OpenAI Whisper", url="https://github.com/openai/whisper")
PIPER = Attribution(name="Piper", url="https://github.com/OHF-Voice/piper1-gpl")


def _version() -> str | None:
    try:
        return metadata.version("pyparrot")
    except metadata.PackageNotFoundError:
        return None


def languages_by_model(workers: list[WorkerInfo], component: str) -> dict[str, list[str]]:
    """Each served model of ``component`` with the union of its replicas' languages."""
    served: dict[str, set[str]] = {}
    for worker in workers:
        if worker.component == component and worker.model:
            served.setdefault(worker.model, set()).update(worker.languages)
    return {model: sorted(langs) for model, langs in sorted(served.items())}


def build_info(workers: list[WorkerInfo]) -> Info:
    """Programs only for stages with a live worker, so Home Assistant offers what works."""
    version = _version()
    stt = languages_by_model(workers, "stt")
    tts = languages_by_model(workers, "tts")
    asr = [
        AsrProgram(
            name=PROGRAM,
            attribution=PYPARROT,
            installed=True,
            description="PyParrot speech-to-text (faster-whisper workers)",
            version=version,
            models=[
                AsrModel(
                    name=model,
                    attribution=WHISPER,
                    installed=True,
                    description=f"Whisper {model}",
                    version=None,
                    languages=langs,
                )
                for model, langs in stt.items()
            ],
            supports_transcript_streaming=True,
        )
    ]
    voices = [
        TtsVoice(
            name=voice,
            attribution=PIPER,
            installed=True,
            description=f"Piper {voice}",
            version=None,
            languages=langs,
        )
        for voice, langs in tts.items()
    ]
    programs = [
        TtsProgram(
            name=PROGRAM,
            attribution=PYPARROT,
            installed=True,
            description="PyParrot text-to-speech (Piper workers)",
            version=version,
            voices=voices,
        )
    ]
    return Info(asr=asr if stt else [], tts=programs if tts else [])
