"""Request bodies: never read past ``max_upload_bytes``, never read before the key is checked.

FastAPI parses a route's body before it runs the route's dependencies (where the role is
checked), so without this gate a client with no key could make the gateway read, and spool
to disk, a body as large as the upload limit. ``BodyGate`` is pure ASGI, in front of every
route:

- a declared ``Content-Length`` over the limit gets 413 before any of the body is read;
- a request that carries a body (declared or chunked) is authenticated first: a missing or
  wrong key gets 401 without the body being read, and a key below ``BODY_ROLE`` gets 403
  (every route that takes a body needs a presenter key; the route's own role, e.g. admin,
  is still checked later);
- a chunked body is cut off with 413 as soon as it passes the limit, so no route ever holds
  more than the limit; a body that sends nothing for ``body_idle_timeout_s`` gets 408;
- only a multipart upload (spooled to disk by the form parser) may reach
  ``max_upload_bytes``; every other body, whatever its content type, has the smaller
  ``max_json_bytes`` limit, because FastAPI reads it whole into memory (and parses any
  ``application/*+json`` as JSON).

Starlette's ``RequestBodyLimitMiddleware`` covers only the last point, answers in plain text
rather than the gateway's error shape, and runs the route even when the declared length is
already too large.
"""

import asyncio

from starlette.datastructures import Headers
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from services.gateway import auth
from services.gateway.core import Core
from services.gateway.errors import GatewayError, error_body
from shared.admin.keystore import Role

BODY_ROLE: Role = "presenter"  # the weakest role of any route that takes a body
SPOOLED_TYPES = frozenset({"multipart/form-data"})  # parsed to disk, not into memory


class BodyTooLarge(HTTPException):
    """Raised from ``receive`` once a body passes the limit; FastAPI passes it through as is
    (an ``HTTPException``), and the app's handler answers 413."""

    code = "too_large"

    def __init__(self, limit: int) -> None:
        super().__init__(413, f"the request body is larger than {limit} bytes")


def _refusal(status: int, message: str, code: str, **headers: str) -> JSONResponse:
    return JSONResponse(error_body(status, message, code), status, headers or None)


def _declared_problem(headers: Headers, limit: int) -> JSONResponse | None:
    """413 for a declared length over ``limit``, 400 for one that is no number."""
    declared = headers.get("content-length")
    if declared is None:
        return None
    if not (declared.isascii() and declared.isdigit()):
        return _refusal(400, f"Content-Length {declared[:20]!r} is no length", "bad_request")
    if int(declared) > limit:
        return _refusal(413, f"the request body is larger than {limit} bytes", "too_large")
    return None


def _has_body(headers: Headers) -> bool:
    return "transfer-encoding" in headers or headers.get("content-length", "0") != "0"


def body_limit(core: Core, headers: Headers) -> int:
    """The most this request's body may hold, by its content type."""
    media = headers.get("content-type", "").split(";")[0].strip().lower()
    upload = core.settings.max_upload_bytes
    return upload if media in SPOOLED_TYPES else min(upload, core.settings.max_json_bytes)


async def _authenticate(core: Core, scope: Scope) -> JSONResponse | None:
    """None if the request's key may send a body (the identity is kept for the route), else
    401/403/503."""
    request = Request(scope)
    try:
        identity = await auth.authenticate(core, auth.token_of(request))
    except auth.AuthError as exc:
        auth.log_refusal(request, exc)
        return _refusal(401, str(exc), "http_error", **{"WWW-Authenticate": "Bearer"})
    except GatewayError as exc:
        return _refusal(exc.status, exc.message, exc.code, **{"Retry-After": "5"})
    if scope.get("method") not in auth.READ_METHODS and not identity.allows(BODY_ROLE):
        message = f"a request body needs the {BODY_ROLE!r} role; the key has {identity.role!r}"
        return _refusal(403, message, "forbidden")
    scope.setdefault("state", {})[auth.EARLY_IDENTITY] = identity
    return None


class BodyStalled(HTTPException):
    """Raised from ``receive`` when a body stops arriving; the app's handler answers 408."""

    code = "body_timeout"

    def __init__(self, idle_s: float) -> None:
        super().__init__(408, f"the request body sent nothing for {idle_s:g} s")


def _capped(receive: Receive, limit: int, idle_s: float) -> Receive:
    """``receive`` that raises ``BodyTooLarge`` instead of handing on more than ``limit``,
    and ``BodyStalled`` when the body sends nothing for ``idle_s`` (a trickled body would
    keep its route, and its connection, waiting for ever)."""
    seen = 0
    complete = False

    async def capped() -> Message:
        nonlocal seen, complete
        if seen > limit:  # the route caught the first refusal and read on: refuse again
            raise BodyTooLarge(limit)
        if complete:  # after the body only a disconnect can come: no deadline for that
            return await receive()
        try:
            async with asyncio.timeout(idle_s):
                message = await receive()
        except TimeoutError:
            raise BodyStalled(idle_s) from None
        if message["type"] == "http.request":
            seen += len(message.get("body", b""))
            complete = not message.get("more_body", False)
            if seen > limit:
                raise BodyTooLarge(limit)
        return message

    return capped


class BodyGate:
    """Pure ASGI middleware: the body rules above, for HTTP requests (sockets pass through)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        core: Core = scope["app"].state.core
        headers = Headers(scope=scope)
        limit = body_limit(core, headers)
        refusal = _declared_problem(headers, limit)
        if refusal is None and _has_body(headers):
            refusal = await _authenticate(core, scope)
        if refusal is not None:
            await refusal(scope, receive, send)
            return
        idle_s = core.settings.body_idle_timeout_s
        await self.app(scope, _capped(receive, limit, idle_s), send)
