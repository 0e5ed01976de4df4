"""The audit log as a Redis stream, for deployments with several hub processes.

Each entry is one stream entry with fields ``seq``, ``hash``, ``e`` (the stored line,
``hub.audit.entry``) and ``batch`` (which write attempt stored it; not part of the entry).
``append`` returns once Redis has acknowledged the XADD; how durable that is is Redis's
configuration: run it with ``appendonly yes`` and ``appendfsync always`` for an
acknowledged entry to survive a crash of the Redis host (``everysec`` risks the last second).

One chain across many writers: compare-and-append in a Lua script. A writer seals its batch after
the head it believes in (seq and hash) and sends the script; Redis runs scripts one at a time, so
the script's check "the stream's last entry is still that head" and its XADDs are atomic. If
another process appended first, the script appends nothing and returns the real head; the writer
re-seals after it and tries again. Hashes are computed by the writer because Redis's Lua has no
sha256. This needs no lock, no lease and no leader, survives a writer dying at any point, and
costs one round trip per batch (batches come from group commit, ``hub.audit.log``). A single
elected writer would avoid the rare retry but add failover; WATCH/MULTI would cost three round
trips and retry just the same.

Fail closed: a connection error, a timeout, or a stream whose head went backwards (entries lost
or deleted behind the writer's back: Redis restarted without persistence, XDEL, DEL) makes
``append`` raise ``AuditUnavailable``. After a head regression the log refuses every later append
until the hub is restarted and an operator has looked (``hub audit verify``).
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import AsyncIterator, Sequence
from datetime import datetime
from typing import Any

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from hub.audit.entry import GENESIS, RawEntry, seal
from hub.audit.log import BatchingLog, Head
from hub.errors import AuditUnavailable

log = logging.getLogger(__name__)

DEFAULT_KEY = "hub:audit"
_PAGE = 1000
# Stream ids are the Redis server's clock at XADD, entries carry the hub's clock: time hints
# given to scan() are widened by this much so clock skew between hosts loses nothing.
_SKEW_MS = 5 * 60 * 1000

_APPEND = """
local last = redis.call('XREVRANGE', KEYS[1], '+', '-', 'COUNT', 1)
local seq, hash, batch = '0', ARGV[3], ''
if #last > 0 then
  local fields = last[1][2]
  for i = 1, #fields, 2 do
    if fields[i] == 'seq' then seq = fields[i + 1] end
    if fields[i] == 'hash' then hash = fields[i + 1] end
    if fields[i] == 'batch' then batch = fields[i + 1] end
  end
end
if hash ~= ARGV[1] or seq ~= ARGV[2] then
  return {0, seq, hash, batch}
end
for i = 5, #ARGV, 3 do
  redis.call('XADD', KEYS[1], '*', 'seq', ARGV[i], 'hash', ARGV[i + 1], 'e', ARGV[i + 2],
             'batch', ARGV[4])
end
return {1, seq, hash, batch}
"""


class RedisAuditLog(BatchingLog):
    """A hash-chained audit stream; see the module docstring for its guarantees."""

    def __init__(
        self,
        client: aioredis.Redis,
        *,
        key: str = DEFAULT_KEY,
        timeout: float = 2.0,
        max_batch: int = 256,
        max_pending: int = 20_000,
        max_attempts: int = 100,
        owns_client: bool = False,
    ) -> None:
        super().__init__(max_batch=max_batch, max_pending=max_pending)
        self.client = client
        self.key = key
        self._timeout = timeout
        self._max_attempts = max_attempts
        self._owns_client = owns_client
        self._script = client.register_script(_APPEND)
        self._head: Head | None = None  # None: unknown, read it before the next write
        self._high_seq = 0  # the highest seq this writer has seen durable
        self._regressed = False

    @classmethod
    def from_url(cls, url: str, *, key: str = DEFAULT_KEY, timeout: float = 2.0) -> RedisAuditLog:
        client = aioredis.Redis.from_url(
            url, socket_timeout=timeout, socket_connect_timeout=timeout
        )
        return cls(client, key=key, timeout=timeout, owns_client=True)

    async def close(self) -> None:
        await self._drain()
        if self._owns_client:
            await self.client.aclose()

    # -- writing --

    async def _write_batch(self, bodies: Sequence[bytes]) -> list[str]:
        if self._regressed:
            raise AuditUnavailable("the audit stream lost entries; run `hub audit verify`")
        try:
            async with asyncio.timeout(self._timeout):
                return await self._compare_and_append(bodies)
        except (RedisError, OSError, TimeoutError) as exc:
            self._head = None  # the write may or may not have landed; ask Redis next time
            log.error("audit stream write failed: %s", type(exc).__name__)
            raise AuditUnavailable("the audit log could not be written") from exc

    async def _compare_and_append(self, bodies: Sequence[bytes]) -> list[str]:
        for _ in range(self._max_attempts):
            head = self._head if self._head is not None else await self._read_head()
            self._check_regression(head)
            seq, prev = head.seq, head.hash
            # Names this attempt, so a re-sent script whose first send landed is recognised.
            batch = uuid.uuid4().hex
            args: list[bytes | str | int] = [head.hash, str(head.seq), GENESIS, batch]
            hashes: list[str] = []
            for body in bodies:
                seq += 1
                line, prev = seal(body, seq, prev)
                args += (str(seq), prev, line)
                hashes.append(prev)
            result = await self._script(keys=[self.key], args=args)
            applied, remote_seq, remote_hash = int(result[0]), _text(result[1]), _text(result[2])
            if applied == 1 or (_text(result[3]) == batch and int(remote_seq) == seq):
                # The second case: an earlier send of this very attempt landed but its reply was
                # lost and the client re-sent it; the stream already ends with our batch.
                self._head = Head(seq, prev)
                self._high_seq = max(self._high_seq, seq)
                return hashes
            self._head = Head(int(remote_seq), remote_hash)
        raise AuditUnavailable("the audit stream is too contended to append")

    async def _read_head(self) -> Head:
        last = _entries(await self.client.xrevrange(self.key, "+", "-", count=1))
        if not last:
            return Head(0, GENESIS)
        fields = last[0][1]
        return Head(int(fields["seq"]), fields["hash"].decode())

    def _check_regression(self, head: Head) -> None:
        if head.seq < self._high_seq:
            self._regressed = True
            log.error(
                "audit stream %s went back from seq %d to seq %d; refusing to append",
                self.key,
                self._high_seq,
                head.seq,
            )
            raise AuditUnavailable("the audit stream lost entries; run `hub audit verify`")

    # -- reading --

    async def scan(
        self, *, since: datetime | None = None, until: datetime | None = None
    ) -> AsyncIterator[RawEntry]:
        low = "-" if since is None else str(max(0, _ms(since) - _SKEW_MS))
        high = "+" if until is None else str(_ms(until) + _SKEW_MS)
        while True:
            page = _entries(await self.client.xrange(self.key, low, high, count=_PAGE))
            for stream_id, fields in page:
                yield _raw(stream_id, fields)
            if len(page) < _PAGE:
                return
            low = "(" + page[-1][0]

    async def tail(self, n: int, *, follow: bool = False) -> AsyncIterator[RawEntry]:
        last_id = "0-0"
        if n > 0:
            recent = _entries(await self.client.xrevrange(self.key, "+", "-", count=n))
            for stream_id, fields in reversed(recent):
                yield _raw(stream_id, fields)
            if recent:
                last_id = recent[0][0]
        if last_id == "0-0":
            newest = _entries(await self.client.xrevrange(self.key, "+", "-", count=1))
            if newest:
                last_id = newest[0][0]
        while follow:
            answer: Any = await self.client.xread({self.key: last_id}, count=_PAGE, block=1000)
            for _, entries in answer or ():
                for stream_id, fields in _entries(entries):
                    yield _raw(stream_id, fields)
                    last_id = stream_id


def _text(value: object) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _bytes(value: object) -> bytes:
    return value if isinstance(value, bytes) else str(value).encode()


def _entries(reply: object) -> list[tuple[str, dict[str, bytes]]]:
    """A stream reply as (id, fields), whether the client decodes responses or not. An entry
    without fields (possible after XDEL) keeps its id and has no fields."""
    out: list[tuple[str, dict[str, bytes]]] = []
    for stream_id, fields in reply if isinstance(reply, list) else ():
        pairs = fields.items() if isinstance(fields, dict) else ()
        out.append((_text(stream_id), {_text(k): _bytes(v) for k, v in pairs}))
    return out


def _raw(stream_id: str, fields: dict[str, bytes]) -> RawEntry:
    return RawEntry(f"stream id {stream_id}", fields.get("e", b""))


def _ms(when: datetime) -> int:
    return int(when.timestamp() * 1000)
