"""The default audit log: one JSON-lines file, hash-chained, fsynced before ``append`` returns.

Layout: ``<directory>/audit.jsonl`` (directory default ``./var/audit`` under the working directory
at construction), one entry per line (``hub.audit.entry``). One file, not one per day: the chain
is one sequence and ``hub audit verify`` checks one file; rotate by moving the file away while
the hub is stopped (the next start begins a new chain at seq 1; keep the old file's last hash
with it). Directory mode 0700, file mode 0600: entries carry CJI.

Durability (``fsync``):

- ``"always"`` (default): ``append`` returns after ``fdatasync`` of the write holding the entry.
  An acknowledged entry survives a process kill, an OS crash and power loss. Concurrent appends
  share one write and one fdatasync (group commit, ``hub.audit.log``), so the cost under load
  is one sync per batch, not per request.
- ``"never"``: ``append`` returns after ``write``; the OS flushes later. Survives a kill of the
  hub process, not an OS crash or power loss. For benchmarks and development. The write is
  made on the event loop's thread (page cache, microseconds); with ``"always"`` the write and
  sync run in a worker thread so the loop keeps serving while the disk syncs.

One writer: the file is locked (``flock``) while open, so a second hub process on the same
directory fails with ``AuditUnavailable`` instead of forking the chain; run several hub workers
with the Redis log. On open the writer continues the chain from the last complete line. A torn
last line (a write cut short by a crash; never acknowledged, since acknowledgement follows the
sync) is moved to ``audit.jsonl.torn-<time>`` beside the log and cut off.

A failed write or sync is cut back to the last complete entry and reported as
``AuditUnavailable``; if even that fails the log refuses every later append until restarted.
"""

from __future__ import annotations

import asyncio
import fcntl
import logging
import os
import time
from collections import deque
from collections.abc import AsyncIterator, Sequence
from datetime import datetime
from pathlib import Path
from typing import Literal

from hub.audit.entry import GENESIS, RawEntry, line_facts, seal
from hub.audit.log import BatchingLog, Head
from hub.errors import AuditUnavailable

log = logging.getLogger(__name__)

FsyncPolicy = Literal["always", "never"]
DEFAULT_DIRECTORY = Path("var") / "audit"
FILENAME = "audit.jsonl"
_BLOCK = 64 * 1024
_READ_CHUNK = 1024 * 1024

_datasync = getattr(os, "fdatasync", os.fsync)


class FileAuditLog(BatchingLog):
    """A hash-chained JSON-lines audit file; see the module docstring for its guarantees."""

    def __init__(
        self,
        directory: str | os.PathLike[str] | None = None,
        *,
        fsync: FsyncPolicy = "always",
        max_batch: int = 512,
        max_pending: int = 20_000,
        poll_interval: float = 0.2,
    ) -> None:
        super().__init__(max_batch=max_batch, max_pending=max_pending)
        if fsync not in ("always", "never"):
            raise ValueError(f"fsync policy must be 'always' or 'never', not {fsync!r}")
        base = Path(directory) if directory is not None else DEFAULT_DIRECTORY
        self.directory = base.resolve()
        self.path = self.directory / FILENAME
        self.fsync: FsyncPolicy = fsync
        self._poll_interval = poll_interval
        self._fd: int | None = None
        self._head = Head(0, GENESIS)
        self._broken = False

    async def __aenter__(self) -> FileAuditLog:
        await self.open()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def open(self) -> None:
        """Lock the file and find the chain's head. Optional: the first append does it too."""
        if self._fd is None:
            await asyncio.to_thread(self._open_sync)

    async def close(self) -> None:
        await self._drain()
        fd, self._fd = self._fd, None
        if fd is not None:
            await asyncio.to_thread(os.close, fd)

    @property
    def head(self) -> tuple[int, str]:
        """(seq, hash) of the last durable entry; (0, GENESIS) for an empty log."""
        return self._head.seq, self._head.hash

    # -- writing (only ever on the flusher's thread call, one at a time) --

    async def _write_batch(self, bodies: Sequence[bytes]) -> list[str]:
        if self._fd is None:
            await asyncio.to_thread(self._open_sync)
        if self.fsync == "never":
            # A write into the page cache takes microseconds; a hop to a thread costs 50-150.
            return self._write_sync(bodies)
        return await asyncio.to_thread(self._write_sync, bodies)

    def _write_sync(self, bodies: Sequence[bytes]) -> list[str]:
        if self._broken:
            raise AuditUnavailable("the audit log is damaged; restart the hub")
        if self._fd is None:
            self._open_sync()
        assert self._fd is not None
        fd = self._fd
        seq, prev = self._head.seq, self._head.hash
        parts: list[bytes] = []
        hashes: list[str] = []
        for body in bodies:
            seq += 1
            line, prev = seal(body, seq, prev)
            parts += (line, b"\n")
            hashes.append(prev)
        data = memoryview(b"".join(parts))
        size_before = os.fstat(fd).st_size
        try:
            while data:
                written = os.write(fd, data)
                data = data[written:]
            if self.fsync == "always":
                _datasync(fd)
        except OSError as exc:
            log.error("audit write failed: %s", exc.strerror or type(exc).__name__)
            try:
                os.ftruncate(fd, size_before)
                _datasync(fd)
            except OSError:
                self._broken = True
            raise AuditUnavailable("the audit log could not be written") from exc
        self._head = Head(seq, prev)
        return hashes

    def _open_sync(self) -> None:
        try:
            self.directory.mkdir(mode=0o700, parents=True, exist_ok=True)
            created = not self.path.exists()
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_APPEND, 0o600)
        except OSError as exc:
            # The path is for the operator's log; clients see the error's code and a message
            # that says nothing about the server.
            log.error("cannot open the audit log at %s: %s", self.path, exc.strerror)
            raise AuditUnavailable("the audit log cannot be opened") from exc
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError as exc:
                log.error("the audit log at %s is locked by another writer", self.path)
                raise AuditUnavailable("the audit log is in use by another writer") from exc
            if created:
                # The new file's directory entry must be durable too, or a crash loses the file.
                dir_fd = os.open(self.directory, os.O_RDONLY)
                try:
                    os.fsync(dir_fd)
                finally:
                    os.close(dir_fd)
            self._head = self._recover(fd)
        except BaseException:
            os.close(fd)
            raise
        self._fd = fd

    def _recover(self, fd: int) -> Head:
        size = os.fstat(fd).st_size
        if size == 0:
            return Head(0, GENESIS)
        tail_start = _last_line_start(fd, size, include_unterminated=True)
        if os.pread(fd, 1, size - 1) != b"\n":
            torn = os.pread(fd, size - tail_start, tail_start)
            keep = self.path.with_name(f"{FILENAME}.torn-{time.strftime('%Y%m%dT%H%M%S')}")
            keep.write_bytes(torn)
            keep.chmod(0o600)
            os.ftruncate(fd, tail_start)
            _datasync(fd)
            log.warning("audit log had a torn last line (%d bytes); kept in %s", len(torn), keep)
            size = tail_start
            if size == 0:
                return Head(0, GENESIS)
        start = _last_line_start(fd, size, include_unterminated=False)
        facts = line_facts(os.pread(fd, size - start, start).rstrip(b"\n"))
        if facts.seq is None or facts.stored_hash is None:
            raise AuditUnavailable("the last audit entry is unreadable; run `hub audit verify`")
        if not facts.hash_ok:
            log.error("the last audit entry does not match its hash; run `hub audit verify`")
        return Head(facts.seq, facts.stored_hash)

    # -- reading --

    async def scan(
        self, *, since: datetime | None = None, until: datetime | None = None
    ) -> AsyncIterator[RawEntry]:
        offset, lineno = 0, 0
        while True:
            lines, offset = await asyncio.to_thread(_read_lines, self.path, offset)
            if not lines:
                return
            for line in lines:
                lineno += 1
                yield RawEntry(f"line {lineno}", line)

    async def tail(self, n: int, *, follow: bool = False) -> AsyncIterator[RawEntry]:
        last, offset = await asyncio.to_thread(_last_lines, self.path, n)
        for line_offset, line in last:
            yield RawEntry(f"byte {line_offset}", line)
        while follow:
            lines, new_offset = await asyncio.to_thread(_read_lines, self.path, offset)
            for line in lines:
                yield RawEntry(f"byte {offset}", line)
                offset += len(line) + 1
            offset = new_offset
            if not lines:
                await asyncio.sleep(self._poll_interval)


def _last_line_start(fd: int, end: int, *, include_unterminated: bool) -> int:
    """Offset where the last line ending at ``end`` starts (0 if it is the first line)."""
    # Skip the newline that ends the last complete line unless we look for a torn tail.
    search_end = end if include_unterminated else end - 1
    pos = search_end
    while pos > 0:
        start = max(0, pos - _BLOCK)
        block = os.pread(fd, pos - start, start)
        cut = block.rfind(b"\n")
        if cut >= 0:
            return start + cut + 1
        pos = start
    return 0


def _read_lines(path: Path, offset: int) -> tuple[list[bytes], int]:
    """Complete lines from ``offset`` (up to about 1 MiB of them) and the offset after them."""
    try:
        with path.open("rb") as f:
            f.seek(offset)
            chunk = f.read(_READ_CHUNK)
            if not chunk:
                return [], offset
            cut = chunk.rfind(b"\n")
            while cut < 0:
                # One line longer than the chunk: keep reading until it ends (or the file does).
                more = f.read(_READ_CHUNK)
                if not more:
                    return [], offset  # an unterminated last line is still being written
                chunk += more
                cut = chunk.rfind(b"\n")
    except FileNotFoundError:
        return [], offset
    complete = chunk[: cut + 1]
    return complete.split(b"\n")[:-1], offset + len(complete)


def _last_lines(path: Path, n: int) -> tuple[list[tuple[int, bytes]], int]:
    """The last ``n`` complete lines with their offsets, and the end offset of the last one."""
    try:
        f = path.open("rb")
    except FileNotFoundError:
        return [], 0
    with f:
        end = f.seek(0, os.SEEK_END)
        f.seek(0)
        fd = f.fileno()
        if end and os.pread(fd, 1, end - 1) != b"\n":
            end = _last_line_start(fd, end, include_unterminated=True)
        found: deque[tuple[int, bytes]] = deque()
        pos = end
        while pos > 0 and len(found) < n:
            start = _last_line_start(fd, pos, include_unterminated=False)
            line = os.pread(fd, pos - start - 1, start)
            if line:
                found.appendleft((start, line))
            pos = start
        return list(found), end
