"""MT worker settings (prefix ``MT_``)."""

from typing import Annotated, Literal

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from shared.settings import WorkerSettings

Pair = Annotated[str, Field(pattern=r"^[a-z]{2,3}-[a-z]{2,3}$")]


class MtSettings(WorkerSettings):
    model_config = SettingsConfigDict(env_prefix="MT_", extra="ignore", populate_by_name=True)

    # One value today; 'ctranslate2' would add a value here and a loader in model.py.
    engine: Literal["bergamot"] = Field(
        "bergamot", description="translation engine; 'bergamot' bundles EN<->PT-BR"
    )
    pairs: list[Pair] = Field(
        default_factory=list,
        description='pairs to serve, e.g. ["en-pt"]; empty serves every bundled pair',
    )
    cache_size: int = Field(
        256, ge=1, le=1_000_000, description="sentence translations remembered per process"
    )
    max_sentence_words: int = Field(
        60,
        ge=5,
        le=200,
        description="longer sentences are cut up; Bergamot truncates inputs past ~90 words",
    )
