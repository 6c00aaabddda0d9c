"""Operator commands: ``configure``, ``start``, ``stop``, ``worker``, ``scale``, ``logs``,
and the ``dlq`` sub-app. ``cli.py`` registers them; the logic lives in their modules."""

import json
import os
import sys
from pathlib import Path
from typing import Annotated

import redis
import typer
from redis.exceptions import RedisClusterException
from rich.console import Console
from rich.table import Table

from pyparrot import dlq, launch, pipelines, procs, stack
from pyparrot import scale as scaling
from pyparrot.pipelines import ConfigError
from pyparrot.settings import CliSettings
from shared import bus

console = Console()
err = Console(stderr=True)
WORKER_PREFIXES = {
    "stt": "STT",
    "mt": "MT",
    "tts": "TTS",
    "summarizer": "SUM",
    "llm": "LLM",
    "speaker": "SPEAKER",
}
PROJECT_DIR = Path(__file__).resolve().parent.parent


def _fail(message: str) -> typer.Exit:
    err.print(f"[red]error:[/red] {message}", markup=True, highlight=False)
    return typer.Exit(1)


def configure(
    name: Annotated[str, typer.Argument(help="pipeline name (directory under PYPARROT_HOME)")],
    pipeline_type: Annotated[
        str, typer.Option("--type", help="end2end|cascaded|LT.2025|dialog|BOOM")
    ],
    domain: Annotated[str, typer.Option(help="public domain, e.g. example.com")],
    port: Annotated[int, typer.Option(help="gateway HTTP port")],
    backends: Annotated[str, typer.Option(help="local|distributed|external")] = "local",
    external_port: Annotated[int | None, typer.Option(help="public port; default --port")] = None,
    stt_backend_url: Annotated[str | None, typer.Option(help="external STT server")] = None,
    mt_backend_url: Annotated[str | None, typer.Option(help="external MT server")] = None,
    tts_backend_url: Annotated[str | None, typer.Option(help="external TTS server")] = None,
    summarizer_backend_url: Annotated[str | None, typer.Option(help="external summarizer")] = None,
    llm_backend_url: Annotated[str | None, typer.Option(help="OpenAI-compatible LLM")] = None,
) -> None:
    """Write $PYPARROT_HOME/NAME/.env for a pipeline."""
    settings = CliSettings()
    try:
        config = pipelines.validate(
            name=name,
            type=pipeline_type,
            backends=backends,
            domain=domain,
            port=port,
            external_port=external_port,
            components_dir=str(PROJECT_DIR / "services"),
            stt_backend_url=stt_backend_url,
            mt_backend_url=mt_backend_url,
            tts_backend_url=tts_backend_url,
            summarizer_backend_url=summarizer_backend_url,
            llm_backend_url=llm_backend_url,
        )
        path = pipelines.write(settings.home_dir, config)
    except ConfigError as exc:
        raise _fail(str(exc)) from exc
    console.print(f"✓ Configuration written: {path}", highlight=False)


def start(
    name: Annotated[str, typer.Argument(help="a configured pipeline")],
    compose: Annotated[bool, typer.Option(help="docker compose instead of processes")] = False,
    workers: Annotated[str, typer.Option(help="extra local workers, e.g. mt=1")] = "",
) -> None:
    """Start a configured pipeline, initialise the role groups, register external backends."""
    try:
        url = launch.start(CliSettings(), name, compose, stack.parse_workers(workers), _echo)
    except (ConfigError, stack.StackError, RuntimeError, OSError) as exc:
        raise _fail(str(exc)) from exc
    except (redis.RedisError, RedisClusterException) as exc:
        raise _fail(f"redis: {exc}") from exc
    console.print(f"ready at {url}", highlight=False)


def _echo(line: str) -> None:
    console.print(line, markup=False, highlight=False)


def stop(
    name: Annotated[str, typer.Argument(help="a configured pipeline")],
    compose: Annotated[bool, typer.Option(help="docker compose down")] = False,
) -> None:
    """Stop what `pyparrot start NAME` started."""
    try:
        count = launch.stop(CliSettings(), name, compose)
    except (ConfigError, stack.StackError, RuntimeError, OSError) as exc:
        raise _fail(str(exc)) from exc
    if compose:
        console.print(f"✓ stopped {name} (docker compose down)", highlight=False)
    else:
        console.print(
            f"stopped {name} ({count} process(es))" if count else f"{name} was not running"
        )


def worker(
    stage: Annotated[str, typer.Argument(help="stt|mt|tts|summarizer|llm|speaker")],
    redis_url: Annotated[str | None, typer.Option(help="shared Redis; default REDIS_URL")] = None,
    concurrency: Annotated[
        int | None, typer.Option(min=1, max=256, help="jobs at once (default: the stage's)")
    ] = None,
    shared_redis: Annotated[
        bool,
        typer.Option(
            "--shared-redis", help="join even though the Redis holds other applications' keys"
        ),
    ] = False,
) -> None:
    """Run one worker in the foreground, on any host that reaches the shared Redis."""
    if stage not in WORKER_PREFIXES:
        hint = f" ({stack.RENAMED[stage]})" if stage in stack.RENAMED else ""
        raise _fail(f"unknown stage {stage!r}{hint}: use one of {', '.join(WORKER_PREFIXES)}")
    if not stack.runnable(stage):
        raise _fail(f"no {stage} worker is installed here")
    settings = CliSettings()
    settings.redis_url = redis_url or settings.redis_url
    settings.shared_redis = settings.shared_redis or shared_redis
    try:  # the worker would create its stream and consumer group there
        stack.check_existing_redis(settings)
    except stack.StackError as exc:
        raise _fail(str(exc)) from exc
    env = dict(os.environ)
    if concurrency is not None:
        env[f"{WORKER_PREFIXES[stage]}_CONCURRENCY"] = str(concurrency)
    if redis_url:
        env["REDIS_URL"] = redis_url
    sys.stdout.flush()
    os.execve(sys.executable, [sys.executable, "-m", f"services.{stage}"], env)


def scale(
    specs: Annotated[list[str], typer.Argument(help="STAGE=N ..., e.g. stt=3 mt=2")],
) -> None:
    """Add or remove local worker processes of the running `up` stack."""
    settings = CliSettings()
    try:
        changes = scaling.scale(settings, scaling.parse(specs))
    except stack.StackError as exc:
        raise _fail(str(exc)) from exc
    for stage, (old, new) in changes.items():
        console.print(f"✓ {stage}: {old} -> {new}", highlight=False)


def logs(
    name: Annotated[str | None, typer.Argument(help="process name (gateway, stt-1, ...)")] = None,
    lines: Annotated[int, typer.Option(min=1, max=100_000, help="lines per log")] = 40,
    pipeline: Annotated[
        str | None, typer.Option(help="a pipeline's logs instead of `up`'s")
    ] = None,
) -> None:
    """Print the last lines of the log files."""
    settings = CliSettings()
    if pipeline:
        settings = launch.pipeline_settings(settings, pipeline)
    files = sorted(settings.logs_dir.glob(f"{name or '*'}.log"))
    if not files:
        raise _fail(f"no log {'for ' + repr(name) + ' ' if name else ''}in {settings.logs_dir}")
    for path in files:
        text = path.read_text(errors="replace").splitlines()[-lines:]
        console.rule(path.stem)
        console.print("\n".join(text), markup=False, highlight=False)


dlq_app = typer.Typer(help="Dead-lettered jobs: list, replay, purge.", no_args_is_help=True)
StreamOpt = Annotated[str | None, typer.Option("--stream", help="job stream, e.g. pp:jobs:stt:x")]


def _redis() -> redis.Redis:
    try:  # a cluster client connects (and may fail) as it is built
        client = bus.sync_client(_stack_redis_url(), socket_connect_timeout=5)
    except RedisClusterException as exc:
        raise _fail(f"redis unreachable: {exc}") from exc
    try:
        client.ping()
    except redis.RedisError as exc:
        client.close()
        raise _fail(f"redis unreachable: {exc}") from exc
    return client


def _stack_redis_url() -> str:
    settings = CliSettings()
    return stack.recorded_redis_url(settings, procs.load(settings.state_file)[1])


@dlq_app.command("list")
def dlq_list(
    stream: StreamOpt = None,
    as_json: Annotated[bool, typer.Option("--json", help="machine-readable")] = False,
) -> None:
    """Dead letters: stream, id, code, error, deliveries."""
    with _redis() as client:
        rows = dlq.entries(client, stream)
    if as_json:
        print(json.dumps(rows, indent=2))
        return
    table = Table(title=f"dead letters ({len(rows)})")
    for col in ("stream", "id", "code", "error", "deliveries"):
        table.add_column(col)
    for row in rows:
        table.add_row(*(str(row[c]) for c in ("stream", "id", "code", "error", "deliveries")))
    console.print(table)


@dlq_app.command("replay")
def dlq_replay(
    stream: StreamOpt = None,
    entry_id: Annotated[str | None, typer.Option("--id", help="only this dead letter")] = None,
) -> None:
    """Put dead letters back on their job stream (original bytes) and remove them."""
    with _redis() as client:
        count = dlq.replay(client, stream, entry_id)
    console.print(f"✓ replayed {count} job(s)")


@dlq_app.command("purge")
def dlq_purge(
    stream: StreamOpt = None,
    yes: Annotated[bool, typer.Option("--yes", help="do not ask")] = False,
) -> None:
    """Delete dead letters for good."""
    if not yes and not typer.confirm(f"delete the dead letters of {stream or 'every stream'}?"):
        raise typer.Exit(1)
    with _redis() as client:
        count = dlq.purge(client, stream)
    console.print(f"✓ purged {count} dead letter(s)")
