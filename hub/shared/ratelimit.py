"""Rate limits per user and per agency, shared by every worker through Redis.

The algorithm is GCRA (the generic cell rate algorithm, as in ATM networks and
``redis-cell``): a bucket holds one timestamp, the theoretical arrival time of the next request.
A limit of ``requests`` per ``window_s`` lets a quiet client send ``requests`` at once, then one
every ``window_s / requests`` seconds; a denied request knows exactly when it would be allowed,
which is the ``Retry-After`` of the HTTP 429. One key per bucket, O(1) memory, no counters to
reset at window edges.

One call checks every bucket of a request (the user's and the agency's) at once and charges
them only if all allow it, so a user refused by the agency's limit does not also lose their own
budget. In Redis that is one Lua script (atomic across workers) on Redis's clock (``TIME``), so
workers with skewed clocks agree. Keys: ``{prefix}:{bucket}:{key}`` (user ids and ORIs, no CJI).

Redis down: each worker limits on its own, in memory, with the same limits (so N workers allow
up to N times the rate while Redis is away). No Redis configured: the memory limiter alone.
"""

from __future__ import annotations

import abc
import math
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import redis.asyncio as aioredis

from hub.shared.redis_link import RedisLink, RedisUnavailable

DEFAULT_PREFIX = "hub:rl"


@dataclass(frozen=True, slots=True)
class Limit:
    """``requests`` per ``window_s`` seconds, with bursts of up to ``requests``."""

    requests: int
    window_s: float

    def __post_init__(self) -> None:
        if self.requests < 1 or self.window_s <= 0:
            raise ValueError("a limit needs at least one request per positive window")

    @property
    def interval_s(self) -> float:
        """The steady-state time between two requests."""
        return self.window_s / self.requests


@dataclass(frozen=True, slots=True)
class RateDecision:
    allowed: bool
    # Seconds until the request would be allowed (0 when allowed).
    retry_after_s: float = 0.0
    # The bucket that refused, e.g. "agency"; None when allowed.
    limited_by: str | None = None

    @property
    def retry_after_header(self) -> str:
        """The HTTP ``Retry-After`` value: whole seconds, rounded up, at least 1."""
        return str(max(1, math.ceil(self.retry_after_s)))


ALLOWED = RateDecision(True)


class RateLimiter(abc.ABC):
    """Limits by bucket name (``limits``: e.g. ``{"user": Limit(120, 60), "agency": ...}``)."""

    def __init__(self, limits: Mapping[str, Limit]) -> None:
        self.limits = dict(limits)

    @abc.abstractmethod
    async def hit(self, keys: Mapping[str, str], cost: int = 1) -> RateDecision:
        """Charge one request (``cost`` units) to each bucket named in ``keys``.

        ``keys`` maps a bucket name to whose bucket it is, e.g. ``{"user": "CA0990000/u17",
        "agency": "CA0990000"}``; names without a configured limit are not limited. Either every
        bucket is charged (allowed) or none is (refused, with the longest wait). Never raises.
        """

    @property
    def degraded(self) -> bool:
        return False

    def _buckets(self, keys: Mapping[str, str]) -> list[tuple[str, str, Limit]]:
        return [
            (name, key, self.limits[name])
            for name, key in sorted(keys.items())
            if name in self.limits
        ]


class MemoryRateLimiter(RateLimiter):
    """Per-process GCRA; remembers at most ``max_keys`` buckets (full buckets are forgotten
    first, since a forgotten bucket reads as full)."""

    def __init__(
        self,
        limits: Mapping[str, Limit],
        *,
        max_keys: int = 100_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__(limits)
        self._max_keys = max_keys
        self._clock = clock
        self._tat: OrderedDict[tuple[str, str], float] = OrderedDict()

    async def hit(self, keys: Mapping[str, str], cost: int = 1) -> RateDecision:
        return self.hit_now(keys, cost)

    def hit_now(self, keys: Mapping[str, str], cost: int = 1) -> RateDecision:
        """``hit`` without the coroutine, for callers that are not async."""
        now = self._clock()
        updates: list[tuple[tuple[str, str], float]] = []
        wait, refused_by = 0.0, None
        for name, key, limit in self._buckets(keys):
            interval = limit.interval_s
            tolerance = limit.window_s - interval
            tat = max(self._tat.get((name, key), now), now)
            # How long until this bucket has room for ``cost`` more requests.
            needed = tat - now - tolerance + interval * (cost - 1)
            if needed > 1e-9:
                if needed > wait:
                    wait, refused_by = needed, name
                continue
            updates.append(((name, key), tat + interval * cost))
        if refused_by is not None:
            return RateDecision(False, wait, refused_by)
        for bucket, tat in updates:
            self._tat[bucket] = tat
            self._tat.move_to_end(bucket)
        if len(self._tat) > self._max_keys:
            self._forget(now)
        return ALLOWED

    def _forget(self, now: float) -> None:
        full = [bucket for bucket, tat in self._tat.items() if tat <= now]
        for bucket in full:
            del self._tat[bucket]
        while len(self._tat) > self._max_keys:
            self._tat.popitem(last=False)


# KEYS: one per bucket. ARGV: cost, then per bucket: interval ms, tolerance ms.
# Returns {allowed 0/1, retry-after in microseconds, index of the refusing bucket}.
_GCRA = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + tonumber(t[2]) / 1000
local cost = tonumber(ARGV[1])
local new = {}
local wait, refused = 0, 0
for i, key in ipairs(KEYS) do
  local interval = tonumber(ARGV[2 * i])
  local tolerance = tonumber(ARGV[2 * i + 1])
  local tat = tonumber(redis.call('GET', key) or now)
  if tat < now then tat = now end
  local needed = tat - now - tolerance + interval * (cost - 1)
  if needed > 0.000001 then
    if needed > wait then wait, refused = needed, i end
  else
    new[i] = tat + interval * cost
  end
end
if refused > 0 then return {0, math.ceil(wait * 1000), refused} end
for i, key in ipairs(KEYS) do
  -- at least 1 ms: for very high limits the interval vanishes in rounding (PX 0 is an error)
  redis.call('SET', key, string.format('%.3f', new[i]), 'PX', math.max(1, math.ceil(new[i] - now)))
end
return {1, 0, 0}
"""


class RedisRateLimiter(RateLimiter):
    """The shared limiter; falls back to a ``MemoryRateLimiter`` while Redis is unreachable."""

    def __init__(
        self, link: RedisLink, limits: Mapping[str, Limit], *, prefix: str = DEFAULT_PREFIX
    ) -> None:
        super().__init__(limits)
        self.link = link
        self.prefix = prefix
        self.fallback = MemoryRateLimiter(limits)
        self._script = link.client.register_script(_GCRA)

    @property
    def degraded(self) -> bool:
        return not self.link.up

    async def hit(self, keys: Mapping[str, str], cost: int = 1) -> RateDecision:
        buckets = self._buckets(keys)
        if not buckets:
            return ALLOWED
        redis_keys = [f"{self.prefix}:{name}:{key}" for name, key, _ in buckets]
        args: list[float | int] = [cost]
        for _, _, limit in buckets:
            args += [limit.interval_s * 1000, (limit.window_s - limit.interval_s) * 1000]

        async def check(client: aioredis.Redis) -> Any:
            return await self._script(keys=redis_keys, args=args, client=client)

        try:
            allowed, wait_us, refused = await self.link.run(check)
        except RedisUnavailable:
            return self.fallback.hit_now(keys, cost)
        if int(allowed) == 1:
            return ALLOWED
        return RateDecision(False, int(wait_us) / 1_000_000, buckets[int(refused) - 1][0])


def make_rate_limiter(
    link: RedisLink, limits: Mapping[str, Limit], *, prefix: str = DEFAULT_PREFIX
) -> RateLimiter:
    """The shared limiter when Redis is configured, the per-process one otherwise."""
    if link.configured:
        return RedisRateLimiter(link, limits, prefix=prefix)
    return MemoryRateLimiter(limits)
