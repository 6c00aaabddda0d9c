"""MT worker settings (prefix ``MT_``)."""

from typing import Annotated, Literal

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from shared.settings import WorkerSettings

Pair = Annotated[str, Field(pattern=r"^[a-z]{2,3}-[a-z]{2,3}$")]
Language = Annotated[str, Field(pattern=r"^[a-z]{2,3}$")]


class MtSettings(WorkerSettings):
    model_config = SettingsConfigDict(env_prefix="MT_", extra="ignore", populate_by_name=True)

    engine: Literal["bergamot", "ctranslate2"] = Field(
        "bergamot",
        description="translation engine: 'bergamot' bundles EN<->PT-BR; 'ctranslate2' runs "
        "the model in MT_MODEL_DIR",
    )
    pairs: list[Pair] = Field(
        default_factory=list,
        description='pairs to serve, e.g. ["en-pt"]; empty serves every bundled pair '
        "(bergamot); required for ctranslate2",
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
    max_sentence_chars: int = Field(
        400,
        ge=20,
        le=5_000,
        description="longer sentence pieces are cut at spaces (a longer word too): a model's "
        "time grows faster than its input",
    )
    # The fields below are read by the 'ctranslate2' engine only.
    model_dir: str = Field(
        "", description="CTranslate2 translation model directory (OPUS-MT, NLLB conversions)"
    )
    source_spm: str = Field(
        "",
        description="source SentencePiece model, a name in MT_MODEL_DIR or a path; empty: "
        "source.spm, else sentencepiece.bpe.model, else sentencepiece.model in MT_MODEL_DIR",
    )
    target_spm: str = Field(
        "",
        description="target SentencePiece model, a name in MT_MODEL_DIR or a path; empty: "
        "target.spm in MT_MODEL_DIR, else the source model (one shared vocabulary)",
    )
    language_tokens: dict[Language, str] = Field(
        default_factory=dict,
        description='for many-to-many models (NLLB): token per language, e.g. {"en": '
        '"eng_Latn", "pt": "por_Latn"}; the source\'s token starts the input, the '
        "target's starts the output; empty for one-pair models (OPUS-MT)",
    )
    compute_type: str = Field("int8", description="CTranslate2 compute type")
    cpu_threads: int = Field(2, ge=1, le=64, description="threads per model call")
    beam_size: int = Field(2, ge=1, le=10, description="beam width; 1 is greedy")
    batch_size: int = Field(
        16, ge=1, le=1024, description="most sentences decoded together in one model call"
    )
