"""Vendor answers cached per (source, normalised request), shared by every worker through Redis.

The cache holds what a vendor answered, never what a reader was shown: it sits between the
fan-out and the adapter, so every record read from it goes through the access decisions again,
for the reader at hand. What user A was allowed to see is never what user B gets.

Answers are CJI, so in Redis they are sealed with AES-256-GCM under a key from configuration
(the entry's Redis key is the associated data: a value copied under another key does not open).
Redis keys carry no CJI either: the request and the record ids are replaced by a keyed HMAC.
Both subkeys are derived (HKDF-SHA256) from the one configured secret; changing the secret
makes every old entry unreachable (they expire by TTL), so a rotation needs no flush.

Layout under ``prefix`` (default ``hub:cache``)::

    {prefix}:e:{source}:{hmac(request)}   the sealed answer, TTL of its source
    {prefix}:r:{hmac(hub id)}             sorted set of the entries holding that record
                                          (score: the entry's expiry; pruned on every write)
    {prefix}:t:{hmac(hub id)}             tombstone of an evicted record (longest TTL, >= 60 s)

``evict_record`` (an expungement or sealing notice) deletes every entry that holds the record and
leaves a tombstone, so an answer fetched before the notice but stored after it is refused. Writes
and evictions are Lua scripts, atomic against each other. Run Redis with
``maxmemory-policy noeviction``: an index evicted by memory pressure would let an eviction miss.

Redis down: ``get`` misses, ``put`` stores nothing, and ``evict_record`` remembers the record and
replays the eviction when Redis is back, before the link serves anything again
(``RedisLink.add_recovery_hook``); the answer says it was deferred. No Redis configured: an
in-memory LRU per process, bounded in entries and in records.
"""

from __future__ import annotations

import abc
import asyncio
import base64
import binascii
import contextlib
import hashlib
import hmac
import logging
import os
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import msgspec
import redis.asyncio as aioredis
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from hub.adapters.base import SearchRequest
from hub.errors import ConfigError
from hub.model import EntityKind, Record, decode_records, encode_records, normalise_plate
from hub.secret import Secret
from hub.shared.redis_link import RedisLink, RedisUnavailable
from hub.trust.keyfiles import read_or_create

log = logging.getLogger(__name__)

DEFAULT_PREFIX = "hub:cache"
_FORMAT = b"\x01"  # first byte of every sealed value: the format, so it can change later
_NONCE = 12
_KEY_BYTES = 32
_MIN_TOMBSTONE_S = 60.0


# -- what is cached, and for how long ---------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CachePolicy:
    """Time to live per source, in seconds; 0 means that source's answers are never cached."""

    default_ttl_s: float = 60.0
    ttl_s: Mapping[str, float] = field(default_factory=dict)
    # When a record passes its owner's retention limit (``AccessPolicy.retention_ends``); an
    # answer is never kept past the first of its records to expire.
    retention_ends: Callable[[Record], datetime | None] | None = None

    def ttl(self, source: str) -> float:
        return self.ttl_s.get(source, self.default_ttl_s)

    def answer_ttl(self, source: str, records: Sequence[Record]) -> float:
        """The source's TTL, cut to the time left before the answer's first record expires
        under retention (0: an answer holding an expired record is not cached at all)."""
        ttl = self.ttl(source)
        if self.retention_ends is None or ttl <= 0:
            return ttl
        now = datetime.now(UTC)
        for record in records:
            ends = self.retention_ends(record)
            if ends is not None:
                ttl = min(ttl, max(0.0, (ends - now).total_seconds()))
        return ttl

    @property
    def max_ttl_s(self) -> float:
        return max((self.default_ttl_s, *self.ttl_s.values()))

    @property
    def tombstone_s(self) -> float:
        """How long an evicted record is refused: past any entry's life and any vendor call
        that was in flight when the notice came."""
        return max(self.max_ttl_s, _MIN_TOMBSTONE_S)


_key_encoder = msgspec.json.Encoder()


def _when(value: datetime | None) -> str | None:
    return None if value is None else value.astimezone(UTC).isoformat()


def search_key(request: SearchRequest) -> str:
    """The normalised form of a search: requests that ask the same thing get the same key.

    Who asks (``request.context``) is left out on purpose: the cache holds vendor answers and
    access is decided per reader afterwards. A source whose answer depends on the requester (a
    partner hub that applies its own policy) must not be cached: give it a TTL of 0.
    """
    text = " ".join(request.text.casefold().split()) if request.text else None
    parts = [
        "search",
        sorted(kind.value for kind in request.kinds),
        text or None,
        sorted({normalise_plate(p) for p in request.plates}),
        request.plate_state.upper() if request.plate_state else None,
        _when(request.since),
        _when(request.until),
        request.limit,
    ]
    return _key_encoder.encode(parts).decode()


def lookup_key(kind: EntityKind, record_ids: Sequence[str]) -> str:
    """The normalised form of a fetch by vendor ids (``Adapter.get_many``)."""
    return _key_encoder.encode(["get", kind.value, sorted(set(record_ids))]).decode()


# -- sealing ----------------------------------------------------------------------------------


def generate_cache_key() -> str:
    """A fresh secret for the cache (URL-safe base64 of 32 random bytes)."""
    return base64.urlsafe_b64encode(os.urandom(_KEY_BYTES)).decode("ascii")


def load_or_create_cache_key(path: Path) -> Secret:
    """Demo and dev only: a cache key kept in a file (mode 0600) under the var directory."""
    content = read_or_create(path, lambda: generate_cache_key().encode("ascii"))
    return Secret(content.decode("ascii").strip())


class CacheCipher:
    """Seals cache values (AES-256-GCM) and hides identifiers in keys (HMAC-SHA256).

    ``secret`` is URL-safe base64 of at least 32 random bytes (``generate_cache_key``).
    """

    def __init__(self, secret: Secret) -> None:
        try:
            material = base64.urlsafe_b64decode(secret.reveal().encode("ascii"))
        except (binascii.Error, ValueError, UnicodeEncodeError) as exc:
            raise ConfigError("the cache key must be URL-safe base64") from exc
        if len(material) < _KEY_BYTES:
            raise ConfigError(f"the cache key must hold at least {_KEY_BYTES} bytes")
        self._aead = AESGCM(_derive(material, b"hub cache v1: seal"))
        self._mac_key = _derive(material, b"hub cache v1: key names")

    def name(self, *parts: str) -> str:
        """A keyed hash of ``parts`` that can stand in a Redis key (128 bits, hex)."""
        data = "\x1f".join(parts).encode()
        return hmac.new(self._mac_key, data, hashlib.sha256).hexdigest()[:32]

    def seal(self, plaintext: bytes, bound_to: bytes) -> bytes:
        nonce = os.urandom(_NONCE)
        return _FORMAT + nonce + self._aead.encrypt(nonce, plaintext, bound_to)

    def open(self, sealed: bytes, bound_to: bytes) -> bytes:
        """The plaintext; ``InvalidTag`` if altered, moved, or sealed under another key."""
        if sealed[:1] != _FORMAT or len(sealed) < 1 + _NONCE + 16:
            raise InvalidTag()
        return self._aead.decrypt(sealed[1 : 1 + _NONCE], sealed[1 + _NONCE :], bound_to)


def _derive(material: bytes, info: bytes) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=info).derive(material)


# -- the contract -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Eviction:
    """What ``evict_record`` did.

    ``deferred``: Redis was unreachable. This worker serves nothing from Redis until the
    eviction is replayed (on reconnect), but another worker that still reaches Redis may serve
    the entry until then, at most for its TTL. Worth telling the operator.
    """

    entries: int
    deferred: bool = False


class SourceCache(abc.ABC):
    """Vendor answers per (source, normalised request); see the module docstring."""

    def __init__(self, policy: CachePolicy) -> None:
        self.policy = policy

    @abc.abstractmethod
    async def get(self, source: str, key: str) -> list[Record] | None:
        """The cached answer (a hit, possibly ``[]``), or None (a miss). Never raises."""

    async def get_many(self, sources: Sequence[str], key: str) -> list[list[Record] | None]:
        """``get`` for each of ``sources`` at once, in their order. Never raises."""
        return list(await asyncio.gather(*(self.get(s, key) for s in sources)))

    @abc.abstractmethod
    async def put(self, source: str, key: str, records: Sequence[Record]) -> None:
        """Remember an answer for the source's TTL. Never raises."""

    @abc.abstractmethod
    async def evict_record(self, hub_id: str) -> Eviction:
        """Drop every cached answer holding the record, and refuse to cache it for a while."""

    @property
    def degraded(self) -> bool:
        """Configured to be shared but currently off (Redis unreachable)."""
        return False

    async def fetch(
        self, source: str, key: str, call: Callable[[], Awaitable[list[Record]]]
    ) -> tuple[list[Record], bool]:
        """The answer from the cache, or from ``call`` (then cached); and whether it was cached.

        A failing ``call`` raises through and caches nothing.
        """
        if self.policy.ttl(source) <= 0:
            return await call(), False
        hit = await self.get(source, key)
        if hit is not None:
            return hit, True
        records = await call()
        await self.put(source, key, records)
        return records, False


# -- in memory --------------------------------------------------------------------------------


@dataclass(slots=True)
class _Entry:
    expires: float
    records: tuple[Record, ...]
    ids: frozenset[str]


class MemorySourceCache(SourceCache):
    """A per-process LRU, bounded by ``max_entries`` answers and ``max_records`` records."""

    def __init__(
        self,
        policy: CachePolicy,
        *,
        max_entries: int = 10_000,
        max_records: int = 500_000,
        max_tombstones: int = 100_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__(policy)
        self._max_entries = max_entries
        self._max_records = max_records
        self._max_tombstones = max_tombstones
        self._clock = clock
        self._entries: OrderedDict[tuple[str, str], _Entry] = OrderedDict()
        self._holders: dict[str, set[tuple[str, str]]] = {}
        self._tombstones: dict[str, float] = {}
        self._records_held = 0

    def __len__(self) -> int:
        return len(self._entries)

    async def get(self, source: str, key: str) -> list[Record] | None:
        entry = self._entries.get((source, key))
        if entry is None:
            return None
        if entry.expires <= self._clock():
            self._drop((source, key))
            return None
        self._entries.move_to_end((source, key))
        return list(entry.records)

    async def get_many(self, sources: Sequence[str], key: str) -> list[list[Record] | None]:
        # In memory nothing waits: one after another, with no task per source.
        return [await self.get(source, key) for source in sources]

    async def put(self, source: str, key: str, records: Sequence[Record]) -> None:
        ttl = self.policy.answer_ttl(source, records)
        if ttl <= 0 or len(records) > self._max_records:
            return
        now = self._clock()
        ids = frozenset(r.id for r in records)
        if any(self._tombstones.get(i, 0.0) > now for i in ids):
            return
        slot = (source, key)
        self._drop(slot)
        self._entries[slot] = _Entry(now + ttl, tuple(records), ids)
        self._records_held += len(records)
        for hub_id in ids:
            self._holders.setdefault(hub_id, set()).add(slot)
        while len(self._entries) > self._max_entries or self._records_held > self._max_records:
            self._drop(next(iter(self._entries)))

    async def evict_record(self, hub_id: str) -> Eviction:
        slots = self._holders.pop(hub_id, set())
        for slot in slots:
            self._drop(slot)
        now = self._clock()
        self._tombstones[hub_id] = now + self.policy.tombstone_s
        if len(self._tombstones) > self._max_tombstones:
            self._tombstones = {k: t for k, t in self._tombstones.items() if t > now}
            while len(self._tombstones) > self._max_tombstones:
                # Oldest first: tombstones share one lifetime, so insertion order is expiry order.
                del self._tombstones[next(iter(self._tombstones))]
        return Eviction(len(slots))

    def _drop(self, slot: tuple[str, str]) -> None:
        entry = self._entries.pop(slot, None)
        if entry is None:
            return
        self._records_held -= len(entry.records)
        for hub_id in entry.ids:
            holders = self._holders.get(hub_id)
            if holders is not None:
                holders.discard(slot)
                if not holders:
                    del self._holders[hub_id]


# -- in Redis ---------------------------------------------------------------------------------

# KEYS: the entry, then n record indexes, then n tombstones. ARGV: sealed value, TTL in ms.
_PUT = """
local n = (#KEYS - 1) / 2
for i = n + 2, #KEYS do
  if redis.call('EXISTS', KEYS[i]) == 1 then return 0 end
end
local ttl = tonumber(ARGV[2])
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('SET', KEYS[1], ARGV[1], 'PX', ttl)
for i = 2, n + 1 do
  redis.call('ZREMRANGEBYSCORE', KEYS[i], '-inf', now)
  redis.call('ZADD', KEYS[i], now + ttl, KEYS[1])
  if redis.call('PTTL', KEYS[i]) < ttl then redis.call('PEXPIRE', KEYS[i], ttl) end
end
return 1
"""

# KEYS: the record's index, its tombstone. ARGV: tombstone TTL in ms. Returns entries deleted.
_EVICT = """
local members = redis.call('ZRANGE', KEYS[1], 0, -1)
local n = 0
for _, key in ipairs(members) do n = n + redis.call('DEL', key) end
redis.call('DEL', KEYS[1])
redis.call('SET', KEYS[2], '1', 'PX', ARGV[1])
return n
"""


class RedisSourceCache(SourceCache):
    """The shared cache; see the module docstring for layout, sealing and degradation."""

    def __init__(
        self,
        link: RedisLink,
        policy: CachePolicy,
        key: Secret,
        *,
        prefix: str = DEFAULT_PREFIX,
        max_pending_evictions: int = 10_000,
    ) -> None:
        super().__init__(policy)
        self.link = link
        self.prefix = prefix
        self._cipher = CacheCipher(key)
        self._put = link.client.register_script(_PUT)
        self._evict = link.client.register_script(_EVICT)
        # Evictions Redis did not hear about; replayed before the link is up again.
        self._pending: dict[str, None] = {}
        self._max_pending = max_pending_evictions
        self._flush_needed = False
        link.add_recovery_hook(self._replay)

    @property
    def degraded(self) -> bool:
        return not self.link.up or bool(self._pending) or self._flush_needed

    def entry_key(self, source: str, key: str) -> str:
        return f"{self.prefix}:e:{source}:{self._cipher.name('e', source, key)}"

    def _record_keys(self, hub_id: str) -> tuple[str, str]:
        name = self._cipher.name("r", hub_id)
        return f"{self.prefix}:r:{name}", f"{self.prefix}:t:{name}"

    async def get(self, source: str, key: str) -> list[Record] | None:
        if self.policy.ttl(source) <= 0 or not await self._settled():
            return None
        entry = self.entry_key(source, key)

        async def read(client: aioredis.Redis) -> Any:
            return await client.get(entry)

        try:
            sealed = await self.link.run(read)
        except RedisUnavailable:
            return None
        if sealed is None:
            return None
        try:
            return decode_records(self._cipher.open(bytes(sealed), entry.encode()))
        except (InvalidTag, msgspec.DecodeError, msgspec.ValidationError) as exc:
            # A value we cannot open is dropped: another key (rotation) or tampering.
            log.warning("dropped a cache entry that did not open (%s)", type(exc).__name__)
            await self._delete(entry)
            return None

    async def put(self, source: str, key: str, records: Sequence[Record]) -> None:
        ttl_ms = int(self.policy.answer_ttl(source, records) * 1000)
        if ttl_ms <= 0 or not await self._settled():
            return
        entry = self.entry_key(source, key)
        sealed = self._cipher.seal(encode_records(list(records)), entry.encode())
        pairs = [self._record_keys(i) for i in dict.fromkeys(r.id for r in records)]
        keys = [entry, *(index for index, _ in pairs), *(tomb for _, tomb in pairs)]

        async def write(client: aioredis.Redis) -> Any:
            return await self._put(keys=keys, args=[sealed, ttl_ms], client=client)

        try:
            await self.link.run(write)
        except RedisUnavailable:
            return

    async def evict_record(self, hub_id: str) -> Eviction:
        try:
            entries = await self.link.run(lambda client: self._evict_one(client, hub_id))
        except RedisUnavailable:
            if len(self._pending) >= self._max_pending:
                self._flush_needed = True
                self._pending.clear()
            if not self._flush_needed:
                self._pending[hub_id] = None
            return Eviction(0, deferred=True)
        return Eviction(entries)

    async def _evict_one(self, client: aioredis.Redis, hub_id: str) -> int:
        index, tomb = self._record_keys(hub_id)
        tomb_ms = int(self.policy.tombstone_s * 1000)
        return int(await self._evict(keys=[index, tomb], args=[tomb_ms], client=client))

    async def _delete(self, entry: str) -> None:
        async def delete(client: aioredis.Redis) -> Any:
            return await client.delete(entry)

        with contextlib.suppress(RedisUnavailable):
            await self.link.run(delete)

    async def _settled(self) -> bool:
        """Whether Redis has heard every eviction; tries to deliver them if it has not."""
        if not self.link.up:
            return False
        if not self._pending and not self._flush_needed:
            return True
        try:
            await self.link.run(self._replay)
        except RedisUnavailable:
            return False
        return True

    async def _replay(self, client: aioredis.Redis) -> None:
        if self._flush_needed:
            # Too many evictions were missed to remember them all: drop every cached answer.
            cursor = 0
            while True:
                cursor, keys = await client.scan(cursor, match=f"{self.prefix}:[er]:*", count=500)
                if keys:
                    await client.delete(*keys)
                if cursor == 0:
                    break
            self._flush_needed = False
        for hub_id in list(self._pending):
            await self._evict_one(client, hub_id)
            del self._pending[hub_id]


def make_source_cache(
    link: RedisLink,
    policy: CachePolicy,
    key: Secret | None,
    *,
    prefix: str = DEFAULT_PREFIX,
    max_entries: int = 10_000,
) -> SourceCache:
    """The Redis cache when the link is configured (it then needs ``key``), memory otherwise."""
    if not link.configured:
        return MemorySourceCache(policy, max_entries=max_entries)
    if key is None or not key:
        raise ConfigError("the shared source cache needs an encryption key (cache key)")
    return RedisSourceCache(link, policy, key, prefix=prefix)
