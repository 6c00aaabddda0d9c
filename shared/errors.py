"""Bad input: the error codes that mean a client's mistake, the HTTP status each becomes,
and the text check the gateway and the text workers both apply.

A worker answers such a job at once (``shared.worker.Rejected``): it is the client's to fix,
so it is neither retried nor dead-lettered, which is kept for failures of ours. The gateway
maps the code with ``client_status``; this table is the only place that mapping is written.
"""

import re
from typing import Literal

ClientError = Literal[
    "invalid_text",
    "empty_text",
    "empty_audio",
    "insufficient_speech",
    "empty_messages",
    "wrong_kind",
    "unsupported_pair",
    "unsupported_language",
    "unknown_voice",
    "text_too_long",
    "audio_too_long",
    "unsupported_audio",
    "model_refused",
    "backend_rejected",
]

# 400: malformed or empty; 413: too large to take; 422: well formed, but nothing here can
# process it (an audio layout, or an input an external engine refuses).
STATUS: dict[str, int] = {
    "invalid_text": 400,
    "empty_text": 400,
    "empty_audio": 400,
    "insufficient_speech": 400,
    "empty_messages": 400,
    "wrong_kind": 400,
    "unsupported_pair": 400,
    "unsupported_language": 400,
    "unknown_voice": 400,
    "model_refused": 400,
    "text_too_long": 413,
    "audio_too_long": 413,
    "unsupported_audio": 422,
    "backend_rejected": 422,
}

# C0 and C1 control characters but tab, line feed and carriage return: no engine speaks or
# translates them, and a NUL breaks the C libraries under some of them.
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")


def client_status(code: str) -> int | None:
    """The HTTP status of a client-error code; None for a failure of ours."""
    return STATUS.get(code)


def text_problem(text: str) -> str | None:
    """Why ``text`` cannot be processed (a control character, and where), or None."""
    found = _CONTROL.search(text)
    if found is None:
        return None
    return f"text holds control character U+{ord(found.group()):04X} at offset {found.start()}"
