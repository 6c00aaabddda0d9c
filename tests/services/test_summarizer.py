"""The summarizer handler: the real extractive ranking on a real paragraph, and the
abstractive path against a small OpenAI-compatible server this test runs on loopback (the
LLM is the system's outer edge; the server checks what we send and answers like one)."""

import asyncio
import contextlib
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from pyparrot import redis_server
from services.summarizer import ranking
from services.summarizer.handler import handle, summarize
from services.summarizer.model import ExtractiveModel, LlmModel, endpoints, load_model
from services.summarizer.settings import SummarizerSettings
from shared.messages import Envelope, SummarizeRequest, TranslateRequest
from shared.worker import JobFailed

KEY = (
    "Replication means keeping copies of the same data on several machines, "
    "so that the data survives when one machine fails."
)
OFF_TOPIC = "By the way, the room for next week's lab has changed."
LECTURE = f"""Welcome back to the course on distributed systems. Last week we talked about \
clocks and the ordering of events. Today we will look at replication, and why keeping several \
copies of the same data consistent is much harder than it first appears.
{KEY} The simplest scheme sends every write to a single leader, which forwards it to its \
followers. If the leader crashes, a follower must take over, and the copies may disagree about \
the latest writes. Consistency models describe what a reader may see when the copies of the \
data disagree. Strong consistency makes every copy look like a single machine, but it costs a \
round trip to a majority of the replicas on each write. Eventual consistency lets the copies \
disagree for a while and promises only that they converge once the writes stop. {OFF_TOPIC} \
Most real systems let each application choose between strong and eventual consistency for \
its data. Okay."""
SENTENCES = ranking.split_sentences(LECTURE)


def extract(text: str = LECTURE, **kw: Any) -> str:
    settings = SummarizerSettings(**kw.pop("settings", {}))
    return summarize(ExtractiveModel(), settings, SummarizeRequest(text=text, **kw)).text


def test_splits_the_paragraph_into_its_sentences() -> None:
    assert len(SENTENCES) == 12 and SENTENCES[3] == KEY and SENTENCES[-1] == "Okay."


def test_extractive_summary_is_shorter_made_of_source_sentences_and_keeps_the_key() -> None:
    result = summarize(
        ExtractiveModel(), SummarizerSettings(), SummarizeRequest(text=LECTURE, max_sentences=3)
    )
    picked = ranking.split_sentences(result.text)
    assert len(picked) == 3 and len(result.text) < len(LECTURE) / 2
    assert all(s in SENTENCES for s in picked), picked
    assert KEY in picked and OFF_TOPIC not in picked and "Okay." not in picked
    assert picked == sorted(picked, key=SENTENCES.index)  # in the order of the text
    assert (result.method, result.model, result.source_sentences) == (
        "extractive",
        "extractive",
        12,
    )


@pytest.mark.parametrize(
    "kw, count",
    [
        ({}, 5),  # SUM_DEFAULT_MAX_SENTENCES
        ({"ratio": 0.25}, 3),
        ({"ratio": 0.5, "max_sentences": 2}, 2),
        ({"max_sentences": 1}, 1),
        ({"settings": {"default_max_sentences": 4}}, 4),
    ],
)
def test_summary_length_follows_the_request(kw: dict[str, Any], count: int) -> None:
    assert len(ranking.split_sentences(extract(**kw))) == count


def test_a_repeated_sentence_is_taken_once() -> None:
    text = f"{KEY} {KEY} {LECTURE}"
    picked = ranking.split_sentences(extract(text, max_sentences=3))
    assert picked.count(KEY) == 1 and len(picked) <= 3


def test_text_shorter_than_the_summary_comes_back_whole() -> None:
    text = "Replication keeps copies of data. Consistency says what readers see."
    assert extract(text, max_sentences=5) == text


def test_a_session_transcript_of_unpunctuated_lines_is_split_by_line() -> None:
    text = "\n".join(s.rstrip(".") for s in SENTENCES)
    picked = extract(text, max_sentences=2).split(" ")
    assert KEY.rstrip(".").split(" ")[0] in picked


@pytest.mark.parametrize(
    "text, settings, code",
    [(" \n ", {}, "empty_text"), (LECTURE, {"max_text_chars": 100}, "text_too_long")],
)
def test_bad_requests_fail_for_good(text: str, settings: dict[str, Any], code: str) -> None:
    with pytest.raises(JobFailed) as failed:
        extract(text, settings=settings)
    assert failed.value.code == code


def test_handler_refuses_other_kinds() -> None:
    job = Envelope(payload=TranslateRequest(text="Hi.", source="en", target="pt"))
    with pytest.raises(JobFailed) as failed:
        list(handle(ExtractiveModel(), SummarizerSettings(), job))
    assert failed.value.code == "wrong_kind"


@dataclass
class FakeLlm:
    """What the loopback server received, and how it should answer the next request."""

    url: str
    requests: list[dict[str, Any]] = field(default_factory=list)
    headers: list[dict[str, str]] = field(default_factory=list)
    answer: str = "Replication keeps data alive; consistency models say what readers see."
    status: int = 200
    release: threading.Event = field(default_factory=threading.Event)
    hold: bool = False
    clients: list[LlmModel] = field(default_factory=list)  # closed when the server stops


def _llm_app(state: FakeLlm) -> FastAPI:
    app = FastAPI()

    @app.get("/v1/models")
    async def models() -> dict[str, Any]:
        return {"object": "list", "data": [{"id": "tiny-test-llm", "object": "model"}]}

    @app.post("/v1/chat/completions")
    async def chat(request: Request) -> JSONResponse:
        state.requests.append(await request.json())
        state.headers.append(dict(request.headers))
        if state.hold:  # a server that does not answer in time
            await asyncio.to_thread(state.release.wait, 10)
        if state.status != 200:
            return JSONResponse({"error": {"message": "model overloaded"}}, state.status)
        message = {"role": "assistant", "content": state.answer}
        return JSONResponse({"object": "chat.completion", "choices": [{"message": message}]})

    return app


@contextlib.contextmanager
def fake_llm() -> Iterator[FakeLlm]:
    """An OpenAI-compatible chat server on a free loopback port, in its own thread."""
    port = redis_server.free_port()
    state = FakeLlm(url=f"http://127.0.0.1:{port}")
    server = uvicorn.Server(uvicorn.Config(_llm_app(state), port=port, log_level="error"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:  # bounded polling for start-up, not a sleep hiding a race
        assert time.monotonic() < deadline and thread.is_alive(), "fake LLM did not start"
        time.sleep(0.01)
    try:
        yield state
    finally:
        state.release.set()
        server.should_exit = True
        thread.join(10)


@pytest.fixture
def llm() -> Iterator[FakeLlm]:
    with fake_llm() as state:
        yield state
        for model in state.clients:
            model.close()


def llm_model(llm: FakeLlm, **kw: Any) -> tuple[LlmModel, SummarizerSettings]:
    settings = SummarizerSettings(backend_url=llm.url, **kw)
    model = load_model(settings)
    assert isinstance(model, LlmModel)
    llm.clients.append(model)
    return model, settings


def test_abstractive_summary_comes_from_the_llm_server(llm: FakeLlm) -> None:
    model, settings = llm_model(llm, backend_api_key="s3cret")
    request = SummarizeRequest(text=LECTURE, max_sentences=2, session_id="lecture-1")
    result = summarize(model, settings, request)
    assert (result.text, result.method) == (llm.answer, "abstractive")
    assert result.model == "llm:tiny-test-llm" and result.source_sentences == 12
    sent = llm.requests[-1]
    assert sent["model"] == "tiny-test-llm" and sent["max_tokens"] == settings.max_tokens
    assert [m["role"] for m in sent["messages"]] == ["system", "user"]
    assert "at most 2 sentences" in sent["messages"][1]["content"]
    assert KEY in sent["messages"][1]["content"] and OFF_TOPIC in sent["messages"][1]["content"]
    assert llm.headers[-1]["authorization"] == "Bearer s3cret"


def test_long_text_is_cut_down_to_fit_the_llm_context(llm: FakeLlm) -> None:
    model, settings = llm_model(llm, llm_input_chars=500, backend_model="named-model")
    summarize(model, settings, SummarizeRequest(text=LECTURE))
    content = llm.requests[-1]["messages"][1]["content"]
    text = content.split("\n\n", 1)[1]
    assert len(text) <= 500 and KEY in text and OFF_TOPIC not in text
    assert llm.requests[-1]["model"] == "named-model"


def test_reasoning_preamble_is_dropped(llm: FakeLlm) -> None:
    llm.answer = "<think>The user wants a summary.</think>\nReplication keeps copies."
    model, settings = llm_model(llm)
    assert (
        summarize(model, settings, SummarizeRequest(text=LECTURE)).text
        == "Replication keeps copies."
    )


@pytest.mark.parametrize(
    "change, code",
    [
        ({"status": 500}, "backend_error"),
        ({"answer": "  "}, "backend_error"),
        ({"hold": True}, "backend_timeout"),
    ],
)
def test_llm_server_failures_fail_the_job_with_a_code(
    llm: FakeLlm, change: dict[str, Any], code: str
) -> None:
    model, settings = llm_model(llm, backend_timeout_s=0.5)
    for name, value in change.items():
        setattr(llm, name, value)
    with pytest.raises(JobFailed) as failed:
        summarize(model, settings, SummarizeRequest(text=LECTURE))
    assert failed.value.code == code, failed.value.message


def test_unreachable_backend_fails_with_backend_unavailable() -> None:
    url = f"http://127.0.0.1:{redis_server.free_port()}/v1"  # nothing listens there
    settings = SummarizerSettings(backend_url=url, backend_model="m")
    with contextlib.closing(load_model(settings)) as model, pytest.raises(JobFailed) as failed:
        summarize(model, settings, SummarizeRequest(text=LECTURE))
    assert failed.value.code == "backend_unavailable" and "unreachable" in failed.value.message


def test_backend_url_from_either_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    assert SummarizerSettings().backend_url == ""
    monkeypatch.setenv("LLM_BACKEND_URL", "http://llm:8080")
    assert SummarizerSettings().backend_url == "http://llm:8080"
    monkeypatch.setenv("SUM_BACKEND_URL", "http://summarizer:3123")
    assert SummarizerSettings().backend_url == "http://summarizer:3123"


@pytest.mark.parametrize(
    "url",
    [
        "http://h:1",
        "http://h:1/",
        "http://h:1/v1",
        "http://h:1/v1/",
        "http://h:1/v1/chat/completions",
    ],
)
def test_endpoints_accept_the_usual_url_spellings(url: str) -> None:
    assert endpoints(url) == ("http://h:1/v1/chat/completions", "http://h:1/v1/models")
