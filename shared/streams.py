"""Every Redis stream, consumer group and key name PyParrot uses, in one place.

A job stream holds only unfinished work: workers XACK and XDEL an entry in the same
transaction that publishes its result, so XLEN is the stage's backlog and nothing that
is still unprocessed is ever trimmed away.
"""

PREFIX = "pp"

# Reply streams are read with plain XREAD by one gateway; they are capped (approximately)
# and expire when their gateway is gone.
REPLY_MAXLEN = 10_000
REPLY_TTL_S = 3_600
DEAD_MAXLEN = 10_000


def jobs(component: str, variant: str) -> str:
    """The job stream of one stage variant, e.g. ``pp:jobs:stt:tiny.en``."""
    return f"{PREFIX}:jobs:{component}:{variant}"


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


def session_transcript(session_id: str) -> str:
    """The list of a live session's final utterance texts, oldest first."""
    return f"{PREFIX}:session:{session_id}:transcript"


def session(session_id: str) -> str:
    """The hash describing a live session (owner, pipeline, languages, clock)."""
    return f"{PREFIX}:session:{session_id}"


def session_cues(session_id: str) -> str:
    """The list of a live session's timed final utterances (JSON), for SRT/VTT."""
    return f"{PREFIX}:session:{session_id}:cues"


def session_events(session_id: str) -> str:
    """The capped stream of a live session's events, read by its SSE listeners."""
    return f"{PREFIX}:session:{session_id}:events"


def session_cancel(session_id: str) -> str:
    """The key holding a live session's newest cancelled turn (barge-in); workers check it."""
    return f"{PREFIX}:session:{session_id}:cancel"


def session_voices(session_id: str) -> str:
    """The hash of a live session's voices (label -> JSON running voiceprint and person), so
    a reconnected presenter's speakers keep their S1, S2, ... labels."""
    return f"{PREFIX}:session:{session_id}:voices"


def session_listeners(session_id: str) -> str:
    """The set of identities a live session's owner lets read it (``*``: any listener key)."""
    return f"{PREFIX}:session:{session_id}:listeners"


def conversation(session_id: str) -> str:
    """The hash of one assistant conversation: its owner, times, and numbered turns."""
    return f"{PREFIX}:conversation:{session_id}"


def memory(owner: str, user_id: str) -> str:
    """The hash of one user's long-term memory entries (kept across sessions), as named by
    the API-key identity ``owner`` (neither may contain "/")."""
    return f"{PREFIX}:memory:{owner}/{user_id}"


def voiceprints(owner: str) -> str:
    """The hash of the people an API-key identity enrolled (person id -> JSON with the
    voiceprint), as named by ``owner`` (which may not contain "/")."""
    return f"{PREFIX}:voiceprints:{owner}"


def external_backends(component: str) -> str:
    """The hash of registered external HTTP servers of one component (name -> JSON record)."""
    return f"{PREFIX}:external:{component}"


def external_backends_pattern() -> str:
    """Matches every ``external_backends`` hash."""
    return f"{PREFIX}:external:*"


def dead_letters_pattern() -> str:
    """Matches every dead-letter stream."""
    return f"{PREFIX}:jobs:*:dead"


def role_group(role: str) -> str:
    """The set of identities holding ``role`` (seed 000: ``groups:admin``, ``groups:presenter``)."""
    return f"groups:{role}"


def api_key(key_hash: str) -> str:
    """The hash describing one API key (identity, role, created, label), by its SHA-256."""
    return f"{PREFIX}:apikey:{key_hash}"


def api_keys() -> str:
    """The set of every stored API key's SHA-256; non-empty means keys are required."""
    return f"{PREFIX}:apikeys"


def rate_bucket(key_id: str) -> str:
    """The token bucket (tokens, last refill) limiting one API key's request rate."""
    return f"{PREFIX}:ratelimit:{key_id}"


HEARTBEAT_PATTERN = f"{PREFIX}:worker:*"
JOBS_PATTERN = f"{PREFIX}:jobs:*"
