"""Bring a policy change to every worker within seconds.

Each worker runs one ``PolicyWatcher``. It calls ``reload`` (the access policy's
``reload_if_changed``) when:

- a ``policy changed`` message arrives on the Redis channel ``{prefix}:changed`` carrying a
  version other than the worker's (``announce`` sends it: the operator command, or a worker
  that noticed the change in its own files);
- the Redis key ``{prefix}:version`` (which ``announce`` also sets) differs from the worker's
  version, checked every ``poll_s``: pub/sub drops every message sent while a subscriber is
  disconnected, so the key is what a worker that was away catches up from, and it is read
  again each time the subscription is re-made;
- every ``local_check_s`` regardless (the policy files may change on this host without anyone
  announcing it); if that reload changed the policy, the watcher announces the new version.

Without Redis (not configured, or unreachable) only the local check runs. A reload that fails
(``ConfigError``: broken files) is logged and the policy in force stays; the watcher never dies
of it. A synchronous ``reload`` runs on the event loop, as the policy's own reload does.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from hub.errors import HubError
from hub.shared.redis_link import UNREACHABLE, RedisLink, RedisUnavailable

log = logging.getLogger(__name__)

DEFAULT_PREFIX = "hub:policy"

Reload = Callable[[], bool | Awaitable[bool]]
_FAILURES: tuple[type[BaseException], ...] = (*UNREACHABLE, RedisError)


class PolicyWatcher:
    """Keeps this worker's policy in step with the others'; see the module docstring.

    ``version`` returns the version in force (``AccessPolicy.version``), ``reload`` re-reads
    the policy and says whether it changed (``AccessPolicy.reload_if_changed``).
    """

    def __init__(
        self,
        link: RedisLink,
        reload: Reload,
        version: Callable[[], str],
        *,
        prefix: str = DEFAULT_PREFIX,
        poll_s: float = 2.0,
        local_check_s: float = 5.0,
    ) -> None:
        self.link = link
        self.channel = f"{prefix}:changed"
        self.key = f"{prefix}:version"
        self.poll_s = poll_s
        self.local_check_s = local_check_s
        self.reloads = 0  # how many reloads changed the policy (for metrics and tests)
        self._reload = reload
        self._version = version
        self._task: asyncio.Task[None] | None = None
        self._next_local = 0.0

    async def start(self) -> None:
        if self._task is None:
            self._next_local = time.monotonic() + self.local_check_s
            self._task = asyncio.get_running_loop().create_task(self._run(), name="policy-watcher")

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def announce(self, version: str | None = None) -> bool:
        """Tell every worker that ``version`` (default: this worker's) is the policy in force.

        False when Redis is not configured or not reachable (workers then pick the change up
        from their own files within ``local_check_s``).
        """
        value = version if version is not None else self._version()

        async def send(client: aioredis.Redis) -> Any:
            async with client.pipeline(transaction=True) as pipe:
                pipe.set(self.key, value)
                pipe.publish(self.channel, value)
                return await pipe.execute()

        try:
            await self.link.run(send)
        except RedisUnavailable:
            return False
        return True

    # -- the loop -----------------------------------------------------------------------------

    async def _run(self) -> None:
        while True:
            try:
                if self.link.up:
                    try:
                        await self._follow_redis()
                    except _FAILURES as exc:
                        self.link.mark_down(exc)
                else:
                    await self._wait_without_redis()
            except Exception:
                # Whatever went wrong, the watcher must outlive it: a worker that stops
                # following policy changes would go on deciding under an old policy.
                log.exception("policy watcher failed; retrying")
                await asyncio.sleep(min(self.poll_s, self.local_check_s))

    async def _wait_without_redis(self) -> None:
        remaining = max(0.0, self._next_local - time.monotonic())
        if self.link.configured:
            if await self.link.wait_up(remaining):
                return
        else:
            await asyncio.sleep(remaining)
        if time.monotonic() >= self._next_local:
            await self._local_check()

    async def _follow_redis(self) -> None:
        pubsub = self.link.client.pubsub(ignore_subscribe_messages=True)
        try:
            async with asyncio.timeout(self.link.timeout_s):
                await pubsub.subscribe(self.channel)
            # Whatever was announced while this worker was not listening.
            await self._poll_key()
            next_poll = time.monotonic() + self.poll_s
            while self.link.up:
                wait = max(0.0, min(next_poll, self._next_local) - time.monotonic())
                message = await pubsub.get_message(timeout=wait)
                if message is not None and message.get("type") == "message":
                    await self._consider(_text(message["data"]))
                now = time.monotonic()
                if now >= next_poll:
                    await self._poll_key()
                    next_poll = now + self.poll_s
                if now >= self._next_local:
                    await self._local_check()
        finally:
            with contextlib.suppress(*_FAILURES):
                async with asyncio.timeout(self.link.timeout_s):
                    await pubsub.aclose()

    async def _poll_key(self) -> None:
        async def read(client: aioredis.Redis) -> Any:
            return await client.get(self.key)

        try:
            value = await self.link.run(read)
        except RedisUnavailable:
            return  # the link is down now (or the call failed): the loop handles it
        if value is not None:
            await self._consider(_text(value))

    async def _consider(self, announced: str) -> None:
        if announced != self._version():
            await self._call_reload()

    async def _local_check(self) -> None:
        self._next_local = time.monotonic() + self.local_check_s
        if await self._call_reload() and self.link.up:
            await self.announce()

    async def _call_reload(self) -> bool:
        try:
            result = self._reload()
            changed = bool(await result) if inspect.isawaitable(result) else bool(result)
        except HubError as exc:
            # The policy in force stays in force; say why the new one was refused.
            log.error("policy reload refused: %s", exc.message)
            return False
        except Exception:
            log.exception("policy reload failed unexpectedly")
            return False
        if changed:
            self.reloads += 1
            log.info("policy reloaded; version %s in force", self._version())
        return changed


def _text(value: object) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)
