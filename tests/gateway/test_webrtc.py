"""``POST /offer``: a real aiortc client streams speech over WebRTC (Opus over loopback UDP)
into the real gateway, tiny.en and Bergamot workers; events come back on its data channel."""

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from aiortc import (
    RTCConfiguration,
    RTCDataChannel,
    RTCPeerConnection,
    RTCSessionDescription,
)
from fastapi import FastAPI

from bench.live_webrtc import ClipTrack
from services.gateway.live.routes import webrtc
from services.gateway.live.routes.webrtc import Peers
from services.gateway.settings import GatewaySettings
from services.stt.handler import transcribe
from services.stt.model import SttModel
from services.stt.settings import SttSettings
from shared.messages import TranscribeRequest
from shared.textnorm import wer
from tests.apps import running_app
from tests.audio import read_pcm, reference
from tests.polling import eventually

pytestmark = pytest.mark.redis

RATE_HZ = 16_000
SPEED = 2.0  # times real time


class Client:
    """An aiortc presenter: one audio track and an ``events`` data channel."""

    def __init__(self, pcm16: bytes | None) -> None:
        self.pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        self.track = ClipTrack(pcm16, SPEED) if pcm16 is not None else None
        if self.track is not None:
            self.pc.addTrack(self.track)
        self.channel: RTCDataChannel = self.pc.createDataChannel("events")
        self.events: list[dict[str, Any]] = []
        self.audio_bytes = 0

        @self.channel.on("message")
        def _message(data: str | bytes) -> None:
            if isinstance(data, bytes):
                self.audio_bytes += len(data)
            else:
                self.events.append(json.loads(data))

    async def offer(self, http: httpx.AsyncClient, **options: Any) -> httpx.Response:
        await self.pc.setLocalDescription(await self.pc.createOffer())
        body = {"sdp": self.pc.localDescription.sdp, "type": "offer", **options}
        response = await http.post("/offer", json=body)
        if response.status_code == 200:
            answer = response.json()
            await self.pc.setRemoteDescription(RTCSessionDescription(answer["sdp"], "answer"))
        return response

    async def event(self, kind: str, timeout_s: float) -> dict[str, Any]:
        async def seen() -> bool:
            return any(e["type"] == kind for e in self.events)

        await eventually(seen, timeout_s)
        return next(e for e in self.events if e["type"] == kind)


@pytest.fixture
async def http(live_gateway: tuple[FastAPI, str]) -> AsyncIterator[httpx.AsyncClient]:
    _app, address = live_gateway
    async with httpx.AsyncClient(base_url=f"http://{address}", timeout=30) as client:
        yield client


@pytest.mark.model
@pytest.mark.usefixtures("live_workers")
@pytest.mark.timeout(120)
async def test_speech_over_webrtc_gets_captions_and_translations(
    live_gateway: tuple[FastAPI, str],
    http: httpx.AsyncClient,
    live_whisper: tuple[SttModel, SttSettings],
) -> None:
    app, _address = live_gateway
    pcm, _fmt = read_pcm("en_lecture")
    client = Client(bytes(RATE_HZ * 2) + pcm)  # a second of silence first
    try:
        response = await client.offer(http, pipeline="cascaded", target_languages=["pt"])
        assert response.status_code == 200, response.text
        session_id = response.json()["session_id"]
        started = await client.event("session_started", 15)
        assert started["session_id"] == session_id
        assert client.track is not None
        await asyncio.wait_for(client.track.played.wait(), 60)
        # Bad control messages get an error event; the session goes on.
        client.channel.send('{"type": "dance"}')
        client.channel.send(b"\x00\x01")
        client.channel.send(json.dumps({"type": "audio_complete"}))
        await client.event("audio_processed", 60)
    finally:
        await client.pc.close()

    kinds = [e["type"] for e in client.events]
    errors = {e["code"] for e in client.events if e["type"] == "error"}
    assert errors == {"unknown_type", "unsupported"}, client.events
    assert kinds.index("stt_partial") < kinds.index("stt_final"), kinds
    finals = [e for e in client.events if e["type"] == "stt_final"]
    live_text = " ".join(f["text"] for f in finals)
    model, settings = live_whisper
    offline = transcribe(model, settings, TranscribeRequest(audio=pcm)).text
    assert wer(reference("en_lecture"), live_text) <= wer(reference("en_lecture"), offline) + 0.05
    translations = [e for e in client.events if e["type"] == "translation"]
    assert [t["utterance"] for t in translations] == [f["utterance"] for f in finals]
    assert "sistemas distribuídos" in " ".join(t["text"] for t in translations).lower()

    transcript = await http.get(f"/v1/sessions/{session_id}/transcript")
    assert transcript.text.splitlines() == [f["text"] for f in finals]
    peers: Peers = app.state.peers

    async def peer_gone() -> bool:
        return not peers.live

    await eventually(peer_gone, 15)  # the client hung up: the gateway let go of it


async def test_bad_offers_get_clear_errors(http: httpx.AsyncClient) -> None:
    torn = "v=0\r\nm=audio notaport UDP/TLS/RTP/SAVPF 111\r\n"
    bad_sdp = await http.post("/offer", json={"sdp": torn, "type": "offer"})
    assert bad_sdp.status_code == 400 and bad_sdp.json()["error"]["code"] == "bad_sdp"
    not_sdp = await http.post("/offer", json={"sdp": "hello", "type": "offer"})
    assert not_sdp.status_code == 400 and not_sdp.json()["error"]["code"] == "no_audio"

    no_audio = Client(None)  # a data channel only
    unknown, end2end = Client(b"\x00\x00" * 320), Client(b"\x00\x00" * 320)
    try:
        response = await no_audio.offer(http)
        assert response.status_code == 400 and "no audio" in response.json()["error"]["message"]
        response = await unknown.offer(http, session_id="nope")
        assert response.status_code == 404, response.text
        response = await end2end.offer(http, pipeline="end2end", target_languages=["pt"])
        assert response.status_code == 422 and "end2end" in response.json()["error"]["message"]
    finally:
        for client in (no_audio, unknown, end2end):
            await client.pc.close()
    missing = await http.post("/offer", json={"type": "offer"})
    assert missing.status_code == 422 and "sdp" in missing.text


async def test_webrtc_can_be_turned_off_and_is_bounded(clean_redis: str) -> None:
    for limit, status in ((0, 404), (1, 503)):
        settings = GatewaySettings(redis_url=clean_redis, webrtc_max_peers=limit)
        async with running_app(settings) as app:
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://gw") as http:
                first, second = Client(b"\x00\x00" * 320), Client(b"\x00\x00" * 320)
                try:
                    if limit:
                        assert (await first.offer(http)).status_code == 200
                    response = await second.offer(http)
                    assert response.status_code == status, response.text
                finally:
                    await first.pc.close()
                    await second.pc.close()
        assert not app.state.peers.live  # shutdown closed every peer


async def test_a_client_that_never_connects_is_let_go(
    live_gateway: tuple[FastAPI, str], http: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(webrtc, "CONNECT_TIMEOUT_S", 0.5)
    app, _address = live_gateway
    client = Client(b"\x00\x00" * 320)
    try:
        await client.pc.setLocalDescription(await client.pc.createOffer())
        body = {"sdp": client.pc.localDescription.sdp, "type": "offer"}
        response = await http.post("/offer", json=body)  # the answer is never used
        assert response.status_code == 200, response.text
        peers: Peers = app.state.peers
        assert len(peers.live) == 1

        async def let_go() -> bool:
            return not peers.live

        await eventually(let_go, 10)
    finally:
        await client.pc.close()
