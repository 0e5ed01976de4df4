"""Reading the trail: the auditor's filtered, agency-scoped query, and the operator's tail.

Scope: an auditor of agency A sees an entry when its subject works for A (the whole entry), or
when the operation reached A: a record A owns came back (in full or as a pointer), or one of A's
sources was asked (OK, NO_HIT, TIMEOUT or ERROR; an answer from the hub's cache counts as asked:
it is A's system's answer to the same question). In those cases A's own systems saw the question
(or A's record answered it), so telling A's auditor who asked, why and with which criteria
discloses nothing A's systems had not seen. A source that was never contacted puts nothing in
scope: DENIED (policy forbade asking it, e.g. an in-state-only ALPR law), SKIPPED (it holds no kind
of record asked for), and ERROR without a latency (a circuit breaker open: failed fast, not called).
Otherwise a question A's systems never received would reach A's auditor, criteria and case included.

An entry about another agency's user is trimmed to A's part: only A's records, only A's sources
that were contacted, no client address, no withheld-field list (it cannot be told apart per
owner), and a stream's payload entry numbered 1 whatever its place (the payloads before it may
have held other agencies' hits). Who searched, for what purpose and case, with which criteria,
stays: that is what A needs to know about an access to its data. Filters are matched against
the trimmed entry, never the stored one: ``recordId`` or ``agency`` cannot confirm what another
agency's user received from a third agency. A trimmed entry no longer matches its hash; its
``seq`` and ``hash`` name the stored entry for ``hub audit verify``.

Reading the trail is itself an access: the app wraps ``query_events`` in an audited operation.

A log that has indexes (``IndexedLog``: the PostgreSQL log) gets the filters pushed down to it;
the same scope, trim and filter checks then run on what it returns, and the tests hold both paths
to the same answers on the same entries.
"""

from __future__ import annotations

from collections import deque
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Protocol, runtime_checkable

import msgspec

from hub.audit.entry import AuditEntry, SealedEntry, SourceCall, decode_entry
from hub.audit.log import AuditLog

MAX_LIMIT = 1000


@dataclass(frozen=True, slots=True)
class AuditQuery:
    """Filters; all given ones must match. Times are compared with the entry's ``at``."""

    user: str | None = None
    agency: str | None = None  # the subject's agency, or the owner of a returned record
    record_id: str | None = None  # a hub id among the records returned
    since: datetime | None = None  # inclusive
    until: datetime | None = None  # exclusive
    purpose: str | None = None
    limit: int = 100  # at most MAX_LIMIT
    case_number: str | None = None


@runtime_checkable
class IndexedLog(Protocol):
    """A log that answers ``query_events`` from its own indexes (``PostgresAuditLog``). It must
    return exactly the stored lines the scan below would keep, newest first, at most ``limit``."""

    async def select_events(
        self, reader_agency: str, query: AuditQuery, limit: int
    ) -> list[bytes]: ...


async def query_events(
    log: AuditLog, reader_agency: str, query: AuditQuery | None = None
) -> list[SealedEntry]:
    """Entries matching ``query`` that the auditor of ``reader_agency`` may see, newest first,
    each trimmed to the reader's part (the filters match the trimmed entry)."""
    q = query or AuditQuery()
    limit = max(0, min(q.limit, MAX_LIMIT))
    if limit == 0:
        return []
    since = iso_utc(q.since) if q.since is not None else None
    until = iso_utc(q.until) if q.until is not None else None
    if isinstance(log, IndexedLog):
        # The filters pushed down to the log's indexes; the same checks then run on what it
        # returns, so the answer is the scan's by construction and never more than it.
        chosen: list[SealedEntry] = []
        for line in await log.select_events(reader_agency, q, limit):
            entry = decode_entry(line)
            if _in_scope(entry, reader_agency):
                entry = _trim(entry, reader_agency)
                if _matches(entry, q, since, until):
                    chosen.append(entry)
        return chosen
    # Cheap byte tests before decoding, each a necessary condition: an entry in scope names the
    # reader's ORI (as its agency, a record's owner or a source's agency); a trimmed entry that
    # matches names the user, the record id and the agency asked for. Each value as it appears
    # inside a JSON string in the line.
    needles = [
        msgspec.json.encode(v)[1:-1]
        for v in (reader_agency, q.user, q.record_id, q.agency, q.case_number)
        if v
    ]
    found: deque[SealedEntry] = deque(maxlen=limit)
    async for raw in log.scan(since=q.since, until=q.until):
        if not all(needle in raw.line for needle in needles):
            continue
        try:
            entry = decode_entry(raw.line)
        except msgspec.DecodeError:
            continue  # not an entry; `hub audit verify` reports it
        if not _in_scope(entry, reader_agency):
            continue
        # Trim first, then filter: a filter must not match on a part the reader cannot see.
        entry = _trim(entry, reader_agency)
        if _matches(entry, q, since, until):
            found.append(entry)
    return list(reversed(found))


# Statuses of a source that was asked: its system received the question (or the hub answered
# from that system's cached answer to the same request). DENIED and SKIPPED were never asked.
_ASKED = frozenset({"OK", "NO_HIT", "TIMEOUT", "ERROR"})


def _contacted(source: SourceCall) -> bool:
    if source.status not in _ASKED:
        return False
    # An open circuit breaker fails the source fast, without calling it: ERROR, no latency.
    # Note: hub.audit.tracing fills a missing latency with the source span's duration, so in
    # entries it writes such an ERROR carries a latency and still counts as asked.
    return not (source.status == "ERROR" and source.latency_ms is None)


def scope_agencies(entry: AuditEntry) -> set[str]:
    """Every agency whose auditor may see ``entry`` (``_in_scope`` for each of them)."""
    return (
        {entry.agency}
        | {r.owner for r in entry.records}
        | {s.agency for s in entry.sources if _contacted(s)}
    )


def _in_scope(entry: SealedEntry, reader: str) -> bool:
    return (
        entry.agency == reader
        or any(r.owner == reader for r in entry.records)
        or any(s.agency == reader and _contacted(s) for s in entry.sources)
    )


def _matches(entry: SealedEntry, q: AuditQuery, since: str | None, until: str | None) -> bool:
    return (
        (q.user is None or entry.user == q.user)
        and (q.purpose is None or entry.purpose == q.purpose)
        and (q.case_number is None or entry.case_number == q.case_number)
        and (
            q.agency is None
            or entry.agency == q.agency
            or any(r.owner == q.agency for r in entry.records)
        )
        and (q.record_id is None or any(r.id == q.record_id for r in entry.records))
        and (since is None or entry.at >= since)
        and (until is None or entry.at < until)
    )


def _trim(entry: SealedEntry, reader: str) -> SealedEntry:
    """The reader's part of an entry in its scope: whole when the subject is the reader's own."""
    if entry.agency == reader:
        return entry
    return msgspec.structs.replace(
        entry,
        records=tuple(r for r in entry.records if r.owner == reader),
        sources=tuple(s for s in entry.sources if s.agency == reader and _contacted(s)),
        withheld=(),
        client_address=None,
        # A payload entry says it is one, not how many payloads (other agencies' hits, maybe)
        # left before it.
        part=min(entry.part, 1),
    )


def iso_utc(when: datetime) -> str:
    # Entries store UTC with microseconds and "+00:00", so ISO strings compare as times.
    aware = when if when.tzinfo is not None else when.replace(tzinfo=UTC)
    return aware.astimezone(UTC).isoformat(timespec="microseconds")


async def tail(log: AuditLog, n: int = 20, *, follow: bool = False) -> AsyncIterator[SealedEntry]:
    """The last ``n`` entries, oldest first, then (``follow``) each new one as it is written.
    Lines that are not entries are skipped (``hub audit verify`` names them)."""
    async for raw in log.tail(n, follow=follow):
        try:
            yield decode_entry(raw.line)
        except msgspec.DecodeError:
            continue


def summarize(entry: SealedEntry) -> str:
    """One line for an operator's terminal, without CJI: no criteria, no record ids."""
    failed = sum(1 for s in entry.sources if s.status not in ("OK", "NO_HIT"))
    parts = [
        f"#{entry.seq}", entry.at, f"{entry.user}@{entry.agency}",
        f"purpose={entry.purpose or '-'}", f"op={entry.operation}", entry.outcome,
        f"sources={len(entry.sources)}" + (f" failed={failed}" if failed else ""),
        f"records={len(entry.records)}", f"{entry.duration_ms:.1f}ms", f"trace={entry.trace_id}",
    ]  # fmt: skip
    if entry.error_code:
        parts.insert(6, entry.error_code)
    if entry.part:
        parts.insert(5, f"part={entry.part}")
    return " ".join(parts)
