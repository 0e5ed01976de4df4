"""The trail as one auditor may read it: every entry in the reader's scope over a time window.

Built on ``hub.audit.query_events`` as it is (the scope rule and the trimming ``auditEvents``
applies, nothing of its own), paged newest first in windows of its largest page: each page
ends where the previous one's oldest entry began. Entries that share that microsecond are
fetched again and dropped by their ``seq``.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from hub.audit import AuditLog, AuditQuery, SealedEntry, query_events
from hub.audit.query import MAX_LIMIT
from hub.errors import QueryRejected

# Bounded: a review reads at most this many entries (a year of a busy agency is ~10^6); a
# window that holds more is refused, never read in part.
MAX_ENTRIES = 2_000_000


async def scoped_entries(
    log: AuditLog,
    reader: str,
    since: datetime | None,
    until: datetime,
    *,
    record_id: str | None = None,
    max_entries: int = MAX_ENTRIES,
) -> list[SealedEntry]:
    """Entries in ``[since, until)`` (that returned ``record_id``, if given) that the auditor
    of ``reader`` may read, trimmed to the reader's part as ``auditEvents`` trims them, oldest
    first.

    All of them or none: past ``max_entries`` it raises ``QueryRejected`` rather than answer
    with the newest part only. A review that read part of its window would report fewer
    findings than there are, and a notice would miss partners it must reach."""
    found: dict[int, SealedEntry] = {}
    end = until
    while True:
        page = await query_events(
            log, reader, AuditQuery(since=since, until=end, record_id=record_id, limit=MAX_LIMIT)
        )
        fresh = [e for e in page if e.seq not in found]
        if len(found) + len(fresh) > max_entries:
            raise QueryRejected(
                f"more than {max_entries:,} audit entries in this window: ask for a shorter one"
            )
        for entry in fresh:
            found[entry.seq] = entry
        if len(page) < MAX_LIMIT or not fresh:
            break
        # Up to and including the oldest entry's microsecond: its neighbours in that
        # microsecond are fetched again and dropped above.
        end = datetime.fromisoformat(page[-1].at) + timedelta(microseconds=1)
    return sorted(found.values(), key=lambda e: e.seq)
