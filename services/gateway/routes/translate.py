"""``POST /v1/translate``: text in one language to another, through an MT worker."""

from typing import Annotated

from fastapi import APIRouter, Depends
from pydantic import BaseModel, ConfigDict, Field, field_validator

from services.gateway.core import Core, get_core
from services.gateway.stages.mt import translate as run_translation

router = APIRouter(prefix="/v1", tags=["translation"])

MAX_TEXT_CHARS = 20_000  # the wire contract's limit (messages.TranslateRequest.text)
Language = Annotated[
    str,
    Field(min_length=2, max_length=8, pattern=r"^[A-Za-z]{2,3}([-_][A-Za-z0-9]{2,8})?$"),
]


class TranslateBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    text: str = Field(min_length=1, max_length=MAX_TEXT_CHARS, description="text to translate")
    source: Language = Field(description="ISO 639-1 code of the text, e.g. 'en' (or 'pt-BR')")
    target: Language = Field(description="ISO 639-1 code to translate into, e.g. 'pt'")

    @field_validator("text")
    @classmethod
    def _not_blank(cls, text: str) -> str:
        if not text.strip():
            raise ValueError("text is empty (only whitespace)")
        return text

    @field_validator("source", "target")
    @classmethod
    def _base_language(cls, code: str) -> str:
        # Workers serve base languages: 'pt-BR' and 'pt_br' both mean 'pt'.
        return code.replace("_", "-").split("-", 1)[0].lower()


class TranslateResult(BaseModel):
    translation: str
    source: str
    target: str


@router.post("/translate", summary="Translate text between two languages")
async def translate(
    core: Annotated[Core, Depends(get_core)], body: TranslateBody
) -> TranslateResult:
    result = await run_translation(core, body.text, body.source, body.target)
    return TranslateResult(translation=result.text, source=result.source, target=result.target)
