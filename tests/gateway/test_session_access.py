"""Per-session access: a live session is read by its owner, admins and the listeners its
owner granted (or every listener key, if public); only the owner or an admin changes it.
Also the event stream that enforces it on open connections."""

import asyncio
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from functools import partial

import httpx
import pytest
import redis.asyncio as aioredis
from prometheus_client import CollectorRegistry
from starlette.testclient import TestClient

from services.gateway import keys as gateway_keys
from services.gateway.app import create_app
from services.gateway.live.engine import fanout
from services.gateway.live.engine.store import SessionStore
from services.gateway.settings import GatewaySettings
from shared import bus
from shared.admin import keystore
from tests.apps import running_app
from tests.gateway.live_helpers import listening
from tests.polling import eventually

pytestmark = pytest.mark.redis

LISTENER = "lena@example.com"
OWNER = "pat@example.com"


@dataclass
class Keys:
    listener: str
    other_listener: str
    owner: str
    other_presenter: str
    admin: str


def as_(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def settings_for(redis_url: str) -> GatewaySettings:
    return GatewaySettings(redis_url=redis_url, auth_cache_s=0, rate_limit_burst=10_000)


@pytest.fixture
async def keys(aredis: aioredis.Redis) -> Keys:
    made = [
        await keystore.create(aredis, role, identity)
        for role, identity in (
            ("listener", LISTENER),
            ("listener", "leo@example.com"),
            ("presenter", OWNER),
            ("presenter", "pia@example.com"),
            ("admin", "ada@example.com"),
        )
    ]
    return Keys(*(token for token, _record in made))


@pytest.fixture
async def http(clean_redis: str, keys: Keys) -> AsyncIterator[httpx.AsyncClient]:
    async with (
        running_app(settings_for(clean_redis)) as app,
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://gateway"
        ) as client,
    ):
        yield client


async def new_session(http: httpx.AsyncClient, token: str, **body: object) -> str:
    created = await http.post("/v1/sessions", json=body, headers=as_(token))
    assert created.status_code == 201, created.text
    return str(created.json()["id"])


async def reads(http: httpx.AsyncClient, session_id: str, token: str) -> set[int]:
    """The statuses of the session's read routes (info and transcript) for ``token``."""
    info = await http.get(f"/v1/sessions/{session_id}", headers=as_(token))
    text = await http.get(f"/v1/sessions/{session_id}/transcript", headers=as_(token))
    return {info.status_code, text.status_code}


async def test_a_new_session_is_private_to_its_owner_and_admins(
    http: httpx.AsyncClient, keys: Keys
) -> None:
    session_id = await new_session(http, keys.owner)
    info = (await http.get(f"/v1/sessions/{session_id}", headers=as_(keys.owner))).json()
    assert (info["owner"], info["public"]) == (OWNER, False)
    assert await reads(http, session_id, keys.admin) == {200}
    for stranger in (keys.listener, keys.other_presenter):
        assert await reads(http, session_id, stranger) == {403}
    refused = await http.get(f"/v1/sessions/{session_id}/events", headers=as_(keys.listener))
    assert refused.status_code == 403
    assert f"{LISTENER!r} may not read session" in refused.json()["detail"]
    assert refused.json()["error"]["code"] == "forbidden"
    query = await http.get(f"/events?session_id={session_id}", headers=as_(keys.listener))
    assert query.status_code == 403
    missing = await http.get("/v1/sessions/no-such-session", headers=as_(keys.listener))
    assert missing.status_code == 404


async def test_the_owner_grants_and_revokes_a_listener(http: httpx.AsyncClient, keys: Keys) -> None:
    session_id = await new_session(http, keys.owner)
    listeners = f"/v1/sessions/{session_id}/listeners"
    granted = await http.post(listeners, json={"identity": LISTENER}, headers=as_(keys.owner))
    assert granted.status_code == 200, granted.text
    assert granted.json() == {
        "session_id": session_id,
        "owner": OWNER,
        "public": False,
        "listeners": [LISTENER],
    }
    assert await reads(http, session_id, keys.listener) == {200}
    assert await reads(http, session_id, keys.other_listener) == {403}  # only the one named

    revoked = await http.delete(f"{listeners}/{LISTENER}", headers=as_(keys.owner))
    assert revoked.status_code == 204
    assert await reads(http, session_id, keys.listener) == {403}
    again = await http.delete(f"{listeners}/{LISTENER}", headers=as_(keys.owner))
    assert (again.status_code, again.json()["error"]["code"]) == (404, "not_granted")


async def test_only_the_owner_or_an_admin_changes_a_session(
    http: httpx.AsyncClient, keys: Keys
) -> None:
    session_id = await new_session(http, keys.owner)
    path = f"/v1/sessions/{session_id}"
    grant = {"identity": "pia@example.com"}
    for token, status in ((keys.other_presenter, 403), (keys.listener, 403)):
        assert (
            await http.post(f"{path}/listeners", json=grant, headers=as_(token))
        ).status_code == status
        assert (await http.get(f"{path}/listeners", headers=as_(token))).status_code == status
        assert (await http.delete(path, headers=as_(token))).status_code == status
    by_admin = await http.post(f"{path}/listeners", json=grant, headers=as_(keys.admin))
    assert by_admin.json()["listeners"] == ["pia@example.com"]
    assert await reads(http, session_id, keys.other_presenter) == {200}  # now granted
    assert (await http.delete(path, headers=as_(keys.owner))).status_code == 204
    assert (await http.get(path, headers=as_(keys.admin))).status_code == 404


async def test_a_public_session_is_read_by_every_listener_key(
    http: httpx.AsyncClient, keys: Keys
) -> None:
    session_id = await new_session(http, keys.owner, public=True, listeners=[LISTENER])
    info = (await http.get(f"/v1/sessions/{session_id}", headers=as_(keys.other_listener))).json()
    assert info["public"] is True
    acl = await http.get(f"/v1/sessions/{session_id}/listeners", headers=as_(keys.owner))
    assert (acl.json()["public"], acl.json()["listeners"]) == (True, [LISTENER])
    # Making it private again leaves the named listener in.
    private = await http.delete(f"/v1/sessions/{session_id}/listeners/*", headers=as_(keys.owner))
    assert private.status_code == 204
    assert await reads(http, session_id, keys.other_listener) == {403}
    assert await reads(http, session_id, keys.listener) == {200}


@pytest.mark.parametrize(
    "body",
    [
        {"listeners": ["a/b"]},
        {"listeners": [""]},
        {"listeners": ["x\n"]},
        {"listeners": [f"user{i}" for i in range(1_001)]},
        {"public": "sometimes"},
    ],
)
async def test_a_bad_listener_list_is_refused(
    http: httpx.AsyncClient, keys: Keys, body: dict[str, object]
) -> None:
    response = await http.post("/v1/sessions", json=body, headers=as_(keys.owner))
    assert response.status_code == 422, response.text


async def test_loopback_without_keys_stays_open(clean_redis: str) -> None:
    async with (
        running_app(settings_for(clean_redis)) as app,
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://gateway"
        ) as client,
    ):
        created = (await client.post("/v1/sessions", json={})).json()
        assert created["owner"] == "anonymous"
        assert (await client.get(f"/v1/sessions/{created['id']}/transcript")).status_code == 200


async def _events(
    client: httpx.AsyncClient, url: str, token: str, seen: list[tuple[str, dict[str, object]]]
) -> None:
    """Collect (event, data) pairs of an SSE stream until it ends."""
    async with client.stream("GET", url, headers=as_(token)) as response:
        assert response.status_code == 200
        kind = ""
        async for line in response.aiter_lines():
            if line.startswith("event:"):
                kind = line.removeprefix("event:").strip()
            elif line.startswith("data:"):
                seen.append((kind, json.loads(line.removeprefix("data:"))))


@pytest.mark.timeout(60)
async def test_revoking_a_listener_ends_its_open_event_stream(
    clean_redis: str, keys: Keys, aredis: aioredis.Redis
) -> None:
    store = SessionStore(aredis, ttl_s=600, events_maxlen=100)
    info = await store.create(owner=OWNER, listeners=[LISTENER])
    seen: list[tuple[str, dict[str, object]]] = []
    async with (
        running_app(settings_for(clean_redis)) as app,
        listening(app) as host,
        httpx.AsyncClient(base_url=f"http://{host}", timeout=30) as client,
    ):
        url = f"/v1/sessions/{info.id}/events"
        reader = asyncio.create_task(_events(client, url, keys.listener, seen))

        async def listener_reads() -> bool:  # it starts after the newest event: publish again
            await store.publish(info.id, {"type": "stt_final", "text": "hello"})
            return bool(seen)

        await eventually(listener_reads)
        assert seen[0] == (
            "stt_final",
            {"type": "stt_final", "text": "hello", "id": seen[0][1]["id"]},
        )
        await store.revoke(info.id, LISTENER)
        limit_s = fanout.ACCESS_RECHECK_S + fanout.BLOCK_MS / 1000 + 5
        await asyncio.wait_for(reader, limit_s)  # the stream ends on its own
    assert seen[-1] == (
        "error",
        {"code": "forbidden", "message": "access to this session was revoked"},
    )


@pytest.mark.timeout(60)
async def test_an_idle_listener_stays_connected(
    clean_redis: str, keys: Keys, aredis: aioredis.Redis
) -> None:
    # Each idle XREAD block must end before redis-py's 5 s socket timeout; a listener of a
    # quiet session once got a "bus_down" error instead of the next caption.
    store = SessionStore(aredis, ttl_s=600, events_maxlen=100)
    info = await store.create(owner=OWNER, listeners=[LISTENER])
    seen: list[tuple[str, dict[str, object]]] = []
    async with (
        running_app(settings_for(clean_redis)) as app,
        listening(app) as host,
        httpx.AsyncClient(base_url=f"http://{host}", timeout=30) as client,
    ):
        url = f"/v1/sessions/{info.id}/events"
        reader = asyncio.create_task(_events(client, url, keys.listener, seen))
        await asyncio.sleep(8)  # quiet for longer than the socket timeout, on purpose
        await store.publish(info.id, {"type": "stt_final", "text": "after a pause"})
        await eventually(partial(asyncio.sleep, 0, seen), 10)  # delivered (or failed)
        await store.delete(info.id)  # the stream then ends with "ended"
        await asyncio.wait_for(reader, fanout.BLOCK_MS / 1000 + 10)
    assert [kind for kind, _data in seen] == ["stt_final", "ended"]


def test_only_the_owner_resumes_a_session_over_the_socket(clean_redis: str) -> None:
    app = create_app(settings_for(clean_redis), CollectorRegistry())
    with TestClient(app) as client:
        portal = client.portal
        assert portal is not None
        owner, _ = portal.call(_key, clean_redis, "presenter", OWNER)
        other, _ = portal.call(_key, clean_redis, "presenter", "pia@example.com")
        with client.websocket_connect("/ws/converse") as ws:
            ws.send_json({"type": "auth", "api_key": owner})
            started = ws.receive_json()
        session_id = started["session_id"]
        info = client.get(f"/v1/sessions/{session_id}", headers=as_(owner)).json()
        assert info["owner"] == OWNER
        with client.websocket_connect("/ws/converse") as ws:
            ws.send_json({"type": "auth", "api_key": other, "session_id": session_id})
            refused = ws.receive_json()
            assert (refused["type"], refused["code"]) == ("error", "forbidden")
            ws.send_json({"type": "auth", "api_key": owner, "session_id": session_id})
            resumed = ws.receive_json()
            assert (resumed["type"], resumed["resumed"]) == ("session_started", True)


async def _key(redis_url: str, role: keystore.Role, identity: str) -> tuple[str, object]:
    redis = bus.client(redis_url)
    try:
        return await keystore.create(redis, role, identity)
    finally:
        await redis.aclose()


async def test_a_session_summary_is_as_private_as_its_transcript(
    http: httpx.AsyncClient, keys: Keys, aredis: aioredis.Redis
) -> None:
    session_id = await new_session(http, keys.owner)
    await aredis.rpush(gateway_keys.session_transcript(session_id), "The secret plan is ready.")
    body = {"session_id": session_id, "max_sentences": 200}
    for stranger in (keys.other_presenter,):
        refused = await http.post("/v1/summarize", json=body, headers=as_(stranger))
        assert refused.status_code == 403, refused.text
        assert "secret" not in refused.text
    missing = await http.post(
        "/v1/summarize", json={"session_id": "no-such-session"}, headers=as_(keys.owner)
    )
    assert missing.status_code == 404
    # The owner passes the access check; with no summarizer running the stage is unavailable.
    owner = await http.post("/v1/summarize", json=body, headers=as_(keys.owner))
    assert owner.status_code not in (403, 404), owner.text
