"""Who may read or change a live session.

Reading (events, transcript, info) is for the session's owner, admins, and the identities
the owner granted (or every listener key, if it granted ``*``). Changing it (deleting it,
granting, revoking, resuming it as presenter) is for its owner and admins. The route's role
(``auth.require...``) is checked first; this adds the per-session rule. In the loopback-only
open mode every caller is an admin, so everything stays open there.
"""

from fastapi import HTTPException

from services.gateway import ratelimit
from services.gateway.auth import Identity
from services.gateway.core import Core
from services.gateway.errors import GatewayError, guarded
from services.gateway.live.engine.store import SessionInfo, SessionStore, store_of


def owns(identity: Identity, info: SessionInfo) -> bool:
    """True if ``identity`` may change the session: its owner, or an admin."""
    return identity.owns(info.owner)


async def may_read(store: SessionStore, identity: Identity, info: SessionInfo) -> bool:
    """True if ``identity`` may read the session: an owner/admin, or a granted listener."""
    return owns(identity, info) or await store.may_listen(info.id, identity.name)


async def _found(core: Core, session_id: str) -> SessionInfo:
    info = await guarded(store_of(core).get(session_id))
    if info is None:
        raise GatewayError(404, f"no session {session_id!r}", "unknown_session")
    return info


async def readable(core: Core, identity: Identity, session_id: str) -> SessionInfo:
    """The session, if ``identity`` may read it; else 404 (no such session) or 403."""
    info = await _found(core, session_id)
    if not await guarded(may_read(store_of(core), identity, info)):
        raise GatewayError(
            403,
            f"{identity.name!r} may not read session {session_id!r}: its presenter has not "
            "granted access (POST /v1/sessions/{id}/listeners)",
            "forbidden",
        )
    return info


async def owned(core: Core, identity: Identity, session_id: str) -> SessionInfo:
    """The session, if ``identity`` may change it; else 404 (no such session) or 403."""
    info = await _found(core, session_id)
    if not owns(identity, info):
        raise GatewayError(
            403,
            f"only the presenter who created session {session_id!r} (or an admin) may change it",
            "forbidden",
        )
    return info


async def opening_wait_s(core: Core, identity: Identity) -> float:
    """Spend one of ``identity``'s live-session openings: 0 if allowed, else seconds to wait.
    Each opening costs a VAD, a transcriber and Redis keys, so a key may not open them in a
    loop (``live_opens_per_min``)."""
    if identity.key_id is None:  # the loopback open mode has no keys to count by
        return 0.0
    s = core.settings
    bucket = f"{identity.key_id}/live-opens"  # beside the key's request bucket, not in it
    opened = ratelimit.take(core.redis, bucket, s.live_opens_per_min, s.live_opens_burst)
    return await guarded(opened)


def too_many_opens(core: Core, wait_s: float) -> str:
    """Why an opening was refused."""
    return (
        f"this API key opened more than {core.settings.live_opens_per_min} live sessions a "
        f"minute; retry in {ratelimit.retry_after(wait_s)} s"
    )


async def may_open(core: Core, identity: Identity) -> None:
    """For HTTP routes: 429 with ``Retry-After`` unless ``identity`` may open a live session."""
    wait_s = await opening_wait_s(core, identity)
    if wait_s > 0:
        headers = {"Retry-After": ratelimit.retry_after(wait_s)}
        raise HTTPException(429, too_many_opens(core, wait_s), headers=headers)
