"""``auditReview``: the audit review (``hub.oversight.review``) for an agency's auditors.

Deny by default: the ``auditor`` role only, with a purpose (it reads the trail: ``A``); the
review covers only the entries ``auditEvents`` would show the same auditor, so a finding names
nothing the auditor could not read there. Reading it is itself audited (like every data field).
"""

from __future__ import annotations

import enum
from datetime import UTC, datetime, timedelta
from typing import Any

import strawberry
from strawberry import Info

from hub import model
from hub.errors import AccessDenied, AuditUnavailable, InvalidId, QueryRejected
from hub.oversight import FindingKind, ReviewFacts, ReviewReport, review_trail
from hub.oversight.notices import partner_adapter
from resolvers.context import HubContext

MAX_WINDOW = timedelta(days=366)
REVIEW_ROLES = frozenset({"auditor"})


@strawberry.enum(description="What an audit review finding is about.")
class AuditFindingKind(enum.Enum):
    MISSING_CASE_NUMBER = strawberry.enum_value(
        "MISSING_CASE_NUMBER", description="A search for a purpose that needs a case number, "
        "without one."
    )  # fmt: skip
    PURPOSE_OUTSIDE_AGREEMENT = strawberry.enum_value(
        "PURPOSE_OUTSIDE_AGREEMENT", description="Another agency's records read for a purpose "
        "the agreement with it does not name."
    )  # fmt: skip
    AFTER_AGREEMENT_ENDED = strawberry.enum_value(
        "AFTER_AGREEMENT_ENDED", description="Another agency's records read after the "
        "agreement that shared them ended."
    )  # fmt: skip
    OUT_OF_STATE_ALPR = strawberry.enum_value(
        "OUT_OF_STATE_ALPR", description="An ALPR system searched by a user of another state "
        "without an agreement sharing its plate reads for that purpose."
    )  # fmt: skip
    UNUSUAL_VOLUME = strawberry.enum_value(
        "UNUSUAL_VOLUME", description="A user's searches far above the user's own history or "
        "the peers of the same agency and role (robust z-score, median and MAD)."
    )  # fmt: skip
    MANY_USERS_ONE_SUBJECT = strawberry.enum_value(
        "MANY_USERS_ONE_SUBJECT", description="One person or vehicle record returned to many "
        "different users."
    )  # fmt: skip


@strawberry.type(description="An audit entry behind a finding: `auditEvents` and `hub audit "
                 "verify` find it by its seq and hash.")  # fmt: skip
class AuditEntryRef:
    seq: int
    hash: str
    at: datetime


@strawberry.type(description="One finding of an audit review, with the entries behind it.")
class AuditFinding:
    kind: AuditFindingKind
    summary: str = strawberry.field(description="One sentence; no search criteria, no names.")
    user: str | None
    agency: str | None = strawberry.field(description="The user's agency ORI.")
    purpose: str | None
    agreement: str | None = strawberry.field(description="The agreement(s) concerned, by id.")
    record_id: strawberry.ID | None = strawberry.field(
        description="MANY_USERS_ONE_SUBJECT: the record's hub id (one you may read in the trail)."
    )
    users: int | None = strawberry.field(description="MANY_USERS_ONE_SUBJECT: distinct users.")
    score: float | None = strawberry.field(description="UNUSUAL_VOLUME: the robust z-score.")
    entries: list[AuditEntryRef]


@strawberry.type(description="An audit review of your agency's part of the trail.")
class AuditReview:
    agency: str = strawberry.field(description="Whose part of the trail was reviewed (yours).")
    since: datetime
    until: datetime
    entries_reviewed: int = strawberry.field(
        description="Operations in the window that you may read."
    )
    findings: list[AuditFinding]


def _present(report: ReviewReport) -> AuditReview:
    return AuditReview(
        agency=report.reader,
        since=report.since,
        until=report.until,
        entries_reviewed=report.entries_reviewed,
        findings=[
            AuditFinding(
                kind=AuditFindingKind[FindingKind(f.kind).value],
                summary=f.summary,
                user=f.user,
                agency=f.agency,
                purpose=f.purpose,
                agreement=f.agreement,
                record_id=strawberry.ID(f.record_id) if f.record_id else None,
                users=f.users,
                score=f.score,
                entries=[
                    AuditEntryRef(seq=r.seq, hash=r.hash, at=datetime.fromisoformat(r.at))
                    for r in f.entries
                ],
            )
            for f in report.findings
        ],
    )


@strawberry.type
class OversightQuery:
    @strawberry.field(
        description="An audit review for auditors: searches without a required case number, "
        "purposes outside an agreement, ALPR searches by out-of-state users, unusual volume, one "
        "subject searched by many users, access after an agreement ended; over the entries "
        "`auditEvents` shows you, each finding with its entries. `until` defaults to now; at "
        "most 366 days, and at most 2,000,000 entries in your scope (QUERY_REJECTED: ask for a "
        "shorter window). Audited. For the auditor role (FORBIDDEN otherwise); needs X-Purpose."
    )
    async def audit_review(
        self,
        info: Info[HubContext, None],
        since: datetime,
        until: datetime | None = strawberry.UNSET,
    ) -> AuditReview:
        ctx: HubContext = info.context
        subject = ctx.request.subject
        end = until or datetime.now(UTC)
        start = since if since.tzinfo is not None else since.replace(tzinfo=UTC)
        end = end if end.tzinfo is not None else end.replace(tzinfo=UTC)
        ctx.asked("auditReview", since=start, until=end)
        if not (subject.roles & REVIEW_ROLES):
            raise AccessDenied("the audit review is for auditors")
        if not start < end or end - start > MAX_WINDOW:
            raise QueryRejected("since must be before until, at most 366 days apart")
        log: Any = ctx.services.audit_log
        data = getattr(ctx.services.gate, "data", None)
        if log is None or data is None:
            raise AuditUnavailable("the audit trail is not configured")
        facts = ReviewFacts.of(data, {a.name: a.source_kind for a in ctx.services.adapters})
        report = await review_trail(log, subject.ori, facts, since=start, until=end)
        return _present(report)


def notice_from_partner(ctx: HubContext, partner_id: str, roles: frozenset[str]) -> str:
    """This hub's id of a partner's record the partner's notice names (``partner_id``: the
    partner's own hub id). The partner admitted the sender (its records staff, of an agency it
    may speak for) and checked that the sender's agency owns the record."""
    request = ctx.request
    adapter = partner_adapter(ctx.services.adapters, request.hub_chain[-1])
    if adapter is None:
        raise InvalidId("a notice from a partner hub that is not one of this hub's sources")
    if not (request.subject.roles & roles):
        raise AccessDenied("only the owning agency's records staff may send a notice")
    kind = model.parse_id(partner_id).kind
    return model.make_id(adapter.name, kind, partner_id)
