"""Checking the hash chain, and naming the first entry that was tampered with.

An intact log is entries seq 1, 2, 3, ... each with ``prev`` equal to the stored hash of the one
before (``GENESIS`` for the first) and a stored hash that matches its content
(``hub.audit.entry``). ``verify_entries`` walks the log once, accepts entries while that holds, and
at the first entry that breaks it looks at what follows to say what happened:

- ``CHANGED``   an entry's content no longer matches its hash, or it was re-hashed after a change
                (then the next entry's ``prev`` no longer matches it, and the changed one is named);
- ``REMOVED``   entries are missing: named by the first missing seq, found before the entry shown;
- ``INSERTED``  an entry that does not belong: without it the chain joins up again (this includes a
                forged entry that copies a real one's seq and link: the real one is the one its
                successor points to);
- ``REORDERED`` a genuine entry in the wrong place: the entry that should be there comes later, or
                the displaced entry's own neighbours in the chain are found elsewhere.

What a chain alone cannot show: entries removed from, or a re-hashed change to, the very end of
the log, and an entry appended after the end by someone able to compute hashes. ``head`` (a seq and
hash recorded elsewhere, e.g. from an earlier ``verify`` or a monitoring system) closes that gap.
"""

from __future__ import annotations

import enum
import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from hub.audit.entry import GENESIS, LineFacts, RawEntry, line_facts
from hub.audit.file_log import FILENAME
from hub.audit.log import AuditLog


class FaultKind(enum.StrEnum):
    CHANGED = "CHANGED"
    REMOVED = "REMOVED"
    INSERTED = "INSERTED"
    REORDERED = "REORDERED"


@dataclass(frozen=True, slots=True)
class Fault:
    kind: FaultKind
    position: str  # where the named entry is ("line 12"); for REMOVED, the entry after the gap
    seq: int | None  # the named entry's seq; for REMOVED, the first missing seq
    detail: str


@dataclass(frozen=True, slots=True)
class VerifyReport:
    ok: bool
    entries: int  # lines read, including any that are not entries
    head_seq: int  # the last entry accepted before the fault (or the last entry)
    head_hash: str
    fault: Fault | None = None

    def describe(self) -> str:
        if self.fault is None:
            return f"ok: {self.entries} entries, chain intact, head seq {self.head_seq}"
        f = self.fault
        return f"{f.kind}: {f.detail} ({f.position}); {self.entries} lines read"


@dataclass(frozen=True, slots=True)
class _Seen:
    position: str
    facts: LineFacts

    @property
    def seq(self) -> int | None:
        return self.facts.seq

    @property
    def prev(self) -> str | None:
        return self.facts.prev

    @property
    def hash(self) -> str | None:
        return self.facts.stored_hash


class ChainVerifier:
    """Incremental form of ``verify_entries`` for logs read in pieces: ``feed`` then ``finish``."""

    def __init__(self, head: tuple[int, str] | None = None) -> None:
        self._head = head
        self._at_head: _Seen | None = None
        self._count = 0
        self._seq = 1  # expected next seq
        self._prev = GENESIS  # expected next prev
        self._last: _Seen | None = None
        self._suspect: _Seen | None = None
        self._next: _Seen | None = None
        self._expected_at: str | None = None
        self._successor = False
        self._predecessor = False
        self._duplicate = False

    def feed(self, raw: RawEntry) -> None:
        self._count += 1
        seen = _Seen(raw.position, line_facts(raw.line))
        suspect = self._suspect
        if suspect is None:
            if self._fits(seen):
                if self._head is not None and seen.seq == self._head[0]:
                    self._at_head = seen
                self._last = seen
                self._seq += 1
                self._prev = seen.hash or ""
            else:
                self._suspect = seen
            return
        # After the first break only facts about the suspect are gathered; see finish().
        if self._next is None:
            self._next = seen
        if self._expected_at is None and self._fits(seen):
            self._expected_at = seen.position
        if suspect.hash is not None:
            self._successor = self._successor or seen.prev == suspect.hash
            self._duplicate = self._duplicate or seen.hash == suspect.hash
        if suspect.prev is not None:
            self._predecessor = self._predecessor or seen.hash == suspect.prev

    def finish(self) -> VerifyReport:
        suspect = self._suspect
        fault = self._classify(suspect) if suspect is not None else self._check_head()
        return VerifyReport(
            ok=fault is None,
            entries=self._count,
            head_seq=self._seq - 1,
            head_hash=self._prev,
            fault=fault,
        )

    def _fits(self, seen: _Seen) -> bool:
        return seen.facts.hash_ok and seen.seq == self._seq and seen.prev == self._prev

    def _classify(self, e: _Seen) -> Fault:
        s, nxt, last = self._seq, self._next, self._last
        if nxt is not None and self._fits(nxt):
            displaced = (
                e.facts.hash_ok
                and e.seq is not None
                and e.seq > s
                and not self._duplicate
                and (e.prev == nxt.hash or self._successor or self._predecessor)
            )
            if displaced:
                return Fault(
                    FaultKind.REORDERED,
                    e.position,
                    e.seq,
                    f"entry seq {e.seq} is out of order: seq {s} should come before it "
                    f"and is at {nxt.position}",
                )
            return Fault(
                FaultKind.INSERTED,
                e.position,
                e.seq,
                f"the entry at {e.position} does not belong to the chain; without it "
                f"seq {s - 1} joins seq {s}",
            )
        if e.seq == s and e.prev == self._prev:
            return Fault(
                FaultKind.CHANGED, e.position, e.seq, f"entry seq {s} does not match its hash"
            )
        if last is not None and e.seq == last.seq and e.prev == last.prev:
            # Two entries claim the same place; the genuine one is the one its successor names.
            if nxt is not None and nxt.prev == e.hash:
                return Fault(
                    FaultKind.INSERTED,
                    last.position,
                    last.seq,
                    f"two entries claim seq {last.seq}; the one at {last.position} "
                    "is not the one the chain continues from",
                )
            return Fault(
                FaultKind.INSERTED,
                e.position,
                e.seq,
                f"two entries claim seq {e.seq}; the one at {e.position} is not the "
                "one the chain continues from",
            )
        if e.seq == s and e.facts.hash_ok:
            if last is None:
                return Fault(
                    FaultKind.CHANGED, e.position, e.seq, "the first entry does not start the chain"
                )
            return Fault(
                FaultKind.CHANGED,
                last.position,
                last.seq,
                f"entry seq {last.seq} was changed and re-hashed: entry seq {s} "
                "records a different hash for it",
            )
        if self._expected_at is not None:
            return Fault(
                FaultKind.REORDERED,
                e.position,
                e.seq,
                f"entry seq {e.seq} is out of order: seq {s} should be here and is at "
                f"{self._expected_at}",
            )
        if e.seq is not None and e.seq > s:
            missing = f"seq {s}" if e.seq == s + 1 else f"seq {s} to {e.seq - 1}"
            return Fault(
                FaultKind.REMOVED, e.position, s, f"{missing} missing before entry seq {e.seq}"
            )
        if e.seq is None:
            return Fault(
                FaultKind.CHANGED,
                e.position,
                None,
                f"the line at {e.position} is not an audit entry",
            )
        if not e.facts.hash_ok:
            return Fault(
                FaultKind.CHANGED,
                e.position,
                e.seq,
                f"entry seq {e.seq} does not match its hash and breaks the chain",
            )
        return Fault(
            FaultKind.INSERTED,
            e.position,
            e.seq,
            f"entry seq {e.seq} at {e.position} does not belong to the chain",
        )

    def _check_head(self) -> Fault | None:
        if self._head is None:
            return None
        last_seq = self._seq - 1
        head_seq, head_hash = self._head
        if last_seq < head_seq:
            return Fault(
                FaultKind.REMOVED,
                "end of log",
                last_seq + 1,
                f"the log ends at seq {last_seq}; seq {head_seq} was recorded as written",
            )
        at_head = self._at_head
        if at_head is not None and at_head.hash != head_hash:
            return Fault(
                FaultKind.CHANGED,
                at_head.position,
                head_seq,
                f"entry seq {head_seq} differs from the recorded head",
            )
        return None


def verify_entries(
    entries: Iterable[RawEntry], *, head: tuple[int, str] | None = None
) -> VerifyReport:
    """Check a whole log, oldest entry first; name the first tampered entry."""
    verifier = ChainVerifier(head)
    for raw in entries:
        verifier.feed(raw)
    return verifier.finish()


async def verify_log(log: AuditLog, *, head: tuple[int, str] | None = None) -> VerifyReport:
    verifier = ChainVerifier(head)
    async for raw in log.scan():
        verifier.feed(raw)
    return verifier.finish()


def verify_file(
    path: str | os.PathLike[str], *, head: tuple[int, str] | None = None
) -> VerifyReport:
    """Check a JSON-lines audit file (or a directory holding ``audit.jsonl``)."""
    return verify_entries(file_entries(path), head=head)


def file_entries(path: str | os.PathLike[str]) -> Iterator[RawEntry]:
    """Every complete line of an audit file, numbered from 1. An unterminated last line is
    skipped: it is either being written now or a torn write the writer will set aside."""
    target = Path(path)
    if target.is_dir():
        target = target / FILENAME
    with target.open("rb") as f:
        for lineno, line in enumerate(f, start=1):
            if line.endswith(b"\n"):
                yield RawEntry(f"line {lineno}", line[:-1])
