"""The ``pyparrot`` command: ``up``, ``down``, ``status``, ``transcribe``."""

import asyncio
import json
import signal
import sys
import threading
from pathlib import Path
from typing import Annotated

import httpx
import redis
import typer
from redis.exceptions import RedisClusterException
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from pyparrot import commands, procs, redis_server, shards, stack, supervisor
from pyparrot.keys import keys_app
from pyparrot.settings import CliSettings
from shared import bus, heartbeat
from shared.heartbeat import WorkerInfo

app = typer.Typer(
    help="PyParrot: a distributed speech pipeline over Redis Streams.",
    no_args_is_help=True,
    add_completion=False,
)
console = Console()
err = Console(stderr=True)


def _fail(message: str) -> typer.Exit:
    err.print(f"[red]error:[/red] {message}")
    return typer.Exit(1)


@app.command()
def up(
    port: Annotated[int, typer.Option(min=1, max=65535, help="gateway HTTP port")] = 8000,
    host: Annotated[str, typer.Option(help="gateway bind address")] = "127.0.0.1",
    detach: Annotated[
        bool,
        typer.Option(
            help="return once /ready is true, leaving a supervisor process to restart what "
            "crashes (`pyparrot down` stops it all)"
        ),
    ] = False,
    workers: Annotated[
        str,
        typer.Option(
            help="worker processes, e.g. stt=2,mt=1; STAGE:VARIANT picks a model or engine "
            "(stt:base = multilingual Whisper, tts:espeak = espeak-ng voices)"
        ),
    ] = stack.DEFAULT_WORKERS,
    wyoming_port: Annotated[
        int, typer.Option(min=0, max=65535, help="Wyoming protocol port; 0 = off")
    ] = 0,
    shared_redis: Annotated[
        bool,
        typer.Option(
            "--shared-redis",
            help="use REDIS_URL even though it holds other applications' keys "
            "(PYPARROT_SHARED_REDIS=1)",
        ),
    ] = False,
    redis_cluster: Annotated[
        int,
        typer.Option(
            min=0,
            max=64,
            help="start a local Redis Cluster of N primaries instead of one Redis "
            "(PYPARROT_REDIS_CLUSTER)",
        ),
    ] = 0,
    redis_replicas: Annotated[
        int,
        typer.Option(
            min=0, max=5, help="replicas of each --redis-cluster primary (PYPARROT_REDIS_REPLICAS)"
        ),
    ] = 0,
) -> None:
    """Start Redis (if REDIS_URL is unreachable, or a local cluster), the gateway and the
    workers; restart any that crash, with backoff, until Ctrl-C or `pyparrot down`."""
    settings = CliSettings()
    settings.shared_redis = settings.shared_redis or shared_redis
    settings.redis_cluster = redis_cluster or settings.redis_cluster
    settings.redis_replicas = redis_replicas or settings.redis_replicas
    if settings.redis_replicas and not settings.redis_cluster:
        raise _fail("--redis-replicas is for the local cluster of --redis-cluster N")
    try:
        wyoming = {"GATEWAY_WYOMING_PORT": str(wyoming_port)} if wyoming_port else {}
        options = stack.UpOptions(host, port, stack.parse_workers(workers), wyoming)
        with console.status("starting PyParrot (loading models) ..."):
            url, started = stack.up(settings, options)
    except (stack.StackError, RuntimeError, FileNotFoundError) as exc:
        raise _fail(str(exc)) from exc
    names = ", ".join(f"{p.name} ({p.pid})" for p in started)
    console.print(f"[green]ready[/green] at {url}  processes: {names}")
    _, extra = procs.load(settings.state_file)
    _print_redis(stack.recorded_redis_url(settings, extra), extra.get("redis"))
    console.print(f"logs: {settings.logs_dir}")
    if detach:
        watcher = stack.start_supervisor(settings)
        console.print(f"supervisor ({watcher.pid}) restarts what crashes; `pyparrot down` stops")
        return
    console.print("press Ctrl-C to stop")
    _supervise(settings)


def _supervise(settings: CliSettings) -> None:
    """Foreground mode: restart what crashes until Ctrl-C / SIGTERM, then stop it all; or
    until `pyparrot down` (from another shell) has stopped it."""
    stack.record(settings.state_file, procs.this_process(supervisor.NAME, sys.argv))
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())

    def echo(line: str) -> None:
        err.print(f"[yellow]{line}[/yellow]", highlight=False)

    try:
        running = supervisor.Supervisor(settings, settings.state_file, echo).run(stop)
    except KeyboardInterrupt:
        running = True
    if running and settings.state_file.exists():
        _down(settings)
    else:
        console.print("stopped by `pyparrot down`")


def _down(settings: CliSettings) -> None:
    recorded, killed = stack.down(settings)
    if not recorded:
        console.print("nothing to stop")
        return
    console.print(f"stopped {len(recorded)} process(es)")
    if killed:
        console.print(f"[yellow]killed after timeout:[/yellow] {', '.join(killed)}")


@app.command()
def down() -> None:
    """Stop exactly what `pyparrot up` started."""
    _down(CliSettings())


async def _live_state(settings: CliSettings) -> tuple[list[WorkerInfo], list[dict[str, object]]]:
    from shared.admin.streamstats import stream_stats

    settings.redis_connect_attempts = 1
    redis = await bus.connect(settings)
    try:
        return await heartbeat.live_workers(redis), await stream_stats(redis)
    finally:
        await redis.aclose()


@app.command()
def status(
    as_json: Annotated[bool, typer.Option("--json", help="machine-readable")] = False,
) -> None:
    """Processes started by `up`, live workers from their heartbeats, and stream backlogs."""
    settings = CliSettings()
    recorded, extra = procs.load(settings.state_file)
    settings.redis_url = stack.recorded_redis_url(settings, extra)
    restarts: dict[str, dict[str, object]] = extra.get("restarts") or {}  # type: ignore[assignment]
    processes = [
        {
            "name": p.name,
            "pid": p.pid,
            "alive": procs.alive(p),
            "log": p.log,
            "restarts": restarts.get(p.name, {}).get("count", 0),
            "last_exit_code": restarts.get(p.name, {}).get("last_exit_code"),
        }
        for p in recorded
    ]
    try:
        workers, stream_rows = asyncio.run(_live_state(settings))
        redis_error = None
    except (*bus.TRANSIENT, RedisClusterException) as exc:
        workers, stream_rows, redis_error = [], [], str(exc)
    redis_state = _redis_state(settings, extra.get("redis")) if redis_error is None else None
    cluster = _cluster_state(settings.redis_url) if redis_error is None else None
    if as_json:
        print(
            json.dumps(
                {
                    "url": extra.get("url"),
                    "processes": processes,
                    "workers": [w.model_dump() for w in workers],
                    "streams": stream_rows,
                    "dead_letters": sum(int(r["dead"]) for r in stream_rows),  # type: ignore[call-overload]
                    "redis_error": redis_error,
                    "redis": redis_state,
                    **_cluster_json(cluster),
                },
                indent=2,
            )
        )
        return
    _print_status(processes, workers, stream_rows, redis_error)
    _print_redis(settings.redis_url, redis_state)
    for table in shards.tables(cluster if isinstance(cluster, list) else []):
        console.print(table)
    if isinstance(cluster, str):
        console.print(f"[red]redis cluster shards unknown:[/red] {cluster}")


def _cluster_json(cluster: list[shards.Shard] | str | None) -> dict[str, object]:
    """``shards`` on a cluster (``shards_error`` if unreadable); nothing for one Redis."""
    if cluster is None:
        return {}
    return {"shards": cluster} if isinstance(cluster, list) else {"shards_error": cluster}


def _cluster_state(url: str) -> list[shards.Shard] | str | None:
    """A cluster's shards (or why they could not be read); None for one Redis."""
    if not bus.is_cluster_url(url):
        return None
    try:
        return shards.describe(url)
    except (redis.RedisError, RedisClusterException, OSError) as exc:
        return str(exc)


def _redis_state(settings: CliSettings, recorded: object) -> dict[str, object]:
    """Whose Redis the stack uses: as `up` recorded it, with its foreign keys counted now."""
    state = dict(recorded) if isinstance(recorded, dict) else {"origin": "unknown"}
    state["url"] = settings.redis_url
    try:
        state["foreign_keys"], state["foreign_examples"] = redis_server.foreign_keys(
            settings.redis_url
        )
    except (redis.RedisError, RedisClusterException, OSError) as exc:
        state["error"] = str(exc)
    return state


def _print_redis(url: str, state: object) -> None:
    """Say loudly when the stack shares its Redis: a FLUSHALL there wipes our keys, and
    our streams and groups sit among another application's data."""
    if not isinstance(state, dict):
        return
    origin, foreign = state.get("origin"), int(state.get("foreign_keys") or 0)
    if origin == "started":
        console.print(f"redis: {url}, started by pyparrot up")
    elif origin in ("existing", "shared", "unknown"):
        console.print(
            f"[bold yellow]redis: {url} was already running: not started by pyparrot, "
            "not stopped by `pyparrot down`[/bold yellow]"
        )
    if foreign:
        console.print(
            f"[bold red]WARNING: this Redis is shared with another application: {foreign} "
            "key(s) are not PyParrot's[/bold red]"
        )


def _print_status(
    processes: list[dict[str, object]],
    workers: list[WorkerInfo],
    stream_rows: list[dict[str, object]],
    redis_error: str | None,
) -> None:
    table = Table(title="processes (pyparrot up)")
    for col in ("name", "pid", "state", "restarts", "last exit", "log"):
        table.add_column(col)
    for p in processes:
        state = "[green]running[/green]" if p["alive"] else "[red]gone[/red]"
        code = "" if p["last_exit_code"] is None else str(p["last_exit_code"])
        last_exit = code or ("?" if p["restarts"] else "")
        row = (p["name"], p["pid"], state, p["restarts"], last_exit, p["log"])
        table.add_row(*(str(cell) for cell in row))
    console.print(table)
    if redis_error:
        console.print(f"[red]redis unreachable:[/red] {redis_error}")
        return
    wt = Table(title="live workers")
    for col in ("component", "name", "host", "pid", "model", "languages", "in flight", "seen"):
        wt.add_column(col)
    for w in workers:
        langs = ",".join(w.languages[:5]) + ("…" if len(w.languages) > 5 else "")
        wt.add_row(
            w.component,
            w.name,
            w.host,
            str(w.pid),
            w.model,
            langs,
            str(w.in_flight),
            f"{bus.now_s() - w.last_seen_s:.1f}s ago",
        )
    console.print(wt)
    _print_streams(stream_rows)


def _count(row: dict[str, object], column: str) -> int:
    return int(str(row[column]))


def _print_streams(stream_rows: list[dict[str, object]]) -> None:
    """Backlog, pending and dead letters per job stream, with their totals."""
    totals = {c: sum(_count(r, c) for r in stream_rows) for c in ("backlog", "pending", "dead")}
    st = Table(title="streams", show_footer=bool(stream_rows))
    st.add_column("stream", footer="total")
    for col, header in (("backlog", "backlog"), ("pending", "pending"), ("dead", "dead letters")):
        st.add_column(header, footer=str(totals[col]), justify="right")
    for row in stream_rows:
        dead = _count(row, "dead")
        shown = f"[red]{dead}[/red]" if dead else "0"
        st.add_row(str(row["stream"]), str(row["backlog"]), str(row["pending"]), shown)
    console.print(st)
    if totals["dead"]:
        console.print(
            f"[red]{totals['dead']} dead letter(s)[/red]: see `pyparrot dlq list`, then "
            "`pyparrot dlq replay` or `pyparrot dlq purge`"
        )
    else:
        console.print("no dead letters")


@app.command()
def transcribe(
    files: Annotated[list[Path], typer.Argument(exists=True, dir_okay=False, readable=True)],
    url: Annotated[str, typer.Option(help="gateway URL")] = "http://127.0.0.1:8000",
    language: Annotated[str | None, typer.Option(help="ISO code; default detects")] = None,
    response_format: Annotated[
        str, typer.Option("--format", help="json|text|srt|vtt|verbose_json")
    ] = "text",
    timeout_s: Annotated[float, typer.Option("--timeout", help="seconds per file")] = 300.0,
) -> None:
    """Send audio files through the gateway and print their transcripts."""
    failures = 0
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total}"),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=err) as progress, httpx.Client(timeout=timeout_s) as http:
        task = progress.add_task("transcribing", total=len(files))
        for path in files:
            progress.update(task, description=path.name)
            data = {"model": "whisper-1", "response_format": response_format}
            if language:
                data["language"] = language
            try:
                with path.open("rb") as fh:
                    response = http.post(
                        f"{url}/v1/audio/transcriptions", data=data, files={"file": (path.name, fh)}
                    )
            except httpx.HTTPError as exc:
                raise _fail(f"gateway at {url} unreachable: {exc}") from exc
            progress.advance(task)
            if response.status_code != 200:
                failures += 1
                err.print(f"[red]{path}[/red]: HTTP {response.status_code}: {_detail(response)}")
                continue
            console.print(
                f"[bold]{path}[/bold]" if len(files) > 1 else "", end="\n" if len(files) > 1 else ""
            )
            console.print(response.text.strip(), markup=False, highlight=False)
    if failures:
        raise typer.Exit(1)


def _detail(response: httpx.Response) -> str:
    try:
        return str(response.json().get("detail", response.text))
    except ValueError:
        return response.text


app.command()(commands.configure)
app.command()(commands.start)
app.command()(commands.stop)
app.command()(commands.worker)
app.command()(commands.scale)
app.command()(commands.logs)
app.add_typer(commands.dlq_app, name="dlq")
app.add_typer(keys_app, name="keys")
