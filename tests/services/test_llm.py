"""The LLM handler: the real bundled SmolLM2 through llama.cpp, sentence chunking,
and the OpenAI-compatible backend path against a small server this test runs on loopback
(the outer edge: it stands in for vLLM/Ollama, not for our model)."""

import functools
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from pyparrot.redis_server import free_port
from services.llm.backend import BackendModel, completions_url
from services.llm.handler import handle, prepare, reply, sentences
from services.llm.model import ChatModel, Delta, LocalModel, load_model
from services.llm.settings import LlmSettings, legacy_variables
from shared.messages import ChatMessage, ChatRequest, Envelope, SynthesizeRequest
from shared.worker import JobFailed, Rejected


def ask(text: str, max_tokens: int = 96, system: str | None = None) -> ChatRequest:
    said = [ChatMessage(role="system", content=system)] if system else []
    return ChatRequest(
        messages=[*said, ChatMessage(role="user", content=text)],
        max_tokens=max_tokens,
        temperature=0.0,
    )


@functools.cache
def bundled_llm() -> LocalModel:
    """The bundled SmolLM2, loaded once per test session (the gateway tests share it)."""
    model = load_model(LlmSettings())
    assert isinstance(model, LocalModel)
    return model


# --- sentence chunking (pure) ---


def test_sentences_split_as_soon_as_the_next_one_starts() -> None:
    pieces = ["The sea", " is deep. It cov", "ers most of the planet! Is", " it cold? Yes."]
    out = list(sentences(Delta(p) for p in pieces))
    assert out == [
        ("The sea is deep.", False, ""),
        ("It covers most of the planet!", False, ""),
        ("Is it cold? Yes.", True, "stop"),  # "Is it cold?" is too short to stand alone
    ]


def test_sentences_keep_list_markers_and_carry_the_finish_reason() -> None:
    out = list(sentences([Delta("1. Sleep at regular hours.\n2. "), Delta("Avoid", "length")]))
    assert out == [("1. Sleep at regular hours.", False, ""), ("2. Avoid", True, "length")]


def test_a_run_on_sentence_is_cut_at_a_space() -> None:
    words = ["word"] * 200
    out = list(sentences(Delta(w + " ") for w in words))
    assert len(out) >= 2 and all(len(text) <= 400 for text, _last, _r in out)
    assert " ".join(text for text, _last, _r in out).split() == words


def test_the_system_prompt_goes_first() -> None:
    settings = LlmSettings(system_prompt="Be brief.")
    assert prepare(settings, ask("Hi there")) == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Hi there"},
    ]
    merged = prepare(settings, ask("Hi there", system="The user likes tea."))
    assert merged[0] == {"role": "system", "content": "Be brief.\n\nThe user likes tea."}


@pytest.mark.parametrize("text, code", [("   ", "empty_messages"), ("hi\x00", "invalid_text")])
def test_a_bad_conversation_is_rejected(text: str, code: str) -> None:
    with pytest.raises(Rejected) as failed:
        prepare(LlmSettings(), ask(text))
    assert failed.value.code == code


def test_an_earlier_release_s_dialog_variables_are_read_where_no_llm_one_is_set(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("DIALOG_BACKEND_URL", "http://127.0.0.1:9/v1")
    monkeypatch.setenv("DIALOG_CONCURRENCY", "3")
    monkeypatch.setenv("LLM_CONCURRENCY", "2")
    settings = LlmSettings()
    assert (settings.backend_url, settings.concurrency) == ("http://127.0.0.1:9/v1", 2)
    assert legacy_variables() == ["DIALOG_BACKEND_URL", "DIALOG_CONCURRENCY"]


def test_other_kinds_are_refused() -> None:
    job = Envelope(payload=SynthesizeRequest(text="hello"))
    with pytest.raises(JobFailed) as failed:
        list(handle(bundled_llm(), LlmSettings(), job))
    assert failed.value.code == "wrong_kind"


# --- the real local model ---


@pytest.mark.model
def test_bundled_model_answers_in_streamed_sentences() -> None:
    model = bundled_llm()
    assert model.name == "smollm2-135m-instruct" and model.path.suffix == ".gguf"
    chunks = reply(model, LlmSettings(), ask("Tell me about the ocean."))
    first = next(chunks)  # lazily: the first sentence, while the model is still writing
    assert first.index == 0 and not first.last and first.text
    rest = list(chunks)
    assert [c.index for c in rest] == list(range(1, len(rest) + 1))
    assert [c.last for c in rest] == [False] * (len(rest) - 1) + [True]
    text = " ".join(c.text for c in [first, *rest])
    assert sum(ch.isalpha() for ch in text) > 40, text
    assert rest[-1].finish_reason in ("stop", "length") and rest[-1].model == model.name


@pytest.mark.model
def test_bundled_model_respects_max_tokens() -> None:
    settings = LlmSettings(max_tokens_limit=8)  # the worker's cap wins over the request's
    chunks = list(reply(bundled_llm(), settings, ask("Write a long story about a dragon.")))
    assert chunks[-1].last and chunks[-1].finish_reason == "length"
    assert 0 < len(" ".join(c.text for c in chunks).split()) <= 8


# --- the OpenAI-compatible backend path ---


class _Backend(BaseHTTPRequestHandler):
    """A minimal OpenAI-compatible chat server: streams a fixed reply as SSE."""

    seen: list[dict[str, Any]] = []
    status = 200

    def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        self.seen.append({"path": self.path, "body": body, "auth": self.headers["Authorization"]})
        if self.status != 200:
            self.send_response(self.status)
            self.end_headers()
            self.wfile.write(b'{"error": "overloaded"}')
            return
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.end_headers()
        for piece in ["Hello there", "! I can help. What would", " you like to know?"]:
            chunk = {"choices": [{"index": 0, "delta": {"content": piece}}]}
            self.wfile.write(f"data: {json.dumps(chunk)}\n\n".encode())
        done = {"choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]}
        self.wfile.write(f"data: {json.dumps(done)}\n\ndata: [DONE]\n\n".encode())

    def log_message(self, *_args: object) -> None:
        pass


@pytest.fixture
def backend() -> Iterator[str]:
    """The loopback server's base URL; its handler class records what it was sent."""
    _Backend.seen, _Backend.status = [], 200
    server = ThreadingHTTPServer(("127.0.0.1", free_port()), _Backend)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    server.server_close()
    thread.join()


def backend_model(url: str, **kw: Any) -> ChatModel:
    settings = LlmSettings(backend_url=url, backend_model="qwen-test", **kw)
    return load_model(settings)


def test_backend_replies_are_streamed_sentence_by_sentence(backend: str) -> None:
    settings = LlmSettings(backend_url=backend, backend_model="qwen-test", system_prompt="Hi.")
    model = backend_model(backend, backend_api_key="s3cret")
    assert isinstance(model, BackendModel) and model.name == "qwen-test"
    chunks = list(reply(model, settings, ask("Hello?", max_tokens=20)))
    assert [(c.text, c.last) for c in chunks] == [
        ("Hello there! I can help.", False),
        ("What would you like to know?", True),
    ]
    assert chunks[-1].finish_reason == "stop"
    (call,) = _Backend.seen
    assert call["path"] == "/v1/chat/completions" and call["auth"] == "Bearer s3cret"
    assert call["body"]["model"] == "qwen-test" and call["body"]["stream"] is True
    assert call["body"]["max_tokens"] == 20
    assert call["body"]["messages"][0] == {"role": "system", "content": "Hi."}


@pytest.mark.parametrize("status, code", [(503, "backend_unavailable"), (400, "backend_error")])
def test_backend_http_errors_fail_the_job(backend: str, status: int, code: str) -> None:
    _Backend.status = status
    with pytest.raises(JobFailed) as failed:
        list(reply(backend_model(backend), LlmSettings(), ask("Hello?")))
    assert failed.value.code == code and str(status) in failed.value.message


def test_unreachable_backend_fails_the_job() -> None:
    model = backend_model(f"http://127.0.0.1:{free_port()}/v1")
    with pytest.raises(JobFailed) as failed:
        list(handle(model, LlmSettings(), Envelope(payload=ask("Hello?"))))
    assert failed.value.code == "backend_unavailable"


def test_completions_url_accepts_the_usual_spellings() -> None:
    want = "http://h:1/v1/chat/completions"
    for base in ("http://h:1", "http://h:1/", "http://h:1/v1", "http://h:1/v1/chat/completions"):
        assert completions_url(base) == want
