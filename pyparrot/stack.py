"""``up`` and ``down``: the local stack as a set of recorded processes."""

import importlib.util
import json
import os
import re
import shutil
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from pyparrot import procs, redis_cluster, redis_server, supervisor
from pyparrot.procs import Proc
from pyparrot.settings import CliSettings
from shared import bus

STAGES = ("stt", "mt", "tts", "summarizer", "llm", "speaker")
# ``STAGE:VARIANT`` in a worker spec sets this setting of the worker to VARIANT, e.g.
# ``stt:base`` (the multilingual Whisper) or ``tts:espeak`` (espeak-ng voices).
VARIANT_SETTINGS = {"stt": "STT_MODEL", "mt": "MT_ENGINE", "tts": "TTS_ENGINE"}
VARIANT = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
# Stage names of earlier releases, with what a user should write instead.
RENAMED = {"dialog": "the stage is called llm now"}
DEFAULT_WORKERS = "stt=1,stt:base=1,mt=1,tts=1,tts:espeak=1,summarizer=1,llm=1,speaker=1"


class StackError(RuntimeError):
    """``up``/``down`` cannot do what was asked; the message says why."""


@dataclass(frozen=True)
class UpOptions:
    host: str
    port: int
    workers: dict[str, int]
    gateway_env: dict[str, str] = field(default_factory=dict)
    extra_modules: tuple[str, ...] = ()  # e.g. "external": one process each, no count
    state_file: Path | None = None  # default: settings.state_file (the `up` stack)


def split_key(key: str) -> tuple[str, str]:
    """``"stt:base"`` -> ``("stt", "base")``; ``"mt"`` -> ``("mt", "")``."""
    stage, _sep, variant = key.partition(":")
    return stage, variant


def proc_prefix(key: str) -> str:
    """The process name stem of a worker spec key: ``stt:base`` -> ``stt-base``."""
    return key.replace(":", "-")


def worker_env(key: str) -> dict[str, str]:
    """The settings a worker spec key implies (its variant)."""
    stage, variant = split_key(key)
    return {VARIANT_SETTINGS[stage]: variant} if variant else {}


def parse_workers(spec: str) -> dict[str, int]:
    """``"stt=2,stt:base=1,mt=1"`` -> ``{"stt": 2, "stt:base": 1, "mt": 1}``, validated."""
    counts: dict[str, int] = {}
    for part in filter(None, (p.strip() for p in spec.split(","))):
        name, sep, value = part.partition("=")
        stage, variant = split_key(name)
        if stage in RENAMED:
            raise StackError(f"bad worker spec {part!r}: {RENAMED[stage]}")
        if not sep or stage not in STAGES:
            raise StackError(
                f"bad worker spec {part!r}: use STAGE=N or STAGE:VARIANT=N, STAGE in {STAGES}"
            )
        if ":" in name and (stage not in VARIANT_SETTINGS or not VARIANT.match(variant)):
            raise StackError(
                f"bad worker variant {name!r}: only {sorted(VARIANT_SETTINGS)} take one, "
                "e.g. stt:base (sets STT_MODEL), tts:espeak (TTS_ENGINE), mt:ctranslate2"
            )
        if not value.isdigit():
            raise StackError(f"bad worker count {value!r} for {name}: use a whole number >= 0")
        counts[name] = int(value)
    return counts


def runnable(key: str) -> bool:
    """True if this install has a worker for the stage of ``key``."""
    stage, _variant = split_key(key)
    return importlib.util.find_spec(f"services.{stage}.__main__") is not None


def running(settings: CliSettings, state_file: Path | None = None) -> list[Proc]:
    """The processes of a previous ``up`` (or pipeline ``start``) that still run."""
    recorded, _ = procs.load(state_file or settings.state_file)
    return [p for p in recorded if procs.alive(p)]


def up(settings: CliSettings, options: UpOptions) -> tuple[str, list[Proc]]:
    """Start Redis (if needed), the gateway and the workers; wait for /ready."""
    state_file = options.state_file or settings.state_file
    if running(settings, state_file):
        raise StackError(f"already running (state in {state_file}): stop it first")
    missing = [s for s, n in options.workers.items() if n and not runnable(s)]
    if missing:
        raise StackError(f"no worker is available yet for: {', '.join(missing)}")
    url = f"http://{options.host}:{options.port}"
    redis_url, redis_state, servers = start_redis(settings)
    started = list(servers)
    try:
        env = {"REDIS_URL": redis_url, "LOG_LEVEL": settings.log_level}
        gateway_env = {
            **env,
            "GATEWAY_HOST": options.host,
            "GATEWAY_PORT": str(options.port),
            "GATEWAY_KEYS_MARKER_DIR": str(settings.keys_marker_dir),
            "GATEWAY_REQUIRED_STAGES": json.dumps(
                sorted({split_key(k)[0] for k, n in options.workers.items() if n})
            ),  # fmt: skip
            **options.gateway_env,
        }
        started.append(_python("gateway", "services.gateway", gateway_env, settings))
        for key, count in options.workers.items():
            for i in range(count):
                name = f"{proc_prefix(key)}-{i + 1}"
                module = f"services.{split_key(key)[0]}"
                started.append(_python(name, module, env | worker_env(key), settings))
        for module in options.extra_modules:
            started.append(_python(module, f"services.{module}", env, settings))
        extra = {"url": url, "redis_url": redis_url, "redis": redis_state}
        procs.save(state_file, started, extra)
        wait_ready(url, started, settings.ready_timeout_s)
    except BaseException:
        procs.stop(started, settings.stop_timeout_s)
        state_file.unlink(missing_ok=True)
        raise
    return url, started


def start_redis(settings: CliSettings) -> tuple[str, dict[str, object], list[Proc]]:
    """The Redis the stack will use: its URL, whose it is (as ``check_existing_redis`` says),
    and the servers started for it: one Redis if none answers at REDIS_URL, or a local
    cluster when ``redis_cluster`` asks for one."""
    if settings.redis_cluster:
        return _start_cluster(settings)
    state = check_existing_redis(settings)
    if state["origin"] != "started":
        return settings.redis_url, state, []
    if bus.is_cluster_url(settings.redis_url):
        raise StackError(
            f"the Redis Cluster at {settings.redis_url} does not answer: start it, or let up "
            "start a local one with --redis-cluster N (PYPARROT_REDIS_CLUSTER=N)"
        )
    server = redis_server.start(
        settings.redis_url,
        settings.logs_dir,
        settings.home_dir / "redis",
        persist=True,  # API keys and session grants must survive a restart
    )
    return settings.redis_url, state, [server]


def _start_cluster(settings: CliSettings) -> tuple[str, dict[str, object], list[Proc]]:
    """A local cluster of ``redis_cluster`` primaries; its state maps each to its replicas."""
    cluster_dir = settings.home_dir / "redis-cluster"
    # Each cluster is new (new ports, new node ids): an earlier one's files are dead.
    shutil.rmtree(cluster_dir, ignore_errors=True)
    cluster = redis_cluster.start(
        settings.redis_cluster,
        settings.logs_dir,
        cluster_dir,
        replicas=settings.redis_replicas,
        persist=True,  # a restarted node keeps its keys, grants and sessions
    )
    shards = {f"{h}:{p}": [f"{rh}:{rp}" for rh, rp in r] for (h, p), r in cluster.replicas.items()}
    return cluster.url, {"origin": "started", "foreign_keys": 0, "cluster": shards}, cluster.procs


def recorded_redis_url(settings: CliSettings, extra: dict[str, object]) -> str:
    """The Redis of a running stack: the local cluster ``up`` started (its ports were chosen
    then, so only the state knows them), else REDIS_URL."""
    redis_state = extra.get("redis")
    if isinstance(redis_state, dict) and "cluster" in redis_state and extra.get("redis_url"):
        return str(extra["redis_url"])
    return settings.redis_url


def is_redis(proc: Proc) -> bool:
    """A Redis server of the stack: the one Redis, or a node of the local cluster."""
    return proc.name == "redis" or proc.name.startswith("redis-")


def check_existing_redis(settings: CliSettings) -> dict[str, object]:
    """Whose Redis ``up`` will use: ``origin`` "started" (none answers: up starts its own),
    "existing" (one answers, holding only PyParrot's keys) or "shared" (it holds other keys,
    and ``shared_redis`` allows it). Refuses a Redis holding other applications' keys unless
    allowed: up would create streams and consumer groups among them."""
    url = settings.redis_url
    if not redis_server.reachable(url):
        return {"origin": "started", "foreign_keys": 0}
    count, examples = redis_server.foreign_keys(url)
    if count and not settings.shared_redis:
        raise StackError(
            f"the Redis at {url} (not started by pyparrot) holds {count} key(s) that are not "
            f"PyParrot's (e.g. {', '.join(examples)}): another application uses it. Point "
            "REDIS_URL at a free port (up then starts its own Redis), or pass --shared-redis "
            "(PYPARROT_SHARED_REDIS=1) to share this one anyway"
        )
    return {"origin": "shared" if count else "existing", "foreign_keys": count}


def record(state_file: Path, proc: Proc) -> None:
    """Add ``proc`` to a running stack's state (its supervisor)."""
    with procs.state_lock(state_file):
        recorded, extra = procs.load(state_file)
        procs.save(state_file, [*recorded, proc], extra)


def start_supervisor(settings: CliSettings, state_file: Path | None = None) -> Proc:
    """Start ``python -m pyparrot.supervisor`` for a detached stack and record it."""
    env = {"PYPARROT_HOME": str(settings.home_dir)}
    proc = _python(supervisor.NAME, "pyparrot.supervisor", env, settings)
    record(state_file or settings.state_file, proc)
    return proc


def spawn_worker(settings: CliSettings, name: str, key: str, redis_url: str) -> Proc:
    """Start one more worker process for a worker spec key (for ``scale``)."""
    env = {"REDIS_URL": redis_url, "LOG_LEVEL": settings.log_level} | worker_env(key)
    return _python(name, f"services.{split_key(key)[0]}", env, settings)


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


def down(settings: CliSettings, state_file: Path | None = None) -> tuple[list[Proc], list[str]]:
    """Stop what ``up`` started, workers first and Redis last; forget the state."""
    state_file = state_file or settings.state_file
    with procs.state_lock(state_file):
        recorded, _ = procs.load(state_file)
        state_file.unlink(missing_ok=True)  # first: a supervisor restarts nothing from now on
    waves = (
        # A foreground `up` stopping its own stack is the supervisor: not a process to stop.
        [p for p in recorded if p.name == supervisor.NAME and p.pid != os.getpid()],
        [p for p in recorded if p.name not in ("gateway", supervisor.NAME) and not is_redis(p)],
        [p for p in recorded if p.name == "gateway"],
        [p for p in recorded if is_redis(p)],
    )
    killed = [name for wave in waves for name in procs.stop(wave, settings.stop_timeout_s)]
    return recorded, killed
