"""The Redis keys only the gateway reads and writes: live sessions, assistant conversations
and memory, and rate buckets.

Stream names and the keys workers or the command line also use stay in ``shared.streams``;
these share its prefix so one Redis holds both. A live session's keys all extend
``session``, so they share its cluster hash tag (as ``streams.session_cancel`` does).
"""

from shared.streams import PREFIX


def session(session_id: str) -> str:
    """The hash describing a live session (owner, pipeline, languages, clock)."""
    return f"{PREFIX}:session:{{{session_id}}}"


def session_transcript(session_id: str) -> str:
    """The list of a live session's final utterance texts, oldest first."""
    return f"{session(session_id)}:transcript"


def session_cues(session_id: str) -> str:
    """The list of a live session's timed final utterances (JSON), for SRT/VTT."""
    return f"{session(session_id)}:cues"


def session_events(session_id: str) -> str:
    """The capped stream of a live session's events, read by its SSE listeners."""
    return f"{session(session_id)}:events"


def session_listeners(session_id: str) -> str:
    """The set of identities a live session's owner lets read it (``*``: any listener key)."""
    return f"{session(session_id)}:listeners"


def session_voices(session_id: str) -> str:
    """The hash of a live session's voices (label -> JSON running voiceprint and person), so
    a reconnected presenter's speakers keep their S1, S2, ... labels."""
    return f"{session(session_id)}:voices"


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


def rate_bucket(key_id: str) -> str:
    """The token bucket (tokens, last refill) limiting one API key's request rate."""
    return f"{PREFIX}:ratelimit:{key_id}"
