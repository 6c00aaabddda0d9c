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


HEARTBEAT_PATTERN = f"{PREFIX}:worker:*"
JOBS_PATTERN = f"{PREFIX}:jobs:*"
