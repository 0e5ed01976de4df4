"""A partner hub as a source (adapter kind ``hub``): another hub's GraphQL API over aiohttp.

Each call carries this hub's service-account token at the partner (``api_key``), a fresh
requester assertion signed by this hub (``hub.trust.federation``: who the original requester is, the
purpose and case, the hub chain, the trace id), the ``X-Purpose`` / ``X-Case-Number`` headers
and the trace context of the operation (W3C ``traceparent``, injected by
``opentelemetry.propagate``). The partner applies its own policy to the original requester and
audits the call under the same trace id; what comes back is mapped to canonical records that
keep the partner's provenance (owning agency, system, vendor record id), with hub ids in this
hub's namespace: ``make_id(<this source's name>, kind, <the partner's hub id>)``, so a lookup by
id comes back here and goes to the partner's ``_entities``.

What is asked of the partner:

- text search: its ``search``;
- plates (relationships Vehicle.plateReads, PlateRead.vehicle): ``plateReads`` per plate, and
  ``search(kinds: [VEHICLE])`` per plate, exact plates kept, as aliases of one document;
- ``get_many``: its federation ``_entities`` (one call per 100 ids).

Decided and documented (docs/partner-hubs.md):

- The partner's ``RecordPointer`` hits are dropped: a pointer is the owner saying "ask us",
  and this hub can only show pointers its own policy makes from records.
- Relationships by id of a partner's records (Person.vehicles, Person.incidents,
  Vehicle.registeredOwner, Incident.involved*) are not followed across hubs: the partner would
  fetch them for every hit whether or not anyone asks. Relationships by plate are.
- A field the partner withheld arrives null and stays null here; an incident's kind withheld by
  the partner is read from its system (RMS: REPORT, CAD: CALL); a plate read without its plate
  or time is dropped.
- ``answers`` is False when the partner is already in the request's hub chain, so a request
  that came from the partner is never sent back to it (the partner would refuse: HUB_LOOP).
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Mapping, Sequence
from datetime import date, datetime
from typing import Any, Protocol, runtime_checkable

import aiohttp
import msgspec
from opentelemetry import propagate, trace

from hub.adapters.base import Adapter, SearchRequest, SourceConfig
from hub.adapters.calls import batches, run_together
from hub.adapters.http import decode_wire, request_bytes
from hub.context import RequestContext
from hub.errors import (
    HubError,
    SourceAuthError,
    SourceError,
    SourceProtocolError,
    SourceUnavailable,
)
from hub.model import (
    Address,
    Agency,
    DriverLicense,
    EntityKind,
    Incident,
    IncidentKind,
    LicensePlate,
    Location,
    Offense,
    Person,
    PersonName,
    PlateRead,
    Provenance,
    Record,
    SourceKind,
    SourceSystem,
    Vehicle,
    make_id,
    normalise_plate,
)
from hub.trust.federation import ASSERTION_HEADER, AssertionSigner, HubLoop, current_request

# Aliases per document: partners limit aliases (30 by default) and tokens (2,000).
MAX_PLATES_PER_CALL = 20
MAX_IDS_PER_CALL = 100
MAX_PARALLEL_CALLS = 4
# What a wrong answer is called in its error ("partner hub answer has the wrong shape at ...").
PARTNER_ANSWER = "partner hub answer"

_FRAGMENTS = """
fragment Prov on Provenance { agency { ori name state } system { name vendor kind }
  recordId lastUpdated retrievedAt }
fragment Name on PersonName { given middle surname suffix }
fragment Loc on Location { address latitude longitude }
fragment Per on Person { __typename id provenance { ...Prov } name { ...Name }
  aliases { ...Name } dateOfBirth sex race height weight ssn driverLicense { number state }
  addresses { street city state postalCode } phones cautions }
fragment Veh on Vehicle { __typename id provenance { ...Prov } vin plate { number state }
  make model year color }
fragment Inc on Incident { __typename id provenance { ...Prov } number kind
  offenses { code description } occurredAt reportedAt location { ...Loc } status narrative }
fragment Read on PlateRead { __typename id provenance { ...Prov } plate { number state }
  readAt location { ...Loc } camera confidence imageUrl }
"""

SEARCH = (
    """
query PartnerSearch($text: String!, $kinds: [EntityKind!], $limit: Int) {
  search(text: $text, kinds: $kinds, limit: $limit) {
    hits { __typename ...Per ...Veh ...Inc ...Read }
    sources { source status count }
  }
}"""
    + _FRAGMENTS
)

ENTITIES = (
    """
query PartnerEntities($representations: [_Any!]!) {
  _entities(representations: $representations) { __typename ...Per ...Veh ...Inc ...Read }
}"""
    + _FRAGMENTS
)

_TYPENAME = {
    EntityKind.PERSON: "Person",
    EntityKind.VEHICLE: "Vehicle",
    EntityKind.INCIDENT: "Incident",
    EntityKind.PLATE_READ: "PlateRead",
}


# -- the partner's answer, as msgspec reads it (a wrong shape is refused as a whole) -------------


class _Agency(msgspec.Struct, frozen=True):
    ori: str
    name: str
    state: str


class _System(msgspec.Struct, frozen=True):
    name: str
    vendor: str
    kind: SourceKind


class _Provenance(msgspec.Struct, frozen=True, rename="camel"):
    agency: _Agency
    system: _System
    record_id: str
    retrieved_at: datetime
    last_updated: datetime | None = None


class _Name(msgspec.Struct, frozen=True):
    given: str | None = None
    middle: str | None = None
    surname: str | None = None
    suffix: str | None = None


class _License(msgspec.Struct, frozen=True):
    number: str
    state: str


class _Address(msgspec.Struct, frozen=True, rename="camel"):
    street: str | None = None
    city: str | None = None
    state: str | None = None
    postal_code: str | None = None


class _Plate(msgspec.Struct, frozen=True):
    number: str
    state: str


class _Location(msgspec.Struct, frozen=True):
    address: str | None = None
    latitude: float | None = None
    longitude: float | None = None


class _Offense(msgspec.Struct, frozen=True):
    code: str
    description: str


class _Hit(msgspec.Struct, frozen=True, tag_field="__typename"):
    pass


class _Person(_Hit, frozen=True, tag="Person", rename="camel"):
    id: str
    provenance: _Provenance
    name: _Name | None = None
    aliases: list[_Name] | None = None
    date_of_birth: date | None = None
    sex: str | None = None
    race: str | None = None
    height: int | None = None
    weight: int | None = None
    ssn: str | None = None
    driver_license: _License | None = None
    addresses: list[_Address] | None = None
    phones: list[str] | None = None
    cautions: list[str] | None = None


class _Vehicle(_Hit, frozen=True, tag="Vehicle", rename="camel"):
    id: str
    provenance: _Provenance
    vin: str | None = None
    plate: _Plate | None = None
    make: str | None = None
    model: str | None = None
    year: int | None = None
    color: str | None = None


class _Incident(_Hit, frozen=True, tag="Incident", rename="camel"):
    id: str
    provenance: _Provenance
    number: str | None = None
    kind: IncidentKind | None = None
    offenses: list[_Offense] | None = None
    occurred_at: datetime | None = None
    reported_at: datetime | None = None
    location: _Location | None = None
    status: str | None = None
    narrative: str | None = None


class _PlateRead(_Hit, frozen=True, tag="PlateRead", rename="camel"):
    id: str
    provenance: _Provenance
    plate: _Plate | None = None
    read_at: datetime | None = None
    location: _Location | None = None
    camera: str | None = None
    confidence: float | None = None
    image_url: str | None = None


class _Pointer(_Hit, frozen=True, tag="RecordPointer"):
    pass


_AnyHit = _Person | _Vehicle | _Incident | _PlateRead | _Pointer


class _Error(msgspec.Struct, frozen=True):
    message: str = ""
    extensions: dict[str, Any] | None = None

    @property
    def code(self) -> str:
        return str((self.extensions or {}).get("code", "INTERNAL"))


class _PartnerStatus(msgspec.Struct, frozen=True):
    source: str
    status: str
    count: int = 0


class _Search(msgspec.Struct, frozen=True):
    hits: list[_AnyHit]
    sources: list[_PartnerStatus] = []


class _SearchData(msgspec.Struct, frozen=True):
    search: _Search | None = None


class _SearchAnswer(msgspec.Struct, frozen=True):
    data: _SearchData | None = None
    errors: list[_Error] = []


class _EntitiesData(msgspec.Struct, frozen=True, rename={"entities": "_entities"}):
    entities: list[_AnyHit | None] | None = None


class _EntitiesAnswer(msgspec.Struct, frozen=True):
    data: _EntitiesData | None = None
    errors: list[_Error] = []


class _AliasedAnswer(msgspec.Struct, frozen=True):
    """Aliased root fields: each a list (plateReads) or a search result."""

    data: dict[str, list[_AnyHit] | _Search | None] | None = None
    errors: list[_Error] = []


# An owner's expungement or sealing notice, passed on to a hub that was shown the record
# (hub.oversight.notices): the id is this partner's own hub id of the record.
NOTICE = (
    "mutation ForwardNotice($id: ID!, $notice: RecordNotice!) "
    "{ recordNotice(id: $id, notice: $notice) { id } }"
)


class _NoticeData(msgspec.Struct, frozen=True, rename={"notice": "recordNotice"}):
    notice: dict[str, Any] | None = None


class _NoticeAnswer(msgspec.Struct, frozen=True):
    data: _NoticeData | None = None
    errors: list[_Error] = []


@runtime_checkable
class ForwardsRequester(Protocol):
    """An adapter that signs requester assertions (``hub.edge.app`` hands it this hub's signer)."""

    def use_signer(self, signer: AssertionSigner) -> None: ...


def attach_signer(adapters: Iterable[Adapter], signer: AssertionSigner) -> None:
    for adapter in adapters:
        if isinstance(adapter, ForwardsRequester):
            adapter.use_signer(signer)


class PartnerHubAdapter(Adapter):
    kind = "hub"
    vendor = "hub"
    source_kind = SourceKind.HUB
    entity_kinds = frozenset(EntityKind)

    def __init__(
        self,
        config: SourceConfig,
        session: aiohttp.ClientSession,
        signer: AssertionSigner | None = None,
    ) -> None:
        super().__init__(config, session)
        # The id the partner knows itself by: the audience of our assertions.
        self.partner_id = config.options.get("hub_id", config.name)
        self.signer = signer
        self._graphql_url = f"{config.url}/graphql"
        self._parallel = asyncio.Semaphore(MAX_PARALLEL_CALLS)

    def use_signer(self, signer: AssertionSigner) -> None:
        self.signer = signer

    def answers(self, request: SearchRequest) -> bool:
        ctx = request.context or current_request.get()
        if ctx is not None and self.partner_id in ctx.hub_chain:
            return False
        return super().answers(request)

    # -- the contract ------------------------------------------------------------------------

    async def search(self, request: SearchRequest) -> list[Record]:
        ctx = self._requester(request.context)
        records: list[Record] = []
        if request.text:
            kinds = sorted(k.value for k in request.kinds & self.entity_kinds)
            body = await self._post(
                ctx, SEARCH, {"text": request.text, "kinds": kinds, "limit": request.limit}
            )
            answer = decode_wire(self.name, body, _SearchAnswer, PARTNER_ANSWER)
            search = answer.data.search if answer.data is not None else None
            if search is None:
                raise self._refusal(answer.errors)
            records.extend(self._records(search.hits))
        if request.plates:
            records.extend(await self._by_plates(ctx, request))
        return records

    async def get_many(self, kind: EntityKind, record_ids: Sequence[str]) -> list[Record]:
        ctx = self._requester(None)
        found = await run_together(
            self._entities(ctx, kind, chunk) for chunk in batches(record_ids, MAX_IDS_PER_CALL)
        )
        return [record for chunk in found for record in chunk]

    async def send_notice(self, ctx: RequestContext, record_id: str, notice: str) -> None:
        """Tell the partner that the record it was shown (``record_id``: this hub's id of it,
        the partner's record id) was expunged or sealed; signed as ``ctx``'s requester."""
        body = await self._post(ctx, NOTICE, {"id": record_id, "notice": notice})
        answer = decode_wire(self.name, body, _NoticeAnswer, PARTNER_ANSWER)
        if answer.data is None or answer.data.notice is None:
            raise self._refusal(answer.errors)

    # -- calls -------------------------------------------------------------------------------

    async def _entities(
        self, ctx: RequestContext, kind: EntityKind, ids: Sequence[str]
    ) -> list[Record]:
        representations = [{"__typename": _TYPENAME[kind], "id": i} for i in ids]
        body = await self._post(ctx, ENTITIES, {"representations": representations})
        answer = decode_wire(self.name, body, _EntitiesAnswer, PARTNER_ANSWER)
        entities = answer.data.entities if answer.data is not None else None
        if entities is None:
            raise self._refusal(answer.errors)
        # Null: absent, or not the requester's to see there; either way not a record here.
        return self._records(e for e in entities if e is not None)

    async def _by_plates(self, ctx: RequestContext, request: SearchRequest) -> list[Record]:
        plates = sorted({normalise_plate(p) for p in request.plates if normalise_plate(p)})
        calls = []
        for chunk in batches(plates, MAX_PLATES_PER_CALL):
            if EntityKind.PLATE_READ in request.kinds:
                calls.append(self._plate_reads(ctx, chunk, request))
            if EntityKind.VEHICLE in request.kinds:
                calls.append(self._vehicles(ctx, chunk, request))
        found = await run_together(calls)
        return [record for chunk in found for record in chunk]

    async def _plate_reads(
        self, ctx: RequestContext, plates: Sequence[str], request: SearchRequest
    ) -> list[Record]:
        declared = ["$state: String", "$since: DateTime", "$until: DateTime", "$limit: Int"]
        fields = []
        variables: dict[str, Any] = {
            "state": request.plate_state,
            "since": request.since.isoformat() if request.since else None,
            "until": request.until.isoformat() if request.until else None,
            "limit": request.limit,
        }
        for i, plate in enumerate(plates):
            declared.append(f"$p{i}: String!")
            variables[f"p{i}"] = plate
            fields.append(
                f"p{i}: plateReads(plate: $p{i}, state: $state, since: $since, until: $until, "
                "limit: $limit) { ...Read }"
            )
        document = self._aliased("PartnerPlateReads", declared, fields, "Prov Loc Read")
        return self._aliased_records(await self._post(ctx, document, variables))

    async def _vehicles(
        self, ctx: RequestContext, plates: Sequence[str], request: SearchRequest
    ) -> list[Record]:
        declared = ["$limit: Int"]
        fields = []
        variables: dict[str, Any] = {"limit": request.limit}
        for i, plate in enumerate(plates):
            declared.append(f"$p{i}: String!")
            variables[f"p{i}"] = plate
            fields.append(
                f"p{i}: search(text: $p{i}, kinds: [VEHICLE], limit: $limit) "
                "{ hits { __typename ...Veh } }"
            )
        document = self._aliased("PartnerVehicles", declared, fields, "Prov Veh")
        wanted = set(plates)
        return [
            r
            for r in self._aliased_records(await self._post(ctx, document, variables))
            if isinstance(r, Vehicle)
            and r.plate is not None
            and r.plate.number in wanted
            and (request.plate_state is None or r.plate.state == request.plate_state)
        ]

    @staticmethod
    def _aliased(name: str, declared: list[str], fields: list[str], fragments: str) -> str:
        wanted = set(fragments.split())
        kept = [
            f"fragment {block}"
            for block in _FRAGMENTS.split("fragment ")[1:]
            if block.split()[0] in wanted
        ]
        return (
            f"query {name}({', '.join(declared)}) {{\n  "
            + "\n  ".join(fields)
            + "\n}\n"
            + "".join(kept)
        )

    def _aliased_records(self, body: bytes) -> list[Record]:
        answer = decode_wire(self.name, body, _AliasedAnswer, PARTNER_ANSWER)
        if answer.data is None:
            raise self._refusal(answer.errors)
        hits: list[_AnyHit] = []
        for value in answer.data.values():
            if isinstance(value, _Search):
                hits.extend(value.hits)
            elif value is not None:
                hits.extend(value)
        return self._records(hits)

    async def _post(
        self, ctx: RequestContext, document: str, variables: Mapping[str, Any]
    ) -> bytes:
        if self.signer is None:
            raise SourceError(self.name, "this hub has no key to sign requester assertions")
        span = trace.get_current_span().get_span_context()
        trace_id = format(span.trace_id, "032x") if span.is_valid else None
        try:
            assertion = self.signer.sign(ctx, self.partner_id, trace_id=trace_id)
        except HubLoop as exc:
            raise SourceError(
                self.name, "the partner hub is already in this request's chain"
            ) from exc
        headers = {
            "Authorization": f"Bearer {self.config.api_key.reveal()}",
            ASSERTION_HEADER: assertion,
            "Content-Type": "application/json",
            "Accept": "application/json",
        }
        if ctx.purpose is not None:
            headers["X-Purpose"] = ctx.purpose
        if ctx.case_number is not None:
            headers["X-Case-Number"] = ctx.case_number
        # The operation's span as the partner's remote parent (the partner believes it only
        # for the trace the assertion names: hub.trust.federation.caller_span).
        propagate.inject(headers)
        payload = msgspec.json.encode({"query": document, "variables": variables})
        async with self._parallel:
            body = await request_bytes(
                self.name, self.session, "POST", self._graphql_url, headers=headers, data=payload
            )
        assert body is not None
        return body

    # -- mapping -----------------------------------------------------------------------------

    def _requester(self, ctx: RequestContext | None) -> RequestContext:
        ctx = ctx or current_request.get()
        if ctx is None:
            # A partner is only ever asked on someone's behalf.
            raise SourceError(self.name, "no requester to forward to the partner hub")
        return ctx

    def _refusal(self, errors: Sequence[_Error]) -> HubError:
        """The partner answered no data: say why by its error code (never its message text)."""
        code = errors[0].code if errors else "INTERNAL"
        message = f"partner hub refused the request ({code})"
        if code in ("UNAUTHENTICATED", "FORBIDDEN"):
            return SourceAuthError(self.name, message)
        if code in ("AUDIT_UNAVAILABLE", "INTERNAL"):
            return SourceUnavailable(self.name, f"partner hub failed ({code})")
        if code == "HUB_LOOP":
            return SourceError(self.name, message)
        return SourceProtocolError(self.name, message)

    def _records(self, hits: Iterable[_AnyHit]) -> list[Record]:
        out: list[Record] = []
        for hit in hits:
            record = self._record(hit)
            if record is not None:
                out.append(record)
        return out

    def _provenance(self, p: _Provenance) -> Provenance:
        return Provenance(
            agency=Agency(
                ori=p.agency.ori,
                name=p.agency.name,
                state=p.agency.state,
                contact=self.config.agency.contact
                if p.agency.ori == self.config.agency.ori
                else "",
            ),
            system=SourceSystem(name=p.system.name, vendor=p.system.vendor, kind=p.system.kind),
            record_id=p.record_id,
            retrieved_at=p.retrieved_at,
            last_updated=p.last_updated,
        )

    def _id(self, kind: EntityKind, partner_id: str) -> str:
        return make_id(self.name, kind, partner_id)

    def _record(self, hit: _AnyHit) -> Record | None:
        if isinstance(hit, _Person):
            return Person(
                id=self._id(EntityKind.PERSON, hit.id),
                provenance=self._provenance(hit.provenance),
                name=_name(hit.name) if hit.name is not None else PersonName(),
                aliases=tuple(_name(a) for a in hit.aliases or ()),
                date_of_birth=hit.date_of_birth,
                sex=hit.sex,
                race=hit.race,
                height=hit.height,
                weight=hit.weight,
                ssn=hit.ssn,
                driver_license=(
                    DriverLicense(number=hit.driver_license.number, state=hit.driver_license.state)
                    if hit.driver_license is not None
                    else None
                ),
                addresses=tuple(
                    Address(street=a.street, city=a.city, state=a.state, postal_code=a.postal_code)
                    for a in hit.addresses or ()
                ),
                phones=tuple(hit.phones or ()),
                cautions=tuple(hit.cautions or ()),
            )
        if isinstance(hit, _Vehicle):
            return Vehicle(
                id=self._id(EntityKind.VEHICLE, hit.id),
                provenance=self._provenance(hit.provenance),
                vin=hit.vin,
                plate=_plate(hit.plate),
                make=hit.make,
                model=hit.model,
                year=hit.year,
                color=hit.color,
            )
        if isinstance(hit, _Incident):
            provenance = self._provenance(hit.provenance)
            kind = hit.kind or (
                IncidentKind.CALL
                if provenance.system.kind is SourceKind.CAD
                else IncidentKind.REPORT
            )
            return Incident(
                id=self._id(EntityKind.INCIDENT, hit.id),
                provenance=provenance,
                number=hit.number or "",
                incident_kind=kind,
                offenses=tuple(
                    Offense(code=o.code, description=o.description) for o in hit.offenses or ()
                ),
                occurred_at=hit.occurred_at,
                reported_at=hit.reported_at,
                location=_location(hit.location),
                status=hit.status,
                narrative=hit.narrative,
            )
        if isinstance(hit, _PlateRead):
            plate = _plate(hit.plate)
            if plate is None or hit.read_at is None:
                return None
            return PlateRead(
                id=self._id(EntityKind.PLATE_READ, hit.id),
                provenance=self._provenance(hit.provenance),
                plate=plate,
                read_at=hit.read_at,
                location=_location(hit.location),
                camera=hit.camera,
                confidence=hit.confidence,
                image_url=hit.image_url,
            )
        # A pointer: the owner says only "ask us"; this hub shows pointers its own policy makes.
        return None


def _name(n: _Name) -> PersonName:
    return PersonName(given=n.given, middle=n.middle, surname=n.surname, suffix=n.suffix)


def _plate(p: _Plate | None) -> LicensePlate | None:
    return None if p is None else LicensePlate(number=p.number, state=p.state)


def _location(loc: _Location | None) -> Location | None:
    if loc is None:
        return None
    return Location(address=loc.address, latitude=loc.latitude, longitude=loc.longitude)
