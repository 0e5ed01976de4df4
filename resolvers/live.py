"""Live results in the schema: ``watch`` / ``cancelWatch``, ``watches``, ``inbox``,
``hotListAlerts`` and the subscriptions ``watchDeliveries`` and ``hotListAlertPushed``.

The work is ``hub.live.Live``'s (made in the app's lifespan, reached through ``LiveServices``);
here are the arguments' checks and what a reader is shown. Every record shown is decided again
for the reader at the moment it is shown, under the watch's purpose (a policy change or a role
removed since the delivery counts), and reported to the operation's audit entry; a field the
policy withholds reads null and is reported once per Type.field, as everywhere else.

An outsider learns nothing here: a watch, an inbox and the alerts are the user's (the agency's,
for alerts) own; another user's watch id cancels nothing and is answered as one that does not
exist; another agency's hot list is never read for anyone but that agency.
"""

from __future__ import annotations

import enum
from collections.abc import AsyncGenerator
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated

import strawberry
from strawberry import Info

from hub import model
from hub.access.catalogue import TYPE_OF_KIND
from hub.access.purposes import require_purpose
from hub.errors import InvalidInput, QueryRejected
from hub.live import Alert, Delivery, Live, Target, Watch
from hub.live.model import REASONS
from hub.live.store import unavailable
from resolvers import present as p
from resolvers import types as t
from resolvers.context import HubContext, Services

MAX_LIMIT = 1000
LIVE_FIELDS = frozenset(
    {
        "watch",
        "cancelWatch",
        "watches",
        "inbox",
        "hotListAlerts",
        "watchDeliveries",
        "hotListAlertPushed",
    }
)


@dataclass
class LiveServices(Services):
    """``Services`` with this worker's live-results service (None: no Redis, no live results)."""

    live: Live | None = None


def _live(info: Info[HubContext, None]) -> Live:
    ctx = info.context
    live = getattr(ctx.services, "live", None)
    if not isinstance(live, Live):
        raise unavailable("live results need Redis (redis_url): none is configured here")
    # Watches and deliveries are CJI (names, plates, case numbers): a purpose, as for search.
    ctx.purpose = require_purpose(ctx.request.purpose)
    return live


@strawberry.enum(description="What a watch is on.")
class WatchTarget(enum.Enum):
    PERSON = "PERSON"
    PLATE = "PLATE"
    TEXT = "TEXT"


LiveRecord = Annotated[
    t.Person | t.Vehicle | t.Incident | t.PlateRead,
    strawberry.union("LiveRecord", description="A record delivered live."),
]


@strawberry.type(
    name="Watch",
    description="A standing query: new matching records are delivered until it "
    "expires. Only its own user sees it.",
)
class WatchInfo:
    id: strawberry.ID
    target: WatchTarget
    text: str = strawberry.field(description="The name, normalised plate or text watched.")
    plate_state: str | None
    purpose: str
    case_number: str
    created: datetime
    until: datetime


@strawberry.type(
    description="Another agency watches the same subject, and both agencies "
    "allow each other to know (policies/live.yaml). Nothing more is told."
)
class AgencyInterest:
    ori: str
    name: str
    contact: str


@strawberry.type
class WatchResult:
    watch: WatchInfo
    interests: list[AgencyInterest] = strawberry.field(
        description="Agencies that told of their interest in the same subject."
    )


@strawberry.type(
    description="One delivery to a watch: a new matching record, decided for "
    "you when it was delivered and again now, or another agency's interest."
)
class WatchDelivery:
    id: strawberry.ID
    cursor: str = strawberry.field(description="Pass as `after` to read on from here.")
    watch_id: strawberry.ID
    at: datetime
    record: LiveRecord | None = strawberry.field(
        description="Null when it is an interest, or no longer yours to see."
    )
    interest: AgencyInterest | None


@strawberry.type(description="An NCIC-style hot-list reason.")
class HotListReason:
    code: str
    title: str
    reference: str | None


@strawberry.type(description="A plate on your agency's hot list was just read.")
class HotListAlert:
    id: strawberry.ID
    cursor: str
    at: datetime
    reasons: list[HotListReason]
    read: t.PlateRead


def _watch_info(w: Watch) -> WatchInfo:
    return WatchInfo(
        id=strawberry.ID(w.id),
        target=WatchTarget(w.target.value),
        text=w.text,
        plate_state=w.plate_state,
        purpose=w.purpose,
        case_number=w.case_number,
        created=w.created,
        until=w.until,
    )


def _shown(
    ctx: HubContext,
    record: model.Record,
    readable: frozenset[str],
    denied: frozenset[str],
    rules: tuple[str, ...],
) -> t.Person | t.Vehicle | t.Incident | t.PlateRead:
    type_name = TYPE_OF_KIND[model.kind_of(record)]
    for name in denied:
        key = f"{type_name}.{name}"
        ctx.withheld[key] += 1
        ctx.withheld_rules[key].update(rules)
    if ctx.recorder is not None:
        ctx.recorder.record_returned(record.id, record.provenance.agency.ori, "FULL")
    return p.present(record, readable)


def _delivery(ctx: HubContext, live: Live, cursor: str, d: Delivery) -> WatchDelivery:
    record = None
    if d.record is not None:
        verdict = live.decide_delivery(ctx.request.subject, d)
        if verdict is not None:
            record = _shown(
                ctx, d.record, verdict.readable_fields, verdict.denied_fields, verdict.rules
            )
    interest = (
        AgencyInterest(ori=d.interest.ori, name=d.interest.name, contact=d.interest.contact)
        if d.interest is not None
        else None
    )
    return WatchDelivery(
        id=strawberry.ID(d.id),
        cursor=cursor,
        watch_id=strawberry.ID(d.watch_id),
        at=d.at,
        record=record,
        interest=interest,
    )


async def _alert(ctx: HubContext, live: Live, cursor: str, a: Alert) -> HotListAlert | None:
    verdict = await live.admit_alert(ctx.request, a)
    if verdict is None:
        return None
    read = _shown(ctx, a.read, verdict.readable_fields, verdict.denied_fields, verdict.rules)
    assert isinstance(read, t.PlateRead)
    return HotListAlert(
        id=strawberry.ID(a.id),
        cursor=cursor,
        at=a.at,
        reasons=[
            HotListReason(code=e.reason, title=REASONS[e.reason], reference=e.reference)
            for e in a.entries
        ],
        read=read,
    )


def _limit(limit: int | None) -> int:
    value = 100 if limit is None else limit
    if not 1 <= value <= MAX_LIMIT:
        raise QueryRejected(f"limit must be between 1 and {MAX_LIMIT}")
    return value


@strawberry.type
class LiveQuery:
    @strawberry.field(description="Your active watches. Needs X-Purpose.")
    async def watches(self, info: Info[HubContext, None]) -> list[WatchInfo]:
        live = _live(info)
        info.context.asked("watches")
        return [_watch_info(w) for w in await live.watches(info.context.request.subject)]

    @strawberry.field(
        description="What your watches delivered, oldest first, after the cursor `after` "
        "(for a client that was offline). Needs X-Purpose."
    )
    async def inbox(
        self, info: Info[HubContext, None], after: str | None = None, limit: int | None = 100
    ) -> list[WatchDelivery]:
        live = _live(info)
        ctx = info.context
        ctx.asked("inbox", after=after, limit=limit)
        entries = await live.inbox(ctx.request.subject, _cursor(after), _limit(limit))
        return [_delivery(ctx, live, cursor, d) for cursor, d in entries]

    @strawberry.field(
        description="Your agency's hot-list alerts, oldest first, after the cursor `after`; "
        "each read decided for you (purpose ALPR-HOT). Needs X-Purpose."
    )
    async def hot_list_alerts(
        self, info: Info[HubContext, None], after: str | None = None, limit: int | None = 100
    ) -> list[HotListAlert]:
        live = _live(info)
        ctx = info.context
        ctx.asked("hotListAlerts", after=after, limit=limit)
        entries = await live.alerts(ctx.request.subject, _cursor(after), _limit(limit))
        out = []
        for cursor, alert in entries:
            shown = await _alert(ctx, live, cursor, alert)
            if shown is not None:
                out.append(shown)
        return out


def _cursor(after: str | None) -> str | None:
    if after is None:
        return None
    first, _, second = after.partition("-")
    if not (first.isdigit() and second.isdigit() and len(after) <= 41):
        raise InvalidInput("after: a cursor this API returned")
    return after


@strawberry.type
class LiveMutation:
    @strawberry.mutation(
        description="Watch a person (by hub id: by their name and date of birth as you may "
        "read them), a plate, or search text, until `until` (at most what policy allows your "
        "purpose and role: policies/live.yaml). New matching records are delivered to "
        "`watchDeliveries` and `inbox`, each decided for you when delivered. Give exactly one "
        "of person, plate, text. Needs X-Purpose."
    )
    async def watch(
        self,
        info: Info[HubContext, None],
        until: datetime,
        purpose: str,
        case_number: str,
        person: strawberry.ID | None = None,
        plate: str | None = None,
        plate_state: str | None = None,
        text: str | None = None,
    ) -> WatchResult:
        live = _live(info)
        ctx = info.context
        ctx.asked(
            "watch",
            person=person,
            plate=plate,
            plate_state=plate_state,
            text=text,
            until=until,
            purpose=purpose,
            case_number=case_number,
        )
        if sum(x is not None for x in (person, plate, text)) != 1:
            raise InvalidInput("give exactly one of person, plate, text")
        if plate_state is not None and (len(plate_state) != 2 or not plate_state.isalpha()):
            raise InvalidInput("plateState: two letters")
        dob = None
        if person is not None:
            record = await ctx.records_loader.load(str(person))
            shown = ctx.show(record) if isinstance(record, model.Person) else None
            if not isinstance(shown, t.Person) or shown.name is None:
                # Absent, not yours, or its name withheld: answered alike.
                raise InvalidInput("no person you may read has that id")
            assert isinstance(record, model.Person)
            target, watched = (
                Target.PERSON,
                " ".join(x for x in (shown.name.given, shown.name.surname) if x),
            )
            dob = record.date_of_birth if shown.date_of_birth is not None else None
        elif plate is not None:
            target, watched = Target.PLATE, plate
        else:
            target, watched = Target.TEXT, text or ""
        watch, interests = await live.watch(
            ctx.request,
            target=target,
            text=watched,
            until=until,
            purpose=purpose,
            case_number=case_number,
            plate_state=plate_state,
            date_of_birth=dob,
            person_id=str(person) if person is not None else None,
        )
        return WatchResult(
            watch=_watch_info(watch),
            interests=[
                AgencyInterest(ori=i.ori, name=i.name, contact=i.contact) for i in interests
            ],
        )

    @strawberry.mutation(
        description="Cancel one of your watches: false for an id that is not one of yours."
    )
    async def cancel_watch(self, info: Info[HubContext, None], id: strawberry.ID) -> bool:
        live = _live(info)
        info.context.asked("cancelWatch", id=id)
        return await live.cancel(info.context.request.subject, str(id))


@strawberry.type
class LiveSubscription:
    @strawberry.subscription(
        description="Your watches' deliveries as they are made, on whichever worker; from the "
        "cursor `after` (none: from now). Needs X-Purpose (in connection_init)."
    )
    async def watch_deliveries(
        self, info: Info[HubContext, None], after: str | None = None
    ) -> AsyncGenerator[WatchDelivery, None]:
        live = _live(info)
        ctx = info.context
        ctx.asked("watchDeliveries", after=after)
        async for cursor, delivery in live.follow_inbox(ctx.request.subject, _cursor(after) or "$"):
            yield _delivery(ctx, live, cursor, delivery)

    @strawberry.subscription(
        description="Your agency's hot-list alerts as plates are read; each read decided for "
        "you (purpose ALPR-HOT) and audited before it is sent. Needs X-Purpose."
    )
    async def hot_list_alert_pushed(
        self, info: Info[HubContext, None], after: str | None = None
    ) -> AsyncGenerator[HotListAlert, None]:
        live = _live(info)
        ctx = info.context
        ctx.asked("hotListAlertPushed", after=after)
        async for cursor, alert in live.follow_alerts(ctx.request.subject, _cursor(after) or "$"):
            shown = await _alert(ctx, live, cursor, alert)
            if shown is not None:
                yield shown
