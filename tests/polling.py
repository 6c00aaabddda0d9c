"""Waiting for a condition in a real system, bounded in time (never a bare sleep)."""

import asyncio
import time
from collections.abc import Awaitable, Callable


async def eventually(check: Callable[[], Awaitable[object]], timeout_s: float = 10.0) -> object:
    """Poll ``check`` until it returns something truthy; fail after ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    for _ in range(1_000_000):
        result = await check()
        if result:
            return result
        if time.monotonic() > deadline:
            break
        await asyncio.sleep(0.02)
    raise AssertionError(f"condition not met within {timeout_s} s")
