"""TTS worker settings (prefix ``TTS_``)."""

from typing import Literal

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from shared.settings import WorkerSettings


class TtsSettings(WorkerSettings):
    model_config = SettingsConfigDict(env_prefix="TTS_", extra="ignore", populate_by_name=True)

    engine: Literal["piper", "espeak", "coqui"] = Field(
        "piper", description="piper (neural, bundled joe), espeak (espeak-ng) or coqui (local)"
    )
    voice_path: str = Field(
        "", description="Piper .onnx voice (its .onnx.json beside it); empty uses the bundled joe"
    )
    voice_name: str = Field(
        "",
        max_length=64,
        description="name a piper/coqui voice is served as; empty uses the file's or dir's name",
    )
    cpu_threads: int = Field(
        2, ge=1, le=64, description="ONNX Runtime (piper) or torch (coqui) threads per synthesis"
    )
    max_text_chars: int = Field(
        20_000, ge=1, le=20_000, description="longer requests are refused as text_too_long"
    )
    espeak_voice: str = Field(
        "pt-br,es,de,fr-fr",
        max_length=512,
        description="espeak-ng voice(s), comma-separated (pt-br,es,de); each served as espeak-<v>",
    )
    espeak_wpm: int = Field(
        175, ge=80, le=450, description="espeak-ng words per minute at speed 1.0"
    )
    coqui_model_dir: str = Field(
        "", description="Coqui TTS model folder holding config.json and model.pth"
    )
    coqui_language: str = Field(
        "",
        max_length=16,
        description="ISO language of the Coqui voice; empty reads the config's phoneme_language",
    )
