"""Any OpenAI-compatible chat server (vLLM, llama.cpp's server, Ollama) as the LLM, over
``/v1/chat/completions`` with streaming (server-sent events)."""

import json
from collections.abc import Iterator
from typing import Any

import httpx

from services.llm.model import Delta, ModelError, chunk_deltas
from services.llm.settings import LlmSettings
from shared.worker import JobFailed

CONNECT_TIMEOUT_S = 5.0


def completions_url(base: str) -> str:
    """``http://host:port``, ``.../v1`` or the full endpoint, as the endpoint's URL."""
    url = base.rstrip("/")
    if url.endswith("/chat/completions"):
        return url
    return f"{url}/chat/completions" if url.endswith("/v1") else f"{url}/v1/chat/completions"


class BackendModel:
    """Streams replies from an OpenAI-compatible server; one HTTP client per worker."""

    def __init__(self, settings: LlmSettings) -> None:
        self.name = settings.model_name or settings.backend_model
        self.model = settings.backend_model
        self.url = completions_url(settings.backend_url)
        key = settings.backend_api_key.get_secret_value()
        self.client = httpx.Client(
            timeout=httpx.Timeout(settings.backend_timeout_s, connect=CONNECT_TIMEOUT_S),
            headers={"Authorization": f"Bearer {key}"} if key else {},
        )

    def chat(
        self, messages: list[dict[str, str]], max_tokens: int, temperature: float
    ) -> Iterator[Delta]:
        """Stream a reply; an unreachable or failing backend fails the job."""
        body = {
            "model": self.model,
            "messages": messages,
            "max_tokens": max_tokens,
            "temperature": temperature,
            "stream": True,
        }
        try:
            with self.client.stream("POST", self.url, json=body) as response:
                _check_status(response)
                if response.headers.get("content-type", "").startswith("application/json"):
                    yield from _whole(json.loads(response.read()))  # a server that ignored stream
                    return
                for line in response.iter_lines():
                    data = line.removeprefix("data:").strip()
                    if not line.startswith("data:") or not data:
                        continue
                    if data == "[DONE]":
                        return
                    yield from chunk_deltas(_json(data))
        except httpx.TransportError as exc:
            message = f"LLM backend {self.url} is unreachable: {type(exc).__name__}: {exc}"
            raise JobFailed("backend_unavailable", message) from exc
        except ModelError as exc:
            raise JobFailed("backend_error", f"LLM backend error: {exc}") from exc


def _check_status(response: httpx.Response) -> None:
    if response.status_code < 400:
        return
    detail = response.read().decode("utf-8", "replace")[:500]
    code = "backend_unavailable" if response.status_code >= 500 else "backend_error"
    raise JobFailed(code, f"LLM backend answered HTTP {response.status_code}: {detail}")


def _json(data: str) -> dict[str, Any]:
    try:
        chunk = json.loads(data)
    except json.JSONDecodeError as exc:
        raise JobFailed("backend_error", f"LLM backend sent invalid JSON: {data[:200]}") from exc
    if not isinstance(chunk, dict):
        raise JobFailed("backend_error", f"LLM backend sent {type(chunk).__name__}, not an object")
    return chunk


def _whole(reply: dict[str, Any]) -> Iterator[Delta]:
    for choice in reply.get("choices") or []:
        message = choice.get("message") or {}
        yield Delta(message.get("content") or "", choice.get("finish_reason") or "stop")
