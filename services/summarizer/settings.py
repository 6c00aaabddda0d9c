"""Summarizer worker settings (prefix ``SUM_``; the backend URL also reads ``LLM_BACKEND_URL``)."""

from pydantic import AliasChoices, Field, SecretStr
from pydantic_settings import SettingsConfigDict

from shared.settings import WorkerSettings


class SummarizerSettings(WorkerSettings):
    model_config = SettingsConfigDict(env_prefix="SUM_", extra="ignore", populate_by_name=True)

    backend_url: str = Field(
        "",
        validation_alias=AliasChoices(
            "SUM_BACKEND_URL", "sum_backend_url", "LLM_BACKEND_URL", "llm_backend_url"
        ),
        description="OpenAI-compatible LLM server for abstractive summaries "
        "(e.g. http://127.0.0.1:8080/v1; LLM_BACKEND_URL also works); empty: extractive",
    )
    backend_model: str = Field(
        "",
        max_length=256,
        description="model name sent to the LLM server; empty takes the first its /models lists",
    )
    backend_api_key: SecretStr = Field(
        SecretStr(""), description="bearer token for the LLM server, if it needs one"
    )
    backend_timeout_s: float = Field(
        60.0, gt=0, le=600, description="longest wait for the LLM server's answer"
    )
    max_tokens: int = Field(
        512, ge=16, le=32_768, description="longest abstractive summary, in tokens"
    )
    temperature: float = Field(0.2, ge=0, le=2, description="LLM sampling temperature")
    llm_input_chars: int = Field(
        12_000,
        ge=500,
        le=1_000_000,
        description="longer texts are first cut down extractively to fit the LLM's context",
    )
    default_max_sentences: int = Field(
        5, ge=1, le=200, description="summary length when a request names none"
    )
    max_text_chars: int = Field(
        200_000, ge=1, le=200_000, description="longer requests are refused as text_too_long"
    )
