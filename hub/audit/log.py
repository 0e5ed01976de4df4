"""The audit log contract, and group commit shared by the file and Redis logs.

``AuditLog.append`` returns only once the entry is durable (by the log's definition, documented
on each log) and raises ``AuditUnavailable`` otherwise; the caller then sends no data.

Group commit: concurrent ``append`` calls queue their entries; one flusher task at a time takes
everything queued (up to ``max_batch``), chains it after the last durable entry and writes it in
one call (one write + one fsync, or one Redis script). Each caller is released only when the
batch holding its entry is durable. This serializes the chain exactly like a lock around each
append would, but under load N waiting requests share one fsync instead of queueing for N.
The flusher owns the write: a caller that is cancelled while waiting does not cancel it, so an
entry that was handed over is either written or reported failed, never half-written by a second
concurrent writer.
"""

from __future__ import annotations

import asyncio
import logging
from abc import ABC, abstractmethod
from collections.abc import AsyncIterator, Sequence
from datetime import datetime
from typing import Protocol, runtime_checkable

from hub.audit.entry import AuditEntry, RawEntry, canonical_body
from hub.errors import AuditUnavailable

log = logging.getLogger(__name__)


@runtime_checkable
class AuditLog(Protocol):
    """An append-only, hash-chained store of audit entries."""

    async def append(self, entry: AuditEntry) -> str:
        """Chain and store ``entry``; return its hash once durable. ``AuditUnavailable`` if not."""
        ...

    def scan(
        self, *, since: datetime | None = None, until: datetime | None = None
    ) -> AsyncIterator[RawEntry]:
        """Stored lines, oldest first. ``since``/``until`` are hints a log may use to skip ahead;
        callers still filter on the entry's own time."""
        ...

    def tail(self, n: int, *, follow: bool = False) -> AsyncIterator[RawEntry]:
        """The last ``n`` stored lines, then (``follow``) each new one as it is stored."""
        ...

    async def close(self) -> None: ...


class Head:
    """The last durable entry: its seq and hash."""

    __slots__ = ("hash", "seq")

    def __init__(self, seq: int, entry_hash: str) -> None:
        self.seq = seq
        self.hash = entry_hash


class BatchingLog(ABC):
    """Group commit over ``_write_batch``; subclasses store one batch of canonical bodies."""

    def __init__(self, *, max_batch: int, max_pending: int) -> None:
        if max_batch < 1 or max_pending < 1:
            raise ValueError("max_batch and max_pending must be positive")
        self._max_batch = max_batch
        self._max_pending = max_pending
        self._pending: list[tuple[bytes, asyncio.Future[str]]] = []
        self._flusher: asyncio.Task[None] | None = None
        self._closed = False

    @abstractmethod
    async def _write_batch(self, bodies: Sequence[bytes]) -> list[str]:
        """Chain and durably store ``bodies`` in order; return their hashes. Raise on failure;
        on failure nothing of the batch may count as stored in the chain state."""

    async def append(self, entry: AuditEntry) -> str:
        if self._closed:
            raise AuditUnavailable("the audit log is closed")
        if len(self._pending) >= self._max_pending:
            # Bounded: a log that cannot keep up refuses rather than queueing without limit.
            raise AuditUnavailable("the audit log is overloaded")
        body = canonical_body(entry)
        loop = asyncio.get_running_loop()
        done: asyncio.Future[str] = loop.create_future()
        # Retrieve the outcome even if the caller was cancelled and no longer awaits it.
        done.add_done_callback(_consume)
        self._pending.append((body, done))
        if self._flusher is None or self._flusher.done():
            self._flusher = loop.create_task(self._flush())
        return await asyncio.shield(done)

    async def _flush(self) -> None:
        while self._pending:
            batch = self._pending[: self._max_batch]
            del self._pending[: self._max_batch]
            try:
                hashes = await self._write_batch([body for body, _ in batch])
            except asyncio.CancelledError:
                # The loop is shutting down: whoever still waits must hear "not stored".
                for _, done in batch + self._pending:
                    if not done.done():
                        done.set_exception(AuditUnavailable("the audit log was shut down"))
                self._pending.clear()
                raise
            except AuditUnavailable as exc:
                for _, done in batch:
                    if not done.done():
                        done.set_exception(AuditUnavailable(exc.message))
            except Exception as exc:
                log.error("audit write failed: %s", type(exc).__name__)
                for _, done in batch:
                    if not done.done():
                        done.set_exception(AuditUnavailable("the audit log could not be written"))
            else:
                for (_, done), entry_hash in zip(batch, hashes, strict=True):
                    if not done.done():
                        done.set_result(entry_hash)

    async def _drain(self) -> None:
        """Wait for queued entries to be written (or fail) and stop accepting new ones."""
        self._closed = True
        flusher = self._flusher
        if flusher is not None and not flusher.done():
            await asyncio.shield(flusher)


def _consume(done: asyncio.Future[str]) -> None:
    if not done.cancelled():
        done.exception()
