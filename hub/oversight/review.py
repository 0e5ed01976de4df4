"""Review reports: what an agency's auditor should look at in its part of the audit trail.

A review reads only the entries the auditor may read (``hub.oversight.trail``: the scope and
trimming of ``auditEvents``), so a finding can tell the auditor nothing the entries behind it do
not: "one subject searched by many users" computed over agency A's view counts A's users, and
other agencies' users only where they were shown A's records. Each finding links to its entries
by ``seq`` and ``hash`` (``hub audit verify`` checks them).

Findings (``FindingKind``):

- ``MISSING_CASE_NUMBER``: a search for a purpose that needs a case number
  (``hub.access.purposes``: ``case_number_required``) without one.
- ``PURPOSE_OUTSIDE_AGREEMENT``: another agency's records read in full for a purpose that no
  agreement between the two agencies (in force that day) names.
- ``AFTER_AGREEMENT_ENDED``: another agency's records read in full after every agreement
  between the two agencies had ended (``until:``).
- ``OUT_OF_STATE_ALPR``: an ALPR system searched by a user of another state, when no agreement
  in force shares that owner's plate reads with the user's agency for that purpose. (Every
  search under such an agreement is out of state by design: flagging those would bury misuse
  under lawful use.)
- ``UNUSUAL_VOLUME``: a user's searches in one day far above the user's own history, or a
  user's total in the window far above the peers of the same agency and role; robust z-score
  ``0.6745 (x - median) / MAD`` (Iglewicz and Hoaglin: above 3.5 is an outlier). Only for the
  reader's own users: for others the reader sees a part of their activity, not all of it.
- ``MANY_USERS_ONE_SUBJECT``: one person or vehicle record returned to many distinct users.
"""

from __future__ import annotations

import asyncio
import enum
import math
import statistics
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta

from hub.access.loader import AgreementFacts, PolicyData
from hub.access.purposes import PURPOSES
from hub.audit import AuditLog, SealedEntry, SourceCall
from hub.audit.entry import whole_operations
from hub.errors import InvalidId
from hub.model import EntityKind, SourceKind, parse_id
from hub.oversight.trail import scoped_entries

# Operations that read the trail itself: never findings (reading it is the auditor's job).
REVIEW_OPERATIONS = frozenset({"auditEvents", "auditReview"})
_ASKED = frozenset({"OK", "NO_HIT", "TIMEOUT", "ERROR"})
_NO_DATA = frozenset({"REFUSED", "ERROR", "CANCELLED"})
_SUBJECT_KINDS = frozenset({EntityKind.PERSON, EntityKind.VEHICLE})


class FindingKind(enum.StrEnum):
    MISSING_CASE_NUMBER = "MISSING_CASE_NUMBER"
    PURPOSE_OUTSIDE_AGREEMENT = "PURPOSE_OUTSIDE_AGREEMENT"
    AFTER_AGREEMENT_ENDED = "AFTER_AGREEMENT_ENDED"
    OUT_OF_STATE_ALPR = "OUT_OF_STATE_ALPR"
    UNUSUAL_VOLUME = "UNUSUAL_VOLUME"
    MANY_USERS_ONE_SUBJECT = "MANY_USERS_ONE_SUBJECT"


@dataclass(frozen=True, slots=True)
class EntryRef:
    """An audit entry behind a finding: where it is in the chain."""

    seq: int
    hash: str
    at: str


@dataclass(frozen=True, slots=True)
class Finding:
    kind: FindingKind
    summary: str  # one sentence, no CJI: users, agencies, purposes, counts, agreement ids
    entries: tuple[EntryRef, ...]
    user: str | None = None
    agency: str | None = None
    purpose: str | None = None
    agreement: str | None = None
    record_id: str | None = None  # MANY_USERS_ONE_SUBJECT: a hub id the reader may read
    users: int | None = None
    score: float | None = None


@dataclass(frozen=True, slots=True)
class Thresholds:
    z: float = 3.5  # robust z-score above which a volume is unusual
    min_daily: int = 20  # a day below this many searches is never unusual
    min_peers: int = 4  # peers (the user included) needed to compare with peers
    subject_users: int = 5  # distinct users of one subject that make a finding
    history_days: int = 28  # the user's own history before the window


@dataclass(frozen=True, slots=True)
class ReviewFacts:
    """What the review needs of the policy and configuration."""

    agreements: tuple[AgreementFacts, ...]
    states: Mapping[str, str]  # agency ORI -> state
    source_kinds: Mapping[str, SourceKind] = field(default_factory=dict)  # source name -> kind
    case_purposes: frozenset[str] = frozenset(
        code for code, p in PURPOSES.items() if p.case_number_required
    )

    @classmethod
    def of(cls, data: PolicyData, source_kinds: Mapping[str, SourceKind]) -> ReviewFacts:
        return cls(
            agreements=data.agreements,
            states={ori: facts.state for ori, facts in data.agencies.items()},
            source_kinds=dict(source_kinds),
        )


@dataclass(frozen=True, slots=True)
class ReviewReport:
    reader: str
    since: datetime
    until: datetime
    entries_reviewed: int
    findings: tuple[Finding, ...]


async def review_trail(
    log: AuditLog,
    reader: str,
    facts: ReviewFacts,
    *,
    since: datetime,
    until: datetime | None = None,
    thresholds: Thresholds = Thresholds(),
) -> ReviewReport:
    """The review of ``[since, until)`` for the auditor of ``reader``. The findings are worked
    out in a thread: a year of a busy agency is a million entries, and the hub's other requests
    go on meanwhile."""
    until = until or datetime.now(UTC)
    history_from = since - timedelta(days=thresholds.history_days)
    entries = await scoped_entries(log, reader, history_from, until)
    return await asyncio.to_thread(
        review_entries, entries, reader, facts, since=since, until=until, thresholds=thresholds
    )


def review_entries(
    entries: Sequence[SealedEntry],
    reader: str,
    facts: ReviewFacts,
    *,
    since: datetime,
    until: datetime,
    thresholds: Thresholds = Thresholds(),
) -> ReviewReport:
    """Findings over ``entries`` (the reader's scoped view, oldest first; those before ``since``
    are the users' history for the volume check)."""
    lo, hi = _iso(since), _iso(until)
    entries = whole_operations(entries)  # a stream is one operation, not one per payload
    window = [e for e in entries if lo <= e.at < hi and _is_access(e)]
    history = [e for e in entries if e.at < lo and _is_access(e)]
    findings: list[Finding] = []
    findings += _missing_case_numbers(window, facts)
    findings += _agreement_findings(window, facts)
    findings += _out_of_state_alpr(window, facts)
    findings += _unusual_volume(window, history, reader, since, until, thresholds)
    findings += _many_users_one_subject(window, thresholds)
    return ReviewReport(reader, since, until, len(window), tuple(findings))


# -- the checks --------------------------------------------------------------------------------


def _missing_case_numbers(window: Iterable[SealedEntry], facts: ReviewFacts) -> list[Finding]:
    groups: dict[tuple[str, str, str], list[SealedEntry]] = defaultdict(list)
    for e in window:
        if e.purpose in facts.case_purposes and not (e.case_number or "").strip():
            groups[(e.user, e.agency, e.purpose or "")].append(e)
    return [
        Finding(
            FindingKind.MISSING_CASE_NUMBER,
            f"{user} ({agency}) made {len(es)} search(es) for purpose {purpose} without the "
            "case number that purpose requires",
            _refs(es),
            user=user,
            agency=agency,
            purpose=purpose,
        )
        for (user, agency, purpose), es in sorted(groups.items())
    ]


def _agreement_findings(window: Iterable[SealedEntry], facts: ReviewFacts) -> list[Finding]:
    outside: dict[tuple[str, str, str, str], list[SealedEntry]] = defaultdict(list)
    ended: dict[tuple[str, str, str, str], list[SealedEntry]] = defaultdict(list)
    for e in window:
        day = _day(e)
        for owner, kinds in _foreign_reads(e).items():
            covering = [
                a
                for a in facts.agreements
                if a.covers(owner, e.agency, e.roles) and kinds & a.kinds
            ]
            if not covering:
                continue  # no agreement at all: an owner's rule may share; not ours to judge
            current = [a for a in covering if a.until is None or a.until >= day]
            if not current:
                last = max(covering, key=lambda a: a.until or date.max)
                ended[(e.user, e.agency, owner, last.id)].append(e)
            elif not any(e.purpose in a.purposes for a in current):
                ids = ",".join(sorted(a.id for a in current))
                outside[(e.user, e.agency, e.purpose or "-", ids)].append(e)
    out = [
        Finding(
            FindingKind.PURPOSE_OUTSIDE_AGREEMENT,
            f"{user} ({agency}) read another agency's records for purpose {purpose}, which "
            f"agreement {ids} does not allow ({len(es)} operation(s))",
            _refs(_unique(es)),
            user=user,
            agency=agency,
            purpose=purpose,
            agreement=ids,
        )
        for (user, agency, purpose, ids), es in sorted(outside.items())
    ]
    out += [
        Finding(
            FindingKind.AFTER_AGREEMENT_ENDED,
            f"{user} ({agency}) read {owner}'s records after agreement {agreement} ended "
            f"({len(es)} operation(s))",
            _refs(_unique(es)),
            user=user,
            agency=agency,
            agreement=agreement,
        )
        for (user, agency, owner, agreement), es in sorted(ended.items())
    ]
    return out


def _out_of_state_alpr(window: Iterable[SealedEntry], facts: ReviewFacts) -> list[Finding]:
    groups: dict[tuple[str, str, str], list[SealedEntry]] = defaultdict(list)
    for e in window:
        state = e.state or facts.states.get(e.agency)
        day = _day(e)
        for source in e.sources:
            if not _contacted(source) or not _is_alpr(source, e, facts):
                continue
            owner_state = facts.states.get(source.agency)
            if state is None or owner_state is None or owner_state == state:
                continue
            agreed = any(
                a.covers(source.agency, e.agency, e.roles)
                and EntityKind.PLATE_READ in a.kinds
                and e.purpose in a.purposes
                and (a.until is None or a.until >= day)
                for a in facts.agreements
            )
            if not agreed:
                groups[(e.user, e.agency, source.agency)].append(e)
    return [
        Finding(
            FindingKind.OUT_OF_STATE_ALPR,
            f"{user} ({agency}, out of state) searched {owner}'s ALPR system without an "
            f"agreement sharing its plate reads for that purpose ({len(_unique(es))} search(es))",
            _refs(_unique(es)),
            user=user,
            agency=agency,
        )
        for (user, agency, owner), es in sorted(groups.items())
    ]


def _unusual_volume(
    window: Sequence[SealedEntry],
    history: Sequence[SealedEntry],
    reader: str,
    since: datetime,
    until: datetime,
    t: Thresholds,
) -> list[Finding]:
    own = [e for e in window if e.agency == reader]
    by_user_day: dict[str, Counter[date]] = defaultdict(Counter)
    for e in own:
        by_user_day[e.user][_day(e)] += 1
    past: dict[str, Counter[date]] = defaultdict(Counter)
    for e in history:
        if e.agency == reader:
            past[e.user][_day(e)] += 1
    history_days = [since.date() - timedelta(days=n) for n in range(1, t.history_days + 1)]
    findings: dict[str, Finding] = {}
    for user, days in sorted(by_user_day.items()):
        baseline = [past[user][d] for d in history_days]
        for day, count in sorted(days.items()):
            if count < t.min_daily:
                continue
            z = robust_z(count, baseline)
            if z > t.z and user not in findings:
                es = [e for e in own if e.user == user and _day(e) == day]
                findings[user] = Finding(
                    FindingKind.UNUSUAL_VOLUME,
                    f"{user} ({reader}) made {count} searches on {day.isoformat()}, against a "
                    f"median of {statistics.median(baseline):g} a day over the "
                    f"{t.history_days} days before (robust z {z:.1f})",
                    _refs(es),
                    user=user,
                    agency=reader,
                    score=round(z, 2),
                )
    # Peers: the same agency and role, over the whole window.
    totals = Counter(e.user for e in own)
    role_of = {e.user: (min(e.roles) if e.roles else "") for e in own}
    by_role: dict[str, list[str]] = defaultdict(list)
    for user, role in role_of.items():
        by_role[role].append(user)
    span_days = max(1.0, (until - since).total_seconds() / 86400)
    for role, users in sorted(by_role.items()):
        if len(users) < t.min_peers:
            continue
        for user in sorted(users):
            others = [totals[u] for u in users if u != user]
            z = robust_z(totals[user], others)
            if z > t.z and totals[user] >= t.min_daily and user not in findings:
                findings[user] = Finding(
                    FindingKind.UNUSUAL_VOLUME,
                    f"{user} ({reader}, {role}) made {totals[user]} searches in the window "
                    f"({totals[user] / span_days:.1f} a day), against a median of "
                    f"{statistics.median(others):g} for the {len(others)} other {role}(s) of the "
                    f"agency (robust z {z:.1f})",
                    _refs([e for e in own if e.user == user]),
                    user=user,
                    agency=reader,
                    score=round(z, 2),
                )
    return [findings[u] for u in sorted(findings)]


def _many_users_one_subject(window: Iterable[SealedEntry], t: Thresholds) -> list[Finding]:
    users: dict[str, set[str]] = defaultdict(set)
    behind: dict[str, list[SealedEntry]] = defaultdict(list)
    for e in window:
        for record in e.records:
            if _kind(record.id) not in _SUBJECT_KINDS:
                continue
            users[record.id].add(f"{e.user}@{e.agency}")
            behind[record.id].append(e)
    return [
        Finding(
            FindingKind.MANY_USERS_ONE_SUBJECT,
            f"one {(_kind(rid) or EntityKind.PERSON).value.lower()} record was returned to "
            f"{len(who)} different users ({len(behind[rid])} operation(s))",
            _refs(_unique(behind[rid])),
            record_id=rid,
            users=len(who),
        )
        for rid, who in sorted(users.items())
        if len(who) >= t.subject_users
    ]


# -- helpers -----------------------------------------------------------------------------------


def robust_z(x: float, sample: Sequence[float]) -> float:
    """``0.6745 (x - median) / MAD`` over ``sample``. Counts of searches vary at least as a
    Poisson count does, so the MAD is never taken below that of one (``0.6745 sqrt(median)``,
    at least 0.6745): with few peers or a flat history, a MAD of 0 or 1 would make a routine
    difference look extreme."""
    if not sample:
        return 0.0
    median = statistics.median(sample)
    mad = statistics.median(abs(v - median) for v in sample)
    return 0.6745 * (x - median) / max(mad, 0.6745 * math.sqrt(max(median, 1.0)))


def _is_access(e: SealedEntry) -> bool:
    return e.operation not in REVIEW_OPERATIONS and e.outcome not in _NO_DATA


def _contacted(source: SourceCall) -> bool:
    return source.status in _ASKED and not (source.status == "ERROR" and source.latency_ms is None)


def _is_alpr(source: SourceCall, e: SealedEntry, facts: ReviewFacts) -> bool:
    kind = facts.source_kinds.get(source.source)
    if kind is not None:
        return kind is SourceKind.ALPR
    # Not configured here (any more): the plate reads it returned say what it is.
    return any(r.owner == source.agency and _kind(r.id) is EntityKind.PLATE_READ for r in e.records)


def _foreign_reads(e: SealedEntry) -> dict[str, frozenset[EntityKind]]:
    """Owners of records the user read in full (not pointers), other than the user's agency."""
    out: dict[str, set[EntityKind]] = defaultdict(set)
    for r in e.records:
        if r.owner == e.agency or r.visibility == "POINTER":
            continue
        kind = _kind(r.id)
        if kind is not None:
            out[r.owner].add(kind)
    return {owner: frozenset(kinds) for owner, kinds in out.items()}


def _kind(hub_id: str) -> EntityKind | None:
    try:
        return parse_id(hub_id).kind
    except InvalidId:
        return None


def _day(e: SealedEntry) -> date:
    return datetime.fromisoformat(e.at).astimezone(UTC).date()


def _unique(entries: Iterable[SealedEntry]) -> list[SealedEntry]:
    return list({e.seq: e for e in entries}.values())


def _refs(entries: Iterable[SealedEntry]) -> tuple[EntryRef, ...]:
    return tuple(EntryRef(e.seq, e.hash, e.at) for e in sorted(entries, key=lambda e: e.seq))


def _iso(when: datetime) -> str:
    aware = when if when.tzinfo is not None else when.replace(tzinfo=UTC)
    return aware.astimezone(UTC).isoformat(timespec="microseconds")
