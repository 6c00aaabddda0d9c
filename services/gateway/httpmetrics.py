"""Request metrics as plain ASGI middleware: every response counted, crashes included.

A route that raises never returns a response to an ``@app.middleware("http")`` function, so
its 500 went uncounted; and a streaming body was timed only to its headers. Watching the
``send`` channel sees the status actually sent and the end of the body.
"""

import time

from starlette.types import ASGIApp, Message, Receive, Scope, Send


class RequestMetrics:
    """Counts each HTTP request by route and status and times it to its last byte."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500  # what the client gets if the app raises before answering

        async def sending(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, sending)
        finally:
            path = getattr(scope.get("route"), "path", "unmatched")
            metrics = scope["app"].state.core.metrics
            metrics.requests.labels(path, str(status)).inc()
            metrics.request_seconds.labels(path).observe(time.perf_counter() - started)
