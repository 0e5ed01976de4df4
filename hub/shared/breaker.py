"""Circuit breakers per source, with their state shared by every worker through Redis.

A vendor that keeps failing is skipped fast instead of making every request wait for its
timeout, and is probed again after a cool-down::

    closed ──(``failures`` consecutive failures)──► open ──(``cooldown_s``)──► half-open
      ▲                                              ▲                            │
      └────────────────(the probe succeeds)──────────┴──(the probe fails)─────────┘

While open, ``before_call`` answers False at once (the source's status says it was skipped).
Half-open lets exactly one call through, across all workers: the worker that wins
``SET probe NX PX probe_timeout`` probes, the others keep skipping. If the prober dies without
recording, its claim expires after ``probe_timeout_s`` and another worker probes.

In Redis, per source under ``prefix`` (default ``hub:cb``): ``{source}:fails`` (consecutive
failures), ``{source}:open`` (exists while open; its TTL is the cool-down) and ``{source}:probe``
(the half-open claim). Each of ``before_call`` and ``record`` is one Lua script, one round trip.

Redis down: each worker keeps its own breakers in memory until Redis is back (then the shared
state, as Redis kept it, applies again). No Redis configured: memory only.
"""

from __future__ import annotations

import abc
import asyncio
import enum
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import redis.asyncio as aioredis

from hub.shared.redis_link import RedisLink, RedisUnavailable

DEFAULT_PREFIX = "hub:cb"


class BreakerState(enum.StrEnum):
    CLOSED = "CLOSED"
    OPEN = "OPEN"
    HALF_OPEN = "HALF_OPEN"  # cool-down over: the next call (one, across workers) probes


@dataclass(frozen=True, slots=True)
class BreakerSettings:
    failures: int = 5  # consecutive failures that open the breaker
    cooldown_s: float = 30.0  # how long an open breaker skips the source
    # How long a half-open probe may take before another worker may probe; longer than the
    # slowest source timeout.
    probe_timeout_s: float = 10.0

    def __post_init__(self) -> None:
        if self.failures < 1 or self.cooldown_s <= 0 or self.probe_timeout_s <= 0:
            raise ValueError("breaker settings must be positive")

    @property
    def memory_s(self) -> float:
        """How long a failure count is kept without new failures."""
        return max(600.0, 10 * self.cooldown_s)


class CircuitBreaker(abc.ABC):
    """Per-source breakers; call ``before_call`` before asking a source and ``record`` after.

    What counts as failure is the caller's: a timeout or an error is, a NO_HIT is not.
    """

    def __init__(self, settings: BreakerSettings) -> None:
        self.settings = settings

    @abc.abstractmethod
    async def before_call(self, source: str) -> bool:
        """True: call the source (closed, or this caller is the half-open probe). False: skip
        it, the breaker is open. Never raises."""

    async def before_calls(self, sources: Sequence[str]) -> list[bool]:
        """``before_call`` for each of ``sources`` at once, in their order. Never raises."""
        return list(await asyncio.gather(*(self.before_call(s) for s in sources)))

    @abc.abstractmethod
    async def record(self, source: str, ok: bool) -> None:
        """The outcome of a call that ``before_call`` let through. Never raises."""

    @abc.abstractmethod
    async def state(self, source: str) -> BreakerState:
        """The breaker's state, for status messages, /healthz and tests."""

    @property
    def degraded(self) -> bool:
        return False


@dataclass(slots=True)
class _Local:
    fails: int = 0
    last_failure: float = 0.0
    open_until: float = 0.0
    probe_until: float = 0.0


class MemoryCircuitBreaker(CircuitBreaker):
    """Breakers of this process only (no Redis, or Redis unreachable)."""

    def __init__(
        self, settings: BreakerSettings, *, clock: Callable[[], float] = time.monotonic
    ) -> None:
        super().__init__(settings)
        self._clock = clock
        # One entry per configured source: bounded by configuration, not by requests.
        self._sources: dict[str, _Local] = {}

    def _get(self, source: str) -> _Local:
        local = self._sources.setdefault(source, _Local())
        if local.fails and self._clock() - local.last_failure > self.settings.memory_s:
            local.fails = 0
        return local

    async def before_call(self, source: str) -> bool:
        local = self._get(source)
        now = self._clock()
        if local.open_until > now:
            return False
        if local.fails < self.settings.failures:
            return True
        if local.probe_until > now:
            return False
        local.probe_until = now + self.settings.probe_timeout_s
        return True

    async def before_calls(self, sources: Sequence[str]) -> list[bool]:
        # In memory nothing waits: one after another, with no task per source.
        return [await self.before_call(source) for source in sources]

    async def record(self, source: str, ok: bool) -> None:
        local = self._get(source)
        if ok:
            local.fails, local.open_until, local.probe_until = 0, 0.0, 0.0
            return
        now = self._clock()
        local.fails += 1
        local.last_failure = now
        if local.fails >= self.settings.failures:
            local.open_until = now + self.settings.cooldown_s
            local.probe_until = 0.0

    async def state(self, source: str) -> BreakerState:
        local = self._get(source)
        if local.open_until > self._clock():
            return BreakerState.OPEN
        if local.fails >= self.settings.failures:
            return BreakerState.HALF_OPEN
        return BreakerState.CLOSED


# KEYS: fails, open, probe. ARGV: failures threshold, probe timeout ms, claim token.
# Returns 0 skip, 1 call (closed), 2 call (this caller probes).
_BEFORE = """
if redis.call('EXISTS', KEYS[2]) == 1 then return 0 end
local fails = tonumber(redis.call('GET', KEYS[1]) or '0')
if fails < tonumber(ARGV[1]) then return 1 end
if redis.call('SET', KEYS[3], ARGV[3], 'NX', 'PX', ARGV[2]) then return 2 end
return 0
"""

# KEYS: fails, open, probe. ARGV: ok 1/0, failures threshold, cool-down ms, memory ms.
_RECORD = """
if ARGV[1] == '1' then
  redis.call('DEL', KEYS[1], KEYS[2], KEYS[3])
  return 0
end
local n = redis.call('INCR', KEYS[1])
redis.call('PEXPIRE', KEYS[1], ARGV[4])
if n >= tonumber(ARGV[2]) then
  redis.call('SET', KEYS[2], '1', 'PX', ARGV[3])
  redis.call('DEL', KEYS[3])
end
return n
"""

# KEYS: fails, open. ARGV: failures threshold. Returns 0 closed, 1 open, 2 half-open.
_STATE = """
if redis.call('EXISTS', KEYS[2]) == 1 then return 1 end
if tonumber(redis.call('GET', KEYS[1]) or '0') >= tonumber(ARGV[1]) then return 2 end
return 0
"""

_STATES = (BreakerState.CLOSED, BreakerState.OPEN, BreakerState.HALF_OPEN)


class RedisCircuitBreaker(CircuitBreaker):
    """Breakers shared by every worker; a ``MemoryCircuitBreaker`` while Redis is unreachable."""

    def __init__(
        self, link: RedisLink, settings: BreakerSettings, *, prefix: str = DEFAULT_PREFIX
    ) -> None:
        super().__init__(settings)
        self.link = link
        self.prefix = prefix
        self.fallback = MemoryCircuitBreaker(settings)
        self._token = uuid.uuid4().hex  # names this process's probe claims, for operators
        client = link.client
        self._before = client.register_script(_BEFORE)
        self._record = client.register_script(_RECORD)
        self._state = client.register_script(_STATE)

    @property
    def degraded(self) -> bool:
        return not self.link.up

    def _before_args(self) -> list[int | str]:
        """ARGV of the check script: failures threshold, probe timeout (ms), claim token."""
        return [self.settings.failures, int(self.settings.probe_timeout_s * 1000), self._token]

    def _keys(self, source: str) -> list[str]:
        base = f"{self.prefix}:{source}"
        return [f"{base}:fails", f"{base}:open", f"{base}:probe"]

    async def before_call(self, source: str) -> bool:
        keys = self._keys(source)
        args = self._before_args()

        async def check(client: aioredis.Redis) -> Any:
            return await self._before(keys=keys, args=args, client=client)

        try:
            return int(await self.link.run(check)) != 0
        except RedisUnavailable:
            return await self.fallback.before_call(source)

    async def before_calls(self, sources: Sequence[str]) -> list[bool]:
        """Every source's check in one round trip (a pipeline of the same script)."""
        if len(sources) < 2:
            return [await self.before_call(s) for s in sources]
        args = self._before_args()

        async def check(client: aioredis.Redis) -> Any:
            pipe = client.pipeline(transaction=False)
            for source in sources:
                await self._before(keys=self._keys(source), args=args, client=pipe)
            return await pipe.execute()

        try:
            found = await self.link.run(check)
        except RedisUnavailable:
            return await self.fallback.before_calls(sources)
        return [int(x) != 0 for x in found]

    async def record(self, source: str, ok: bool) -> None:
        keys = self._keys(source)
        args = [
            1 if ok else 0,
            self.settings.failures,
            int(self.settings.cooldown_s * 1000),
            int(self.settings.memory_s * 1000),
        ]

        async def note(client: aioredis.Redis) -> Any:
            return await self._record(keys=keys, args=args, client=client)

        try:
            await self.link.run(note)
        except RedisUnavailable:
            await self.fallback.record(source, ok)

    async def state(self, source: str) -> BreakerState:
        keys = self._keys(source)[:2]

        async def read(client: aioredis.Redis) -> Any:
            return await self._state(keys=keys, args=[self.settings.failures], client=client)

        try:
            return _STATES[int(await self.link.run(read))]
        except RedisUnavailable:
            return await self.fallback.state(source)


def make_circuit_breaker(
    link: RedisLink, settings: BreakerSettings, *, prefix: str = DEFAULT_PREFIX
) -> CircuitBreaker:
    """Shared breakers when Redis is configured, per-process ones otherwise."""
    if link.configured:
        return RedisCircuitBreaker(link, settings, prefix=prefix)
    return MemoryCircuitBreaker(settings)
