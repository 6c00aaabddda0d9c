"""The worker deployments the manifests describe, and each one's settings prefix, read from
the settings classes themselves (so a renamed prefix breaks the deploy tests, not a copy)."""

from pydantic_settings import BaseSettings

from services.external.settings import ExternalSettings
from services.llm.settings import LlmSettings
from services.mt.settings import MtSettings
from services.speaker.settings import SpeakerSettings
from services.stt.settings import SttSettings
from services.summarizer.settings import SummarizerSettings
from services.tts.settings import TtsSettings

SETTINGS: dict[str, type[BaseSettings]] = {
    "stt": SttSettings,
    "mt": MtSettings,
    "tts": TtsSettings,
    "summarizer": SummarizerSettings,
    "llm": LlmSettings,
    "speaker": SpeakerSettings,
    "external": ExternalSettings,
}
WORKERS = tuple(SETTINGS)
# e.g. "llm" -> "LLM": LLM_METRICS_PORT, LLM_SHUTDOWN_GRACE_S, ...
ENV_PREFIX = {
    name: str(cls.model_config["env_prefix"]).rstrip("_") for name, cls in SETTINGS.items()
}
