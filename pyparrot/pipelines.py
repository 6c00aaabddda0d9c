"""Pipeline configurations: ``configure`` writes ``$PYPARROT_HOME/NAME/.env``.

A configuration is validated as a whole before anything is written, and the file is
written to a temporary name and renamed, so a refused or interrupted ``configure``
leaves nothing half-written.
"""

import os
import re
from pathlib import Path
from typing import Literal
from urllib.parse import urlparse

from dotenv import dotenv_values
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

PipelineType = Literal["end2end", "cascaded", "LT.2025", "dialog", "BOOM"]
Backends = Literal["local", "distributed", "external"]
PIPELINE_TYPES: tuple[str, ...] = ("end2end", "cascaded", "LT.2025", "dialog", "BOOM")

# Backends an `external` pipeline must have URLs for.
REQUIRED_BACKENDS: dict[str, tuple[str, ...]] = {
    "end2end": ("stt",),
    "cascaded": ("stt", "mt"),
    "LT.2025": ("stt",),
    "dialog": ("stt",),
    "BOOM": (),
}
# Local worker processes each pipeline type runs (llm only where it is installed).
STAGES: dict[str, tuple[str, ...]] = {
    "end2end": ("stt",),
    "cascaded": ("stt", "mt", "tts"),
    "LT.2025": ("stt", "mt"),
    "dialog": ("stt", "tts", "llm"),
    "BOOM": ("stt", "mt", "tts", "summarizer", "llm"),
}
# backend key -> (.env variable, ltapi component, stage it replaces, seed's worker name)
BACKEND_URLS: dict[str, tuple[str, str, str, str]] = {
    "stt": ("STT_BACKEND_URL", "asr", "stt", "mult57"),
    "mt": ("MT_BACKEND_URL", "mt", "mt", "mt"),
    "tts": ("TTS_BACKEND_URL", "tts", "tts", "tts"),
    "summarizer": ("SUM_BACKEND_URL", "summarizer", "summarizer", "summarizer"),
    "llm": ("LLM_BACKEND_URL", "", "llm", "llm"),
}
NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
ENV_FILE = ".env"


class ConfigError(ValueError):
    """A configuration that cannot be written or used; the message says why."""


def _check_url(value: str | None) -> str | None:
    if value is None:
        return None
    parsed = urlparse(value)
    if parsed.scheme not in ("http", "https") or not parsed.hostname:
        raise ValueError(f"{value!r} is not an http(s) URL with a host")
    try:
        parsed.port  # noqa: B018 - raises on a bad port
    except ValueError as exc:
        raise ValueError(f"{value!r} has a bad port: {exc}") from exc
    return value.rstrip("/")


class PipelineConfig(BaseModel):
    """One pipeline configuration; written as (and read back from) its ``.env``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(pattern=NAME_RE.pattern)
    type: PipelineType
    backends: Backends = "local"
    domain: str = Field(min_length=1, max_length=253, pattern=r"^[A-Za-z0-9.-]+$")
    port: int = Field(ge=1, le=65_535)
    external_port: int | None = Field(None, ge=1, le=65_535)
    theme: str = "defaulttheme"
    components_dir: str = ""
    stt_backend_url: str | None = None
    mt_backend_url: str | None = None
    tts_backend_url: str | None = None
    summarizer_backend_url: str | None = None
    llm_backend_url: str | None = None

    _urls = field_validator(
        "stt_backend_url",
        "mt_backend_url",
        "tts_backend_url",
        "summarizer_backend_url",
        "llm_backend_url",
    )(_check_url)

    @model_validator(mode="after")
    def _required(self) -> "PipelineConfig":
        if self.backends == "external":
            missing = [b for b in REQUIRED_BACKENDS[self.type] if not self.url(b)]
            if missing:
                flags = ", ".join(f"--{b}-backend-url" for b in missing)
                raise ValueError(f"a {self.type} pipeline with --backends external needs {flags}")
        return self

    def url(self, backend: str) -> str | None:
        """The configured URL of ``backend`` (stt, mt, tts, summarizer, llm)."""
        return getattr(self, f"{backend}_backend_url")  # type: ignore[no-any-return]

    def env_lines(self) -> list[str]:
        """The pipeline's ``.env``, in the order its readers expect."""
        external_port = self.external_port or self.port
        lines = [
            f"DOMAIN={self.domain}",
            f"FRONTEND_THEME={self.theme}",
            f"HTTP_PORT={self.port}",
            f"DOMAIN_PORT={self.domain}:{self.port}",
            f"EXTERNAL_PORT={external_port}",
            f"EXTERNAL_DOMAIN_PORT={self.domain}:{external_port}",
            f"PIPELINE_NAME={self.name}",
            f"COMPONENTS_DIR={self.components_dir}",
            "HF_TOKEN=",
            f"BACKENDS={self.backends}",
        ]
        for backend, (var, *_rest) in BACKEND_URLS.items():
            if self.url(backend):
                lines.append(f"{var}={self.url(backend)}")
        lines.append(f"PIPELINE_TYPE={self.type}")  # our addition: `start` needs it back
        return lines


def validate(**fields: object) -> PipelineConfig:
    """Build a configuration, turning pydantic's errors into one readable ``ConfigError``."""
    if fields.get("type") not in PIPELINE_TYPES:
        raise ConfigError(
            f"unknown pipeline type {fields.get('type')!r}: use one of {', '.join(PIPELINE_TYPES)}"
        )
    try:
        return PipelineConfig.model_validate(fields)
    except ValidationError as exc:
        parts = [
            f"{'.'.join(str(p) for p in e['loc']) or 'configuration'}: "
            f"{str(e['msg']).removeprefix('Value error, ')}"
            for e in exc.errors()
        ]
        raise ConfigError("; ".join(parts)) from exc


def config_dir(home: Path, name: str) -> Path:
    """``$PYPARROT_HOME/NAME``; the name cannot escape the home directory."""
    if not NAME_RE.match(name):
        raise ConfigError(f"bad pipeline name {name!r}: letters, digits, '.', '_', '-'")
    return home / name


def write(home: Path, config: PipelineConfig) -> Path:
    """Write ``NAME/.env`` atomically (temp file + rename); return its path."""
    directory = config_dir(home, config.name)
    directory.mkdir(parents=True, exist_ok=True)
    target = directory / ENV_FILE
    tmp = directory / f".env.{os.getpid()}.tmp"
    try:
        tmp.write_text("\n".join(config.env_lines()) + "\n")
        tmp.replace(target)
    finally:
        tmp.unlink(missing_ok=True)
    return target


def read(home: Path, name: str) -> PipelineConfig:
    """Load a written configuration back from its ``.env``."""
    path = config_dir(home, name) / ENV_FILE
    if not path.is_file():
        raise ConfigError(f"no configuration {name!r} ({path}): run `pyparrot configure` first")
    env = {k: v or "" for k, v in dotenv_values(path, interpolate=False).items()}
    fields: dict[str, object] = {
        "name": env.get("PIPELINE_NAME", name),
        "type": env.get("PIPELINE_TYPE"),
        "backends": env.get("BACKENDS", "local"),
        "domain": env.get("DOMAIN"),
        "port": env.get("HTTP_PORT"),
        "external_port": env.get("EXTERNAL_PORT") or None,
        "theme": env.get("FRONTEND_THEME", "defaulttheme"),
        "components_dir": env.get("COMPONENTS_DIR", ""),
    }
    for backend, (var, *_rest) in BACKEND_URLS.items():
        fields[f"{backend}_backend_url"] = env.get(var) or None
    return validate(**fields)
