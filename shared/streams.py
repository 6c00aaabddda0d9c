"""Every Redis stream, consumer group and key name PyParrot uses, in one place.

A job stream holds only unfinished work: workers XACK and XDEL an entry as they publish
its result (one transaction on one Redis, one pipeline on a cluster: ``shared.worker``),
so XLEN is the stage's backlog and nothing still unprocessed is ever trimmed away.

Names carry Redis Cluster hash tags (the part in braces) wherever one command or
transaction touches several keys: a job stream, its background lane and its dead letters
share one tag, as do a session's keys and the API keys. On a single Redis the braces are
just characters.
"""

from functools import cache
from itertools import count as numbers

from redis.crc import REDIS_CLUSTER_HASH_SLOTS, key_slot

PREFIX = "pp"

# Reply streams are read with plain XREAD by one gateway; they are capped (approximately)
# and expire when their gateway is gone.
REPLY_MAXLEN = 10_000
REPLY_TTL_S = 3_600
DEAD_MAXLEN = 10_000


def jobs(component: str, variant: str) -> str:
    """The job stream of one stage variant, e.g. ``pp:jobs:{stt:tiny.en}``."""
    return f"{PREFIX}:jobs:{{{component}:{variant}}}"


def tag(stream: str) -> str:
    """A key's cluster hash tag (``mt:en-pt`` of ``pp:jobs:{mt:en-pt}``), "" if none."""
    start = stream.find("{")
    end = stream.find("}", start + 1)
    return stream[start + 1 : end] if start >= 0 and end > start + 1 else ""


def component(stream: str) -> str:
    """The component a job stream serves: ``mt`` of ``pp:jobs:{mt:en-pt}``."""
    return tag(stream).partition(":")[0]


def variant(stream: str) -> str:
    """The variant a job stream serves: ``en-pt`` of ``pp:jobs:{mt:en-pt}``."""
    return tag(stream).partition(":")[2]


@cache
def parts(stream: str, count: int) -> tuple[str, ...]:
    """The ``count`` streams a busy stage variant's jobs are spread over (``count`` < 2: the
    stream itself), so one model's traffic is not capped by the shard holding one stream.

    Part ``i`` is ``pp:jobs:{stt:tiny.en:n}`` with ``n`` the first number whose hash slot
    falls in the ``i``-th of ``count`` equal ranges of the slot space: on a cluster whose
    primaries hold equal contiguous slot ranges (how ``pyparrot up`` and redis-cli create
    one) ``count`` parts over as many primaries land one per primary."""
    base = tag(stream)
    if count < 2 or not base:
        return (stream,)
    head, tail = stream.split("{" + base + "}", 1)
    names = []
    for i in range(count):
        low, high = _slot_range(i, count)
        n = next(n for n in numbers() if low <= key_slot(f"{base}:{n}".encode()) < high)
        names.append(f"{head}{{{base}:{n}}}{tail}")
    return tuple(names)


def _slot_range(i: int, count: int) -> tuple[int, int]:
    """The ``i``-th of ``count`` equal ranges of the cluster's hash slots: [low, high)."""
    return i * REDIS_CLUSTER_HASH_SLOTS // count, (i + 1) * REDIS_CLUSTER_HASH_SLOTS // count


def background(stream: str) -> str:
    """The low-priority lane of a job stream (live partials): served only when the stream
    itself has nothing waiting."""
    return f"{stream}:background"


def group(component: str) -> str:
    """The consumer group every replica of a component joins."""
    return f"{PREFIX}:{component}"


def dead(stream: str) -> str:
    """The dead-letter stream beside a job stream."""
    return f"{stream}:dead"


def replies(gateway_id: str) -> str:
    """The stream one gateway instance reads its results from."""
    return f"{PREFIX}:replies:{gateway_id}"


def heartbeat(component: str, name: str) -> str:
    """The expiring key a live, model-loaded worker refreshes."""
    return f"{PREFIX}:worker:{component}:{name}"


def session_cancel(session_id: str) -> str:
    """The key holding a session's newest cancelled turn (barge-in): the gateway sets it, and
    a worker refuses a job of that session whose ``seq`` is at most its value.

    This is the whole cancellation contract between the gateway and the workers: a job
    names its session and turn in the envelope (``session``, ``seq``), the key says which
    turns are void."""
    return f"{PREFIX}:session:{{{session_id}}}:cancel"  # the tag of the gateway's session keys


def external_backends(component: str) -> str:
    """The hash of registered external HTTP servers of one component (name -> JSON record)."""
    return f"{PREFIX}:external:{component}"


def dead_letters_pattern() -> str:
    """Matches every dead-letter stream."""
    return f"{PREFIX}:jobs:*:dead"


def role_group(role: str) -> str:
    """The set of identities holding ``role`` (``groups:admin``, ``groups:presenter``)."""
    return f"groups:{role}"


def api_key(key_hash: str) -> str:
    """The hash describing one API key (identity, role, created, label), by its SHA-256."""
    return f"{api_keys()}:{key_hash}"


def api_keys() -> str:
    """The set of every stored API key's SHA-256; non-empty means keys are required."""
    return f"{PREFIX}:{{apikeys}}"


def legacy_api_keys() -> tuple[str, str]:
    """The set and the per-key hash prefix of API keys stored before the names had hash
    tags (``pp:apikeys``, ``pp:apikey:<sha>``), moved on first start (``admin.keystore``)."""
    return f"{PREFIX}:apikeys", f"{PREFIX}:apikey:"


HEARTBEAT_PATTERN = f"{PREFIX}:worker:*"
JOBS_PATTERN = f"{PREFIX}:jobs:*"
