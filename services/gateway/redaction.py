"""No credential reaches a log line, whoever logs it.

A key travels in ``Authorization``, ``X-API-Key``, the ``api_key`` query parameter (under any
percent-encoding of its name: Starlette decodes ``api%5Fkey`` to ``api_key`` and accepts it)
or an ``auth`` message's ``api_key`` field; our keys also look like ``pp_<urlsafe>``. Every log
record made in the process is masked when it is created (``install``), so uvicorn's access and
WebSocket handshake lines, tracebacks and any library's messages are covered, not only the
loggers someone remembered to filter.
"""

import contextlib
import logging
import re
from urllib.parse import unquote_plus

MASK = "***"
POSITIONAL_LOGGERS = frozenset({"uvicorn.access"})  # formatters that unpack the arguments
SECRET_NAMES = frozenset({"api_key", "apikey", "x-api-key", "authorization", "access_token"})
# name=value in a query string; the name is compared after percent-decoding it.
_QUERY_PAIR = re.compile(r"(?P<name>[^\s?&;=\"'<>]+)=(?P<value>[^\s&;\"'<>]*)")
# Header-like text: "Authorization: Bearer x", ('authorization', 'Bearer x'), "X-API-Key': 'x".
_HEADER = re.compile(
    r"(?i)(?P<name>authorization|x-api-key|api_key)(?P<sep>['\"]?\s*[:,=]\s*(?:b?['\"])?\s*)"
    r"(?P<scheme>(?:bearer|basic|token)\s+)?(?!(?:bearer|basic|token)\b)"
    r"(?P<value>[^\s'\",;&)}\]]+)"
)
_TOKEN = re.compile(r"\bpp_[A-Za-z0-9_\-]{6,}")


def _query_pair(match: re.Match[str]) -> str:
    name = match["name"]
    if unquote_plus(name).strip().lower() in SECRET_NAMES and match["value"]:
        return f"{name}={MASK}"
    return match[0]


def redact(text: str) -> str:
    """``text`` with every credential in it masked."""
    if "=" in text:
        text = _QUERY_PAIR.sub(_query_pair, text)
    text = _HEADER.sub(lambda m: f"{m['name']}{m['sep']}{m['scheme'] or ''}{MASK}", text)
    return _TOKEN.sub(f"pp_{MASK}", text)


def _redacted_arg(arg: object) -> object:
    if isinstance(arg, str):
        return redact(arg)
    if isinstance(arg, int | float | bool) or arg is None:
        return arg  # kept as is for %d and friends (uvicorn's access formatter unpacks them)
    shown = str(arg)
    masked = redact(shown)
    return arg if masked == shown else masked


def redact_record(record: logging.LogRecord) -> None:
    """Mask credentials in a record's message, arguments and traceback, in place."""
    if isinstance(record.msg, str):
        record.msg = redact(record.msg)
    if isinstance(record.args, tuple):
        record.args = tuple(_redacted_arg(a) for a in record.args)
    elif isinstance(record.args, dict):
        record.args = {k: _redacted_arg(v) for k, v in record.args.items()}
    if record.args and record.name not in POSITIONAL_LOGGERS:
        # A header's name and value can be separate arguments ("< %s: %s"): mask the whole.
        with contextlib.suppress(Exception):  # a record that cannot format fails later, as ever
            whole = record.getMessage()
            masked = redact(whole)
            if masked != whole:
                record.msg, record.args = masked, ()
    if record.exc_info and not record.exc_text:
        # Formatted now, masked; formatters reuse exc_text instead of formatting it again.
        record.exc_text = redact(logging.Formatter().formatException(record.exc_info))


class RedactKeys(logging.Filter):
    """A filter doing the same, for handlers set up outside ``install``."""

    def filter(self, record: logging.LogRecord) -> bool:
        redact_record(record)
        return True


_installed = False


def install() -> None:
    """Mask every log record this process creates, from any logger (idempotent)."""
    global _installed
    if _installed:
        return
    make = logging.getLogRecordFactory()

    def factory(*args: object, **kwargs: object) -> logging.LogRecord:
        record = make(*args, **kwargs)
        redact_record(record)
        return record

    logging.setLogRecordFactory(factory)
    _installed = True
