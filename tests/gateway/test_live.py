"""Live sessions end to end: /ws/converse with the real Whisper and Bergamot handlers behind
real workers, SSE listeners, session history, and the protocol's bad-input cases."""

import asyncio
import json
import socket
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

import httpx
import py3langid
import pytest
import pytest_asyncio
import websockets
from fastapi import FastAPI
from websockets.asyncio.client import connect

from services.gateway import keys
from services.stt.__main__ import worker_spec as stt_spec
from services.stt.handler import transcribe
from services.stt.model import SttModel
from services.stt.model import load_model as load_stt
from services.stt.settings import SttSettings
from shared import bus, streams
from shared.messages import TranscribeRequest
from shared.textnorm import wer
from tests.apps import running_app, running_workers
from tests.audio import read_pcm, reference
from tests.gateway.live_helpers import (
    auth,
    collect,
    listening,
    live_gateway_settings,
    live_loops,
    next_event,
    stream,
)
from tests.polling import eventually

pytestmark = pytest.mark.redis

SPEED = 3.0  # times real time: the 13 s clip takes ~4.5 s


async def sse_events(
    address: str,
    path: str,
    out: list[dict[str, Any]],
    headers: dict[str, str] | None = None,
    count: int = 0,
) -> list[dict[str, Any]]:
    """Append ``path``'s SSE events to ``out`` (with their SSE event name), until ``count``."""
    name = ""
    async with (
        httpx.AsyncClient(base_url=f"http://{address}", timeout=30) as client,
        client.stream("GET", path, headers=headers) as response,
    ):
        assert response.status_code == 200, await response.aread()
        async for line in response.aiter_lines():
            if line.startswith("event:"):
                name = line.removeprefix("event:").strip()
            elif line.startswith("data:"):
                out.append({"event": name} | json.loads(line.removeprefix("data:").strip()))
                if len(out) == count:
                    break
    return out


@dataclass(frozen=True)
class Lecture:
    """What one live session on the lecture clip produced, seen from every side."""

    started: dict[str, Any]  # the session_started event
    events: list[dict[str, Any]]  # the presenter's socket
    seen: list[dict[str, Any]]  # a listener from the start of the session's stream
    en_seen: list[dict[str, Any]]  # a listener filtered to English
    resumed: list[dict[str, Any]]  # a Portuguese listener resuming after the first event
    transcript: str
    srt: str
    vtt: str
    info: dict[str, Any]
    offline_text: str  # the same clip transcribed as a file

    def of(self, kind: str) -> list[dict[str, Any]]:
        return [e for e in self.events if e["type"] == kind]

    @property
    def published(self) -> list[dict[str, Any]]:
        return [e for e in self.events if "id" in e]


async def _speak_lecture(address: str, session_id: str) -> Lecture:
    """Stream the lecture into ``session_id`` with two listeners attached; then read it back."""
    pcm, _fmt = read_pcm("en_lecture")
    silence = bytes(2 * 16_000)  # a second of room noise before and after
    finals_path = f"/events?session_id={session_id}&language=en"
    async with connect(f"ws://{address}/ws/converse") as ws:
        started = await auth(
            ws, session_id=session_id, pipeline="cascaded", target_languages=["pt"]
        )
        # From the start of the session's stream ("0-0"), so no event can slip past them.
        since_start = {"Last-Event-ID": "0-0"}
        path = f"/v1/sessions/{session_id}/events"
        seen: list[dict[str, Any]] = []
        en_seen: list[dict[str, Any]] = []
        listeners = [
            asyncio.create_task(sse_events(address, path, seen, since_start)),
            asyncio.create_task(sse_events(address, finals_path, en_seen, since_start)),
        ]
        events: list[dict[str, Any]] = []
        collector = asyncio.create_task(collect(ws, "audio_processed", 60, events))
        # Mid-sentence, the speaker waits for a partial: on a busy machine a partial can take
        # longer than the rest of the clip, and a closed utterance's partial is dropped.
        await stream(ws, silence + pcm[: 2 * 16_000 * 4], SPEED, complete=False)

        async def partial_arrived() -> bool:
            return any(e["type"] == "stt_partial" for e in events)

        await eventually(partial_arrived, 30)
        await stream(ws, pcm[2 * 16_000 * 4 :] + silence, SPEED)
        await collector

    published = [e for e in events if "id" in e]

    async def caught_up() -> bool:
        return len(seen) >= len(published)

    await eventually(caught_up, 30)
    for task in listeners:
        task.cancel()
    await asyncio.wait(listeners)
    pt_path = finals_path.replace("language=en", "language=pt")
    first = {"Last-Event-ID": published[0]["id"]} if published else {}
    resumed = await sse_events(address, pt_path, [], first, 1) if published else []
    async with httpx.AsyncClient(base_url=f"http://{address}") as http:
        text = await http.get(f"/v1/sessions/{session_id}/transcript")
        srt = await http.get(f"/v1/sessions/{session_id}/transcript", params={"format": "srt"})
        vtt = await http.get(f"/v1/sessions/{session_id}/transcript", params={"format": "vtt"})
        info = (await http.get(f"/v1/sessions/{session_id}")).json()
    return Lecture(started, events, seen, en_seen, resumed, text.text, srt.text, vtt.text, info, "")


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def lecture(
    redis_url: str,
    live_whisper: tuple[SttModel, SttSettings],
    tmp_path_factory: pytest.TempPathFactory,
) -> Lecture:
    """One live session on the lecture (real STT and MT workers), run once for the tests
    below, each of which checks one thing it must show. Nothing is left running."""
    client = bus.client(redis_url)
    await client.flushall()
    await client.aclose()
    marker_dir = tmp_path_factory.mktemp("auth-markers")
    settings = live_gateway_settings(redis_url, keys_marker_dir=marker_dir)
    async with (
        running_workers(redis_url, live_loops(redis_url, live_whisper)),
        running_app(settings) as app,
        listening(app) as address,
    ):
        async with httpx.AsyncClient(base_url=f"http://{address}") as http:
            created = await http.post("/v1/sessions", json={"user_id": "ada"})
        run = await _speak_lecture(address, created.json()["id"])
    model, stt_settings = live_whisper
    pcm, _fmt = read_pcm("en_lecture")
    offline = transcribe(model, stt_settings, TranscribeRequest(audio=pcm)).text
    return replace(run, offline_text=offline)


def lecture_test(test: Callable[[Lecture], None]) -> Callable[[Lecture], None]:
    """A test of the shared lecture run: it loads models, and its first test waits for it."""
    return pytest.mark.model(pytest.mark.timeout(150)(test))


@lecture_test
def test_a_created_session_is_resumed_by_the_socket(lecture: Lecture) -> None:
    assert lecture.started["session_id"] == lecture.info["id"]
    assert lecture.started["resumed"] is True


@lecture_test
def test_captions_are_partials_then_finals_as_good_as_offline(lecture: Lecture) -> None:
    kinds = [e["type"] for e in lecture.events]
    finals = lecture.of("stt_final")
    assert finals and "error" not in kinds, lecture.events
    assert kinds.index("stt_partial") < kinds.index("stt_final"), kinds  # partials while speaking
    live_text = " ".join(f["text"] for f in finals)
    offline_wer = wer(reference("en_lecture"), lecture.offline_text)
    assert wer(reference("en_lecture"), live_text) <= offline_wer + 0.05


@lecture_test
def test_finals_are_ordered_and_timed_with_words(lecture: Lecture) -> None:
    finals = lecture.of("stt_final")
    assert finals
    assert [f["utterance"] for f in finals] == sorted(f["utterance"] for f in finals)
    assert all(f["words"] and f["end_s"] > f["start_s"] >= 0 for f in finals)


@lecture_test
def test_each_final_is_translated_in_order(lecture: Lecture) -> None:
    translations = lecture.of("translation")
    assert [t["utterance"] for t in translations] == [
        f["utterance"] for f in lecture.of("stt_final")
    ]
    assert all(t["language"] == "pt" for t in translations)
    assert "sistemas distribuídos" in " ".join(t["text"] for t in translations).lower()


@lecture_test
def test_listeners_see_the_presenters_events_and_a_language_filter_keeps_one(
    lecture: Lecture,
) -> None:
    published = lecture.published
    assert [e["event"] for e in lecture.seen] == [e["type"] for e in published], lecture.seen
    assert [e["id"] for e in lecture.seen] == [e["id"] for e in published]
    en_seen = lecture.en_seen
    assert en_seen and all(e["language"] == "en" for e in en_seen), en_seen
    assert "translation" not in {e["type"] for e in en_seen}


@lecture_test
def test_last_event_id_resumes_right_after_the_given_event(lecture: Lecture) -> None:
    assert lecture.resumed[0]["id"] == lecture.of("translation")[0]["id"]


@lecture_test
def test_the_history_reads_back_as_text_srt_vtt_and_info(lecture: Lecture) -> None:
    finals = lecture.of("stt_final")
    assert lecture.transcript.splitlines() == [f["text"] for f in finals]
    assert lecture.srt.startswith("1\n00:00:0") and " --> " in lecture.srt
    assert lecture.vtt.startswith("WEBVTT\n\n00:00:0")
    assert lecture.info["utterances"] == finals[-1]["utterance"] + 1
    assert lecture.info["user_id"] == "ada"


@pytest.mark.parametrize(
    "message, code",
    [
        (b"\x00\x00\x80\x3f", "not_authenticated"),
        ('{"type": "audio_complete"}', "not_authenticated"),
        ('{"type": "dance"}', "unknown_type"),
        ('{"type": "auth", ', "bad_json"),
        ("[1, 2]", "bad_json"),
        ('{"type": "auth", "sample_rate": 3}', "bad_sample_rate"),
        ('{"type": "auth", "sample_rate": 10000000}', "bad_sample_rate"),
        ('{"type": "auth", "audio_format": "mp3"}', "invalid_auth"),
        ('{"type": "auth", "pipeline": "telepathy"}', "invalid_auth"),
        ('{"type": "auth", "session_id": "nope"}', "unknown_session"),
    ],
)
async def test_bad_input_gets_an_error_and_the_socket_stays_usable(
    live_gateway: tuple[FastAPI, str], message: str | bytes, code: str
) -> None:
    _app, address = live_gateway
    async with connect(f"ws://{address}/ws/converse") as ws:
        await ws.send(message)
        event = await next_event(ws)
        assert (event["type"], event["code"]) == ("error", code), event
        assert event["message"]
        started = await auth(ws, audio_format="pcm_s16le", sample_rate=44_100)
        await ws.send(b"\x01\x02\x03")  # half a sample
        event = await next_event(ws)
        assert (event["type"], event["code"]) == ("error", "bad_audio"), event
        await ws.send(json.dumps({"type": "auth"}))
        assert (await next_event(ws))["code"] == "already_authenticated"
    async with httpx.AsyncClient(base_url=f"http://{address}") as http:
        assert (await http.get(f"/v1/sessions/{started['session_id']}")).status_code == 200


async def test_a_client_that_never_reads_is_dropped_and_others_go_on(
    live_gateway: tuple[FastAPI, str], caplog: pytest.LogCaptureFixture
) -> None:
    _app, address = live_gateway
    host, port = address.split(":")
    sock = socket.create_connection((host, int(port)))
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # a stuck reader fills it fast
    async with connect(f"ws://{address}/ws/converse", sock=sock, max_queue=1) as stuck:
        await auth(stuck)
        async with connect(f"ws://{address}/ws/converse") as other:
            await auth(other)
            for _ in range(400):  # each message earns an error event the client does not read
                await asyncio.gather(
                    *(stuck.send('{"type": "%s"}' % ("x" * 60)) for _ in range(500))
                )
                if "client is not reading" in caplog.text:
                    break
            assert "client is not reading" in caplog.text
            await other.send("{")  # the other session is unaffected
            assert (await next_event(other))["code"] == "bad_json"
        with pytest.raises(websockets.ConnectionClosed) as closed:
            while True:  # reading again, the client finds the close (after what was sent)
                await stuck.recv()
    assert closed.value.rcvd is not None, closed.value
    assert closed.value.rcvd.code == 1013 and "not reading" in closed.value.rcvd.reason


async def test_sessions_rest_lifecycle(live_gateway: tuple[FastAPI, str], aredis: Any) -> None:
    _app, address = live_gateway
    async with httpx.AsyncClient(base_url=f"http://{address}") as http:
        created = await http.post("/v1/sessions")
        assert created.status_code == 201
        session_id = created.json()["id"]
        got = (await http.get(f"/v1/sessions/{session_id}")).json()
        assert got["utterances"] == 0 and 0 < got["expires_in_s"] <= 86_400
        assert 0 < await aredis.ttl(keys.session(session_id)) <= 86_400  # evicted when idle
        assert (await http.get(f"/v1/sessions/{session_id}/transcript")).text == ""
        assert (await http.get(f"/v1/sessions/{session_id}/transcript?format=vtt")).text == (
            "WEBVTT\n\n"
        )
        bad = await http.get(f"/v1/sessions/{session_id}/transcript?format=doc")
        assert bad.status_code == 422
        assert (await http.delete(f"/v1/sessions/{session_id}")).status_code == 204
        for path in ("", "/transcript", "/events"):
            missing = await http.get(f"/v1/sessions/{session_id}{path}")
            assert missing.status_code == 404, path
            assert "no session" in missing.json()["detail"]
        assert (await http.delete(f"/v1/sessions/{session_id}")).status_code == 404
        bad_id = await http.get("/events", params={"session_id": "x", "last_event_id": "1"})
        assert bad_id.status_code == 404
        resume = await http.post("/v1/sessions")
        bad_resume = await http.get(
            f"/v1/sessions/{resume.json()['id']}/events", headers={"Last-Event-ID": "yesterday"}
        )
        assert bad_resume.status_code == 400 and "no event id" in bad_resume.json()["detail"]


async def test_interrupt_is_acknowledged_and_marked_for_workers(
    live_gateway: tuple[FastAPI, str], aredis: Any
) -> None:
    _app, address = live_gateway
    async with connect(f"ws://{address}/ws/converse") as ws:
        started = await auth(ws, pipeline="cascaded", target_languages=["pt"])
        await ws.send(json.dumps({"type": "text_input", "text": "Hello there."}))
        event = await next_event(ws)  # no MT worker runs: the turn reports it
        assert (event["type"], event["code"]) == ("error", "no_worker"), event
        await ws.send(json.dumps({"type": "interrupt"}))
        ack = await next_event(ws)
        assert ack["type"] == "interrupt_ack" and ack["generation"] == 1, ack
        assert await aredis.get(streams.session_cancel(started["session_id"])) == b"1"
    async with connect(f"ws://{address}/ws/converse") as ws:
        await auth(ws, pipeline="end2end")
        await ws.send(json.dumps({"type": "text_input", "text": "Hi."}))
        assert (await next_event(ws))["code"] == "unsupported"
    async with connect(f"ws://{address}/ws/converse") as ws:
        await ws.send(
            json.dumps({"type": "auth", "pipeline": "end2end", "target_languages": ["pt"]})
        )
        event = await next_event(ws)
        assert event["code"] == "invalid_auth" and "cascaded" in event["message"], event


@pytest.mark.model
@pytest.mark.timeout(120)
async def test_end2end_translates_spanish_speech_into_english(
    live_gateway: tuple[FastAPI, str], clean_redis: str, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """One multilingual model does it all: detects Spanish, transcribes it, and its translate
    task turns the same utterance into English (no MT stage runs)."""
    _app, address = live_gateway
    cache = tmp_path_factory.getbasetemp() / "models"
    settings = SttSettings(redis_url=clean_redis, model="base", model_cache_dir=str(cache),
                           worker_name="base", block_ms=50)  # fmt: skip
    base = load_stt(settings)
    pcm, _fmt = read_pcm("es_short")
    silence = bytes(2 * 16_000)
    async with running_workers(clean_redis, [(stt_spec(base, settings), settings)]):
        async with connect(f"ws://{address}/ws/converse") as ws:
            await auth(ws, pipeline="end2end", target_languages=["en"])
            events: list[dict[str, Any]] = []
            collector = asyncio.create_task(collect(ws, "audio_processed", 90, events))
            await stream(ws, silence + pcm + silence, SPEED)
            await collector
    finals = [e for e in events if e["type"] == "stt_final"]
    translations = [e for e in events if e["type"] == "translation"]
    assert finals and all(f["language"] == "es" for f in finals), events
    assert [t["utterance"] for t in translations] == [f["utterance"] for f in finals], events
    assert all(t["language"] == "en" and t["source_language"] == "es" for t in translations)
    # The robotic espeak-ng clip ("Hoy hablamos de sistemas distribuidos...") comes out as
    # loose English from base (measured: "today we are going to make more fun..."): check it
    # is English text saying "today", not the Spanish transcript passed through.
    english = " ".join(t["text"] for t in translations).lower()
    assert "today" in english and "hoy" not in english, english
    assert py3langid.classify(english)[0] == "en", english


async def test_dialog_without_an_llm_worker_reports_it(live_gateway: tuple[FastAPI, str]) -> None:
    _app, address = live_gateway
    async with connect(f"ws://{address}/ws/converse") as ws:
        await auth(ws, pipeline="dialog")
        await ws.send(json.dumps({"type": "text_input", "text": "Hello there."}))
        event = await next_event(ws)
        assert (event["type"], event["code"]) == ("error", "no_worker"), event
