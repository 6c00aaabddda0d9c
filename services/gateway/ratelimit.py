"""A token bucket per API key, kept in Redis so every gateway replica shares it."""

import math
import time

import redis.asyncio as aioredis

from services.gateway import keys

# One atomic step: refill by elapsed time, take a token if there is one, else say how long
# until there is. Tokens are fractional; the bucket expires once it would be full again.
_BUCKET = """
local capacity = tonumber(ARGV[1])
local per_ms = tonumber(ARGV[2])
local now_ms = tonumber(ARGV[3])
local state = redis.call('HMGET', KEYS[1], 'tokens', 'at')
local tokens = tonumber(state[1]) or capacity
local at = tonumber(state[2]) or now_ms
tokens = math.min(capacity, tokens + math.max(0, now_ms - at) * per_ms)
local wait_ms = 0
if tokens >= 1 then
  tokens = tokens - 1
else
  wait_ms = math.ceil((1 - tokens) / per_ms)
end
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'at', tostring(now_ms))
redis.call('PEXPIRE', KEYS[1], math.ceil(capacity / per_ms) + 1000)
return wait_ms
"""


async def take(redis: aioredis.Redis, key_id: str, per_min: int, burst: int) -> float:
    """Spend one request of ``key_id``'s budget: 0 if allowed, else seconds until allowed."""
    if per_min <= 0:
        return 0.0
    per_ms = per_min / 60_000
    now_ms = int(time.time() * 1000)
    wait_ms = await redis.eval(_BUCKET, 1, keys.rate_bucket(key_id), burst, per_ms, now_ms)  # type: ignore[misc]
    return int(wait_ms) / 1000


def retry_after(wait_s: float) -> str:
    """A ``Retry-After`` value: whole seconds, at least 1."""
    return str(max(1, math.ceil(wait_s)))
