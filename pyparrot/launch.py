"""``start`` / ``stop`` of a configured pipeline: processes (or compose), the
Redis role groups, then registration of the configured external backends.

Each pipeline keeps its processes, logs and state under ``$PYPARROT_HOME/NAME/``, apart
from the default ``up`` stack.
"""

import os
import time
from collections.abc import Callable

import httpx

from pyparrot import compose as docker_compose
from pyparrot import pipelines, procs, stack
from pyparrot.pipelines import BACKEND_URLS, STAGES, PipelineConfig
from pyparrot.settings import CliSettings
from shared import bus, streams

Echo = Callable[[str], None]
REGISTER_TIMEOUT_S = 15.0


def pipeline_settings(settings: CliSettings, name: str) -> CliSettings:
    """The CLI settings of one pipeline: its own home, logs and state file."""
    directory = pipelines.config_dir(settings.home_dir, name)
    return settings.model_copy(update={"home": directory})


def pipeline_stages(config: PipelineConfig, extra: dict[str, int]) -> dict[str, int]:
    """Worker counts to run with the gateway: the type's stages minus those a registered
    external server replaces (none for ``distributed``: its workers run elsewhere), plus
    ``extra``. An LLM URL replaces nothing: the llm worker is what calls that server."""
    if config.backends == "distributed":
        counts: dict[str, int] = {}
    else:
        urls = BACKEND_URLS.items()
        replaced = {stage for b, (_v, component, stage, _n) in urls if component and config.url(b)}
        counts = {s: 1 for s in STAGES[config.type] if s not in replaced}
    return {**counts, **extra}


def local_stages(config: PipelineConfig, extra: dict[str, int]) -> dict[str, int]:
    """Worker processes to run here (llm only where it is installed)."""
    counts = pipeline_stages(config, extra)
    if "llm" not in extra and "llm" in counts and not stack.runnable("llm"):
        del counts["llm"]  # llm is optional in an install
    return counts


def start(
    settings: CliSettings, name: str, compose: bool, extra: dict[str, int], echo: Echo
) -> str:
    """Start pipeline ``name``; return the gateway URL."""
    config = pipelines.read(settings.home_dir, name)
    own = pipeline_settings(settings, name)
    api_key = None
    if compose:
        external = {"external": 1 if config.backends == "external" else 0}
        replicas = {**pipeline_stages(config, extra), **external}
        project = docker_compose.up(settings.home_dir, name, replicas, own.ready_timeout_s)
        url = f"http://127.0.0.1:{config.port}"
        echo("✓ Successfully started Docker containers")
        docker_compose.init_groups(project, config.domain)
        api_key = project.admin_key()
    else:
        if config.llm_backend_url:
            os.environ["LLM_BACKEND_URL"] = config.llm_backend_url  # read by the llm worker
        options = stack.UpOptions(
            "127.0.0.1",
            config.port,
            local_stages(config, extra),
            extra_modules=("external",) if config.backends == "external" else (),
        )
        url, _started = stack.up(own, options)
        stack.start_supervisor(own)  # restarts what crashes, as for `up --detach`
        echo("✓ Successfully started local processes")
        init_groups(stack.recorded_redis_url(own, procs.load(own.state_file)[1]), config.domain)
    echo("✓ Redis groups initialized (admin, presenter)")
    if config.backends == "external":
        register_backends(url, config, echo, api_key)
    return url


def stop(settings: CliSettings, name: str, compose: bool) -> int:
    """Stop pipeline ``name``; return how many local processes were stopped."""
    pipelines.read(settings.home_dir, name)  # a clear error for an unknown pipeline
    if compose:
        docker_compose.down(settings.home_dir, name)
        return 0
    recorded, _killed = stack.down(pipeline_settings(settings, name))
    return len(recorded)


def init_groups(redis_url: str, domain: str) -> None:
    """Put ``admin@DOMAIN`` in ``groups:admin`` and ``groups:presenter``."""
    client = bus.sync_client(redis_url, socket_connect_timeout=5)
    try:
        admin = f"admin@{domain}"
        client.sadd(streams.role_group("admin"), admin)
        client.sadd(streams.role_group("presenter"), admin)
    finally:
        client.close()


def register_backends(
    url: str, config: PipelineConfig, echo: Echo, api_key: str | None = None
) -> list[str]:
    """Register every configured external backend; warn (never fail) on each refusal."""
    echo("Registering external backends...")
    registered = []
    for backend, (_var, component, _stage, worker) in BACKEND_URLS.items():
        server = config.url(backend)
        if not server or not component:
            continue
        label = backend.upper() if backend != "summarizer" else "Summarizer"
        body = {"component": component, "name": worker, "server": server}
        problem = _register(url, body, {"Authorization": f"Bearer {api_key}"} if api_key else {})
        if problem:
            echo(f"⚠ {label} backend registration failed: {problem} (the pipeline keeps running)")
        else:
            echo(f"✓ {label} backend registered: {server}")
            registered.append(backend)
    return registered


def _register(url: str, body: dict[str, str], headers: dict[str, str]) -> str | None:
    """POST the registration, then wait until an external worker serves it; None if fine."""
    try:
        response = httpx.post(
            f"{url}/ltapi/register_worker", json=body, headers=headers, timeout=10
        )
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
            workers = httpx.get(f"{url}/v1/workers", headers=headers, timeout=5).json()
        except (httpx.HTTPError, ValueError):
            workers = []
        served = {w["stream"] for w in workers if w.get("kind") == "external"}
        if wanted <= served:
            return None
        time.sleep(0.2)
    return f"registered, but no external adapter serves {sorted(wanted)} yet"
