"""``up`` and ``down``: the local stack as a set of recorded processes."""

import importlib.util
import json
import sys
import time
from dataclasses import dataclass

import httpx

from pyparrot import procs, redis_server
from pyparrot.procs import Proc
from pyparrot.settings import CliSettings

STAGES = ("stt", "mt", "tts", "summarizer")


class StackError(RuntimeError):
    """``up``/``down`` cannot do what was asked; the message says why."""


@dataclass(frozen=True)
class UpOptions:
    host: str
    port: int
    workers: dict[str, int]


def parse_workers(spec: str) -> dict[str, int]:
    """``"stt=2,mt=1"`` -> ``{"stt": 2, "mt": 1}``, validated."""
    counts: dict[str, int] = {}
    for part in filter(None, (p.strip() for p in spec.split(","))):
        name, sep, value = part.partition("=")
        if not sep or name not in STAGES:
            raise StackError(f"bad worker spec {part!r}: use STAGE=N with STAGE in {STAGES}")
        if not value.isdigit():
            raise StackError(f"bad worker count {value!r} for {name}: use a whole number >= 0")
        counts[name] = int(value)
    return counts


def runnable(stage: str) -> bool:
    """True if this install has a worker for ``stage``."""
    return importlib.util.find_spec(f"services.{stage}.__main__") is not None


def running(settings: CliSettings) -> list[Proc]:
    """The processes of a previous ``up`` that still run."""
    recorded, _ = procs.load(settings.state_file)
    return [p for p in recorded if procs.alive(p)]


def up(settings: CliSettings, options: UpOptions) -> tuple[str, list[Proc]]:
    """Start Redis (if needed), the gateway and the workers; wait for /ready."""
    if running(settings):
        raise StackError("a stack is already running: `pyparrot down` first")
    missing = [s for s, n in options.workers.items() if n and not runnable(s)]
    if missing:
        raise StackError(f"no worker is available yet for: {', '.join(missing)}")
    started: list[Proc] = []
    url = f"http://{options.host}:{options.port}"
    try:
        if not redis_server.reachable(settings.redis_url):
            started.append(
                redis_server.start(
                    settings.redis_url, settings.logs_dir, settings.home_dir / "redis"
                )
            )
        env = {"REDIS_URL": settings.redis_url, "LOG_LEVEL": settings.log_level}
        gateway_env = {
            **env,
            "GATEWAY_HOST": options.host,
            "GATEWAY_PORT": str(options.port),
            "GATEWAY_REQUIRED_STAGES": json.dumps([s for s, n in options.workers.items() if n]),
        }
        started.append(_python("gateway", "services.gateway", gateway_env, settings))
        for stage, count in options.workers.items():
            for i in range(count):
                started.append(_python(f"{stage}-{i + 1}", f"services.{stage}", env, settings))
        procs.save(settings.state_file, started, {"url": url, "redis_url": settings.redis_url})
        wait_ready(url, started, settings.ready_timeout_s)
    except BaseException:
        procs.stop(started, settings.stop_timeout_s)
        settings.state_file.unlink(missing_ok=True)
        raise
    return url, started


def _python(name: str, module: str, env: dict[str, str], settings: CliSettings) -> Proc:
    return procs.spawn(name, [sys.executable, "-m", module], env, settings.logs_dir)


def wait_ready(url: str, started: list[Proc], timeout_s: float) -> None:
    """Poll /ready until it answers 200; fail early if a process dies."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        dead = [p for p in started if not procs.alive(p)]
        if dead:
            p = dead[0]
            raise StackError(
                f"{p.name} exited during start-up; last log lines:\n{procs.tail(p.log)}"
            )
        try:
            if httpx.get(f"{url}/ready", timeout=2.0).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.25)
    raise StackError(f"the stack was not ready after {timeout_s:.0f} s (see {started[0].log})")


def down(settings: CliSettings) -> tuple[list[Proc], list[str]]:
    """Stop what ``up`` started, workers first and Redis last; forget the state."""
    recorded, _ = procs.load(settings.state_file)
    waves = (
        [p for p in recorded if p.name not in ("gateway", "redis")],
        [p for p in recorded if p.name == "gateway"],
        [p for p in recorded if p.name == "redis"],
    )
    killed = [name for wave in waves for name in procs.stop(wave, settings.stop_timeout_s)]
    settings.state_file.unlink(missing_ok=True)
    return recorded, killed
