"""A file, outside Redis, that remembers that API keys once existed for a Redis.

The loopback open mode is for a fresh demo with no key ever created. A key store that empties
later (Redis restarted without persistence, flushed, or replaced) must not silently turn
authentication off, so the first time the gateway sees a stored key it writes this marker,
and while the marker exists an empty key store still demands a key.
"""

import hashlib
import logging
from pathlib import Path
from urllib.parse import urlparse

from shared import bus

log = logging.getLogger(__name__)


def path_for(marker_dir: Path, redis_url: str) -> Path:
    """The marker file of the Redis at ``redis_url`` (its host, port and db, or a cluster's
    seed nodes; never secrets)."""
    if bus.is_cluster_url(redis_url):
        seeds, _options = bus.cluster_seeds(redis_url)
        where = "cluster " + ",".join(sorted(f"{host}:{port}" for host, port in seeds))
    else:
        parsed = urlparse(redis_url)
        where = f"{parsed.hostname}:{parsed.port or 6379}{parsed.path or '/0'}"
    digest = hashlib.sha256(where.encode()).hexdigest()[:16]
    return marker_dir.expanduser() / f"keys-existed-{digest}"


def remember(marker: Path) -> None:
    """Record that keys exist (idempotent); a failure to write is logged, not raised."""
    if marker.exists():
        return
    try:
        marker.parent.mkdir(parents=True, exist_ok=True)
        marker.write_text(
            "API keys have existed for this Redis; delete this file to allow "
            "the loopback open mode again.\n"
        )
    except OSError as exc:
        log.warning("cannot record that API keys exist in %s: %s", marker, exc)


def existed(marker: Path) -> bool:
    """True if keys were seen before for this Redis."""
    return marker.exists()
