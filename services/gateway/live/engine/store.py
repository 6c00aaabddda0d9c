"""Live sessions in Redis: the session hash, its transcript history, its event stream and
the identities allowed to read it.

A session belongs to the identity that created it (``owner``). Who else may read it is a set
of identities (``listeners``); the member ``*`` lets any listener key in. A session created
without listeners is private: its owner and admins only.

Every key of a session expires ``session_ttl_s`` after its last write, so an abandoned
session disappears on its own; every gateway replica sees the same sessions, so a
listener or a resuming presenter can be served by any of them.
"""

import json
import secrets
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import redis.asyncio as aioredis

from services.gateway import keys
from services.gateway.core import Core
from shared import bus, streams

ANY_LISTENER = "*"  # in a session's listener set: every listener key may read it


@dataclass
class SessionInfo:
    id: str
    user_id: str = ""
    owner: str = ""  # the identity that created it; "" (older sessions): admins only
    created_s: float = field(default_factory=time.time)
    updated_s: float = field(default_factory=time.time)
    audio_s: float = 0.0  # the session's audio clock: where the next stream starts
    utterances: int = 0  # index of the next utterance

    def public(self, ttl_s: int) -> dict[str, Any]:
        """What the REST API shows."""
        return {
            "id": self.id,
            "user_id": self.user_id or None,
            "owner": self.owner or None,
            "created_s": self.created_s,
            "updated_s": self.updated_s,
            "audio_s": round(self.audio_s, 3),
            "utterances": self.utterances,
            "expires_in_s": ttl_s,
        }


@dataclass(frozen=True)
class Cue:
    """One final utterance, timed on the session's clock."""

    index: int
    start_s: float
    end_s: float
    text: str
    language: str
    speaker: str | None = None  # the session's label of its voice (S1, ...), if known


def new_session_id() -> str:
    """An unguessable session id (listeners need it to read the session)."""
    return secrets.token_urlsafe(12)


def _keys(session_id: str) -> list[str]:
    return [
        keys.session(session_id),
        keys.session_transcript(session_id),
        keys.session_cues(session_id),
        keys.session_events(session_id),
        streams.session_cancel(session_id),
        keys.session_listeners(session_id),
        keys.session_voices(session_id),
    ]


class SessionStore:
    """Create, read, extend and delete sessions; append history; publish events."""

    def __init__(self, redis: aioredis.Redis, ttl_s: int, events_maxlen: int) -> None:
        self.redis = redis
        self.ttl_s = ttl_s
        self.events_maxlen = events_maxlen

    async def create(
        self,
        user_id: str = "",
        session_id: str | None = None,
        owner: str = "",
        listeners: Iterable[str] = (),
    ) -> SessionInfo:
        """A new session (with ``session_id`` if given and free), readable by ``listeners``."""
        info = SessionInfo(id=session_id or new_session_id(), user_id=user_id, owner=owner)
        await self.save(info)
        await self.grant(info.id, listeners)
        return info

    async def save(self, info: SessionInfo) -> None:
        """Write the session hash and push every key's expiry out by the TTL."""
        info.updated_s = time.time()
        fields = {k: str(v) for k, v in vars(info).items()}
        async with bus.transaction(self.redis, keys.session(info.id)) as pipe:
            pipe.hset(keys.session(info.id), mapping=fields)  # type: ignore[arg-type]
            for key in _keys(info.id):
                pipe.expire(key, self.ttl_s)
            await pipe.execute()

    async def get(self, session_id: str) -> SessionInfo | None:
        """The session, or None if it does not exist (or has expired)."""
        raw = await self.redis.hgetall(keys.session(session_id))
        if not raw:
            return None
        f = {k.decode(): v.decode() for k, v in raw.items()}
        return SessionInfo(
            id=f["id"],
            user_id=f.get("user_id", ""),
            owner=f.get("owner", ""),
            created_s=float(f["created_s"]),
            updated_s=float(f["updated_s"]),
            audio_s=float(f.get("audio_s", 0)),
            utterances=int(f.get("utterances", 0)),
        )

    async def ttl(self, session_id: str) -> int:
        """Seconds until the session expires."""
        return max(int(await self.redis.ttl(keys.session(session_id))), 0)

    async def delete(self, session_id: str) -> bool:
        """Delete the session and everything kept for it; False if it did not exist."""
        return bool(await self.redis.delete(*_keys(session_id)))

    async def grant(self, session_id: str, identities: Iterable[str]) -> None:
        """Let ``identities`` read the session (``ANY_LISTENER``: every listener key)."""
        wanted = list(identities)
        if not wanted:
            return
        key = keys.session_listeners(session_id)
        async with bus.transaction(self.redis, key) as pipe:
            pipe.sadd(key, *wanted)
            pipe.expire(key, max(await self.ttl(session_id), 1))  # dies with the session
            await pipe.execute()

    async def revoke(self, session_id: str, identity: str) -> bool:
        """Take back ``identity``'s access; False if it had none."""
        return bool(await self.redis.srem(keys.session_listeners(session_id), identity))

    async def listeners(self, session_id: str) -> list[str]:
        """The identities granted access (``ANY_LISTENER`` among them if it is public)."""
        members = await self.redis.smembers(keys.session_listeners(session_id))
        return sorted(m.decode() for m in members)

    async def may_listen(self, session_id: str, identity: str) -> bool:
        """True if ``identity`` (or every listener) was granted access."""
        async with self.redis.pipeline(transaction=False) as pipe:
            pipe.sismember(keys.session_listeners(session_id), identity)
            pipe.sismember(keys.session_listeners(session_id), ANY_LISTENER)
            named, anyone = await pipe.execute()
        return bool(named or anyone)

    async def append(self, info: SessionInfo, cue: Cue) -> None:
        """Add a final utterance to the history (text list + timed cue) and save the clock."""
        info.utterances = max(info.utterances, cue.index + 1)
        info.audio_s = max(info.audio_s, cue.end_s)
        info.updated_s = time.time()
        async with bus.transaction(self.redis, keys.session(info.id)) as pipe:
            pipe.rpush(keys.session_transcript(info.id), cue.text)
            pipe.rpush(keys.session_cues(info.id), json.dumps(vars(cue)))
            pipe.hset(
                keys.session(info.id),
                mapping={"utterances": info.utterances, "audio_s": info.audio_s},
            )
            for key in _keys(info.id):
                pipe.expire(key, self.ttl_s)
            await pipe.execute()

    async def transcript(self, session_id: str) -> list[str]:
        """The session's final utterance texts, oldest first."""
        items = await self.redis.lrange(keys.session_transcript(session_id), 0, -1)
        return [item.decode(errors="replace") for item in items]

    async def cues(self, session_id: str) -> list[Cue]:
        """The session's timed history, oldest first."""
        raw = await self.redis.lrange(keys.session_cues(session_id), 0, -1)
        return [Cue(**json.loads(item)) for item in raw]

    async def publish(self, session_id: str, event: dict[str, Any]) -> str:
        """Append an event to the session's stream for listeners; returns its entry id."""
        key = keys.session_events(session_id)
        async with bus.transaction(self.redis, key) as pipe:
            pipe.xadd(
                key,
                {b"t": str(event["type"]), b"d": json.dumps(event)},
                maxlen=self.events_maxlen,
                approximate=True,
            )
            pipe.expire(key, self.ttl_s)
            entry_id, _ = await pipe.execute()
        return entry_id.decode()  # type: ignore[no-any-return]

    async def newest_event(self, session_id: str) -> str:
        """The id of the session's newest event ("0-0" if it has none yet)."""
        newest = await self.redis.xrevrange(keys.session_events(session_id), count=1)
        return newest[0][0].decode() if newest else "0-0"

    async def cancelled_turn(self, session_id: str) -> int:
        """The newest cancelled turn of a session (0 if none): a resumed session numbers
        its turns after it, so its new jobs are not taken for cancelled ones."""
        marker = await self.redis.get(streams.session_cancel(session_id))
        return int(marker) if marker is not None else 0

    async def cancel_turn(self, session_id: str, turn: int) -> None:
        """Mark every turn up to ``turn`` as cancelled, for workers that check before work."""
        await self.redis.set(streams.session_cancel(session_id), turn, ex=self.ttl_s)


def store_of(core: Core) -> SessionStore:
    """The session store over the gateway's Redis connection."""
    s = core.settings
    return SessionStore(core.redis, s.session_ttl_s, s.session_events_maxlen)
