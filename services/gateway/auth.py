"""Who is calling: API keys, roles, the loopback-only open mode, and CORS.

A request carries its key as ``Authorization: Bearer <key>``, ``X-API-Key: <key>`` or (for
browsers' EventSource and WebSocket, which cannot set headers) the ``api_key`` query
parameter. Keys live in Redis (``keystore``); ``GATEWAY_ADMIN_API_KEY`` adds a bootstrap
admin key. With no key anywhere, a gateway bound to loopback serves everyone (a fresh local
demo works) and one bound elsewhere refuses to start (``startup_problem``) and, should it run
anyway, still demands a key: an exposed gateway is never open.
"""

import hmac
import ipaddress
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import cast

from fastapi import FastAPI, HTTPException, WebSocketException, status
from starlette.middleware.cors import CORSMiddleware
from starlette.requests import HTTPConnection

from services.gateway import ratelimit
from services.gateway.core import Core
from services.gateway.errors import bus_guard
from services.gateway.settings import GatewaySettings
from shared.admin import keymarker, keystore
from shared.admin.keystore import Role, rank

log = logging.getLogger(__name__)
BOOTSTRAP_IDENTITY = "bootstrap-admin"
ANONYMOUS = "anonymous"
MAX_TOKEN_CHARS = 512
EARLY_IDENTITY = "pp_identity"  # scope["state"] key: who sent a body, set before reading it
READ_METHODS = frozenset({"GET", "HEAD"})
# instance_id -> (valid until, keys stored?): one SCARD per auth_cache_s, not per request.
_stored_keys: dict[str, tuple[float, bool]] = {}


@dataclass(frozen=True)
class Identity:
    name: str
    role: Role
    key_id: str | None  # a prefix of the key's hash (safe to log); None when unauthenticated

    def allows(self, role: Role) -> bool:
        """True if this identity holds ``role`` or a stronger one."""
        return rank(self.role) >= rank(role)

    def owns(self, owner: str) -> bool:
        """True if this identity may change what ``owner`` created: it is that owner, or an
        admin. The one ownership rule behind every session and memory check."""
        return self.allows("admin") or (bool(owner) and owner == self.name)


class AuthError(Exception):
    """A missing or unknown key (401)."""


def is_loopback(host: str) -> bool:
    """True if ``host`` only accepts connections from this machine."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False  # a host name may resolve anywhere: treat it as exposed


def _static_keys(settings: GatewaySettings) -> bool:
    return settings.admin_api_key is not None and bool(settings.admin_api_key.get_secret_value())


async def keys_required(core: Core) -> bool:
    """True unless this is a loopback gateway with no key configured or stored."""
    settings = core.settings
    if settings.require_api_keys or _static_keys(settings) or not is_loopback(settings.host):
        return True
    now = time.monotonic()
    cached = _stored_keys.get(settings.instance_id)
    if cached is not None and cached[0] > now:
        return cached[1]
    with bus_guard():
        stored = await keystore.count(core.redis) > 0
    if len(_stored_keys) > 1_000:  # many short-lived apps (tests): forget the old ones
        _stored_keys.clear()
    marker = keymarker.path_for(settings.keys_marker_dir, settings.redis_url)
    if stored:
        keymarker.remember(marker)
    elif keymarker.existed(marker):
        log.error(
            "the key store in Redis is EMPTY although API keys existed (%s): Redis was "
            "restarted without persistence or flushed. Every request needs a key; recreate "
            "them with `pyparrot keys create`",
            marker,
        )
        stored = True
    elif settings.instance_id not in _stored_keys:
        log.warning("no API keys configured: serving WITHOUT authentication on loopback only")
    _stored_keys[settings.instance_id] = (now + settings.auth_cache_s, stored)
    return stored


async def authenticate(core: Core, token: str | None) -> Identity:
    """The identity behind ``token``; raise ``AuthError`` (401), ``GatewayError`` (503)."""
    if not await keys_required(core):
        # Open loopback mode: any key is ignored, as clients (OpenAI SDK) always send one.
        return Identity(ANONYMOUS, "admin", None)
    if not token:
        raise AuthError("an API key is required (Authorization: Bearer, or X-API-Key)")
    if len(token) > MAX_TOKEN_CHARS:
        raise AuthError("unknown or revoked API key")
    key_hash = keystore.hash_token(token)
    admin_key = core.settings.admin_api_key
    if admin_key is not None and admin_key.get_secret_value():
        expected = keystore.hash_token(admin_key.get_secret_value())
        if hmac.compare_digest(key_hash, expected):
            return Identity(BOOTSTRAP_IDENTITY, "admin", key_hash[: keystore.KEY_ID_CHARS])
    with bus_guard():
        record = await keystore.lookup(core.redis, token)
        held = await keystore.group_role(core.redis, record.identity) if record else None
    if record is None or held is None:
        raise AuthError("unknown or revoked API key")
    return Identity(record.identity, keystore.lower(record.role, held), record.key_id)


async def authenticate_socket(core: Core, token: str | None) -> Identity | None:
    """For sockets: the identity behind ``token``, or None if it is missing or wrong.

    Raises ``GatewayError`` (503) only when Redis cannot be asked.
    """
    try:
        return await authenticate(core, token)
    except AuthError:
        return None


def token_of(connection: HTTPConnection) -> str | None:
    """The key a request presents: Bearer header, ``X-API-Key`` header or ``api_key`` query."""
    header = connection.headers.get("authorization", "")
    scheme, _, credentials = header.partition(" ")
    if scheme.lower() == "bearer" and credentials.strip():
        return credentials.strip()
    return connection.headers.get("x-api-key") or connection.query_params.get("api_key") or None


async def _rate_limit(core: Core, identity: Identity) -> None:
    if identity.key_id is None:
        return
    settings = core.settings
    with bus_guard():
        wait_s = await ratelimit.take(
            core.redis, identity.key_id, settings.rate_limit_per_min, settings.rate_limit_burst
        )
    if wait_s > 0:
        raise HTTPException(
            status.HTTP_429_TOO_MANY_REQUESTS,
            f"rate limit of {settings.rate_limit_per_min} requests/min for this key exceeded",
            headers={"Retry-After": ratelimit.retry_after(wait_s)},
        )


def log_refusal(connection: HTTPConnection, exc: AuthError) -> None:
    """Log a 401 (method, path, client and reason; never the key)."""
    client = connection.client.host if connection.client else "?"
    method = connection.scope.get("method")
    log.info("401 for %s %s from %s: %s", method, connection.url.path, client, exc)


async def _guard_http(connection: HTTPConnection, role: Role) -> Identity:
    core: Core = connection.app.state.core
    # A request with a body was authenticated before it was read (``gate.BodyGate``).
    identity = connection.scope.get("state", {}).get(EARLY_IDENTITY)
    if not isinstance(identity, Identity):
        try:
            identity = await authenticate(core, token_of(connection))
        except AuthError as exc:
            log_refusal(connection, exc)
            raise HTTPException(401, str(exc), headers={"WWW-Authenticate": "Bearer"}) from exc
    if not identity.allows(role):
        raise HTTPException(
            403, f"this route needs the {role!r} role; the key has {identity.role!r}"
        )
    await _rate_limit(core, identity)
    connection.state.identity = identity
    return identity


async def _guard_socket(connection: HTTPConnection, role: Role) -> Identity | None:
    """A socket may present its key in the handshake; if not, its ``auth`` message must."""
    token = token_of(connection)
    if token is None:
        return None
    identity = await authenticate_socket(connection.app.state.core, token)
    if identity is None or not identity.allows(role):
        raise WebSocketException(status.WS_1008_POLICY_VIOLATION, "API key refused")
    connection.state.identity = identity
    return identity


async def _guard(connection: HTTPConnection, role: Role | None) -> Identity | None:
    if role is None:
        return None
    if connection.scope["type"] == "websocket":
        return await _guard_socket(connection, role)
    return await _guard_http(connection, role)


Dependency = Callable[[HTTPConnection], Awaitable[Identity | None]]


def caller(connection: HTTPConnection) -> Identity:
    """FastAPI dependency: the identity the router's ``require...`` dependency admitted."""
    identity = getattr(connection.state, "identity", None)
    if not isinstance(identity, Identity):  # a route that needs it but has no role: a bug
        raise RuntimeError(f"{connection.url.path} has no authenticated identity")
    return identity


def require(role: Role) -> Dependency:
    """FastAPI dependency: the caller's identity, which must hold ``role`` (else 401/403)."""

    async def dependency(connection: HTTPConnection) -> Identity | None:
        return await _guard(connection, role)

    return dependency


def require_by_method(read: Role, write: Role) -> Dependency:
    """Like ``require``: ``read`` for GET/HEAD, ``write`` for other methods and sockets."""

    async def dependency(connection: HTTPConnection) -> Identity | None:
        method = connection.scope.get("method", "")
        return await _guard(connection, read if method in READ_METHODS else write)

    return dependency


def require_for_paths(roles: Mapping[str, str]) -> Dependency:
    """Like ``require``, per route path (e.g. ``/v1/workers``); routes not listed are open."""
    unknown = set(roles.values()) - set(keystore.ROLES)
    if unknown:
        raise ValueError(f"unknown roles {sorted(unknown)}; one of {keystore.ROLES}")
    checked = cast(Mapping[str, Role], roles)

    async def dependency(connection: HTTPConnection) -> Identity | None:
        route = connection.scope.get("route")
        return await _guard(connection, checked.get(getattr(route, "path", "")))

    return dependency


def startup_problem(settings: GatewaySettings, stored_keys: int) -> str | None:
    """Why this gateway must not start (non-loopback and no key at all), or None."""
    if is_loopback(settings.host) or _static_keys(settings) or stored_keys > 0:
        return None
    return (
        f"refusing to serve on {settings.host}: no API key is configured, so anyone who can "
        "reach this address could use it. Create one (`pyparrot keys create --role admin "
        "--identity you@example.com`) or set GATEWAY_ADMIN_API_KEY, or bind GATEWAY_HOST to "
        "127.0.0.1."
    )


def install_cors(app: FastAPI, settings: GatewaySettings) -> None:
    """Allow the configured browser origins (none by default); keys travel in headers."""
    if not settings.cors_origins:
        return
    app.add_middleware(
        CORSMiddleware,
        allow_origins=settings.cors_origins,
        allow_methods=["GET", "POST", "DELETE", "OPTIONS"],
        allow_headers=["Authorization", "X-API-Key", "Content-Type", "Last-Event-ID"],
        expose_headers=["Retry-After"],
        allow_credentials=False,
        max_age=600,
    )
