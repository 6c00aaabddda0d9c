"""Starting the real gateway on a benchmark's stack and waiting until it is ready."""

import json

from bench.stack import Child, Stack, http_ok, wait_until
from pyparrot import redis_server

READY_TIMEOUT_S = 120.0


def spawn_gateway(
    stack: Stack, stages: list[str], env: dict[str, str] | None = None
) -> tuple[Child, str]:
    """Start ``python -m services.gateway`` on a free port, ready once every stage in
    ``stages`` has a live worker; returns the child and its base URL without waiting, so
    a benchmark can load its own models meanwhile."""
    port = redis_server.free_port()
    gateway_env = {"GATEWAY_PORT": str(port), "GATEWAY_REQUIRED_STAGES": json.dumps(stages)}
    child = stack.spawn("gateway", ["-m", "services.gateway"], gateway_env | (env or {}))
    return child, f"http://127.0.0.1:{port}"


def wait_ready(base: str, children: list[Child]) -> None:
    """Wait for the gateway's /ready; fail early if one of ``children`` exits."""
    wait_until(lambda: http_ok(f"{base}/ready"), children, READY_TIMEOUT_S)
