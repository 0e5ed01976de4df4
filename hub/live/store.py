"""Where live results are kept: Redis, shared by every worker, sealed like the source cache.

Layout under ``prefix`` (default ``hub:live``); key names carry no CJI (names, plates, user ids
are replaced by keyed HMACs, ``CacheCipher.name``), values are sealed with AES-256-GCM bound to
their key (``CacheCipher.seal``)::

    {p}:events                 stream of events (plate reads, record notices, re-query finds);
                               consumer group "match": each event is handled by one worker,
                               acknowledged once handled, claimed by another (XAUTOCLAIM) when
                               its worker died
    {p}:watches                hash: watch id -> sealed Watch (every active watch)
    {p}:version                counter, bumped on every watch change (workers reload on it)
    {p}:user:{hmac(ori/user)}  set of that user's watch ids
    {p}:subject:{hmac(key)}    set of the watch ids on one subject (deconfliction)
    {p}:seen:{watch id}        set of hmac(record id) a watch's re-query has seen
    {p}:inbox:{hmac(ori/user)} stream: the user's deliveries (sealed), bounded, expiring
    {p}:alerts:{ori}           stream: the agency's hot-list alerts (sealed), bounded, expiring
    {p}:done:{delivery id}     marker: delivered (the XADD above and this SET NX are one script)
    {p}:lock:{name}            one worker at a time (re-query of one watch, expiry sweeps)

Blocking reads (XREADGROUP, a subscriber's XREAD) use a client of their own with no socket
timeout, bounded by their BLOCK instead; everything else is bounded by ``timeout_s``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Sequence
from typing import Any, TypeVar

import msgspec
import redis.asyncio as aioredis
from cryptography.exceptions import InvalidTag
from redis.exceptions import RedisError, ResponseError

from hub.errors import SourceUnavailable
from hub.live.model import Alert, Delivery, Watch
from hub.secret import Secret
from hub.shared.cache import CacheCipher

log = logging.getLogger(__name__)

T = TypeVar("T")
GROUP = "match"
INBOX_MAX = 1000  # deliveries kept per user
ALERTS_MAX = 5000  # alerts kept per agency
KEEP_MS = 30 * 24 * 3600 * 1000  # an inbox or alert stream untouched this long goes
# Events kept, at most: those waiting to be handled and those handled since the last trim
# (``trim_handled``, every few seconds). A push beyond is refused (503, pushed again later): an
# event is never dropped unhandled.
EVENTS_MAX = 100_000
BLOCK_MS = 2000

# XADD unless the stream already holds ``max`` events: false then (the caller refuses the push).
_ADD_EVENT = """
if redis.call('XLEN', KEYS[1]) >= tonumber(ARGV[1]) then
  return false
end
return redis.call('XADD', KEYS[1], '*', 'e', ARGV[2])
"""

# SET NX the marker; only the first caller appends. One script: a worker killed between the two
# cannot leave a delivery marked but not kept, or kept twice.
_DELIVER = """
if redis.call('SET', KEYS[1], '1', 'NX', 'PX', ARGV[3]) then
  local id = redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[2], '*', 'd', ARGV[1])
  redis.call('PEXPIRE', KEYS[2], ARGV[3])
  return id
end
return false
"""


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def unavailable(message: str) -> SourceUnavailable:
    """Live results need Redis; when it is not configured or does not answer, clients are told
    so (SOURCE_UNAVAILABLE: the live store is a source like any other that cannot be reached)."""
    return SourceUnavailable("live", message)


_enc = msgspec.json.Encoder()
_watch = msgspec.json.Decoder(Watch)
_delivery = msgspec.json.Decoder(Delivery)
_alert = msgspec.json.Decoder(Alert)


class LiveStore:
    def __init__(
        self, url: Secret | str, cipher: CacheCipher, prefix: str, *, timeout_s: float = 2.0
    ) -> None:
        raw = url.reveal() if isinstance(url, Secret) else url
        self.cipher = cipher
        self.prefix = prefix
        self.timeout_s = timeout_s
        self.client = aioredis.Redis.from_url(
            raw,
            socket_timeout=timeout_s,
            socket_connect_timeout=timeout_s,
            max_connections=64,
        )
        # Blocking reads wait longer than any socket timeout: a client of their own.
        self.blocking = aioredis.Redis.from_url(
            raw, socket_timeout=None, socket_connect_timeout=timeout_s, max_connections=512
        )
        self._deliver = self.client.register_script(_DELIVER)
        self._add_event = self.client.register_script(_ADD_EVENT)
        self.events_max = EVENTS_MAX
        self.closed = False

    async def close(self) -> None:
        self.closed = True  # subscriptions end (``follow``) instead of retrying
        for client in (self.client, self.blocking):
            with contextlib.suppress(RedisError, OSError):
                await client.aclose()

    # -- names --------------------------------------------------------------------------------

    @property
    def events(self) -> str:
        return f"{self.prefix}:events"

    def user_key(self, watcher_key: str) -> str:
        return f"{self.prefix}:user:{self.cipher.name('user', watcher_key)}"

    def inbox_key(self, watcher_key: str) -> str:
        return f"{self.prefix}:inbox:{self.cipher.name('inbox', watcher_key)}"

    def subject_index(self, subject_key: str) -> str:
        return f"{self.prefix}:subject:{self.cipher.name('subject', subject_key)}"

    def alerts_key(self, ori: str) -> str:
        return f"{self.prefix}:alerts:{ori}"

    def seen_key(self, watch_id: str) -> str:
        return f"{self.prefix}:seen:{watch_id}"

    def done_key(self, delivery_id: str) -> str:
        return f"{self.prefix}:done:{delivery_id}"

    # -- sealing ------------------------------------------------------------------------------

    def seal(self, value: Any, key: str) -> bytes:
        return self.cipher.seal(_enc.encode(value), key.encode())

    def open(self, sealed: bytes, key: str, decoder: msgspec.json.Decoder[T]) -> T | None:
        try:
            return decoder.decode(self.cipher.open(sealed, key.encode()))
        except (InvalidTag, msgspec.DecodeError, msgspec.ValidationError):
            log.error("a live entry under %s did not open; skipped", key.rsplit(":", 2)[-2])
            return None

    async def call(self, coro: Any) -> Any:
        """A Redis call, its failures as ``SourceUnavailable`` (clients see a clear error)."""
        try:
            return await coro
        except (RedisError, OSError, TimeoutError) as exc:
            raise unavailable(
                "live results are unavailable: their store (Redis) does not answer"
            ) from exc

    # -- watches ------------------------------------------------------------------------------

    async def put_watch(self, watch: Watch) -> None:
        key = f"{self.prefix}:watches"
        sealed = self.seal(watch, f"{key}:{watch.id}")
        pipe = self.client.pipeline(transaction=True)
        pipe.hset(key, watch.id, sealed)
        pipe.sadd(self.user_key(watch.watcher.key), watch.id)
        pipe.sadd(self.subject_index(watch.subject_key), watch.id)
        pipe.incr(f"{self.prefix}:version")
        await self.call(pipe.execute())

    async def drop_watch(self, watch: Watch) -> None:
        pipe = self.client.pipeline(transaction=True)
        pipe.hdel(f"{self.prefix}:watches", watch.id)
        pipe.srem(self.user_key(watch.watcher.key), watch.id)
        pipe.srem(self.subject_index(watch.subject_key), watch.id)
        pipe.delete(self.seen_key(watch.id))
        pipe.incr(f"{self.prefix}:version")
        await self.call(pipe.execute())

    async def version(self) -> int:
        raw = await self.call(self.client.get(f"{self.prefix}:version"))
        return int(raw or 0)

    async def all_watches(self) -> list[Watch]:
        key = f"{self.prefix}:watches"
        raw: dict[bytes, bytes] = await self.call(self.client.hgetall(key))
        out = []
        for wid, sealed in raw.items():
            watch = self.open(sealed, f"{key}:{wid.decode()}", _watch)
            if watch is not None:
                out.append(watch)
        return out

    async def watches_of(self, ids: Sequence[str]) -> list[Watch]:
        if not ids:
            return []
        key = f"{self.prefix}:watches"
        raw = await self.call(self.client.hmget(key, list(ids)))
        out = []
        for wid, sealed in zip(ids, raw, strict=True):
            if sealed is not None:
                watch = self.open(sealed, f"{key}:{wid}", _watch)
                if watch is not None:
                    out.append(watch)
        return out

    async def watch_ids_of_user(self, watcher_key: str) -> list[str]:
        raw = await self.call(self.client.smembers(self.user_key(watcher_key)))
        return sorted(x.decode() for x in raw)

    async def watch_ids_on(self, subject_key: str) -> list[str]:
        raw = await self.call(self.client.smembers(self.subject_index(subject_key)))
        return sorted(x.decode() for x in raw)

    async def mark_seen(self, watch_id: str, record_ids: Sequence[str]) -> list[bool]:
        """Per record id, whether the watch had not seen it before (now it has)."""
        key = self.seen_key(watch_id)
        pipe = self.client.pipeline(transaction=False)
        for record_id in record_ids:
            pipe.sadd(key, self.cipher.name("seen", record_id))
        pipe.pexpire(key, KEEP_MS)
        added = await self.call(pipe.execute())
        return [bool(n) for n in added[: len(record_ids)]]

    # -- events -------------------------------------------------------------------------------

    async def ensure_group(self) -> None:
        try:
            await self.call(self.client.xgroup_create(self.events, GROUP, id="0", mkstream=True))
        except SourceUnavailable as exc:
            if isinstance(exc.__cause__, ResponseError) and "BUSYGROUP" in str(exc.__cause__):
                return
            raise

    async def add_event(self, sealed: bytes) -> str | None:
        """Append a sealed event; None, appending nothing, when the stream already holds
        ``events_max`` events (the workers are that far behind)."""
        raw = await self.call(self._add_event(keys=[self.events], args=[self.events_max, sealed]))
        if raw is None or raw is False:
            return None
        return str(raw.decode() if isinstance(raw, bytes) else raw)

    async def handled_all(self) -> bool:
        """Whether every event appended so far is handled and acknowledged: the consumer group
        has neither lag nor pending entries."""
        for group in await self.call(self.client.xinfo_groups(self.events)):
            if _text(group["name"]) == GROUP:
                return bool(group["pending"] == 0 and group.get("lag") == 0)
        return False

    async def trim_handled(self) -> int:
        """Remove the events every worker is done with: those older than the oldest still
        pending (read by a worker, not yet acknowledged) or, none pending, than the last one
        read. An event no worker has read, or one not acknowledged, stays. Returns how many
        went."""
        groups = await self.call(self.client.xinfo_groups(self.events))
        ours = [g for g in groups if _text(g["name"]) == GROUP]
        if not ours:
            return 0
        pending = await self.call(self.client.xpending(self.events, GROUP))
        floor = pending["min"] if pending["pending"] else ours[0]["last-delivered-id"]
        if floor is None or _text(floor) == "0-0":
            return 0
        removed = await self.call(self.client.xtrim(self.events, minid=floor, approximate=False))
        return int(removed)

    async def ack(self, event_id: str) -> None:
        await self.call(self.client.xack(self.events, GROUP, event_id))

    # -- deliveries ---------------------------------------------------------------------------

    async def is_done(self, delivery_id: str) -> bool:
        return bool(await self.call(self.client.exists(self.done_key(delivery_id))))

    async def deliver(self, delivery: Delivery, watcher_key: str) -> bool:
        """Keep ``delivery`` in the watcher's inbox, once: False when it was already there."""
        inbox = self.inbox_key(watcher_key)
        sealed = self.seal(delivery, inbox)
        added = await self.call(
            self._deliver(
                keys=[self.done_key(delivery.id), inbox], args=[sealed, INBOX_MAX, KEEP_MS]
            )
        )
        return added is not None

    async def alert(self, alert: Alert) -> bool:
        key = self.alerts_key(alert.agency)
        sealed = self.seal(alert, key)
        added = await self.call(
            self._deliver(keys=[self.done_key(alert.id), key], args=[sealed, ALERTS_MAX, KEEP_MS])
        )
        return added is not None

    async def inbox(
        self, watcher_key: str, after: str | None, limit: int
    ) -> list[tuple[str, Delivery]]:
        key = self.inbox_key(watcher_key)
        start = f"({after}" if after else "-"
        raw = await self.call(self.client.xrange(key, min=start, max="+", count=limit))
        return self._decode(key, raw, _delivery)

    async def alerts(self, ori: str, after: str | None, limit: int) -> list[tuple[str, Alert]]:
        key = self.alerts_key(ori)
        start = f"({after}" if after else "-"
        raw = await self.call(self.client.xrange(key, min=start, max="+", count=limit))
        return self._decode(key, raw, _alert)

    def _decode(
        self, key: str, raw: list[tuple[bytes, dict[bytes, bytes]]], decoder: Any
    ) -> list[tuple[str, Any]]:
        out = []
        for entry_id, fields in raw:
            value = self.open(fields.get(b"d", b""), key, decoder)
            if value is not None:
                out.append((entry_id.decode(), value))
        return out

    async def follow(
        self, key: str, decoder: msgspec.json.Decoder[T], after: str = "$"
    ) -> AsyncIterator[tuple[str, T]]:
        """Entries of stream ``key`` as they arrive (after ``after``), on any worker's write."""
        last = after
        if last == "$":
            # "$" means "after the newest now": pin it, so nothing between two reads is lost.
            newest = await self.call(self.client.xrevrange(key, count=1))
            last = newest[0][0].decode() if newest else "0-0"
        while not self.closed:
            try:
                raw: Any = await self.blocking.xread({key: last}, count=100, block=BLOCK_MS)
            except (RedisError, OSError) as exc:
                if self.closed:
                    return
                log.warning("live subscription lost Redis (%s); retrying", type(exc).__name__)
                await asyncio.sleep(0.5)
                continue
            for _, entries in raw or ():
                for entry_id, fields in entries:
                    last = entry_id.decode()
                    value = self.open(fields.get(b"d", b""), key, decoder)
                    if value is not None:
                        yield last, value


DELIVERY_DECODER = _delivery
ALERT_DECODER = _alert
