"""The process's one Redis connection, and whether Redis is usable right now.

Redis is optional. Every Redis-backed component (the rest of ``hub.shared``: ``cache``,
``ratelimit``, ``breaker``, ``persisted``, ``policy_sync``) talks to Redis through one
``RedisLink`` and keeps working without it: ``RedisLink.run`` raises ``RedisUnavailable`` and the
component degrades (the cache turns off, limits and breakers fall back to per-process state).

The link is in one of three states:

- ``off``: no Redis configured; nothing is ever degraded.
- ``up``: the last call succeeded.
- ``down``: a call failed to reach Redis (refused, reset, or no answer within ``timeout_s``).
  From then on ``run`` fails at once, without touching the network, so no request waits on a dead
  Redis more than once; a background task pings with exponential backoff (with jitter, so many
  workers do not reconnect in step) and, once Redis answers, runs the recovery hooks (a cache
  replaying evictions it could not deliver) before the link is ``up`` again.

Every call is bounded twice: the socket timeouts of the client, and an ``asyncio.timeout`` around
the whole call, so a Redis that accepts connections but never answers (a stopped process, a
black-holed network) costs at most ``timeout_s`` and only the first time. The URL may carry a
password: it is held as a ``Secret`` and never logged.

Needs Redis 6.2 or later (``GETEX``; Lua scripts that read ``TIME`` before writing). The audit
stream (``hub.audit.redis_log``) keeps its own client on purpose: the audit fails closed, it
must never degrade the way these components do.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal, TypeVar

import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError
from redis.exceptions import TimeoutError as RedisTimeoutError

from hub.secret import Secret

log = logging.getLogger(__name__)

T = TypeVar("T")
LinkState = Literal["off", "up", "down"]
RecoveryHook = Callable[[aioredis.Redis], Awaitable[None]]

# Failures that say Redis itself cannot be reached; anything else (a script error, a wrong type)
# fails that one call but says nothing about the link.
UNREACHABLE: tuple[type[BaseException], ...] = (
    RedisConnectionError,
    RedisTimeoutError,
    OSError,
    TimeoutError,
)


class RedisUnavailable(Exception):
    """Redis is not configured, is down, or did not answer in time; the caller degrades."""


@dataclass(frozen=True, slots=True)
class LinkHealth:
    """What ``/healthz`` reports about Redis."""

    state: LinkState
    since: datetime  # when the link entered this state
    last_error: str | None = None  # the exception's type name only: messages may carry hosts

    @property
    def degraded(self) -> bool:
        return self.state == "down"

    def as_dict(self) -> dict[str, str | None]:
        return {
            "state": self.state,
            "since": self.since.isoformat(),
            "last_error": self.last_error,
        }


class RedisLink:
    """One Redis client shared by every component of the process, with health and reconnects.

    ``url`` None (or empty) means no Redis: the link is ``off`` and components use memory.
    ``max_concurrency`` bounds how many calls are in flight at once (each needs a connection);
    a call that cannot get a slot within ``timeout_s`` fails without marking Redis down, since
    a busy hub says nothing about Redis.
    """

    def __init__(
        self,
        url: Secret | str | None,
        *,
        timeout_s: float = 0.5,
        backoff_min_s: float = 0.2,
        backoff_max_s: float = 5.0,
        max_concurrency: int = 256,
    ) -> None:
        raw = url.reveal() if isinstance(url, Secret) else url
        self.timeout_s = timeout_s
        self._backoff = (backoff_min_s, backoff_max_s)
        self._client: aioredis.Redis | None = None
        if raw:
            self._client = aioredis.Redis.from_url(
                raw,
                socket_timeout=timeout_s,
                socket_connect_timeout=timeout_s,
                # One retry on a fresh connection: after a Redis restart every pooled connection
                # is dead and the first use of each must reconnect. More would stall requests.
                retry=Retry(NoBackoff(), 1),
            )
        self._state: LinkState = "down" if raw else "off"
        self._since = datetime.now(UTC)
        self._last_error: str | None = None
        self._slots = asyncio.Semaphore(max_concurrency)
        self._hooks: list[RecoveryHook] = []
        self._reconnector: asyncio.Task[None] | None = None
        self._up_event = asyncio.Event()
        self._closed = False
        self._started = False

    # -- state --------------------------------------------------------------------------------

    @property
    def configured(self) -> bool:
        return self._client is not None

    @property
    def up(self) -> bool:
        return self._state == "up"

    @property
    def degraded(self) -> bool:
        """Redis is configured but not usable: the hub runs on per-process fallbacks."""
        return self._state == "down"

    @property
    def client(self) -> aioredis.Redis:
        """The raw client, for what ``run`` cannot express (a pub/sub subscription)."""
        if self._client is None:
            raise RedisUnavailable("no Redis is configured")
        return self._client

    def health(self) -> LinkHealth:
        return LinkHealth(self._state, self._since, self._last_error)

    def add_recovery_hook(self, hook: RecoveryHook) -> None:
        """Run ``hook`` with the client each time Redis comes back, before the link is ``up``.

        A hook that raises keeps the link ``down``; the reconnect loop tries again later.
        """
        self._hooks.append(hook)

    async def wait_up(self, timeout_s: float | None = None) -> bool:
        """Wait until the link is ``up``; False if it is off or still down after ``timeout_s``."""
        if not self.configured:
            return False
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout_s):
                await self._up_event.wait()
        return self.up

    # -- lifecycle ----------------------------------------------------------------------------

    async def start(self) -> None:
        """Ping once (bounded by ``timeout_s``); if Redis is not there, keep trying in the
        background. Never raises and never blocks startup for longer than one timeout."""
        if self._client is None or self._started:
            return
        self._started = True
        try:
            await self._ping(self._client)
        except UNREACHABLE as exc:
            self._last_error = type(exc).__name__
            log.warning("Redis unreachable at start (%s); running degraded", self._last_error)
            self._start_reconnecting()
            return
        try:
            await self._run_hooks(self._client)
        except UNREACHABLE as exc:
            self.mark_down(exc)
            return
        self._set_state("up")

    async def close(self) -> None:
        self._closed = True
        if self._reconnector is not None:
            self._reconnector.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reconnector
            self._reconnector = None
        if self._client is not None:
            with contextlib.suppress(RedisError, OSError):
                await self._client.aclose()

    # -- calls --------------------------------------------------------------------------------

    async def run(self, op: Callable[[aioredis.Redis], Awaitable[T]]) -> T:
        """``await op(client)``, bounded by ``timeout_s``.

        Raises ``RedisUnavailable`` at once when the link is off or down; when ``op`` cannot
        reach Redis, marks the link down and raises ``RedisUnavailable``. Other Redis errors (a
        failing script) raise ``RedisUnavailable`` too, but leave the link up.
        """
        client = self._client
        if client is None or self._state != "up":
            raise RedisUnavailable("Redis is not available")
        slot = False
        try:
            async with asyncio.timeout(self.timeout_s):
                await self._slots.acquire()
                slot = True
                return await op(client)
        except UNREACHABLE as exc:
            if slot:
                self.mark_down(exc)
                raise RedisUnavailable("Redis did not answer") from exc
            raise RedisUnavailable("too many Redis calls in flight") from exc
        except RedisError as exc:
            log.error("Redis call failed: %s", type(exc).__name__)
            raise RedisUnavailable("Redis refused the call") from exc
        finally:
            if slot:
                self._slots.release()

    def mark_down(self, exc: BaseException | None = None) -> None:
        """Take the link down (a call or a subscription lost Redis) and start reconnecting."""
        if self._client is None or self._closed:
            return
        if exc is not None:
            self._last_error = type(exc).__name__
        if self._state != "down":
            log.warning("Redis unreachable (%s); running degraded", self._last_error)
            self._set_state("down")
        self._start_reconnecting()

    # -- internals ----------------------------------------------------------------------------

    def _set_state(self, state: LinkState) -> None:
        if state == self._state:
            return
        self._state = state
        self._since = datetime.now(UTC)
        if state == "up":
            self._up_event.set()
        else:
            self._up_event = asyncio.Event()

    def _start_reconnecting(self) -> None:
        if self._closed or (self._reconnector is not None and not self._reconnector.done()):
            return
        self._reconnector = asyncio.get_running_loop().create_task(
            self._reconnect(), name="redis-reconnect"
        )

    async def _ping(self, client: aioredis.Redis) -> None:
        async with asyncio.timeout(self.timeout_s):
            await client.ping()

    async def _run_hooks(self, client: aioredis.Redis) -> None:
        for hook in self._hooks:
            try:
                await hook(client)
            except RedisError as exc:
                # A hook that cannot finish (say Redis went again mid-replay) keeps us down.
                raise RedisConnectionError(type(exc).__name__) from exc

    async def _reconnect(self) -> None:
        low, high = self._backoff
        delay = low
        client = self.client
        while not self._closed:
            # Full jitter: workers that lost Redis together do not all come back together.
            await asyncio.sleep(random.uniform(delay / 2, delay))  # noqa: S311 - not crypto
            started = time.monotonic()
            try:
                await self._ping(client)
                await self._run_hooks(client)
            except UNREACHABLE as exc:
                self._last_error = type(exc).__name__
                delay = min(high, delay * 2)
                log.debug("Redis still unreachable after %.2fs", time.monotonic() - started)
                continue
            log.warning("Redis reachable again; leaving degraded mode")
            self._set_state("up")
            return
