"""Every route that takes a session id, a user id or a person id refuses another tenant.

The routes are found by walking the app's route table (path, query, header and body fields
named ``session_id``, ``user_id`` or ``person_id``; every socket, whose ``auth`` message
names a session), and each must have a case below that shows a second presenter (and, for
reads, a listener nobody granted) gets 403/404 or only its own empty namespace, never the
first tenant's data.
A new route that takes such an id fails ``test_every_tenant_route_has_a_case`` until it has
a case here, so it cannot forget the check.
"""

import json
import time
import typing
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass

import httpx
import pytest
import redis.asyncio as aioredis
from aiortc import RTCConfiguration, RTCPeerConnection
from fastapi import FastAPI
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute, APIWebSocketRoute, iter_route_contexts
from prometheus_client import CollectorRegistry
from pydantic import BaseModel
from websockets.asyncio.client import connect

from services.gateway import memory
from services.gateway.app import create_app
from services.gateway.live.engine.store import Cue, SessionStore
from services.gateway.settings import GatewaySettings
from services.gateway.stages import speaker
from shared.admin import keystore
from shared.messages import Voiceprint
from tests.apps import running_app
from tests.gateway.live_helpers import listening

pytestmark = pytest.mark.redis
TENANT_FIELDS = frozenset({"session_id", "user_id", "person_id"})
CANARY = "zebracanary"  # tenant A's private words; must never reach tenant B
USER = "sam"


def _model_fields(annotation: object) -> set[str]:
    """Field names of every pydantic model in ``annotation`` (``Body | None`` included)."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return set(annotation.model_fields)
    return set().union(*(_model_fields(a) for a in typing.get_args(annotation)))


def _dependants(dependant: Dependant) -> list[Dependant]:
    return [dependant, *(d for sub in dependant.dependencies for d in _dependants(sub))]


def _request_fields(route: APIRoute) -> set[str]:
    names: set[str] = set()
    for d in _dependants(route.dependant):
        names |= {p.alias for p in [*d.path_params, *d.query_params, *d.header_params]}
        for body in d.body_params:
            names |= {body.alias} | _model_fields(body.field_info.annotation)
    # A route that reads its own body documents it in openapi_extra (e.g. /converse).
    content = (route.openapi_extra or {}).get("requestBody", {}).get("content", {})
    for media in content.values():
        names |= set(media.get("schema", {}).get("properties", {}))
    return names


def tenant_routes(app: FastAPI) -> set[str]:
    """``METHOD path`` of every route taking a session or user id (``WS path`` for sockets)."""
    found = set()
    for context in iter_route_contexts(app.routes):
        route, path = context.original_route, str(context.path)
        if isinstance(route, APIWebSocketRoute):
            found.add(f"WS {path}")
        elif isinstance(route, APIRoute) and _request_fields(route) & TENANT_FIELDS:
            found |= {f"{method} {path}" for method in route.methods}
    return found


@dataclass
class World:
    """Tenant A's private things, and the keys of everyone else."""

    http: httpx.AsyncClient
    address: str
    redis: aioredis.Redis
    a: str  # presenter who owns everything below
    b: str  # another presenter
    listener: str  # a listener key nobody granted anything
    live_id: str
    chat_id: str
    person_id: str

    def as_(self, key: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {key}"}


def refused(response: httpx.Response) -> None:
    assert response.status_code in (403, 404), (response.status_code, response.text)
    assert CANARY not in response.text


async def a_still_has_everything(w: World) -> None:
    live = await w.http.get(f"/v1/sessions/{w.live_id}/transcript", headers=w.as_(w.a))
    assert live.status_code == 200 and CANARY in live.text
    chat = await w.http.get(f"/session/{w.chat_id}", headers=w.as_(w.a))
    assert chat.status_code == 200 and CANARY in chat.text
    mem = await w.http.get(f"/memory/summary?user_id={USER}", headers=w.as_(w.a))
    assert mem.json()["total_entries"] == 1
    people = await w.http.get("/v1/speakers", headers=w.as_(w.a))
    assert [p["person_id"] for p in people.json()["data"]] == [w.person_id]


@pytest.fixture
async def world(clean_redis: str, aredis: aioredis.Redis) -> AsyncIterator[World]:
    keys = [
        (await keystore.create(aredis, role, name))[0]
        for role, name in (
            ("presenter", "alice@a.example"),
            ("presenter", "bob@b.example"),
            ("listener", "lou@b.example"),
        )
    ]
    settings = GatewaySettings(redis_url=clean_redis, auth_cache_s=0, rate_limit_burst=10_000)
    async with running_app(settings) as app, listening(app) as address:
        async with httpx.AsyncClient(base_url=f"http://{address}", timeout=10) as http:
            a = {"Authorization": f"Bearer {keys[0]}"}
            live = await http.post("/v1/sessions", json={"user_id": USER}, headers=a)
            live_id = live.json()["id"]
            store = SessionStore(aredis, 600, 100)
            info = await store.get(live_id)
            assert info is not None
            await store.append(info, Cue(0, 0.0, 1.0, f"the {CANARY} is mine", "en"))
            await store.publish(live_id, {"type": "stt_final", "text": CANARY})
            chat = await http.post("/session", json={"user_id": USER}, headers=a)
            chat_id = chat.json()["session_id"]
            turn = memory.Turn(f"my {CANARY}", "noted", time.time())
            await memory.append_turn(aredis, chat_id, turn, 8, 600)
            entry = {"user_id": USER, "user_text": f"my {CANARY}", "assistant_text": "ok"}
            assert (await http.post("/memory/add", json=entry, headers=a)).status_code == 201
            fields = {"name": CANARY, "description": "", "relationship": ""}
            print_ = Voiceprint(speaker="S1", embedding=[1.0, 0.0], speech_s=3.0)
            person = await speaker.enrol(app.state.core, "alice@a.example", fields, print_)
            world = World(http, address, aredis, *keys, live_id, chat_id, person.person_id)
            await a_still_has_everything(world)
            yield world
            await a_still_has_everything(world)  # nothing B did changed A's things


async def _readers(w: World, method: str, path: str) -> None:
    for key in (w.b, w.listener):
        async with w.http.stream(method, path, headers=w.as_(key)) as response:
            assert response.status_code in (403, 404), (key, response.status_code)
            refused(httpx.Response(response.status_code, content=await response.aread()))


async def live_get(w: World) -> None:
    await _readers(w, "GET", f"/v1/sessions/{w.live_id}")


async def live_delete(w: World) -> None:
    refused(await w.http.delete(f"/v1/sessions/{w.live_id}", headers=w.as_(w.b)))


async def live_listeners(w: World) -> None:
    refused(await w.http.get(f"/v1/sessions/{w.live_id}/listeners", headers=w.as_(w.b)))


async def live_grant(w: World) -> None:
    body = {"identity": "bob@b.example"}
    path = f"/v1/sessions/{w.live_id}/listeners"
    refused(await w.http.post(path, json=body, headers=w.as_(w.b)))


async def live_revoke(w: World) -> None:
    path = f"/v1/sessions/{w.live_id}/listeners/*"
    refused(await w.http.delete(path, headers=w.as_(w.b)))


async def live_transcript(w: World) -> None:
    for fmt in ("text", "srt", "vtt"):
        await _readers(w, "GET", f"/v1/sessions/{w.live_id}/transcript?format={fmt}")


async def live_events(w: World) -> None:
    await _readers(w, "GET", f"/v1/sessions/{w.live_id}/events")


async def events_by_query(w: World) -> None:
    await _readers(w, "GET", f"/events?session_id={w.live_id}")


async def summarize(w: World) -> None:
    body = {"session_id": w.live_id, "max_sentences": 200}
    refused(await w.http.post("/v1/summarize", json=body, headers=w.as_(w.b)))


async def live_create(w: World) -> None:
    made = await w.http.post("/v1/sessions", json={"user_id": USER}, headers=w.as_(w.b))
    assert made.status_code == 201 and made.json()["owner"] == "bob@b.example"
    path = f"/v1/sessions/{made.json()['id']}/transcript"
    assert CANARY not in (await w.http.get(path, headers=w.as_(w.b))).text


async def chat_get(w: World) -> None:
    refused(await w.http.get(f"/session/{w.chat_id}", headers=w.as_(w.b)))


async def chat_delete(w: World) -> None:
    refused(await w.http.delete(f"/session/{w.chat_id}", headers=w.as_(w.b)))


async def chat_create(w: World) -> None:
    made = await w.http.post("/session", json={"user_id": USER}, headers=w.as_(w.b))
    assert made.status_code == 201 and made.json()["history"] == []
    assert CANARY not in made.text


async def converse(w: World) -> None:
    body = {"text": f"repeat what I said about the {CANARY}", "session_id": w.chat_id}
    refused(await w.http.post("/converse", json=body, headers=w.as_(w.b)))
    form = {"text": "hello", "session_id": w.chat_id}
    refused(await w.http.post("/converse", data=form, files={"x": b""}, headers=w.as_(w.b)))


async def memory_query(w: World) -> None:
    body = {"user_id": USER, "query_text": CANARY}
    theirs = await w.http.post("/memory/query", json=body, headers=w.as_(w.b))
    assert theirs.status_code == 200 and theirs.json()["results"] == []
    named = body | {"session_id": w.chat_id}
    refused(await w.http.post("/memory/query", json=named, headers=w.as_(w.b)))


async def memory_add(w: World) -> None:
    entry = {"user_id": USER, "user_text": "b's own", "assistant_text": "ok"}
    assert (await w.http.post("/memory/add", json=entry, headers=w.as_(w.b))).status_code == 201
    into_a = entry | {"session_id": w.chat_id}  # A's conversation is not B's to label
    refused(await w.http.post("/memory/add", json=into_a, headers=w.as_(w.b)))


async def memory_summary_get(w: World) -> None:
    theirs = await w.http.get(f"/memory/summary?user_id={USER}", headers=w.as_(w.b))
    assert theirs.status_code == 200 and theirs.json()["total_entries"] == 0
    assert CANARY not in theirs.text


async def memory_summary_post(w: World) -> None:
    body = {"user_id": USER}
    theirs = await w.http.post("/memory/summary", json=body, headers=w.as_(w.b))
    assert theirs.status_code == 200 and theirs.json()["total_entries"] == 0
    assert CANARY not in theirs.text


async def socket_resume(w: World) -> None:
    for query in ("", f"?api_key={w.b}"):  # the key in the auth message, or in the handshake
        async with connect(f"ws://{w.address}/ws/converse{query}") as ws:
            auth = {"type": "auth", "api_key": w.b, "session_id": w.live_id}
            await ws.send(json.dumps(auth))
            event = json.loads(await ws.recv())
            assert event["type"] == "error" and event["code"] == "forbidden", event


async def webrtc_resume(w: World) -> None:
    pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    try:
        pc.addTransceiver("audio", direction="sendonly")
        await pc.setLocalDescription(await pc.createOffer())
        body = {"type": "offer", "sdp": pc.localDescription.sdp, "session_id": w.live_id}
        refused(await w.http.post("/offer", json=body, headers=w.as_(w.b)))
    finally:
        await pc.close()


async def upload_into_session(w: World) -> None:
    form = {"diarize": "true", "session_id": w.live_id}
    files = {"file": ("a.wav", b"RIFF not audio either")}
    for key in (w.b, w.listener):  # refused before the audio is even read
        refused(
            await w.http.post(
                "/v1/audio/transcriptions", data=form, files=files, headers=w.as_(key)
            )
        )


async def person_delete(w: World) -> None:
    refused(await w.http.delete(f"/v1/speakers/{w.person_id}", headers=w.as_(w.b)))
    theirs = await w.http.get("/v1/speakers", headers=w.as_(w.b))
    assert theirs.status_code == 200 and theirs.json()["data"] == []
    assert CANARY not in theirs.text


CASES: dict[str, Callable[[World], Awaitable[None]]] = {
    "GET /v1/sessions/{session_id}": live_get,
    "DELETE /v1/sessions/{session_id}": live_delete,
    "GET /v1/sessions/{session_id}/listeners": live_listeners,
    "POST /v1/sessions/{session_id}/listeners": live_grant,
    "DELETE /v1/sessions/{session_id}/listeners/{listener}": live_revoke,
    "GET /v1/sessions/{session_id}/transcript": live_transcript,
    "GET /v1/sessions/{session_id}/events": live_events,
    "GET /events": events_by_query,
    "POST /v1/summarize": summarize,
    "POST /v1/sessions": live_create,
    "GET /session/{session_id}": chat_get,
    "DELETE /session/{session_id}": chat_delete,
    "POST /session": chat_create,
    "POST /converse": converse,
    "POST /memory/query": memory_query,
    "POST /memory/add": memory_add,
    "GET /memory/summary": memory_summary_get,
    "POST /memory/summary": memory_summary_post,
    "WS /ws/converse": socket_resume,
    "POST /offer": webrtc_resume,
    "DELETE /v1/speakers/{person_id}": person_delete,
    "POST /v1/audio/transcriptions": upload_into_session,
}


def test_every_tenant_route_has_a_case() -> None:
    found = tenant_routes(create_app(GatewaySettings(), CollectorRegistry()))
    assert found - CASES.keys() == set(), "a route takes a session/user id: add its case here"
    assert CASES.keys() - found == set(), "a case for a route that no longer takes an id"


@pytest.mark.parametrize("route", sorted(CASES))
async def test_another_tenant_is_refused(world: World, route: str) -> None:
    await CASES[route](world)
