"""``pyparrot keys create|list|revoke``: manage the gateway's API keys in Redis."""

import asyncio
import json
import secrets
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Annotated, TypeVar

import redis.asyncio as aioredis
import typer
from rich.console import Console
from rich.table import Table

from pyparrot.settings import CliSettings
from shared import bus
from shared.admin import keymarker, keystore
from shared.admin.keystore import ROLES, KeyRecord, Role

keys_app = typer.Typer(
    help="API keys for the gateway (stored hashed in Redis; roles listener < presenter < admin).",
    no_args_is_help=True,
)
console = Console()
err = Console(stderr=True)
T = TypeVar("T")


def _run(action: Callable[[aioredis.Redis], Awaitable[T]]) -> T:
    """Run ``action`` against REDIS_URL; exit 1 with a message if Redis cannot be reached."""
    settings = CliSettings()
    settings.redis_connect_attempts = 1

    async def run() -> T:
        redis = await bus.connect(settings)
        try:
            return await action(redis)
        finally:
            await redis.aclose()

    try:
        return asyncio.run(run())
    except bus.TRANSIENT as exc:
        err.print(f"[red]error:[/red] redis at {settings.redis_url} unreachable: {exc}")
        raise typer.Exit(1) from exc
    except keystore.KeyStoreError as exc:
        err.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(1) from exc


def _role(value: str) -> str:
    if value not in ROLES:
        raise typer.BadParameter(f"one of {', '.join(ROLES)}")
    return value


def _when(created_s: float) -> str:
    return datetime.fromtimestamp(created_s, UTC).strftime("%Y-%m-%d %H:%M:%SZ")


@keys_app.command()
def create(
    role: Annotated[str, typer.Option(callback=_role, help="listener | presenter | admin")],
    identity: Annotated[
        str | None, typer.Option(help="who holds the key (a role group member); default new")
    ] = None,
    label: Annotated[str, typer.Option(help="a note, e.g. where the key is used")] = "",
    grant: Annotated[
        bool, typer.Option(help="add the identity to groups:presenter/groups:admin as needed")
    ] = True,
) -> None:
    """Create a key and print it once (only its SHA-256 is stored)."""
    who = identity or f"{role}-{secrets.token_hex(4)}"

    async def action(redis: aioredis.Redis) -> tuple[str, KeyRecord, Role]:
        token, record = await keystore.create(redis, role, who, label, grant_role=grant)  # type: ignore[arg-type]
        return token, record, keystore.lower(record.role, await keystore.group_role(redis, who))

    token, record, effective = _run(action)
    settings = CliSettings()
    # A local gateway must never fall back to open mode once a key existed for this Redis.
    keymarker.remember(keymarker.path_for(settings.keys_marker_dir, settings.redis_url))
    err.print(f"created key {record.key_id} for {who!r}, role {record.role}")
    if effective != record.role:
        err.print(
            f"[yellow]note:[/yellow] {who!r} is not in groups:{record.role}; "
            f"the key acts as {effective} until it is added"
        )
    err.print("the key is shown only now; store it safely:")
    print(token)


@keys_app.command("list")
def list_keys(
    as_json: Annotated[bool, typer.Option("--json", help="machine-readable")] = False,
) -> None:
    """Stored keys (id, identity, role, effective role, created, label); never the keys."""

    async def action(redis: aioredis.Redis) -> list[dict[str, object]]:
        rows: list[dict[str, object]] = []
        for r in await keystore.list_all(redis):
            held = await keystore.group_role(redis, r.identity)
            rows.append(
                {
                    "id": r.key_id,
                    "identity": r.identity,
                    "role": r.role,
                    "effective_role": keystore.lower(r.role, held),
                    "created": _when(r.created_s),
                    "label": r.label,
                }
            )
        return rows

    rows = _run(action)
    if as_json:
        print(json.dumps(rows, indent=2))
        return
    table = Table(title="API keys")
    for col in ("id", "identity", "role", "effective_role", "created", "label"):
        table.add_column(col)
    for row in rows:
        table.add_row(
            *(str(row[c]) for c in ("id", "identity", "role", "effective_role")),
            str(row["created"]),
            str(row["label"]),
        )
    console.print(table)


@keys_app.command()
def revoke(
    key_id: Annotated[str, typer.Argument(help="the key's id from `pyparrot keys list`")],
) -> None:
    """Delete a key; requests with it are refused at once."""

    async def action(redis: aioredis.Redis) -> KeyRecord:
        return await keystore.revoke(redis, key_id.lower())

    record = _run(action)
    console.print(f"revoked key {record.key_id} of {record.identity!r} ({record.role})")
