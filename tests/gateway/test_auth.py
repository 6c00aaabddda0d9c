"""API keys and roles: every route x (no key, wrong key, each role), the loopback-only open
mode, the refusal to start exposed without keys, rate limits, CORS and ``pyparrot keys``.
The per-session read rules (owner, granted listeners) have their own tests in
``test_session_access.py``; the matrix checks them for a session nobody was granted."""

import json
import logging
import os
import re
import subprocess
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass

import httpx
import pytest
import redis.asyncio as aioredis
from fastapi import FastAPI
from fastapi.routing import APIRoute, iter_route_contexts
from prometheus_client import CollectorRegistry
from pydantic import SecretStr
from starlette.testclient import TestClient
from starlette.websockets import WebSocketDisconnect
from typer.testing import CliRunner

from pyparrot.keys import keys_app
from services.gateway import auth, redaction
from services.gateway.app import create_app
from services.gateway.live.engine.store import SessionStore
from services.gateway.settings import GatewaySettings
from shared import bus, streams
from shared.admin import keystore
from tests.apps import running_app
from tests.gateway.live_helpers import listening

pytestmark = pytest.mark.redis

DOCS = {"/openapi.json", "/docs", "/docs/oauth2-redirect", "/redoc"}
OPEN = {"/live", "/health", "/ready", "/metrics", "/", "/static/{name}"}
CREDENTIALS = ("none", "wrong", "listener", "presenter", "admin")
SESSION = "abc123"  # every path parameter in the matrix; a live session of this id exists
OWNER = "pat@example.com"  # the presenter key's identity owns it; no listener was granted


def required_role(method: str, path: str) -> str | None:
    """The policy the gateway must enforce (None: open)."""
    if path in OPEN:
        return None
    if path.startswith("/ltapi/") or path == "/v1/workers":
        return "admin"
    if path == "/v1/live/options":
        return "listener"
    if method == "GET" and (path.startswith("/v1/sessions/") or path == "/events"):
        return "listener"
    return "presenter"


def owner_only(path: str) -> bool:
    """A live-session route: beyond its role, only the owner, admins and granted listeners."""
    return path.startswith("/v1/sessions/{session_id}") or path == "/events"


def allowed(credential: str, method: str, path: str) -> bool:
    role = required_role(method, path)
    if role is None:
        return True
    if credential in ("none", "wrong"):
        return False
    if owner_only(path):  # the owner is the presenter; the listener was never granted
        return credential in ("presenter", "admin")
    return keystore.rank(credential) >= keystore.rank(role)


@dataclass
class Keys:
    listener: str
    presenter: str
    admin: str

    def header(self, credential: str) -> dict[str, str]:
        if credential == "none":
            return {}
        token = "pp_not-a-key" if credential == "wrong" else getattr(self, credential)
        return {"Authorization": f"Bearer {token}"}


@pytest.fixture
async def keys(aredis: aioredis.Redis) -> Keys:
    listener, _ = await keystore.create(aredis, "listener", "lena@example.com")
    presenter, _ = await keystore.create(aredis, "presenter", "pat@example.com")
    admin, _ = await keystore.create(aredis, "admin", "admin@example.com")
    return Keys(listener, presenter, admin)


def settings_for(redis_url: str, **extra: object) -> GatewaySettings:
    values: dict[str, object] = {
        "redis_url": redis_url,
        "request_timeout_s": 3,
        "registry_cache_s": 0,
        "auth_cache_s": 0,
        "rate_limit_burst": 10_000,
    }
    return GatewaySettings(**(values | extra))  # type: ignore[arg-type]


@pytest.fixture
async def gateway(clean_redis: str, keys: Keys) -> AsyncIterator[httpx.AsyncClient]:
    async with (
        running_app(settings_for(clean_redis)) as app,
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://gateway", timeout=30
        ) as http,
    ):
        yield http


def http_routes(app: FastAPI) -> list[tuple[str, str]]:
    routes = []
    for context in iter_route_contexts(app.routes):
        if context.path in DOCS or not isinstance(context.original_route, APIRoute):
            continue
        routes += [(m, str(context.path)) for m in sorted(context.original_route.methods)]
    return routes


ROUTES = http_routes(create_app(GatewaySettings()))


def test_the_matrix_sees_every_route() -> None:
    paths = {p for _m, p in ROUTES}
    assert {"/v1/audio/transcriptions", "/v1/workers", "/ltapi/workers", "/events"} <= paths
    assert len(ROUTES) > 30


async def test_auth_matrix(clean_redis: str, keys: Keys, aredis: aioredis.Redis) -> None:
    # A real socket: an allowed event stream answers 200 and streams on; the client reads
    # its status and hangs up.
    store = SessionStore(aredis, ttl_s=600, events_maxlen=100)
    wrong = []
    async with running_app(settings_for(clean_redis)) as app, listening(app) as host:
        async with httpx.AsyncClient(base_url=f"http://{host}", timeout=30) as http:
            for method, path in ROUTES:
                url = re.sub(r"\{[^}]+\}", SESSION, path)
                url += f"?session_id={SESSION}" if path == "/events" else ""
                role = required_role(method, path)
                for credential in CREDENTIALS:
                    await store.delete(SESSION)  # as new: a DELETE in the matrix removes it
                    await store.create(owner=OWNER, session_id=SESSION)
                    request = http.build_request(method, url, headers=keys.header(credential))
                    response = await http.send(request, stream=True)
                    await response.aclose()
                    refused = response.status_code in (401, 403)
                    if refused == allowed(credential, method, path):
                        wrong.append((method, path, credential, role, response.status_code))
                    if credential == "none" and role is not None:
                        assert response.status_code == 401, (path, response.status_code)
                        assert response.headers["www-authenticate"] == "Bearer"
    assert wrong == []


def test_the_socket_handshake_checks_a_presented_key(clean_redis: str) -> None:
    app = create_app(settings_for(clean_redis), CollectorRegistry())
    with TestClient(app) as client:
        portal = client.portal
        assert portal is not None
        listener, _ = portal.call(_create_key, clean_redis, "listener")
        presenter, _ = portal.call(_create_key, clean_redis, "presenter")
        for token in ("pp_not-a-key", listener):
            with (
                pytest.raises(WebSocketDisconnect) as refused,
                client.websocket_connect(f"/ws/converse?api_key={token}"),
            ):
                pass
            assert refused.value.code == 1008
        with client.websocket_connect("/ws/converse", headers={"X-API-Key": presenter}):
            pass  # accepted: the session itself starts with the auth message


def test_the_socket_auth_message_must_carry_a_presenter_key(clean_redis: str) -> None:
    app = create_app(settings_for(clean_redis), CollectorRegistry())
    with TestClient(app) as client:
        portal = client.portal
        assert portal is not None
        listener, _ = portal.call(_create_key, clean_redis, "listener")
        presenter, _ = portal.call(_create_key, clean_redis, "presenter")
        with client.websocket_connect("/ws/converse") as ws:  # no key in the handshake
            for token in ("", "pp_not-a-key", listener):
                ws.send_json({"type": "auth", "api_key": token})
                event = ws.receive_json()
                assert (event["type"], event["code"]) == ("error", "unauthorized"), event
            ws.send_json({"type": "auth", "api_key": presenter})  # the socket stays usable
            assert ws.receive_json()["type"] == "session_started"


async def _create_key(redis_url: str, role: keystore.Role) -> tuple[str, keystore.KeyRecord]:
    redis = bus.client(redis_url)
    try:
        return await keystore.create(redis, role, f"{role}@example.com")
    finally:
        await redis.aclose()


async def test_every_way_of_presenting_a_key(gateway: httpx.AsyncClient, keys: Keys) -> None:
    assert (await gateway.get("/v1/workers", headers={"X-API-Key": keys.admin})).status_code == 200
    assert (await gateway.get(f"/v1/workers?api_key={keys.admin}")).status_code == 200
    bearer = {"Authorization": f"bearer {keys.admin}"}
    assert (await gateway.get("/v1/workers", headers=bearer)).status_code == 200
    basic = {"Authorization": f"Basic {keys.admin}"}
    assert (await gateway.get("/v1/workers", headers=basic)).status_code == 401


async def test_groups_are_the_source_of_truth(
    gateway: httpx.AsyncClient, keys: Keys, aredis: aioredis.Redis
) -> None:
    headers = {"X-API-Key": keys.admin}
    assert (await gateway.get("/v1/workers", headers=headers)).status_code == 200
    await aredis.srem(streams.role_group("admin"), "admin@example.com")
    assert (await gateway.get("/v1/workers", headers=headers)).status_code == 403
    assert (await gateway.get("/v1/voices", headers=headers)).status_code == 200  # presenter
    # A key never exceeds the role it was created with, whatever the groups say.
    await aredis.sadd(streams.role_group("admin"), "lena@example.com")
    listener = {"X-API-Key": keys.listener}
    assert (await gateway.get("/v1/voices", headers=listener)).status_code == 403


async def test_a_revoked_key_is_refused_at_once(
    gateway: httpx.AsyncClient, keys: Keys, aredis: aioredis.Redis
) -> None:
    headers = {"X-API-Key": keys.presenter}
    assert (await gateway.get("/v1/voices", headers=headers)).status_code == 200
    await keystore.revoke(aredis, keystore.hash_token(keys.presenter)[:12])
    response = await gateway.get("/v1/voices", headers=headers)
    assert response.status_code == 401
    assert "revoked" in response.json()["detail"]


async def _client(app: FastAPI) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://gateway")


async def test_loopback_without_keys_is_open_until_a_key_exists(
    clean_redis: str, aredis: aioredis.Redis, caplog: pytest.LogCaptureFixture
) -> None:
    async with running_app(settings_for(clean_redis)) as app, await _client(app) as http:
        with caplog.at_level(logging.WARNING, logger="services.gateway.auth"):
            assert (await http.get("/v1/workers")).status_code == 200
        assert "WITHOUT authentication" in caplog.text
        # Clients such as the OpenAI SDK always send some key: ignored while open.
        assert (await http.get("/v1/voices", headers={"X-API-Key": "x"})).status_code == 200
        token, _ = await keystore.create(aredis, "admin", "admin@example.com")
        assert (await http.get("/v1/workers")).status_code == 401
        assert (await http.get("/v1/workers", headers={"X-API-Key": token})).status_code == 200


async def test_keys_stored_under_the_old_names_still_guard_the_gateway(
    clean_redis: str, aredis: aioredis.Redis
) -> None:
    """A store written before the names had hash tags (``pp:apikeys``, ``pp:apikey:<sha>``)
    is moved on first count: the loopback gateway must not see it as empty and open up."""
    token = keystore.new_token()
    key_hash = keystore.hash_token(token)
    legacy_set, legacy_prefix = streams.legacy_api_keys()
    await aredis.hset(legacy_prefix + key_hash, mapping={"identity": "old@example.com",
                      "role": "admin", "created": 1.0, "label": "old"})  # fmt: skip
    await aredis.sadd(legacy_set, key_hash)
    await keystore.grant(aredis, "old@example.com", "admin")
    async with running_app(settings_for(clean_redis)) as app, await _client(app) as http:
        assert (await http.get("/v1/workers")).status_code == 401
        assert (await http.get("/v1/workers", headers={"X-API-Key": token})).status_code == 200
    assert not await aredis.exists(legacy_set, legacy_prefix + key_hash)
    assert [r.identity for r in await keystore.list_all(aredis)] == ["old@example.com"]


@pytest.mark.parametrize(
    "extra",
    [{"host": "0.0.0.0"}, {"require_api_keys": True}, {"admin_api_key": SecretStr("boot-key")}],
)
async def test_keys_are_required_when_exposed_or_configured(
    clean_redis: str, extra: dict[str, object]
) -> None:
    async with running_app(settings_for(clean_redis, **extra)) as app, await _client(app) as http:
        assert (await http.get("/v1/workers")).status_code == 401
        assert (await http.get("/health")).status_code == 200
        boot = {"X-API-Key": "boot-key"}
        expected = 200 if "admin_api_key" in extra else 401
        assert (await http.get("/v1/workers", headers=boot)).status_code == expected


def test_startup_rule() -> None:
    exposed = GatewaySettings(host="0.0.0.0")
    assert auth.startup_problem(exposed, stored_keys=0) is not None
    assert auth.startup_problem(exposed, stored_keys=1) is None
    assert auth.startup_problem(GatewaySettings(host="127.0.0.1"), 0) is None
    assert auth.startup_problem(GatewaySettings(host="::1"), 0) is None
    assert auth.startup_problem(GatewaySettings(host="gateway.example"), 0) is not None
    with_key = GatewaySettings(host="0.0.0.0", admin_api_key=SecretStr("k"))
    assert auth.startup_problem(with_key, 0) is None


def test_an_exposed_gateway_without_keys_refuses_to_start(clean_redis: str) -> None:
    env = os.environ | {"GATEWAY_HOST": "0.0.0.0", "REDIS_URL": clean_redis}
    env.pop("GATEWAY_ADMIN_API_KEY", None)
    done = subprocess.run(
        [sys.executable, "-m", "services.gateway"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2
    assert "refusing to serve on 0.0.0.0: no API key is configured" in done.stderr


async def test_rate_limit_per_key(clean_redis: str, aredis: aioredis.Redis) -> None:
    token, _ = await keystore.create(aredis, "presenter", "pat@example.com")
    other, _ = await keystore.create(aredis, "presenter", "pia@example.com")
    settings = settings_for(clean_redis, rate_limit_per_min=1, rate_limit_burst=2)
    async with running_app(settings) as app, await _client(app) as http:
        statuses = [
            (await http.get("/v1/voices", headers={"X-API-Key": token})).status_code
            for _ in range(3)
        ]
        assert statuses == [200, 200, 429]
        limited = await http.get("/v1/voices", headers={"X-API-Key": token})
        assert limited.status_code == 429
        assert 1 <= int(limited.headers["retry-after"]) <= 60
        assert (await http.get("/v1/voices", headers={"X-API-Key": other})).status_code == 200


@pytest.mark.parametrize("origins", [[], ["https://app.example"]])
async def test_cors_origins_come_from_settings(clean_redis: str, origins: list[str]) -> None:
    settings = settings_for(clean_redis, cors_origins=origins)
    preflight = {"Origin": "https://app.example", "Access-Control-Request-Method": "POST"}
    async with running_app(settings) as app, await _client(app) as http:
        response = await http.options("/v1/translate", headers=preflight)
        stranger = await http.get("/health", headers={"Origin": "https://evil.example"})
    allowed_origin = response.headers.get("access-control-allow-origin")
    assert allowed_origin == (origins[0] if origins else None)
    assert "access-control-allow-origin" not in stranger.headers


async def test_keys_never_reach_logs_or_metrics(
    gateway: httpx.AsyncClient, keys: Keys, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.DEBUG):
        await gateway.get("/v1/workers", headers={"X-API-Key": keys.admin})
        await gateway.get("/v1/workers", headers={"X-API-Key": "pp_wrong-key-material"})
        await gateway.get(f"/v1/workers?api_key={keys.listener}")
    metrics = (await gateway.get("/metrics")).text
    # The client's own request log (httpx) is the test's, not the gateway's.
    logged = "\n".join(r.getMessage() for r in caplog.records if not r.name.startswith("httpx"))
    for secret in (keys.admin, keys.listener, "pp_wrong-key-material"):
        assert secret not in logged
        assert secret not in metrics
    assert "401 for GET /v1/workers" in logged  # the refusal itself is logged


def test_uvicorn_access_log_masks_query_keys() -> None:
    # The shape of uvicorn's access record: client, method, path?query, version, status.
    args = ("127.0.0.1:5000", "GET", "/events?session_id=a&api_key=pp_secret&x=1", "1.1", 200)
    fmt = '%s - "%s %s HTTP/%s" %d'
    record = logging.LogRecord("uvicorn.access", logging.INFO, "", 0, fmt, args, None)
    assert redaction.RedactKeys().filter(record)
    assert "pp_secret" not in record.getMessage()
    assert "api_key=***&x=1" in record.getMessage()  # the rest of the URL stays


def test_pyparrot_keys_create_list_revoke(clean_redis: str) -> None:
    runner = CliRunner()
    env = {"REDIS_URL": clean_redis}
    created = runner.invoke(
        keys_app, ["create", "--role", "presenter", "--identity", "pat@example.com"], env=env
    )
    assert created.exit_code == 0, created.output
    token = created.stdout.strip().splitlines()[-1]
    assert token.startswith("pp_")
    listed = runner.invoke(keys_app, ["list", "--json"], env=env)
    rows = json.loads(listed.stdout)
    assert [(r["identity"], r["role"], r["effective_role"]) for r in rows] == [
        ("pat@example.com", "presenter", "presenter")
    ]
    assert token not in listed.stdout
    assert rows[0]["id"] == keystore.hash_token(token)[:12]
    assert runner.invoke(keys_app, ["revoke", rows[0]["id"]], env=env).exit_code == 0
    assert json.loads(runner.invoke(keys_app, ["list", "--json"], env=env).stdout) == []
    again = runner.invoke(keys_app, ["revoke", rows[0]["id"]], env=env)
    assert again.exit_code == 1
    assert "no key with id" in again.stderr


def test_pyparrot_keys_without_grant_reports_the_effective_role(clean_redis: str) -> None:
    runner = CliRunner()
    args = ["create", "--role", "admin", "--identity", "eve@example.com", "--no-grant"]
    created = runner.invoke(keys_app, args, env={"REDIS_URL": clean_redis})
    assert created.exit_code == 0, created.output
    assert "acts as listener" in created.stderr
    bad = runner.invoke(keys_app, ["create", "--role", "root"], env={"REDIS_URL": clean_redis})
    assert bad.exit_code == 2
