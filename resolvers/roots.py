"""The root Query and Mutation: what a client may ask the hub, and the checks on its arguments.

Each field here that fetches records states what it was asked (``HubContext.asked``, for the
audit trail) before it calls anything; records reach the response only through
``HubContext.show``.
"""

from __future__ import annotations

import dataclasses
import logging
from datetime import datetime
from typing import Any

import strawberry
import strawberry.scalars
from strawberry import Info

from hub import model
from hub.access.catalogue import TYPE_OF_KIND
from hub.adapters.base import SearchRequest
from hub.audit import AuditQuery, SealedEntry, query_events
from hub.errors import AccessDenied, AuditUnavailable, HubError, InvalidId, QueryRejected
from hub.live import Live
from hub.oversight.notices import Propagation, propagate_notice
from hub.shared.cache import search_key
from resolvers import oversight
from resolvers import present as p
from resolvers import types as t
from resolvers.context import HubContext
from resolvers.live import LIVE_FIELDS
from resolvers.search import bounded_limit, search

log = logging.getLogger(__name__)

# Root fields that return criminal-justice data: they need a purpose, and they call vendors.
DATA_FIELDS = (
    frozenset(
        {
            "search",
            "person",
            "vehicle",
            "incident",
            "plateReads",
            "auditEvents",
            "auditReview",
            "_entities",
            "recordNotice",
            "searchStream",
        }
    )
    | LIVE_FIELDS
)  # watches, inboxes and alerts (resolvers.live)


def _hub(info: Info[HubContext, None]) -> HubContext:
    return info.context


async def _lookup(info: Info[HubContext, None], hub_id: str, kind: model.EntityKind) -> Any:
    type_name = TYPE_OF_KIND[kind]
    _hub(info).asked(type_name[0].lower() + type_name[1:], id=hub_id)
    ref = model.parse_id(hub_id)
    if ref.kind is not kind:
        raise InvalidId(f"that id is not a {type_name} id")
    shown = await _hub(info).record_by_id(hub_id, path=info.path.as_list())
    # A pointer cannot stand where a Person is expected: the owner shares no more.
    return shown if not isinstance(shown, t.RecordPointer) else None


@strawberry.type
class Query:
    @strawberry.field(
        description="Universal search across every source that shares with you, in parallel. "
        "`sources` says what each source answered; a failed source is reported, never empty: "
        "no answer is not no hit. A hit is found only by what you may read, or for a pointer by "
        "what its owner lets be searched. Needs X-Purpose."
    )
    async def search(
        self,
        info: Info[HubContext, None],
        text: str,
        kinds: list[t.EntityKind] | None = strawberry.UNSET,
        agencies: list[str] | None = strawberry.UNSET,
        limit: int | None = 50,
    ) -> t.SearchResult:
        return await search(
            _hub(info), info.path.as_list(), text, kinds or None, agencies or None, limit
        )

    @strawberry.field(
        description="One person by hub id; null when absent, not yours to see, or only a "
        "pointer to you. An id of another kind is BAD_USER_INPUT. Needs X-Purpose."
    )
    async def person(self, info: Info[HubContext, None], id: strawberry.ID) -> t.Person | None:
        found: t.Person | None = await _lookup(info, id, model.EntityKind.PERSON)
        return found

    @strawberry.field(
        description="One vehicle by hub id; null when absent, not yours to see, or only a "
        "pointer to you. An id of another kind is BAD_USER_INPUT. Needs X-Purpose."
    )
    async def vehicle(self, info: Info[HubContext, None], id: strawberry.ID) -> t.Vehicle | None:
        found: t.Vehicle | None = await _lookup(info, id, model.EntityKind.VEHICLE)
        return found

    @strawberry.field(
        description="One incident by hub id; null when absent, not yours to see, or only a "
        "pointer to you. An id of another kind is BAD_USER_INPUT. Needs X-Purpose."
    )
    async def incident(self, info: Info[HubContext, None], id: strawberry.ID) -> t.Incident | None:
        found: t.Incident | None = await _lookup(info, id, model.EntityKind.INCIDENT)
        return found

    @strawberry.field(
        description="Reads of one plate by every ALPR source, newest first; a read whose plate "
        "you may not read is left out. Needs X-Purpose."
    )
    async def plate_reads(
        self,
        info: Info[HubContext, None],
        plate: str,
        state: str | None = strawberry.UNSET,
        since: datetime | None = strawberry.UNSET,
        until: datetime | None = strawberry.UNSET,
        limit: int | None = 100,
    ) -> list[t.PlateRead]:
        ctx = _hub(info)
        number = model.normalise_plate(plate)
        if not 1 <= len(number) <= 10:
            raise QueryRejected("plate must be 1 to 10 letters or digits")
        limit = bounded_limit(
            100 if limit is None else limit, ctx.services.settings.limits.max_search_limit
        )
        ctx.asked(
            "plateReads",
            plate=number,
            state=state or None,
            since=since or None,
            until=until or None,
            limit=limit,
        )
        request = SearchRequest(
            kinds=frozenset({model.EntityKind.PLATE_READ}),
            plates=(number,),
            plate_state=state.upper() if state else None,
            since=since or None,
            until=until or None,
            limit=limit,
            context=ctx.request,
        )
        adapters = [a for a in ctx.services.adapters if a.answers(request)]
        answers, _ = await ctx.ask(
            adapters, request.kinds, lambda a: a.search(request), search_key(request)
        )
        reads = [r for a in answers for r in a.records if isinstance(r, model.PlateRead)]
        reads.sort(key=lambda r: (r.read_at, r.id), reverse=True)
        out: list[t.PlateRead] = []
        for record in reads:
            if len(out) >= limit:
                break
            # Found by its plate: a read whose plate is withheld would confirm it.
            if not ctx.found_by(record, "plate"):
                continue
            shown = ctx.show(record, path=[*info.path.as_list(), len(out)])
            if isinstance(shown, t.PlateRead):
                out.append(shown)
        return out

    @strawberry.field(
        description="The audit trail, for auditors: events about your agency's users, records "
        "and sources, newest first; every filter given must match (`caseNumber`: the "
        "X-Case-Number the question was asked under). Reading the trail is itself audited. For "
        "the auditor role (FORBIDDEN otherwise); AUDIT_UNAVAILABLE when no trail is configured."
    )
    async def audit_events(
        self,
        info: Info[HubContext, None],
        user: str | None = strawberry.UNSET,
        agency: str | None = strawberry.UNSET,
        record_id: strawberry.ID | None = strawberry.UNSET,
        since: datetime | None = strawberry.UNSET,
        until: datetime | None = strawberry.UNSET,
        purpose: str | None = strawberry.UNSET,
        limit: int | None = 100,
        case_number: str | None = strawberry.UNSET,
    ) -> list[t.AuditEvent]:
        ctx = _hub(info)
        subject = ctx.request.subject
        query = AuditQuery(
            user=user or None,
            agency=agency or None,
            record_id=record_id or None,
            since=since or None,
            until=until or None,
            purpose=purpose or None,
            limit=bounded_limit(100 if limit is None else limit, 1000),
            case_number=case_number or None,
        )
        ctx.asked("auditEvents", **dataclasses.asdict(query))
        if "auditor" not in subject.roles:
            raise AccessDenied("the audit trail is for auditors")
        if ctx.services.audit_log is None:
            raise AuditUnavailable("the audit trail is not configured")
        entries = await query_events(ctx.services.audit_log, subject.ori, query)
        return [_audit_event(e) for e in entries]

    @strawberry.field(
        description="The configured sources (names and owners; no addresses). Needs no purpose."
    )
    def sources(self, info: Info[HubContext, None]) -> list[t.Source]:
        return [
            t.Source(
                name=a.name,
                agency=p.agency(a.config.agency),
                system=t.SourceSystem(
                    name=a.name, vendor=a.vendor, kind=t.SourceKind(a.source_kind.value)
                ),
                entity_kinds=[t.EntityKind(k.value) for k in sorted(a.entity_kinds)],
                timeout_ms=a.config.timeout_ms,
            )
            for a in _hub(info).services.adapters
        ]


def _audit_event(e: SealedEntry) -> t.AuditEvent:
    return t.AuditEvent(
        seq=e.seq,
        hash=e.hash,
        at=datetime.fromisoformat(e.at),
        trace_id=e.trace_id,
        operation=e.operation,
        outcome=e.outcome,
        error_code=e.error_code,
        user=e.user,
        agency=e.agency,
        roles=list(e.roles),
        via_user=e.via_user,
        via_agency=e.via_agency,
        hub_chain=list(e.hub_chain),
        purpose=e.purpose,
        case_number=e.case_number,
        criteria=strawberry.scalars.JSON(e.criteria) if e.criteria is not None else None,
        sources=[
            t.AuditSourceCall(
                source=s.source,
                agency=s.agency,
                status=s.status,
                count=s.count,
                latency_ms=s.latency_ms,
            )
            for s in e.sources
        ],
        records=[
            t.AuditRecordAccess(id=strawberry.ID(r.id), owner=r.owner, visibility=r.visibility)
            for r in e.records
        ],
        withheld=[
            t.AuditWithholding(field=w.field, rules=list(w.rules), count=w.count)
            for w in e.withheld
        ],
        policy_version=e.policy_version,
        client_address=e.client_address,
        part=e.part,
    )


NOTICE_ROLES = frozenset({"records", "supervisor"})


@strawberry.type
class Mutation:
    @strawberry.mutation(
        description="The owning agency's notice that a record was expunged or sealed: the hub "
        "drops every cached vendor answer holding it, at once, on every worker. For the owner's "
        "records clerks and supervisors, with purpose A; FORBIDDEN for anyone else, "
        "BAD_USER_INPUT for an id of no configured source."
    )
    async def record_notice(
        self, info: Info[HubContext, None], id: strawberry.ID, notice: t.RecordNotice
    ) -> t.NoticeResult:
        ctx = _hub(info)
        ctx.asked("recordNotice", id=id, notice=notice.value)
        subject = ctx.request.subject
        if ctx.request.via is not None and ctx.request.hub_chain:
            # From a partner hub that showed us its record: our id of it; we pass it no further.
            local = oversight.notice_from_partner(ctx, id, NOTICE_ROLES)
            propagation = Propagation()
        else:
            ref = model.parse_id(id)
            adapter = ctx.services.by_name.get(ref.source)
            if adapter is None:
                raise InvalidId("that id names no configured source")
            if adapter.config.agency.ori != subject.ori or not (subject.roles & NOTICE_ROLES):
                raise AccessDenied("only the owning agency's records staff may send a notice")
            local = id
            # The partner hubs the trail says were shown the record hear of it too.
            propagation = await propagate_notice(
                ctx.services.audit_log, ctx.services.adapters, ctx.request, subject.ori, id,
                notice.value,
            )  # fmt: skip
        evicted, deferred = 0, False
        if ctx.services.cache is not None:
            eviction = await ctx.services.cache.evict_record(local)
            evicted, deferred = eviction.entries, eviction.deferred
        live = getattr(ctx.services, "live", None)
        if isinstance(live, Live):
            # Standing watches see the record again, fetched fresh: a sealed one is not delivered.
            ref = model.parse_id(local)
            try:
                await live.publish_notices(ref.source, [(ref.kind, ref.record_id)])
            except HubError as exc:
                log.warning("a notice was not passed to watches: %s", exc.code)
        return t.NoticeResult(
            id=id, notice=notice, evicted_entries=evicted, deferred=deferred,
            partners_notified=propagation.notified, partners_unreached=propagation.unreached,
        )  # fmt: skip
