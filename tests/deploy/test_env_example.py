""".env.example documents every variable any PyParrot process reads."""

from pathlib import Path

import pytest
from pydantic_settings import BaseSettings

from pyparrot.settings import CliSettings
from services.external.settings import ExternalSettings
from services.gateway.settings import GatewaySettings
from services.llm.settings import LlmSettings
from services.mt.settings import MtSettings
from services.speaker.settings import SpeakerSettings
from services.stt.settings import SttSettings
from services.summarizer.settings import SummarizerSettings
from services.tts.settings import TtsSettings

ENV_EXAMPLE = Path(__file__).parents[2] / ".env.example"


def env_names(cls: type[BaseSettings]) -> list[str]:
    prefix = cls.model_config.get("env_prefix", "")
    names = []
    for name, field in cls.model_fields.items():
        alias = field.validation_alias
        names.append(alias.choices[0] if alias is not None else f"{prefix}{name}".upper())  # type: ignore[union-attr]
    return names


SETTINGS = [
    SttSettings,
    MtSettings,
    TtsSettings,
    SummarizerSettings,
    LlmSettings,
    SpeakerSettings,
    ExternalSettings,
    GatewaySettings,
    CliSettings,
]


@pytest.mark.parametrize("cls", SETTINGS)
def test_every_setting_is_documented(cls: type[BaseSettings]) -> None:
    documented = {
        line.lstrip("# ").split("=", 1)[0]
        for line in ENV_EXAMPLE.read_text().splitlines()
        if "=" in line
    }
    assert set(env_names(cls)) <= documented, set(env_names(cls)) - documented


@pytest.mark.parametrize("cls", SETTINGS)
def test_every_setting_has_a_description(cls: type[BaseSettings]) -> None:
    assert [n for n, f in cls.model_fields.items() if not f.description] == []
