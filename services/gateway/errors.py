"""How the gateway's failures reach a client: one exception, one error body, and the one
mapping of a lost message bus to 503.

A route raises ``GatewayError``; the app turns it into ``error_body`` (HTTP) and a socket
turns it into an ``error`` event. A Redis outage anywhere in a request is the same answer,
"503 bus_down", so it is written here once: wrap the Redis calls in ``bus_guard()`` or
await them through ``guarded()``.
"""

from collections.abc import Awaitable, Iterator
from contextlib import contextmanager
from typing import TypeVar

from shared import bus, errors
from shared.messages import ErrorResult

T = TypeVar("T")


class GatewayError(Exception):
    """A request that cannot be served; becomes an HTTP error (or a socket error event)."""

    def __init__(self, status: int, message: str, code: str = "error") -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.code = code


def error_body(status: int, message: str, code: str) -> dict[str, object]:
    """One error shape: FastAPI's ``detail`` plus OpenAI's ``error`` object."""
    kind = "invalid_request_error" if status < 500 else "server_error"
    return {"detail": message, "error": {"message": message, "type": kind, "code": code}}


def bus_down(exc: BaseException) -> GatewayError:
    """The answer to a request that met a Redis outage: 503, code ``bus_down``."""
    return GatewayError(503, f"the message bus is unavailable: {exc}", "bus_down")


@contextmanager
def bus_guard() -> Iterator[None]:
    """Turn a Redis outage inside the block into ``bus_down`` (503) rather than a 500."""
    try:
        yield
    except bus.TRANSIENT as exc:
        raise bus_down(exc) from exc


async def guarded(operation: Awaitable[T]) -> T:
    """Await a Redis operation; an outage becomes ``bus_down`` (503) rather than a 500."""
    with bus_guard():
        return await operation


def worker_error(component: str, error: ErrorResult) -> GatewayError:
    """A worker's error reply as an HTTP error: 4xx for the client's mistake (the table in
    ``shared.errors``), 504 for a job that waited past its deadline, else 502."""
    status = errors.client_status(error.code) or (504 if error.code == "expired" else 502)
    return GatewayError(status, f"{component} failed: {error.message}", error.code)
