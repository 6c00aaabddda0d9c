"""TTS worker settings (prefix ``TTS_``)."""

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from shared.settings import WorkerSettings


class TtsSettings(WorkerSettings):
    model_config = SettingsConfigDict(env_prefix="TTS_", extra="ignore", populate_by_name=True)

    voice_path: str = Field(
        "", description="Piper .onnx voice (its .onnx.json beside it); empty uses the bundled joe"
    )
    voice_name: str = Field(
        "", max_length=64, description="name the voice is served as; empty uses the file's stem"
    )
    cpu_threads: int = Field(2, ge=1, le=64, description="ONNX Runtime threads per synthesis")
    max_text_chars: int = Field(
        20_000, ge=1, le=20_000, description="longer requests are refused as text_too_long"
    )
