"""Assistant state in Redis: conversation sessions (numbered turns) and per-user memory.

A session is one hash (``keys.conversation``): ``owner``, ``user_id``, ``created_s``,
``last_s``, a ``turns`` counter and one ``turn:<n>`` field per exchange, the oldest dropped
past a limit; it expires after a period of silence. A user's memory is one hash
(``keys.memory``) of ``entry:<n>`` fields kept across sessions.

Both belong to the API-key identity that made them (``owner``): a ``user_id`` is a name the
client picks, so memory is kept per (owner, user_id) — two clients naming the same user never
see each other's entries — and only the owner (or an admin) may read or delete a session.

Memory search is plain TF-IDF keyword overlap (cosine over shared words): no embedding
model, good enough to recall "what did I say about X".
"""

import json
import math
import re
import time
import uuid
from collections import Counter
from dataclasses import asdict, dataclass

import redis.asyncio as aioredis

from services.gateway import keys
from shared import bus

WORD = re.compile(r"[^\W\d_][\w'-]*", re.UNICODE)
STOPWORDS = frozenset(
    "a an and are as at be but by can do does for from had has have he her his how i if in is"
    " it its me my no not of on or our she so than that the their them then there these they"
    " this to too us was we were what when where which who why will with would you your".split()
)
# Atomic append: allocate the turn number, store the turn, drop the oldest, refresh the TTL,
# all only if the session still exists (a concurrent DELETE must not resurrect half of it).
_APPEND_TURN = """
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
local n = redis.call('HINCRBY', KEYS[1], 'turns', 1)
redis.call('HSET', KEYS[1], 'turn:' .. n, ARGV[1], 'last_s', ARGV[2])
local old = n - tonumber(ARGV[3])
if old > 0 then redis.call('HDEL', KEYS[1], 'turn:' .. old) end
redis.call('EXPIRE', KEYS[1], ARGV[4])
return n
"""
_ADD_ENTRY = """
local n = redis.call('HINCRBY', KEYS[1], 'seq', 1)
redis.call('HSET', KEYS[1], 'entry:' .. n, ARGV[1], 'updated_s', ARGV[2])
local old = n - tonumber(ARGV[3])
if old > 0 then redis.call('HDEL', KEYS[1], 'entry:' .. old) end
return n
"""


@dataclass(frozen=True)
class Turn:
    user: str
    assistant: str
    at_s: float


@dataclass(frozen=True)
class Session:
    session_id: str
    user_id: str | None
    created_s: float
    last_s: float
    turn_count: int
    owner: str = ""  # the identity that created it ("" for sessions older than owners)

    @property
    def memory_user(self) -> "User | None":
        """Whose long-term memory this session reads and feeds (None without a user)."""
        return User(self.owner, self.user_id) if self.user_id else None


@dataclass(frozen=True)
class User:
    """A user as one client names it: memory is kept per (owner identity, user id)."""

    owner: str
    user_id: str

    @property
    def key(self) -> str:
        return keys.memory(self.owner, self.user_id)


@dataclass(frozen=True)
class MemoryEntry:
    entry_id: str
    user_text: str
    assistant_text: str
    at_s: float
    session_id: str | None = None

    @property
    def text(self) -> str:
        """The exchange as one searchable text."""
        return f"User: {self.user_text}\nAssistant: {self.assistant_text}"


@dataclass(frozen=True)
class MemoryHit:
    entry: MemoryEntry
    score: float


@dataclass(frozen=True)
class MemoryStats:
    user_id: str
    total_entries: int
    last_updated_s: float | None
    topics: list[str]


def _str(value: bytes | None) -> str:
    return value.decode() if value is not None else ""


async def create_session(
    redis: aioredis.Redis,
    user_id: str | None,
    ttl_s: int,
    session_id: str | None = None,
    owner: str = "",
) -> Session:
    """A new, empty session of ``owner`` (with ``session_id`` if given, else a fresh one)."""
    now = time.time()
    sid = session_id or uuid.uuid4().hex
    key = keys.conversation(sid)
    fields = {"user_id": user_id or "", "created_s": now, "last_s": now, "turns": 0}
    fields |= {"owner": owner}
    async with bus.transaction(redis, key) as pipe:
        pipe.hset(key, mapping=fields)  # type: ignore[arg-type]
        pipe.expire(key, ttl_s)
        await pipe.execute()
    return Session(sid, user_id, now, now, 0, owner)


async def get_session(redis: aioredis.Redis, session_id: str) -> Session | None:
    """The session's info, or None if it does not exist (or expired)."""
    raw = await redis.hmget(
        keys.conversation(session_id), ["user_id", "created_s", "last_s", "turns", "owner"]
    )
    if raw[1] is None:
        return None
    return Session(
        session_id,
        _str(raw[0]) or None,
        float(raw[1]),
        float(raw[2] or raw[1]),
        int(raw[3] or 0),
        _str(raw[4]),
    )


async def history(redis: aioredis.Redis, session_id: str) -> list[Turn]:
    """The session's kept turns, oldest first."""
    fields = await redis.hgetall(keys.conversation(session_id))
    numbered = []
    for name, value in fields.items():
        if name.startswith(b"turn:"):
            data = json.loads(value)
            numbered.append((int(name[5:]), Turn(data["user"], data["assistant"], data["at_s"])))
    return [turn for _n, turn in sorted(numbered, key=lambda pair: pair[0])]


async def append_turn(
    redis: aioredis.Redis, session_id: str, turn: Turn, keep_turns: int, ttl_s: int
) -> int:
    """Add one exchange; return the session's turn count (0 if the session is gone)."""
    script = redis.register_script(_APPEND_TURN)
    count = await script(
        keys=[keys.conversation(session_id)],
        args=[json.dumps(asdict(turn)), turn.at_s, keep_turns, ttl_s],
    )
    return int(count)


async def delete_session(redis: aioredis.Redis, session_id: str) -> bool:
    """Forget the session; False if there was none."""
    return bool(await redis.delete(keys.conversation(session_id)))


async def add_memory(
    redis: aioredis.Redis, user: User, entry: MemoryEntry, max_entries: int
) -> str:
    """Store one exchange in the user's memory (the oldest dropped past ``max_entries``);
    return its id."""
    data = {k: v for k, v in asdict(entry).items() if k != "entry_id"}
    script = redis.register_script(_ADD_ENTRY)
    number = await script(keys=[user.key], args=[json.dumps(data), entry.at_s, max_entries])
    return str(int(number))


async def entries(redis: aioredis.Redis, user: User) -> list[MemoryEntry]:
    """Every stored entry of the user, oldest first."""
    fields = await redis.hgetall(user.key)
    found = []
    for name, value in fields.items():
        if name.startswith(b"entry:"):
            number = name[6:].decode()
            found.append(MemoryEntry(entry_id=number, **json.loads(value)))
    return sorted(found, key=lambda e: int(e.entry_id))


def keywords(text: str) -> list[str]:
    """Lower-cased content words of ``text`` (no stop words, no numbers)."""
    words = (w.lower().strip("'-") for w in WORD.findall(text))
    return [w for w in words if len(w) > 1 and w not in STOPWORDS]


def rank(query: str, candidates: list[MemoryEntry], top_k: int) -> list[MemoryHit]:
    """The ``top_k`` entries most similar to ``query`` by TF-IDF cosine, best first."""
    docs = [Counter(keywords(e.text)) for e in candidates]
    frequency = Counter(word for doc in docs for word in doc)
    total = len(docs)

    def weights(counts: Counter[str]) -> dict[str, float]:
        return {w: c * math.log((1 + total) / (1 + frequency[w]) + 1) for w, c in counts.items()}

    wanted = weights(Counter(keywords(query)))
    norm_q = math.sqrt(sum(v * v for v in wanted.values()))
    hits = []
    for entry, doc in zip(candidates, docs, strict=True):
        have = weights(doc)
        dot = sum(wanted[w] * have[w] for w in wanted.keys() & have.keys())
        if dot > 0:
            norm_d = math.sqrt(sum(v * v for v in have.values()))
            hits.append(MemoryHit(entry, dot / (norm_q * norm_d)))
    hits.sort(key=lambda hit: (-hit.score, -int(hit.entry.entry_id)))
    return hits[:top_k]


async def query_memory(
    redis: aioredis.Redis, user: User, query: str, top_k: int
) -> list[MemoryHit]:
    """The user's entries most relevant to ``query``."""
    return rank(query, await entries(redis, user), top_k)


async def memory_stats(redis: aioredis.Redis, user: User, topics: int = 5) -> MemoryStats:
    """How much the user's memory holds, when it last changed, its commonest topics."""
    found = await entries(redis, user)
    updated = await redis.hget(user.key, "updated_s")
    common = Counter(w for e in found for w in set(keywords(e.user_text)))
    return MemoryStats(
        user.user_id,
        len(found),
        float(updated) if updated is not None else None,
        [word for word, _n in common.most_common(topics)],
    )


async def clear_memory(redis: aioredis.Redis, user: User) -> bool:
    """Forget everything about the user; False if there was nothing."""
    return bool(await redis.delete(user.key))
