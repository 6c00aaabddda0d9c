"""API keys in Redis: only a key's SHA-256 is stored, with its identity, role and label.

Roles are ordered ``listener`` < ``presenter`` < ``admin``. The sets ``groups:admin`` and
``groups:presenter`` (names other tooling of a deployment may already write) say what an
identity may do; a key acts with the lower of the role
it was created with and its identity's role in those groups, so removing someone from a
group demotes every key they hold at once.
"""

import hashlib
import secrets
import time
from dataclasses import dataclass
from typing import Literal, cast

import redis.asyncio as aioredis

from shared import bus, streams

Role = Literal["listener", "presenter", "admin"]
ROLES: tuple[Role, ...] = ("listener", "presenter", "admin")
TOKEN_PREFIX = "pp_"
KEY_ID_CHARS = 12  # the public handle of a key: a prefix of its hash, safe to show and log


class KeyStoreError(Exception):
    """A key operation that cannot be done (unknown or ambiguous key id, bad role)."""


def rank(role: str) -> int:
    """A role's place in the order ``listener`` < ``presenter`` < ``admin``."""
    return ROLES.index(cast(Role, role))


def lower(a: Role, b: Role) -> Role:
    """The weaker of two roles."""
    return a if rank(a) <= rank(b) else b


def hash_token(token: str) -> str:
    """The stored form of a key: hex SHA-256 of the token text."""
    return hashlib.sha256(token.encode()).hexdigest()


def new_token() -> str:
    """A fresh key: 32 random bytes, URL-safe, with a recognisable prefix."""
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


@dataclass(frozen=True)
class KeyRecord:
    key_hash: str
    identity: str
    role: Role
    created_s: float
    label: str

    @property
    def key_id(self) -> str:
        return self.key_hash[:KEY_ID_CHARS]


def _record(key_hash: str, fields: dict[bytes, bytes]) -> KeyRecord | None:
    role = fields.get(b"role", b"").decode()
    if role not in ROLES:
        return None
    return KeyRecord(
        key_hash=key_hash,
        identity=fields.get(b"identity", b"").decode(),
        role=cast(Role, role),
        created_s=float(fields.get(b"created", b"0")),
        label=fields.get(b"label", b"").decode(),
    )


async def group_role(redis: aioredis.Redis, identity: str) -> Role:
    """An identity's role from the role groups: admin, presenter, else listener."""
    async with redis.pipeline(transaction=False) as pipe:
        pipe.sismember(streams.role_group("admin"), identity)
        pipe.sismember(streams.role_group("presenter"), identity)
        is_admin, is_presenter = await pipe.execute()
    if is_admin:
        return "admin"
    return "presenter" if is_presenter else "listener"


async def grant(redis: aioredis.Redis, identity: str, role: Role) -> None:
    """Add ``identity`` to the groups ``role`` needs (an admin is also a presenter)."""
    for held in ROLES[1 : rank(role) + 1]:
        await redis.sadd(streams.role_group(held), identity)


async def create(
    redis: aioredis.Redis, role: Role, identity: str, label: str = "", *, grant_role: bool = True
) -> tuple[str, KeyRecord]:
    """Store a new key and return (token, record); the token itself is never stored."""
    if role not in ROLES:
        raise KeyStoreError(f"unknown role {role!r}; one of {', '.join(ROLES)}")
    if not identity:
        raise KeyStoreError("a key needs an identity")
    token = new_token()
    record = KeyRecord(hash_token(token), identity, role, time.time(), label)
    fields = {"identity": identity, "role": role, "created": record.created_s, "label": label}
    async with bus.transaction(redis, streams.api_keys()) as pipe:
        pipe.hset(streams.api_key(record.key_hash), mapping=fields)  # type: ignore[arg-type]
        pipe.sadd(streams.api_keys(), record.key_hash)
        await pipe.execute()
    if grant_role:
        await grant(redis, identity, role)
    return token, record


async def lookup(redis: aioredis.Redis, token: str) -> KeyRecord | None:
    """The record of a presented token, or None if no such key is stored."""
    key_hash = hash_token(token)
    return _record(key_hash, await redis.hgetall(streams.api_key(key_hash)))


async def count(redis: aioredis.Redis) -> int:
    """How many keys are stored (keys under the old names are moved first: counting them
    as none would switch authentication off)."""
    if await redis.exists(streams.legacy_api_keys()[0]):
        await migrate_legacy(redis)
    return int(await redis.scard(streams.api_keys()))


async def migrate_legacy(redis: aioredis.Redis) -> int:
    """Move keys stored under the names used before they had a hash tag; how many moved.
    Each key is written under its new name before its old one is removed, so at no moment
    does the store look empty."""
    legacy_set, legacy_prefix = streams.legacy_api_keys()
    moved = 0
    for raw in await redis.smembers(legacy_set):
        key_hash = raw.decode()
        fields = await redis.hgetall(legacy_prefix + key_hash)
        if fields:
            async with bus.transaction(redis, streams.api_keys()) as pipe:
                pipe.hset(streams.api_key(key_hash), mapping=fields)  # type: ignore[arg-type]
                pipe.sadd(streams.api_keys(), key_hash)
                await pipe.execute()
            moved += 1
        await redis.delete(legacy_prefix + key_hash)
        await redis.srem(legacy_set, key_hash)
    return moved


async def list_all(redis: aioredis.Redis) -> list[KeyRecord]:
    """Every stored key, oldest first."""
    hashes = sorted(h.decode() for h in await redis.smembers(streams.api_keys()))
    records = []
    for key_hash in hashes:
        record = _record(key_hash, await redis.hgetall(streams.api_key(key_hash)))
        if record is not None:
            records.append(record)
    return sorted(records, key=lambda r: r.created_s)


async def revoke(redis: aioredis.Redis, key_id: str) -> KeyRecord:
    """Delete the one key whose hash starts with ``key_id``; raise if none or several match."""
    if len(key_id) < 6 or any(c not in "0123456789abcdef" for c in key_id):
        raise KeyStoreError(f"{key_id[:20]!r} is no key id (at least 6 hex characters, see `list`)")
    matches = [r for r in await list_all(redis) if r.key_hash.startswith(key_id)]
    if not matches:
        raise KeyStoreError(f"no key with id {key_id!r}")
    if len(matches) > 1:
        raise KeyStoreError(f"key id {key_id!r} is ambiguous; give more characters")
    record = matches[0]
    async with bus.transaction(redis, streams.api_keys()) as pipe:
        pipe.delete(streams.api_key(record.key_hash))
        pipe.srem(streams.api_keys(), record.key_hash)
        await pipe.execute()
    return record
