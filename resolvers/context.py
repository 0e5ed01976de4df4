"""The per-request GraphQL context: where fetching, deciding and counting happen.

Every record that reaches a response passes through ``HubContext.show``: the owner's decision
(FULL, POINTER, INVISIBLE) and the field mask are applied there, whatever path reached the
record (search hit, lookup by id, relationship). Every vendor call passes through
``HubContext.ask``: the subject must be allowed to ask that source for this purpose before it
is contacted, and every source's outcome is recorded for ``extensions.sources``.
"""

from __future__ import annotations

import asyncio
import functools
from collections import Counter, defaultdict
from collections.abc import AsyncGenerator, Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import cached_property
from typing import Any, Protocol

from strawberry.dataloader import DataLoader

from hub import model
from hub.access.catalogue import TYPE_OF_KIND
from hub.access.purposes import Purpose
from hub.adapters.base import Adapter, SearchRequest
from hub.adapters.fanout import (
    SEVERITY,
    Outcome,
    SourceAnswer,
    SourceStatus,
    ask_source,
    fan_out,
)
from hub.context import RequestContext
from hub.errors import InvalidId
from hub.settings import Settings
from hub.shared.breaker import CircuitBreaker
from hub.shared.cache import SourceCache, lookup_key, search_key
from resolvers import present as p
from resolvers import types as t

Shown = t.Person | t.Vehicle | t.Incident | t.PlateRead | t.RecordPointer


def source_of(record: model.Record) -> str:
    """The configured source a record came through (a partner hub's records keep the partner's
    provenance, so this is read from the hub id, not the provenance)."""
    return _source_of_id(record.id)


@functools.lru_cache(maxsize=65_536)
def _source_of_id(hub_id: str) -> str:
    # Asked for every record shown, often more than once: decoding the id each time was 4 % of
    # a 1,000-record search. Bounded; the ids are the hub's own (a record's, not a caller's).
    return model.parse_id(hub_id).source


class RecordVerdict(Protocol):
    @property
    def visibility(self) -> str: ...  # "FULL" | "POINTER" | "INVISIBLE"

    @property
    def denied_fields(self) -> frozenset[str]: ...

    @property
    def readable_fields(self) -> frozenset[str]: ...

    @property
    def searchable_fields(self) -> frozenset[str]: ...

    @property
    def rules(self) -> tuple[str, ...]: ...


class SourceVerdict(Protocol):
    @property
    def allowed(self) -> bool: ...

    @property
    def status(self) -> str | None: ...

    @property
    def reason(self) -> str: ...


class Gate(Protocol):
    """The access policy as the resolvers see it (``hub.access.policy.AccessPolicy``)."""

    @property
    def version(self) -> str: ...

    def knows_agency(self, ori: str) -> bool: ...

    def check_source(
        self,
        ctx: RequestContext,
        owner: model.Agency,
        source_kind: model.SourceKind,
        kinds: frozenset[model.EntityKind],
    ) -> SourceVerdict: ...

    def decide(self, ctx: RequestContext, record: model.Record, now: datetime) -> RecordVerdict: ...

    def decide_involvement(
        self, ctx: RequestContext, owner: model.Agency, involvement: model.InvolvementRef
    ) -> RecordVerdict: ...


class OperationRecorder(Protocol):
    """What the audit trail needs to hear about during an operation (``hub.audit.Operation``)."""

    def source_called(self, status: SourceStatus) -> None: ...

    def record_returned(self, hub_id: str, owner: str, visibility: str | None = None) -> None: ...

    def withheld(self, field: str, rules: Iterable[str] = (), count: int = 1) -> None: ...

    def set_outcome(self, outcome: str, error_code: str | None = None) -> None: ...

    def annotate(
        self,
        *,
        name: str | None = None,
        document_hash: str | None = None,
        criteria: Mapping[str, Any] | None = None,
        policy_version: str | None = None,
    ) -> None: ...


@dataclass
class Services:
    """Made once in the app's lifespan; shared by every request."""

    settings: Settings
    adapters: tuple[Adapter, ...]
    gate: Gate
    # The audit log, for ``auditEvents`` (None when audit is off: benchmarks only).
    audit_log: Any = None
    # Vendor answers, cached before any access decision (hub.shared.cache); None: no cache.
    cache: SourceCache | None = None
    # Per-source circuit breakers (hub.shared.breaker); None: every source is always asked.
    breaker: CircuitBreaker | None = None

    @cached_property
    def by_name(self) -> dict[str, Adapter]:
        return {a.name: a for a in self.adapters}

    @cached_property
    def rank_of(self) -> dict[str, int]:
        """Each source's place in the configuration: the order ``extensions.sources`` lists
        them in."""
        return {a.name: i for i, a in enumerate(self.adapters)}


@dataclass(slots=True)
class _SourceBook:
    status: SourceStatus
    visible: set[str] = field(default_factory=set)


class HubContext:
    def __init__(
        self,
        services: Services,
        request: RequestContext,
        recorder: OperationRecorder | None = None,
    ) -> None:
        self.services = services
        self.request = request
        self.recorder = recorder
        self.purpose: Purpose | None = None  # set once the purpose is checked
        # A stream's audit: set by the edge that streams (hub.edge.websocket), awaited by a
        # subscription before its last payload; it writes the operation's entry (fail closed:
        # AuditUnavailable, and the last payload is not sent). None: nothing may stream.
        self.before_last_payload: Callable[[], Awaitable[None]] | None = None
        self.now = datetime.now(UTC)
        # Type.field -> values withheld (one FORBIDDEN_FIELD error each)
        self.withheld: Counter[str] = Counter()
        self.withheld_rules: dict[str, set[str]] = defaultdict(set)
        # Type.field -> where it was first withheld in the response (a gateway needs a path)
        self.withheld_paths: dict[str, list[str | int]] = {}
        self._entities_seen = 0
        # What each data root field was asked, as resolved (the audit entry's criteria).
        self.criteria: dict[str, list[dict[str, Any]]] = {}
        self._sources: dict[str, _SourceBook] = {}
        self._shown: dict[str, Shown | None] = {}
        self.records_loader: DataLoader[str, model.Record | None] = DataLoader(self._load_records)
        self.plate_reads_loader: DataLoader[tuple[str, str], list[model.Record]] = DataLoader(
            self._load_plate_reads
        )
        self.vehicles_loader: DataLoader[tuple[str, str], list[model.Record]] = DataLoader(
            self._load_vehicles_by_plate
        )

    def asked(self, field: str, **arguments: Any) -> None:
        self.criteria.setdefault(field, []).append(
            {k: v for k, v in arguments.items() if v is not None}
        )

    # -- asking sources ----------------------------------------------------------------------

    def note(self, status: SourceStatus) -> None:
        self._book(status)
        if status.status is not Outcome.SKIPPED:
            self._record(status)

    def _record(self, status: SourceStatus) -> None:
        if self.recorder is not None:
            self.recorder.source_called(status)

    def _book(self, status: SourceStatus) -> None:
        book = self._sources.get(status.source)
        if book is None:
            self._sources[status.source] = _SourceBook(status)
        elif SEVERITY[status.status] > SEVERITY[book.status.status]:
            # keep the worst outcome; latency of the slowest call
            slowest = max(book.status.latency_ms or 0.0, status.latency_ms or 0.0)
            book.status = status
            status.latency_ms = slowest or None

    def skip(self, adapter: Adapter, outcome: Outcome, message: str) -> SourceStatus:
        status = SourceStatus(adapter.name, adapter.config.agency.ori, outcome, message=message)
        self.note(status)
        return status

    async def ask(
        self,
        adapters: Sequence[Adapter],
        kinds: frozenset[model.EntityKind],
        call: Callable[[Adapter], Awaitable[list[model.Record]]],
        cache_key: str | None = None,
    ) -> tuple[list[SourceAnswer], list[SourceStatus]]:
        """Call the sources this subject may ask, in parallel; a status for every one.

        Order: policy (may this subject ask this source at all: a refused source is never
        contacted, not even its cache entry read), then the cache (vendor answers; every read
        is decided again for its reader by ``show``), then the circuit breaker, then the vendor.
        """
        allowed, answers, refused, cache_key = await self._admit(adapters, kinds, cache_key)
        for answer in answers:
            self.note(answer.status)

        async def answered(answer: SourceAnswer) -> None:
            # In the source's own task as its answer arrives, while slower sources are still
            # out: its audit span and metrics, its breaker, the cache. Only the slowest
            # source's share is left once the last answer is in.
            self._record(answer.status)
            await self._after_fetch(answer, cache_key)

        fetched = await fan_out(allowed, call, answered)
        # The books are kept in the order of the sources.
        for answer in fetched:
            self._book(answer.status)
        return [*answers, *fetched], refused

    async def ask_as_completed(
        self,
        adapters: Sequence[Adapter],
        kinds: frozenset[model.EntityKind],
        call: Callable[[Adapter], Awaitable[list[model.Record]]],
        cache_key: str | None = None,
    ) -> AsyncGenerator[SourceAnswer | SourceStatus, None]:
        """``ask``, one source at a time as each answers: first the status of every source not
        asked (policy, circuit breaker), then the cache's answers, then the vendors' in the
        order they arrive, each bounded by its own timeout. Closing the iterator early cancels
        the calls still out (``aclosing``)."""
        allowed, cached, refused, cache_key = await self._admit(adapters, kinds, cache_key)
        for status in refused:
            yield status
        for answer in cached:
            self.note(answer.status)
            yield answer
        calls = [asyncio.create_task(ask_source(adapter, call)) for adapter in allowed]
        try:
            for arrived in asyncio.as_completed(calls):
                answer = await arrived
                await self._after_fetch(answer, cache_key)
                self.note(answer.status)
                yield answer
        finally:
            for task in calls:
                task.cancel()
            # Each call ends within its source's timeout; cancelled, at once.
            await asyncio.gather(*calls, return_exceptions=True)

    async def _admit(
        self,
        adapters: Sequence[Adapter],
        kinds: frozenset[model.EntityKind],
        cache_key: str | None,
    ) -> tuple[list[Adapter], list[SourceAnswer], list[SourceStatus], str | None]:
        """What ``ask`` does before any vendor is called: the sources to call, the answers the
        cache holds, the statuses of the sources not asked, and the cache key for this agency."""
        allowed: list[Adapter] = []
        refused: list[SourceStatus] = []
        for adapter in adapters:
            # Only what this source holds is asked of it: an ALPR asked for PERSON and
            # PLATE_READ is asked for plate reads, and the policy decides on that.
            verdict = self.services.gate.check_source(
                self.request,
                adapter.config.agency,
                adapter.source_kind,
                kinds & adapter.entity_kinds,
            )
            if verdict.allowed:
                allowed.append(adapter)
            else:
                refused.append(
                    self.skip(adapter, Outcome(verdict.status or "DENIED"), verdict.reason)
                )
        cache = self.services.cache if cache_key is not None else None
        if cache_key is not None:
            # Answers are shared within the asking agency only: a hit (`cached`, or its speed)
            # would tell another agency that someone searched the very same thing just before.
            cache_key = f"{self.request.subject.ori}\x1f{cache_key}"
        answers: list[SourceAnswer] = []
        if cache is not None and cache_key is not None:
            found = await cache.get_many([a.name for a in allowed], cache_key)
            misses = []
            for adapter, records in zip(allowed, found, strict=True):
                if records is None:
                    misses.append(adapter)
                    continue
                status = SourceStatus(
                    adapter.name, adapter.config.agency.ori,
                    Outcome.OK if records else Outcome.NO_HIT,
                    count=len(records), latency_ms=0.0, cached=True,
                )  # fmt: skip
                answers.append(SourceAnswer(adapter, status, records))
            allowed = misses
        allowed = await self._breakers_allow(allowed, refused)
        return allowed, answers, refused, cache_key

    async def _breakers_allow(
        self, adapters: list[Adapter], refused: list[SourceStatus]
    ) -> list[Adapter]:
        breaker = self.services.breaker
        if breaker is None or not adapters:
            return adapters
        open_or_closed = await breaker.before_calls([a.name for a in adapters])
        allowed = []
        for adapter, go in zip(adapters, open_or_closed, strict=True):
            if go:
                allowed.append(adapter)
            else:
                # Skipped fast, but a failure all the same: no answer is not no hit.
                refused.append(
                    self.skip(
                        adapter, Outcome.ERROR,
                        "circuit open after repeated failures; asked again after a cool-down",
                    )
                )  # fmt: skip
        return allowed

    async def _after_fetch(self, answer: SourceAnswer, cache_key: str | None) -> None:
        """One source's answer told to its breaker and kept in the cache. Awaited in turn, not
        as tasks: in memory neither waits, and with Redis the source's task is the one that
        waits for them, while the other sources' tasks go on."""
        breaker, cache = self.services.breaker, self.services.cache
        ok = answer.status.status in (Outcome.OK, Outcome.NO_HIT)
        if breaker is not None:
            await breaker.record(answer.adapter.name, ok)
        if ok and cache is not None and cache_key is not None:
            await cache.put(answer.adapter.name, cache_key, answer.records)

    def source_statuses(self) -> list[t.SourceStatus]:
        """``extensions.sources``: one per source this request touched, counting visible records,
        in the configuration's order. Never in the order they answered: lookups of several
        sources finish in any order, and an order that follows timing tells a reader which
        source had more to do (seen: a sealed record's id beside a visible one)."""
        out = []
        rank = self.services.rank_of
        for book in sorted(self._sources.values(), key=lambda b: rank.get(b.status.source, -1)):
            s = book.status
            outcome = s.status
            if outcome in (Outcome.OK, Outcome.NO_HIT):
                outcome = Outcome.OK if book.visible else Outcome.NO_HIT
            out.append(
                t.SourceStatus(
                    source=s.source,
                    agency=s.agency,
                    status=t.SourceOutcome(outcome.value),
                    count=len(book.visible),
                    latency_ms=s.latency_ms,
                    message=s.message,
                    cached=s.cached,
                )
            )
        return out

    @property
    def touched_sources(self) -> bool:
        return bool(self._sources)

    # -- the gate -----------------------------------------------------------------------------

    def searchable(self, record: model.Record) -> frozenset[str] | None:
        """The fields a search may match ``record`` on for this subject (None: invisible)."""
        verdict = self.services.gate.decide(self.request, record, self.now)
        if verdict.visibility == "INVISIBLE":
            return None
        return verdict.searchable_fields

    async def involved_names(self, incidents: Sequence[model.Incident]) -> dict[str, list[str]]:
        """Per incident, the names of the people it involves that this subject may read: the
        involvement is shown to it, and so is the person's record with its name. A search may
        find the incident (or its pointer, where the owner consents) by them; batched."""
        refs = [(incident, ref) for incident in incidents for ref in incident.involvements]
        if not refs:
            return {}
        people = await self.records_loader.load_many([ref.person_id for _, ref in refs])
        gate = self.services.gate
        out: dict[str, list[str]] = defaultdict(list)
        for (incident, ref), person in zip(refs, people, strict=True):
            if not isinstance(person, model.Person):
                continue
            part = gate.decide_involvement(self.request, incident.provenance.agency, ref)
            if part.visibility != "FULL" or "person" in part.denied_fields:
                continue
            readable = gate.decide(self.request, person, self.now).readable_fields
            names = ([person.name] if "name" in readable else []) + (
                list(person.aliases) if "aliases" in readable else []
            )
            out[incident.id] += [
                " ".join(x for x in (n.given, n.middle, n.surname, n.suffix) if x) for n in names
            ]
        return dict(out)

    def found_by(self, record: model.Record, field: str) -> bool:
        """Whether a record found by the value of its ``field`` (a plate read by its plate) may
        be shown: only to a subject who may read that field, or the finding would confirm it."""
        verdict = self.services.gate.decide(self.request, record, self.now)
        return verdict.visibility == "FULL" and field in verdict.readable_fields

    def show(
        self, record: model.Record, *, path: Sequence[str | int] | None = None, hit: bool = False
    ) -> Shown | None:
        """The record as this subject may see it: object, pointer, or None (invisible).

        ``path``: where the record stands in the response (for FORBIDDEN_FIELD errors).
        ``hit``: a search hit, shown only after ``searchable`` said the text matches it where
        the subject may search; only a hit can stand as a pointer. Anywhere else (a lookup by
        id, a relationship) a pointer reads None and leaves no trace: not counted, not audited.
        """
        if record.id in self._shown:
            known = self._shown[record.id]
            return None if isinstance(known, t.RecordPointer) and not hit else known
        verdict = self.services.gate.decide(self.request, record, self.now)
        shown: Shown | None
        if verdict.visibility == "INVISIBLE":
            shown = None
        elif verdict.visibility == "POINTER":
            if not hit:
                return None
            # The owner's pointer index: learning that it holds a matching record is allowed.
            shown = p.pointer(record)
        else:
            shown = p.present(record, verdict.readable_fields)
            type_name = TYPE_OF_KIND[model.kind_of(record)]
            for name in verdict.denied_fields:
                key = f"{type_name}.{name}"
                self.withheld[key] += 1
                self.withheld_rules[key].update(verdict.rules)
                if path is not None and key not in self.withheld_paths:
                    self.withheld_paths[key] = [*path, name]
        if shown is not None:
            book = self._sources.get(source_of(record))
            if book is not None:
                book.visible.add(record.id)
            if self.recorder is not None:
                self.recorder.record_returned(
                    record.id, record.provenance.agency.ori, verdict.visibility
                )
        self._shown[record.id] = shown
        return shown

    def show_all(self, records: Iterable[model.Record]) -> list[Shown]:
        # Relationship lists: no path (the list's own resolver knows it, the records do not).
        return [s for s in (self.show(r) for r in records) if s is not None]

    # -- loaders (batched: one vendor call per source, never one per row) ---------------------

    def prime(self, records: Iterable[model.Record]) -> None:
        for record in records:
            self.records_loader.prime(record.id, record)

    async def _load_records(self, ids: list[str]) -> list[model.Record | None]:
        groups: dict[tuple[str, model.EntityKind], list[str]] = defaultdict(list)
        for hub_id in ids:
            try:
                ref = model.parse_id(hub_id)
            except InvalidId:
                continue
            if ref.source in self.services.by_name:
                groups[(ref.source, ref.kind)].append(ref.record_id)

        async def fetch(source: str, kind: model.EntityKind, record_ids: list[str]) -> None:
            adapter = self.services.by_name[source]
            if kind not in adapter.entity_kinds:
                return
            answers, _ = await self.ask(
                [adapter],
                frozenset({kind}),
                lambda a: a.get_many(kind, record_ids),
                lookup_key(kind, record_ids),
            )
            for answer in answers:
                for record in answer.records:
                    found[record.id] = record

        found: dict[str, model.Record] = {}
        await asyncio.gather(*(fetch(s, k, r) for (s, k), r in groups.items()))
        return [found.get(i) for i in ids]

    async def _by_plates(
        self, keys: list[tuple[str, str]], kind: model.EntityKind
    ) -> list[list[model.Record]]:
        adapters = [a for a in self.services.adapters if kind in a.entity_kinds]
        plates = tuple(sorted({number for number, _ in keys}))
        request = SearchRequest(
            kinds=frozenset({kind}),
            plates=plates,
            limit=min(100 * len(plates), 10_000),
            context=self.request,
        )
        answers, _ = await self.ask(
            adapters, request.kinds, lambda a: a.search(request), search_key(request)
        )
        for answer in answers:
            self.prime(answer.records)
        by_key: dict[tuple[str, str], list[model.Record]] = defaultdict(list)
        for answer in answers:
            for record in answer.records:
                assert isinstance(record, model.Vehicle | model.PlateRead)
                if record.plate is not None:
                    by_key[(record.plate.number, record.plate.state)].append(record)
        return [by_key.get(key, []) for key in keys]

    async def _load_plate_reads(self, keys: list[tuple[str, str]]) -> list[list[model.Record]]:
        return await self._by_plates(keys, model.EntityKind.PLATE_READ)

    async def _load_vehicles_by_plate(
        self, keys: list[tuple[str, str]]
    ) -> list[list[model.Record]]:
        return await self._by_plates(keys, model.EntityKind.VEHICLE)

    # -- Relations (what the types' relationship resolvers call) ------------------------------

    async def records_by_id(self, ids: tuple[str, ...]) -> list[Any]:
        if not ids:
            return []
        records = await self.records_loader.load_many(list(ids))
        return self.show_all(r for r in records if r is not None)

    async def record_by_id(self, hub_id: str, path: Sequence[str | int] | None = None) -> Any:
        record = await self.records_loader.load(hub_id)
        return None if record is None else self.show(record, path=path)

    async def entity(
        self, hub_id: str, kind: model.EntityKind, path: Sequence[str | int] | None = None
    ) -> Any:
        """A record by hub id for a federation gateway: null when it is not of ``kind``, absent,
        invisible, or only a pointer (an entity cannot stand as a pointer)."""
        # strawberry resolves _entities' representations in order with one shared `info`: the
        # position in the list is the order of these calls (counted before any await).
        if path is not None:
            path = [*path, self._entities_seen]
        self._entities_seen += 1
        self.asked("_entities", id=hub_id, kind=kind.value)
        try:
            ref = model.parse_id(hub_id)
        except InvalidId:
            return None
        if ref.kind is not kind:
            return None
        shown = await self.record_by_id(hub_id, path)
        return None if isinstance(shown, t.RecordPointer) else shown

    async def plate_reads_of(self, plate: model.LicensePlate) -> list[t.PlateRead]:
        records = await self.plate_reads_loader.load((plate.number, plate.state))
        ordered = sorted(
            (r for r in records if self.found_by(r, "plate")),
            key=lambda r: r.read_at if isinstance(r, model.PlateRead) else self.now,
            reverse=True,
        )
        return [s for s in self.show_all(ordered) if isinstance(s, t.PlateRead)]

    async def vehicle_of_plate(self, plate: model.LicensePlate) -> t.Vehicle | None:
        records = await self.vehicles_loader.load((plate.number, plate.state))
        for shown in self.show_all(r for r in records if self.found_by(r, "plate")):
            if isinstance(shown, t.Vehicle):
                return shown
        return None

    async def involvements(
        self, refs: tuple[model.InvolvementRef, ...], side: str
    ) -> list[t.Involvement]:
        if not refs:
            return []
        ids = [ref.incident_id if side == "incident" else ref.person_id for ref in refs]
        own = [ref.person_id if side == "incident" else ref.incident_id for ref in refs]
        records = await self.records_loader.load_many(ids + own)
        out = []
        for i, ref in enumerate(refs):
            other = records[i]
            mine = records[len(refs) + i]
            holder = other or mine
            if holder is None:
                continue
            # The involvement is the owner's record too (a victim's part in a sex offence is
            # withheld on its own, whatever the person record allows).
            verdict = self.services.gate.decide_involvement(
                self.request, holder.provenance.agency, ref
            )
            if verdict.visibility != "FULL":
                continue
            if side == "incident" and "person" in verdict.denied_fields:
                # Listed under the person's own record, the involvement would link that very
                # person to the incident: withheld whole (a victim of a sex offence).
                continue
            other_shown = None if other is None else self.show(other)
            mine_shown = None if mine is None else self.show(mine)
            if other_shown is None or isinstance(other_shown, t.RecordPointer):
                # The other side is not the subject's to see: the involvement says nothing.
                continue
            for name in verdict.denied_fields:
                self.withheld[f"Involvement.{name}"] += 1
                self.withheld_rules[f"Involvement.{name}"].update(verdict.rules)
            person = (
                None
                if "person" in verdict.denied_fields
                else (other_shown if side == "person" else mine_shown)
            )
            incident = (
                None
                if "incident" in verdict.denied_fields
                else (other_shown if side == "incident" else mine_shown)
            )
            out.append(
                t.Involvement(
                    role=None if "role" in verdict.denied_fields else ref.role,
                    person=person if isinstance(person, t.Person) else None,
                    incident=incident if isinstance(incident, t.Incident) else None,
                )
            )
        return out
