"""Live results: watches, hot-list alerts and their delivery, on every worker at once.

Events come in three ways, each appended to one Redis stream (``hub.live.store``):

- **plate reads** an ALPR system pushes (``POST /sources/NAME/reads``, ``publish_reads``);
- **record notices** a vendor pushes (``POST /sources/NAME/notices``, ``publish_notices``): the
  records are fetched again, fresh from the vendor, when the event is handled;
- **re-query finds**: every ``requery_s`` one worker (a lock per watch) asks the sources that
  cannot push, as the watcher, and appends what it had not seen before.

Every worker reads the stream in one consumer group: each event is handled by one worker and
acknowledged only once handled; an event whose worker died (kill -9 mid-delivery) is claimed by
another after ``claim_idle_ms`` (XAUTOCLAIM) and handled again. A delivery's id is derived from
the watch and the record, and the delivery is kept by one script that appends only if that id
was never delivered: handled twice, delivered once.

Each delivery is decided **when it is made**, for the watcher (the roles in its token, the
watch's purpose and case number), by the same access policy the resolvers use
(``AccessPolicy.decide``, ``check_source``): a record sealed since the watch began, or of a
source the watcher may not ask, is not delivered. A record must match the watch on the fields
the watcher may read (the pointer rule: a match on a withheld field would disclose it). Only
FULL records are delivered. Each delivery is audited before it is kept (fail closed: when the
audit cannot be written the event stays pending and is retried).

Hot lists: a plate read matching an agency's list becomes an alert for that agency alone, when
the read is visible to that agency for purpose ALPR-HOT (the in-state-only law, agreements);
each subscriber's push is decided again for that subscriber and audited.

Deconfliction: when a watch is made on a subject another agency watches, each is told of the
other (ORI, name, contact) only when both agencies allow it (``policies/live.yaml``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import uuid
from collections import defaultdict
from collections.abc import AsyncIterator, Callable, Iterable, Mapping, Sequence
from datetime import UTC, date, datetime
from typing import Any, Protocol

import msgspec

from hub.access.purposes import purpose_of
from hub.adapters.base import Adapter, SearchRequest
from hub.adapters.fanout import Outcome, fan_out
from hub.audit import AuditTrail
from hub.context import RequestContext, Subject
from hub.errors import InvalidInput, SourceUnavailable
from hub.live.model import Alert, Delivery, HotListEntry, Interest, Target, Watch, Watcher
from hub.live.rules import HotLists, LiveRules, Reloading
from hub.live.store import ALERT_DECODER, DELIVERY_DECODER, GROUP, LiveStore
from hub.model import (
    Agency,
    EntityKind,
    Person,
    PlateRead,
    Record,
    SourceKind,
    Vehicle,
    kind_of,
    normalise_plate,
)
from hub.settings import LiveSettings

log = logging.getLogger(__name__)

HOT_LIST_PURPOSE = "ALPR-HOT"
# The role an agency's hot list is decided as before it reaches anyone: the least a hot-list
# check needs (policies/README.md, roles); each subscriber is decided again with their own.
HOT_LIST_ROLE = "patrol"
REQUERY_LIMIT = 100
MAX_ATTEMPTS = 20  # handlings of one event before it is set aside (``_given_up``)
IDLE_CONSUMER_MS = 3600_000  # a consumer with nothing pending, idle this long, is forgotten
MAX_CASE_NUMBER = 64
MAX_TEXT = 200

# (record, the fields the watcher may search it on, text) -> whether the text matches
Matcher = Callable[[Record, frozenset[str], str], bool]


class Verdict(Protocol):
    @property
    def visibility(self) -> str: ...
    @property
    def denied_fields(self) -> frozenset[str]: ...
    @property
    def readable_fields(self) -> frozenset[str]: ...
    @property
    def rules(self) -> tuple[str, ...]: ...


class SourceCheck(Protocol):
    @property
    def allowed(self) -> bool: ...


class Decider(Protocol):
    """The access policy (``hub.access.policy.AccessPolicy``), the same one the resolvers use."""

    def decide(self, ctx: RequestContext, record: Record, now: datetime) -> Verdict: ...

    def check_source(
        self,
        ctx: RequestContext,
        owner: Agency,
        source_kind: SourceKind,
        kinds: frozenset[EntityKind],
    ) -> SourceCheck: ...

    def knows_agency(self, ori: str) -> bool: ...


class Event(msgspec.Struct, frozen=True, kw_only=True):
    kind: str  # "reads" | "notice" | "found"
    source: str = ""
    records: tuple[Record, ...] = ()
    refs: tuple[tuple[EntityKind, str], ...] = ()
    watch_id: str | None = None


_event = msgspec.json.Decoder(Event)

WATCH_KINDS: dict[Target, frozenset[EntityKind]] = {
    Target.PERSON: frozenset({EntityKind.PERSON}),
    Target.PLATE: frozenset({EntityKind.PLATE_READ, EntityKind.VEHICLE}),
    Target.TEXT: frozenset({EntityKind.PERSON, EntityKind.VEHICLE, EntityKind.INCIDENT}),
}


# How often each worker removes the events every worker is done with (``LiveStore.trim_handled``).
TRIM_EVERY_S = 5.0


def _now() -> datetime:
    return datetime.now(UTC)


class Live:
    """The live-results service of one worker: made and started in the app's lifespan."""

    def __init__(
        self,
        store: LiveStore,
        gate: Decider,
        trail: AuditTrail | None,
        adapters: Sequence[Adapter],
        agencies: Mapping[str, Agency],
        rules: Reloading[LiveRules],
        hot_lists: Reloading[HotLists],
        matcher: Matcher,
        settings: LiveSettings,
    ) -> None:
        self.store = store
        self.gate = gate
        self.trail = trail
        self.adapters = tuple(adapters)
        self.by_name = {a.name: a for a in self.adapters}
        self.agencies = agencies
        self.rules = rules
        self.hot_lists = hot_lists
        self.matcher = matcher
        self.settings = settings
        # The consumer's name says which process holds an event (XPENDING), for operators.
        self.consumer = f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:6]}"
        self._watches: list[Watch] = []
        self._version = -1
        self._tasks: list[asyncio.Task[None]] = []

    # -- lifecycle ----------------------------------------------------------------------------

    async def start(self, *, consume: bool = True) -> None:
        try:
            await self.store.ensure_group()
        except SourceUnavailable:
            # Redis down at start: the hub runs degraded (live fields say SOURCE_UNAVAILABLE);
            # the consumer makes the group once Redis answers.
            log.warning("live results: Redis unreachable at start; waiting for it")
        if consume:
            loop = asyncio.get_running_loop()
            self._tasks = [
                loop.create_task(self._consume(), name="live-consume"),
                loop.create_task(self._requery_loop(), name="live-requery"),
            ]

    async def close(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks = []
        await self.store.close()

    # -- watches (the resolvers' API) ---------------------------------------------------------

    async def watch(
        self,
        ctx: RequestContext,
        *,
        target: Target,
        text: str,
        until: datetime,
        purpose: str,
        case_number: str,
        plate_state: str | None = None,
        date_of_birth: date | None = None,
        person_id: str | None = None,
    ) -> tuple[Watch, list[Interest]]:
        """A new watch for ``ctx``'s subject, and the agencies that told of their interest."""
        subject = ctx.subject
        now = _now()
        if purpose_of(purpose) is None:
            raise InvalidInput("a watch states its purpose")
        case_number = case_number.strip()
        if not case_number or len(case_number) > MAX_CASE_NUMBER:
            raise InvalidInput(f"a watch needs a case number (1 to {MAX_CASE_NUMBER} characters)")
        if until.tzinfo is None:
            raise InvalidInput("until needs a time zone (e.g. 2026-12-31T00:00:00Z)")
        rules = self.rules.current()
        rules.check_until(purpose, subject.roles, now, until)
        text = text.strip()
        if target is Target.PLATE:
            text = normalise_plate(text)
            if not 1 <= len(text) <= 10:
                raise InvalidInput("plate must be 1 to 10 letters or digits")
        elif not text or len(text) > MAX_TEXT:
            raise InvalidInput(f"watch text must be 1 to {MAX_TEXT} characters")
        watcher = Watcher.of(subject)
        if len(await self._user_watches(watcher, now)) >= rules.max_watches:
            raise InvalidInput(f"at most {rules.max_watches} active watches per user")
        watch = Watch(
            id=uuid.uuid4().hex,
            watcher=watcher,
            purpose=purpose,
            case_number=case_number,
            target=target,
            text=text,
            plate_state=plate_state.upper() if plate_state else None,
            date_of_birth=date_of_birth.isoformat() if date_of_birth else None,
            person_id=person_id,
            created=now,
            until=until,
        )
        if target is not Target.PLATE:
            # What exists now is not news: the first answer is the baseline, delivered never;
            # the next round comes a full period later.
            await self.requery(watch, baseline=True)
            await self._requery_due(watch)
        await self.store.put_watch(watch)
        interests = await self._deconflict(watch, now)
        return watch, interests

    async def cancel(self, subject: Subject, watch_id: str) -> bool:
        """Cancel one of the subject's own watches; False for any other id (another user's
        watch is answered exactly as a watch that does not exist)."""
        watcher = Watcher.of(subject)
        for watch in await self.store.watches_of([watch_id[:64]]):
            if watch.watcher.key == watcher.key:
                await self.store.drop_watch(watch)
                return True
        return False

    async def watches(self, subject: Subject) -> list[Watch]:
        return await self._user_watches(Watcher.of(subject), _now())

    async def _user_watches(self, watcher: Watcher, now: datetime) -> list[Watch]:
        ids = await self.store.watch_ids_of_user(watcher.key)
        found = await self.store.watches_of(ids)
        return sorted(
            (w for w in found if w.watcher.key == watcher.key and w.active(now)),
            key=lambda w: w.created,
        )

    async def inbox(
        self, subject: Subject, after: str | None, limit: int
    ) -> list[tuple[str, Delivery]]:
        return await self.store.inbox(Watcher.of(subject).key, after, limit)

    def follow_inbox(self, subject: Subject, after: str = "$") -> AsyncIterator[tuple[str, Any]]:
        return self.store.follow(
            self.store.inbox_key(Watcher.of(subject).key), DELIVERY_DECODER, after
        )

    async def alerts(
        self, subject: Subject, after: str | None, limit: int
    ) -> list[tuple[str, Alert]]:
        return await self.store.alerts(subject.ori, after, limit)

    def follow_alerts(self, subject: Subject, after: str = "$") -> AsyncIterator[tuple[str, Any]]:
        return self.store.follow(self.store.alerts_key(subject.ori), ALERT_DECODER, after)

    async def admit_alert(self, ctx: RequestContext, alert: Alert) -> Verdict | None:
        """The verdict on an alert's read for one subscriber of the agency (None: not theirs
        to see), audited as a delivery to that subscriber before it is pushed."""
        if alert.agency != ctx.subject.ori:
            return None
        ctx = RequestContext(
            subject=ctx.subject,
            purpose=HOT_LIST_PURPOSE,
            case_number=ctx.case_number,
            client_address=ctx.client_address,
            request_id=ctx.request_id,
            received_at=_now(),
        )
        verdict = self._verdict(ctx, alert.read, _now())
        if verdict is None or "plate" not in verdict.readable_fields:
            return None
        await self._audit(ctx, "hotListAlertPush", {"alert": alert.id}, alert.read, verdict)
        return verdict

    def decide_delivery(self, subject: Subject, delivery: Delivery) -> Verdict | None:
        """The watcher's verdict on a delivered record now, under the watch's purpose (an
        inbox read or a push decides again: the policy may have changed since)."""
        if delivery.record is None:
            return None
        ctx = RequestContext(
            subject=subject, purpose=delivery.purpose, case_number=delivery.case_number
        )
        return self._verdict(ctx, delivery.record, _now())

    # -- events in ----------------------------------------------------------------------------

    async def publish_reads(self, source: str, reads: Sequence[PlateRead]) -> str | None:
        if not reads:
            return None
        return await self._publish(Event(kind="reads", source=source, records=tuple(reads)))

    async def publish_notices(
        self, source: str, refs: Sequence[tuple[EntityKind, str]]
    ) -> str | None:
        if not refs:
            return None
        return await self._publish(Event(kind="notice", source=source, refs=tuple(refs)))

    async def _publish(self, event: Event) -> str:
        # Sealed with the stream's name; the entry id is assigned by Redis.
        sealed = self.store.seal(event, self.store.events)
        added = await self.store.add_event(sealed)
        if added is None:
            raise SourceUnavailable(
                "live",
                f"{self.store.events_max:,} live events are waiting to be handled: nothing was "
                "dropped; send it again later",
            )
        return added

    # -- the consumer -------------------------------------------------------------------------

    async def _consume(self) -> None:
        store = self.store
        pause = 0.5
        trimmed = 0.0
        loop = asyncio.get_running_loop()
        while True:
            try:
                if loop.time() - trimmed >= TRIM_EVERY_S:
                    # What every worker is done with goes, so that the stream's bound counts
                    # the events still to handle (a push beyond it is refused, never dropped).
                    await store.trim_handled()
                    trimmed = loop.time()
                # First what a dead (or failing) consumer left pending long enough...
                claimed = await store.call(
                    store.client.xautoclaim(
                        store.events,
                        GROUP,
                        self.consumer,
                        min_idle_time=self.settings.claim_idle_ms,
                        start_id="0-0",
                        count=10,
                    )
                )
                for entry_id, fields in claimed[1]:
                    if await self._given_up(entry_id):
                        continue
                    await self._handle_safely(entry_id, fields)
                # ...then what is new, waiting for it at most a second.
                raw: Any = await store.blocking.xreadgroup(
                    GROUP, self.consumer, {store.events: ">"}, count=10, block=1000
                )
                for _, entries in raw or ():
                    for entry_id, fields in entries:
                        await self._handle_safely(entry_id, fields)
                pause = 0.5
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # the loop must outlive any one failure
                log.warning("live consumer: %s; retrying in %.1f s", type(exc).__name__, pause)
                await asyncio.sleep(pause)
                pause = min(pause * 2, 10.0)  # a Redis that is away is not asked twice a second
                # The group may not exist yet (Redis was down at start, or was emptied).
                with contextlib.suppress(SourceUnavailable):
                    await store.ensure_group()

    async def _given_up(self, entry_id: bytes | str) -> bool:
        """An event tried ``MAX_ATTEMPTS`` times (a vendor that never answers its fetch) is set
        aside on the dead-letter stream and acknowledged, so it does not cycle for ever."""
        store = self.store
        info = await store.call(
            store.client.xpending_range(store.events, GROUP, min=entry_id, max=entry_id, count=1)
        )
        if not info or int(info[0]["times_delivered"]) <= MAX_ATTEMPTS:
            return False
        eid = entry_id.decode() if isinstance(entry_id, bytes) else entry_id
        pipe = store.client.pipeline(transaction=True)
        pipe.xadd(f"{store.prefix}:dead", {"event": eid}, maxlen=10_000, approximate=True)
        pipe.xack(store.events, GROUP, eid)
        await store.call(pipe.execute())
        log.error("live event %s given up after %d attempts (kept in :dead)", eid, MAX_ATTEMPTS)
        return True

    async def _handle_safely(
        self, entry_id: bytes | str, fields: dict[bytes, bytes] | None
    ) -> None:
        eid = entry_id.decode() if isinstance(entry_id, bytes) else entry_id
        try:
            await self.handle_event(eid, fields)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # left pending: claimed, retried later
            log.warning("live event not handled (%s); it stays pending", type(exc).__name__)

    async def handle_event(self, event_id: str, fields: dict[bytes, bytes] | None) -> None:
        """Every delivery and alert one event makes, then its acknowledgement. Raises (and
        leaves the event pending) when a delivery cannot be audited or kept."""
        sealed = (fields or {}).get(b"e")
        event = self.store.open(sealed, self.store.events, _event) if sealed else None
        if event is not None:
            now = _now()
            watches = await self._active_watches(now)
            if event.kind == "reads":
                reads = [r for r in event.records if isinstance(r, PlateRead)]
                await self._hot_list(event_id, reads, now)
                await self._deliver_all(watches, list(event.records), now)
            elif event.kind == "notice":
                records = await self._fetch(event.source, event.refs)
                await self._deliver_all(watches, records, now)
            elif event.kind == "found":
                chosen = [w for w in watches if w.id == event.watch_id]
                await self._deliver_all(chosen, list(event.records), now)
        await self.store.ack(event_id)

    async def _active_watches(self, now: datetime) -> list[Watch]:
        version = await self.store.version()
        if version != self._version:
            self._watches = await self.store.all_watches()
            self._version = version
        return [w for w in self._watches if w.active(now)]

    async def _fetch(self, source: str, refs: Iterable[tuple[EntityKind, str]]) -> list[Record]:
        """The records a notice names, fresh from their vendor (a sealing shows now)."""
        adapter = self.by_name.get(source)
        if adapter is None:
            return []
        by_kind: dict[EntityKind, list[str]] = defaultdict(list)
        for kind, record_id in refs:
            if kind in adapter.entity_kinds:
                by_kind[kind].append(record_id)
        out: list[Record] = []
        for kind, ids in by_kind.items():

            async def get(a: Adapter, k: EntityKind = kind, i: list[str] = ids) -> list[Record]:
                return await a.get_many(k, i)

            answers = await fan_out([adapter], get)
            for answer in answers:
                if answer.status.status not in (Outcome.OK, Outcome.NO_HIT):
                    # No answer is not no record: left pending, asked again on the retry.
                    raise RuntimeError(f"source {source} did not answer a notice's fetch")
                out.extend(answer.records)
        return out

    # -- deliveries ---------------------------------------------------------------------------

    async def _deliver_all(
        self, watches: Sequence[Watch], records: Sequence[Record], now: datetime
    ) -> None:
        for watch in watches:
            for record in records:
                await self.deliver(watch, record, now)

    def _verdict(self, ctx: RequestContext, record: Record, now: datetime) -> Verdict | None:
        """FULL, from a source the subject may ask: else None."""
        owner = record.provenance.agency
        kind = kind_of(record)
        if not self.gate.check_source(
            ctx, owner, record.provenance.system.kind, frozenset({kind})
        ).allowed:
            return None
        verdict = self.gate.decide(ctx, record, now)
        return verdict if verdict.visibility == "FULL" else None

    def matches(self, watch: Watch, record: Record, readable: frozenset[str]) -> bool:
        """Whether ``record`` matches ``watch`` on the fields the watcher may read alone."""
        if watch.target is Target.PLATE:
            if not isinstance(record, PlateRead | Vehicle) or record.plate is None:
                return False
            return (
                "plate" in readable
                and normalise_plate(record.plate.number) == watch.text
                and (watch.plate_state is None or record.plate.state == watch.plate_state)
            )
        if watch.target is Target.PERSON:
            if not isinstance(record, Person):
                return False
            if watch.date_of_birth is not None and record.date_of_birth is not None:
                if "dateOfBirth" not in readable:
                    return False
                if record.date_of_birth.isoformat() != watch.date_of_birth:
                    return False
            return self.matcher(record, readable, watch.text)
        if isinstance(record, PlateRead):
            return "plate" in readable and normalise_plate(watch.text) == normalise_plate(
                record.plate.number
            )
        return self.matcher(record, readable, watch.text)

    async def deliver(self, watch: Watch, record: Record, now: datetime) -> bool:
        """Deliver ``record`` to ``watch``'s watcher if it is theirs to see and matches: decided
        now, audited, kept once. True when this call delivered it."""
        if not watch.active(now) or kind_of(record) not in WATCH_KINDS[watch.target]:
            return False
        delivery_id = self.store.cipher.name("delivery", watch.id, record.id)
        if await self.store.is_done(delivery_id):
            return False
        ctx = watch.context()
        verdict = self._verdict(ctx, record, now)
        if verdict is None or not self.matches(watch, record, verdict.readable_fields):
            return False
        await self._audit(
            ctx, "watchDelivery", {"watch": watch.id, "delivery": delivery_id}, record, verdict
        )
        delivery = Delivery(
            id=delivery_id,
            watch_id=watch.id,
            at=now,
            purpose=watch.purpose,
            case_number=watch.case_number,
            record=record,
        )
        return await self.store.deliver(delivery, watch.watcher.key)

    async def _audit(
        self,
        ctx: RequestContext,
        name: str,
        criteria: Mapping[str, Any],
        record: Record | None,
        verdict: Verdict | None,
    ) -> None:
        """One audit entry, durable before what it describes leaves (AuditUnavailable else)."""
        if self.trail is None:
            return
        async with self.trail.operation(ctx, name=name, criteria=criteria, activate=False) as op:
            if record is not None and verdict is not None:
                op.record_returned(record.id, record.provenance.agency.ori, verdict.visibility)
                type_name = type(record).__name__
                for field in sorted(verdict.denied_fields):
                    op.withheld(f"{type_name}.{field}", verdict.rules)

    # -- hot lists ----------------------------------------------------------------------------

    async def _hot_list(self, event_id: str, reads: Sequence[PlateRead], now: datetime) -> None:
        lists = self.hot_lists.current()
        for read in reads:
            by_agency: dict[str, list[HotListEntry]] = defaultdict(list)
            for entry in lists.entries_for(read.plate.number):
                if entry.matches(read):
                    by_agency[entry.agency].append(entry)
            for ori, entries in sorted(by_agency.items()):
                agency = self.agencies.get(ori)
                if agency is None:
                    continue
                ctx = RequestContext(
                    subject=Subject(
                        user_id="hot-list",
                        name=f"hot list of {ori}",
                        ori=ori,
                        state=agency.state,
                        roles=frozenset({HOT_LIST_ROLE}),
                    ),
                    purpose=HOT_LIST_PURPOSE,
                    request_id=f"live:{event_id}",
                    received_at=now,
                )
                verdict = self._verdict(ctx, read, now)
                if verdict is None or "plate" not in verdict.readable_fields:
                    continue  # not this agency's to see: in-state-only, no agreement
                alert_id = self.store.cipher.name("alert", ori, read.id)
                if await self.store.is_done(alert_id):
                    continue
                await self._audit(ctx, "hotListAlert", {"alert": alert_id}, read, verdict)
                await self.store.alert(
                    Alert(id=alert_id, agency=ori, at=now, read=read, entries=tuple(entries))
                )

    # -- deconfliction ------------------------------------------------------------------------

    async def _deconflict(self, watch: Watch, now: datetime) -> list[Interest]:
        rules = self.rules.current()
        mine = watch.watcher.ori
        others = await self.store.watches_of(await self.store.watch_ids_on(watch.subject_key))
        told: dict[str, Interest] = {}
        for other in others:
            theirs = other.watcher.ori
            if (
                not other.active(now)
                or other.subject_key != watch.subject_key
                or not rules.may_deconflict(mine, theirs)
            ):
                continue
            if theirs not in told:
                told[theirs] = self._interest(theirs, rules)
            # The other watcher learns of ours, once per watch of theirs and agency of ours.
            interest = self._interest(mine, rules)
            delivery_id = self.store.cipher.name("interest", other.id, mine)
            if not await self.store.is_done(delivery_id):
                await self._tell(other, interest, delivery_id, now)
        interests = list(told.values())
        for interest in interests:
            delivery_id = self.store.cipher.name("interest", watch.id, interest.ori)
            await self._tell(watch, interest, delivery_id, now)
        return interests

    async def _tell(
        self, watch: Watch, interest: Interest, delivery_id: str, now: datetime
    ) -> None:
        """Tell ``watch``'s watcher of another agency's interest: audited, then delivered."""
        await self._audit(
            watch.context(),
            "watchInterest",
            {"watch": watch.id, "agency": interest.ori},
            None,
            None,
        )
        await self.store.deliver(
            Delivery(
                id=delivery_id,
                watch_id=watch.id,
                at=now,
                purpose=watch.purpose,
                case_number=watch.case_number,
                interest=interest,
            ),
            watch.watcher.key,
        )

    def _interest(self, ori: str, rules: LiveRules) -> Interest:
        agency = self.agencies.get(ori)
        return Interest(ori=ori, name=agency.name if agency else ori, contact=rules.contact(ori))

    # -- re-query -----------------------------------------------------------------------------

    async def _requery_loop(self) -> None:
        period = self.settings.requery_s
        tick = max(0.2, min(period / 2, 5.0))
        while True:
            await asyncio.sleep(tick)
            try:
                now = _now()
                for watch in await self._active_watches(now):
                    if watch.target is Target.PLATE:
                        continue  # plates come from the ALPR systems' pushes
                    if await self._requery_due(watch):
                        await self.requery(watch)
                await self._sweep(now)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # the loop must outlive any one failure
                log.warning("live re-query: %s; next round", type(exc).__name__)

    async def _requery_due(self, watch: Watch) -> bool:
        """True for one worker once per period per watch (a lock that lapses)."""
        lock = f"{self.store.prefix}:lock:requery:{watch.id}"
        period_ms = int(self.settings.requery_s * 1000)
        return bool(
            await self.store.call(self.store.client.set(lock, self.consumer, nx=True, px=period_ms))
        )

    async def _sweep(self, now: datetime) -> None:
        """Expired watches go (one worker a minute)."""
        lock = f"{self.store.prefix}:lock:sweep"
        if not await self.store.call(self.store.client.set(lock, "1", nx=True, px=60_000)):
            return
        for watch in await self.store.all_watches():
            if now >= watch.until:
                await self.store.drop_watch(watch)
        # Workers that went away (restarted, killed) leave their consumer names in the group.
        store = self.store
        for consumer in await store.call(store.client.xinfo_consumers(store.events, GROUP)):
            if consumer["pending"] == 0 and consumer["idle"] > IDLE_CONSUMER_MS:
                await store.call(
                    store.client.xgroup_delconsumer(store.events, GROUP, consumer["name"])
                )

    async def requery(self, watch: Watch, *, baseline: bool = False) -> int:
        """Ask the sources that cannot push, as the watcher; what the watch had not seen is
        appended as an event (``baseline``: remembered only). Returns how many were new."""
        ctx = watch.context()
        request = SearchRequest(
            kinds=WATCH_KINDS[watch.target], text=watch.text, limit=REQUERY_LIMIT, context=ctx
        )
        adapters = [
            a
            for a in self.adapters
            if a.source_kind is not SourceKind.ALPR
            and a.answers(request)
            and self.gate.check_source(
                ctx, a.config.agency, a.source_kind, request.kinds & a.entity_kinds
            ).allowed
        ]
        answers = await fan_out(adapters, lambda a: a.search(request))
        if self.trail is not None:
            # Asking a source is an access: audited, though nothing leaves the hub here.
            async with self.trail.operation(
                ctx, name="watchRequery", criteria={"watch": watch.id}, activate=False
            ) as op:
                for answer in answers:
                    op.source_called(answer.status)
        records = [r for a in answers for r in a.records]
        if not records:
            if baseline:
                await self.store.mark_seen(watch.id, [])
            return 0
        seen_key = self.store.seen_key(watch.id)
        names = [self.store.cipher.name("seen", r.id) for r in records]
        known = await self.store.call(self.store.client.smismember(seen_key, names))
        fresh = [r for r, k in zip(records, known, strict=True) if not k]
        if fresh and not baseline:
            # Appended before it is remembered: a worker dying between the two appends it
            # again next round, and the delivery ids make that harmless.
            await self._publish(Event(kind="found", watch_id=watch.id, records=tuple(fresh)))
        await self.store.mark_seen(watch.id, [r.id for r in fresh])
        return 0 if baseline else len(fresh)
