"""``start`` / ``stop`` of a configured pipeline (seed 000): processes (or compose), the
Redis role groups, then registration of the configured external backends.

Each pipeline keeps its processes, logs and state under ``$PYPARROT_HOME/NAME/``, apart
from the default ``up`` stack.
"""

import os
import shutil
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import redis

from pyparrot import pipelines, stack
from pyparrot.pipelines import BACKEND_URLS, STAGES, ConfigError, PipelineConfig
from pyparrot.settings import CliSettings
from shared import streams

Echo = Callable[[str], None]
COMPOSE_FILE = Path(__file__).resolve().parent.parent / "compose.yaml"
REGISTER_TIMEOUT_S = 15.0


def pipeline_settings(settings: CliSettings, name: str) -> CliSettings:
    """The CLI settings of one pipeline: its own home, logs and state file."""
    directory = pipelines.config_dir(settings.home_dir, name)
    return settings.model_copy(update={"home": directory})


def local_stages(config: PipelineConfig, extra: dict[str, int]) -> dict[str, int]:
    """Worker processes to run here: the type's stages, minus external and remote ones."""
    if config.backends == "distributed":
        counts: dict[str, int] = {}
    else:
        replaced = {stage for b, (_v, _c, stage, _n) in BACKEND_URLS.items() if config.url(b)}
        counts = {s: 1 for s in STAGES[config.type] if s not in replaced}
        if "dialog" in counts and not stack.runnable("dialog"):
            del counts["dialog"]  # dialog is optional in an install
    return {**counts, **extra}


def start(
    settings: CliSettings, name: str, compose: bool, extra: dict[str, int], echo: Echo
) -> str:
    """Start pipeline ``name``; return the gateway URL."""
    config = pipelines.read(settings.home_dir, name)
    own = pipeline_settings(settings, name)
    if compose:
        url = _compose_up(config, own)
        echo("✓ Successfully started Docker containers")
    else:
        if config.llm_backend_url:
            os.environ["LLM_BACKEND_URL"] = config.llm_backend_url  # read by the dialog worker
        options = stack.UpOptions(
            "127.0.0.1",
            config.port,
            local_stages(config, extra),
            extra_modules=("external",) if config.backends == "external" else (),
        )
        url, _started = stack.up(own, options)
        echo("✓ Successfully started local processes")
    init_groups(own.redis_url, config.domain)
    echo("✓ Redis groups initialized (admin, presenter)")
    if config.backends == "external":
        register_backends(url, config, echo)
    return url


def stop(settings: CliSettings, name: str, compose: bool) -> int:
    """Stop pipeline ``name``; return how many processes were stopped."""
    config = pipelines.read(settings.home_dir, name)
    own = pipeline_settings(settings, name)
    if compose:
        _docker(["compose", "--env-file", str(_env_file(own)), "-f", str(COMPOSE_FILE), "down"])
        return 0
    recorded, _killed = stack.down(own)
    del config
    return len(recorded)


def init_groups(redis_url: str, domain: str) -> None:
    """Seed 000: ``admin@DOMAIN`` in ``groups:admin`` and ``groups:presenter``."""
    client = redis.Redis.from_url(redis_url, socket_connect_timeout=5)
    try:
        admin = f"admin@{domain}"
        client.sadd(streams.role_group("admin"), admin)
        client.sadd(streams.role_group("presenter"), admin)
    finally:
        client.close()


def register_backends(url: str, config: PipelineConfig, echo: Echo) -> list[str]:
    """Register every configured external backend; warn (never fail) on each refusal."""
    echo("Registering external backends...")
    registered = []
    for backend, (_var, component, _stage, worker) in BACKEND_URLS.items():
        server = config.url(backend)
        if not server or not component:
            continue
        label = backend.upper() if backend != "summarizer" else "Summarizer"
        problem = _register(url, {"component": component, "name": worker, "server": server})
        if problem:
            echo(f"⚠ {label} backend registration failed: {problem} (the pipeline keeps running)")
        else:
            echo(f"✓ {label} backend registered: {server}")
            registered.append(backend)
    return registered


def _register(url: str, body: dict[str, str]) -> str | None:
    """POST the registration, then wait until an external worker serves it; None if fine."""
    try:
        response = httpx.post(f"{url}/ltapi/register_worker", json=body, timeout=10)
    except httpx.HTTPError as exc:
        return f"gateway unreachable: {exc}"
    if not response.is_success:
        try:
            detail = response.json().get("detail", response.text)
        except ValueError:
            detail = response.text
        return f"HTTP {response.status_code}: {detail}"
    wanted = set(response.json().get("streams", []))
    deadline = time.monotonic() + REGISTER_TIMEOUT_S
    while time.monotonic() < deadline:
        try:
            workers = httpx.get(f"{url}/v1/workers", timeout=5).json()
        except (httpx.HTTPError, ValueError):
            workers = []
        served = {w["stream"] for w in workers if w.get("kind") == "external"}
        if wanted <= served:
            return None
        time.sleep(0.2)
    return f"registered, but no external adapter serves {sorted(wanted)} yet"


def _env_file(settings: CliSettings) -> Path:
    return settings.home_dir / pipelines.ENV_FILE


def _docker(args: list[str]) -> None:
    docker = shutil.which("docker")
    if docker is None:
        raise ConfigError("--compose needs Docker: no `docker` command on this machine")
    probe = subprocess.run([docker, "info"], capture_output=True, text=True, check=False)
    if probe.returncode != 0:
        raise ConfigError(f"--compose needs a running Docker engine: {probe.stderr.strip()}")
    done = subprocess.run([docker, *args], capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise ConfigError(f"docker {' '.join(args)} failed: {done.stderr.strip()}")


def _compose_up(config: PipelineConfig, own: CliSettings) -> str:
    env_file = _env_file(own)
    _docker(["compose", "--env-file", str(env_file), "-f", str(COMPOSE_FILE), "up", "-d"])
    url = f"http://127.0.0.1:{config.port}"
    stack.wait_ready(url, [], own.ready_timeout_s)
    return url
