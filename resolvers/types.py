"""The canonical GraphQL types. Field names are the public contract (NIEM words, camelCase).

Leaf fields are plain attributes filled once per record by ``resolvers.present`` (where masks
are applied); only relationships are resolvers, and they go through ``Relations`` — the request's
batched loaders and its access gate — so a record reached by traversal gets its own decision.
Every field that a policy can deny is nullable.

These classes are the one declaration of the record types: the access policy's catalogue
(``resolvers.catalogue``) and the presenters (``resolvers.present``) are derived from them. A plain
field reads the canonical record's attribute of the same (Python) name, or the one its
``metadata={"model": ...}`` names; a new field is a line here and one in ``hub/model.py``.
"""

from __future__ import annotations

import asyncio
import enum
from collections.abc import Awaitable, Callable, Iterable
from datetime import date, datetime
from typing import Annotated, Any, Protocol, TypeVar

import strawberry
import strawberry.scalars
from strawberry import Info

from hub import model as canonical

# Shared phrases of the descriptions (the schema is what codegen and frontend developers read).
_POLICY = "withheld by policy (see errors[].extensions.code FORBIDDEN_FIELD)"
_NULL = f"Null: not recorded, or {_POLICY}."
_NULL_LIST = f"Null: {_POLICY}."
_ID = "Opaque, stable hub id: pass it back as it is (lookups by id, _entities); never parse it."
_UTC = "ISO 8601 with a UTC offset."
_OWNER = (
    "The owning agency decides, field by field, what you see: a field it withholds reads null, "
    "reported once per Type.field in errors[] with extensions.code FORBIDDEN_FIELD."
)


_E = TypeVar("_E", bound=type[enum.Enum])
_T = TypeVar("_T")


def _unique(ids: Iterable[str]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(ids))


async def _gather(calls: Iterable[Awaitable[_T]]) -> list[_T]:
    # Together, so the request's loaders batch them into one call per source.
    return list(await asyncio.gather(*calls))


def _values(**meanings: str) -> Callable[[_E], _E]:
    """Describe every value of a strawberry enum. (``strawberry.enum_value`` would do it too,
    but would make the members' ``.value`` an ``EnumValueDefinition`` to mypy.)"""

    def describe(cls: _E) -> _E:
        values = cls.__strawberry_definition__.values  # type: ignore[attr-defined]
        if {v.name for v in values} != set(meanings):
            raise TypeError(f"{cls.__name__}: describe exactly its values")
        for v in values:
            v.description = meanings[v.name]
        return cls

    return describe


@_values(
    PERSON="A Person.",
    VEHICLE="A Vehicle.",
    INCIDENT="An Incident: a report or a call for service.",
    PLATE_READ="A PlateRead.",
)
@strawberry.enum(description="The kinds of record the hub knows.")
class EntityKind(enum.Enum):
    PERSON = "PERSON"
    VEHICLE = "VEHICLE"
    INCIDENT = "INCIDENT"
    PLATE_READ = "PLATE_READ"


@_values(
    RMS="A records management system.",
    CAD="A computer-aided dispatch system.",
    ALPR="An automated license plate reader feed.",
    HUB="A partner hub, asked on your behalf.",
)
@strawberry.enum(description="What kind of system a source is.")
class SourceKind(enum.Enum):
    RMS = "RMS"
    CAD = "CAD"
    ALPR = "ALPR"
    HUB = "HUB"


@_values(
    REPORT="An incident report (from an RMS).",
    CALL="A call for service (from a CAD).",
)
@strawberry.enum(description="What kind of incident record.")
class IncidentKind(enum.Enum):
    REPORT = "REPORT"
    CALL = "CALL"


@_values(
    OK="It answered, with records in this response.",
    NO_HIT="It answered: nothing it holds that you may see matched.",
    TIMEOUT="It did not answer in time: it may hold records.",
    ERROR="It failed, or its circuit is open: it may hold records.",
    DENIED="Not contacted: policy forbids asking it for you.",
    SKIPPED="Not contacted: nothing it holds was asked for, or may be shown to you.",
)
@strawberry.enum(
    description="What happened when the hub asked one source. Only OK and NO_HIT are answers: "
    "no answer is not no hit."
)
class SourceOutcome(enum.Enum):
    OK = "OK"
    NO_HIT = "NO_HIT"
    TIMEOUT = "TIMEOUT"
    ERROR = "ERROR"
    DENIED = "DENIED"
    SKIPPED = "SKIPPED"


@strawberry.type(description="A law-enforcement agency.")
class Agency:
    ori: str = strawberry.field(description="Its ORI, the NCIC agency identifier (9 characters).")
    name: str
    state: str = strawberry.field(description="Two-letter state code.")


@strawberry.type(description="The system a record came from.")
class SourceSystem:
    name: str = strawberry.field(description="The source's configured name, e.g. marin-rms.")
    vendor: str = strawberry.field(description="Whose product it is, e.g. Northwind.")
    kind: SourceKind


@strawberry.type(description="Where a record came from: who owns it, which system, which id.")
class Provenance:
    agency: Agency = strawberry.field(description="The owning agency: it decides who sees what.")
    system: SourceSystem
    record_id: str = strawberry.field(description="The record's id in the owner's system.")
    last_updated: datetime | None = strawberry.field(
        description=f"When the owner's system last changed it, if it says. {_UTC}"
    )
    retrieved_at: datetime = strawberry.field(
        description="When it was read from the owner's system (a cached answer keeps its "
        f"time). {_UTC}"
    )


@strawberry.type(description="A person's name. A part may be null when not recorded.")
class PersonName:
    given: str | None
    middle: str | None
    surname: str | None
    suffix: str | None


@strawberry.type
class DriverLicense:
    number: str
    state: str = strawberry.field(description="Two-letter code of the issuing state.")


@strawberry.type(description="A postal address. A part may be null when not recorded.")
class Address:
    street: str | None
    city: str | None
    state: str | None = strawberry.field(description="Two-letter state code.")
    postal_code: str | None


@strawberry.type
class LicensePlate:
    number: str
    state: str = strawberry.field(description="Two-letter code of the issuing state.")


@strawberry.type(description="A place. A part may be null when not recorded.")
class Location:
    address: str | None
    latitude: float | None = strawberry.field(description="Decimal degrees.")
    longitude: float | None = strawberry.field(description="Decimal degrees.")


@strawberry.type(description="An offence in an incident.")
class Offense:
    code: str = strawberry.field(description="NIBRS offence code, e.g. 13A.")
    description: str


class Relations(Protocol):
    """What relationship resolvers need from the request (``resolvers.context.HubContext``)."""

    async def records_by_id(self, ids: tuple[str, ...]) -> list[Any]: ...

    async def record_by_id(self, hub_id: str, path: list[str | int] | None = None) -> Any: ...

    async def plate_reads_of(self, plate: canonical.LicensePlate) -> list[PlateRead]: ...

    async def vehicle_of_plate(self, plate: canonical.LicensePlate) -> Vehicle | None: ...

    async def involvements(
        self, refs: tuple[canonical.InvolvementRef, ...], side: str
    ) -> list[Involvement]: ...

    async def entity(
        self, hub_id: str, kind: canonical.EntityKind, path: list[str | int] | None = None
    ) -> Any: ...


@strawberry.federation.type(
    keys=["id"],
    description=f"A person as one agency's system records them. {_OWNER}",
)
class Person:
    id: strawberry.ID = strawberry.field(description=_ID)
    provenance: Provenance
    name: PersonName | None = strawberry.field(description=_NULL)
    aliases: list[PersonName] | None = strawberry.field(description=f"Other names. {_NULL_LIST}")
    date_of_birth: date | None = strawberry.field(description=f"YYYY-MM-DD. {_NULL}")
    sex: str | None = strawberry.field(description=f"NCIC code: M, F, X or U. {_NULL}")
    race: str | None = strawberry.field(description=f"NCIC code: W, B, A, I or U. {_NULL}")
    height: int | None = strawberry.field(description=f"Inches. {_NULL}")
    weight: int | None = strawberry.field(description=f"Pounds. {_NULL}")
    ssn: str | None = strawberry.field(description=f"Social Security number. {_NULL}")
    driver_license: DriverLicense | None = strawberry.field(description=_NULL)
    addresses: list[Address] | None = strawberry.field(description=_NULL_LIST)
    phones: list[str] | None = strawberry.field(description=_NULL_LIST)
    cautions: list[str] | None = strawberry.field(
        description=f"Officer-safety cautions, as the owner's system words them. {_NULL_LIST}"
    )
    _record: strawberry.Private[canonical.Person]
    _readable: strawberry.Private[frozenset[str]]

    @classmethod
    async def resolve_reference(
        cls, info: Info[Relations, None], id: strawberry.ID
    ) -> Person | None:
        """Federation ``_entities``: the same lookup and access gate as ``person(id:)``."""
        found = await info.context.entity(id, canonical.EntityKind.PERSON, info.path.as_list())
        return found if isinstance(found, Person) else None

    @strawberry.field(
        description=f"Vehicles the owner links to this person, those you may see. {_NULL_LIST}"
    )
    async def vehicles(self, info: Info[Relations, None]) -> list[Vehicle] | None:
        if "vehicles" not in self._readable:
            return None
        found = await info.context.records_by_id(self._record.vehicle_ids)
        return [v for v in found if isinstance(v, Vehicle)]

    @strawberry.field(
        description=f"This person's part in incidents, those you may see. {_NULL_LIST}"
    )
    async def incidents(self, info: Info[Relations, None]) -> list[Involvement] | None:
        if "incidents" not in self._readable:
            return None
        return await info.context.involvements(self._record.involvements, "incident")


@strawberry.federation.type(
    keys=["id"],
    description=f"A vehicle as one agency's system records it. {_OWNER}",
)
class Vehicle:
    id: strawberry.ID = strawberry.field(description=_ID)
    provenance: Provenance
    vin: str | None = strawberry.field(description=f"Vehicle identification number. {_NULL}")
    plate: LicensePlate | None = strawberry.field(description=_NULL)
    make: str | None = strawberry.field(description=_NULL)
    model: str | None = strawberry.field(description=_NULL)
    year: int | None = strawberry.field(description=f"Model year. {_NULL}")
    color: str | None = strawberry.field(description=_NULL)
    _record: strawberry.Private[canonical.Vehicle]
    _readable: strawberry.Private[frozenset[str]]

    @classmethod
    async def resolve_reference(
        cls, info: Info[Relations, None], id: strawberry.ID
    ) -> Vehicle | None:
        """Federation ``_entities``: the same lookup and access gate as ``vehicle(id:)``."""
        found = await info.context.entity(id, canonical.EntityKind.VEHICLE, info.path.as_list())
        return found if isinstance(found, Vehicle) else None

    @strawberry.field(
        description=f"The registered owner. Null: none recorded, not yours to see, or {_POLICY}."
    )
    async def registered_owner(self, info: Info[Relations, None]) -> Person | None:
        owner_id = self._record.registered_owner_id
        if "registeredOwner" not in self._readable or owner_id is None:
            return None
        found = await info.context.record_by_id(owner_id)
        return found if isinstance(found, Person) else None

    @strawberry.field(
        description="Reads of this vehicle's plate by every ALPR source, newest first. Null: "
        f"no plate recorded, or {_POLICY}."
    )
    async def plate_reads(self, info: Info[Relations, None]) -> list[PlateRead] | None:
        if "plateReads" not in self._readable or self._record.plate is None:
            return None
        return await info.context.plate_reads_of(self._record.plate)


@strawberry.type(
    description="One person's part in one incident. The incident's owner may withhold any "
    "part of it (FORBIDDEN_FIELD Involvement.role, Involvement.person, Involvement.incident)."
)
class Involvement:
    role: str | None = strawberry.field(
        description="SUSPECT, VICTIM, WITNESS, ARRESTEE, REPORTING_PARTY, OWNER, DRIVER, ... "
        + _NULL
    )
    person: Person | None = strawberry.field(description=f"Null: not yours to see, or {_POLICY}.")
    incident: Incident | None = strawberry.field(
        description=f"Null: not yours to see, or {_POLICY}."
    )


@strawberry.federation.type(
    keys=["id"],
    description=f"A report or a call for service as one agency's system records it. {_OWNER}",
)
class Incident:
    id: strawberry.ID = strawberry.field(description=_ID)
    provenance: Provenance
    number: str | None = strawberry.field(description=f"The owner's case or call number. {_NULL}")
    kind: IncidentKind | None = strawberry.field(
        metadata={"model": "incident_kind"}, description=_NULL
    )
    offenses: list[Offense] | None = strawberry.field(description=_NULL_LIST)
    occurred_at: datetime | None = strawberry.field(description=f"{_UTC} {_NULL}")
    reported_at: datetime | None = strawberry.field(description=f"{_UTC} {_NULL}")
    location: Location | None = strawberry.field(description=_NULL)
    status: str | None = strawberry.field(description=f"As the owner's system words it. {_NULL}")
    narrative: str | None = strawberry.field(
        metadata={"free_text": True},
        description=f"Free text: never a pointer's search key. {_NULL}",
    )
    _record: strawberry.Private[canonical.Incident]
    _readable: strawberry.Private[frozenset[str]]

    @classmethod
    async def resolve_reference(
        cls, info: Info[Relations, None], id: strawberry.ID
    ) -> Incident | None:
        """Federation ``_entities``: the same lookup and access gate as ``incident(id:)``."""
        found = await info.context.entity(id, canonical.EntityKind.INCIDENT, info.path.as_list())
        return found if isinstance(found, Incident) else None

    @strawberry.field(
        description=f"The people involved and their parts, those you may see. {_NULL_LIST}"
    )
    async def involved_persons(self, info: Info[Relations, None]) -> list[Involvement] | None:
        if "involvedPersons" not in self._readable:
            return None
        return await info.context.involvements(self._record.involvements, "person")

    @strawberry.field(description=f"The vehicles involved, those you may see. {_NULL_LIST}")
    async def involved_vehicles(self, info: Info[Relations, None]) -> list[Vehicle] | None:
        if "involvedVehicles" not in self._readable:
            return None
        found = await info.context.records_by_id(self._record.involved_vehicle_ids)
        return [v for v in found if isinstance(v, Vehicle)]


@strawberry.federation.type(
    keys=["id"],
    description=f"One read of a plate by an ALPR camera. {_OWNER}",
)
class PlateRead:
    id: strawberry.ID = strawberry.field(description=_ID)
    provenance: Provenance
    plate: LicensePlate | None = strawberry.field(description=f"The plate as read. {_NULL}")
    read_at: datetime | None = strawberry.field(description=f"{_UTC} {_NULL}")
    location: Location | None = strawberry.field(description=f"Where it was read. {_NULL}")
    camera: str | None = strawberry.field(description=f"The camera's name or id. {_NULL}")
    confidence: float | None = strawberry.field(
        description=f"How sure the reader is of the plate, 0 to 1. {_NULL}"
    )
    image_url: str | None = strawberry.field(description=f"The read's image. {_NULL}")
    _record: strawberry.Private[canonical.PlateRead]
    _readable: strawberry.Private[frozenset[str]]

    @classmethod
    async def resolve_reference(
        cls, info: Info[Relations, None], id: strawberry.ID
    ) -> PlateRead | None:
        """Federation ``_entities``: the same lookup and access gate as ``plateRead(id:)``."""
        found = await info.context.entity(id, canonical.EntityKind.PLATE_READ, info.path.as_list())
        return found if isinstance(found, PlateRead) else None

    @strawberry.field(
        description="The vehicle with this plate, from any source that has it. Null: none you "
        f"may see, or {_POLICY}."
    )
    async def vehicle(self, info: Info[Relations, None]) -> Vehicle | None:
        if "vehicle" not in self._readable:
            return None
        return await info.context.vehicle_of_plate(self._record.plate)


@strawberry.type(
    description="That a record exists and whom to ask for it: the owner shares no more. Only "
    "ever a search hit; it has no id."
)
class RecordPointer:
    kind: EntityKind = strawberry.field(description="What kind of record it is.")
    owner: Agency = strawberry.field(description="The agency that holds it.")
    contact: str = strawberry.field(description="How to ask the owner for it.")


SearchHit = Annotated[
    Person | Vehicle | Incident | PlateRead | RecordPointer,
    strawberry.union(
        "SearchHit",
        description="A record you may read, or a RecordPointer where the owner shares only "
        "that it exists.",
    ),
]


@strawberry.type(
    description="What one source did for this request. Every data response carries these too, "
    "one per source it touched, as extensions.sources. A source that did not answer is "
    "reported, never silently empty: no answer is not no hit."
)
class SourceStatus:
    source: str = strawberry.field(description="The source's configured name, e.g. marin-rms.")
    agency: str = strawberry.field(description="The ORI of the agency that owns it.")
    status: SourceOutcome
    count: int = strawberry.field(description="Its records in this response that you see.")
    latency_ms: float | None = strawberry.field(
        description="Milliseconds it took to answer (0 from the cache). Null: not contacted."
    )
    message: str | None = strawberry.field(
        description="Why, for a status other than OK and NO_HIT. For people: do not parse it."
    )
    cached: bool = strawberry.field(
        default=False, description="Answered from the hub's cache of this source, not just now."
    )


@strawberry.type(
    description="One feature two records were compared on, and what it weighed. Only features "
    "you may read on both records are ever compared."
)
class MatchEvidence:
    feature: str = strawberry.field(
        description="given, surname, dateOfBirth, sex, race, ssn, driverLicense, phones or "
        "addresses."
    )
    level: str = strawberry.field(
        description="How they compare: exact, nickname (or a translation), swapped (given and "
        "middle), similar, close, initial, part (of a double surname), transposed (day and month), "
        "oneDigit, yearOnly (one date is 1 January of the same year), shared, samePostalCode or "
        "different."
    )
    weight: float = strawberry.field(
        description="Bits of evidence: positive for one person, negative against (log2 m/u)."
    )


@strawberry.type(description="One record of a subject, and why it belongs to it.")
class SubjectMember:
    person: Person
    score: float | None = strawberry.field(
        description="Probability, 0 to 1, that this record and `linkedTo` are one person: its "
        "strongest link into the subject. Null for a subject of one record."
    )
    linked_to: strawberry.ID | None = strawberry.field(
        description="The member it was linked to (its hub id). Null for a subject of one record."
    )
    evidence: list[MatchEvidence] = strawberry.field(
        description="The comparison behind `score`, strongest evidence first."
    )


@strawberry.type(
    description="One person across agencies: the person records among your search hits that "
    "the hub resolves to one individual. Resolved after access decisions, only on what you may "
    "read of each record; every member keeps its own provenance and masks."
)
class Subject:
    id: strawberry.ID = strawberry.field(
        description="Opaque; the same for the same members. Not a record id: no lookup takes it."
    )
    members: list[SubjectMember] = strawberry.field(description="In the order of the hits.")
    score: float | None = strawberry.field(
        description="The weakest member's score: how sure the hub is of the whole subject. "
        "Null for a subject of one record."
    )
    _people: strawberry.Private[list[Person]]

    @strawberry.field(
        description="The vehicles its members' owners link to them, those you may see."
    )
    async def vehicles(self, info: Info[Relations, None]) -> list[Vehicle]:
        return await self._vehicles(info.context)

    async def _vehicles(self, relations: Relations) -> list[Vehicle]:
        ids = _unique(
            i for p in self._people if "vehicles" in p._readable for i in p._record.vehicle_ids
        )
        found = await relations.records_by_id(ids)
        return [v for v in found if isinstance(v, Vehicle)]

    @strawberry.field(description="Its members' parts in incidents, those you may see.")
    async def incidents(self, info: Info[Relations, None]) -> list[Involvement]:
        refs = tuple(
            r for p in self._people if "incidents" in p._readable for r in p._record.involvements
        )
        seen: set[tuple[str, str]] = set()
        out = []
        for inv in await info.context.involvements(refs, "incident"):
            key = (inv.incident.id if inv.incident else "", inv.role or "")
            if inv.incident is None or key not in seen:
                seen.add(key)
                out.append(inv)
        return out

    @strawberry.field(
        description="Reads, by every ALPR source, of the plates of its vehicles whose plate you "
        "may read; newest first."
    )
    async def plate_reads(self, info: Info[Relations, None]) -> list[PlateRead]:
        vehicles = await self._vehicles(info.context)
        plates = {
            (v._record.plate.number, v._record.plate.state): v._record.plate
            for v in vehicles
            if "plate" in v._readable and "plateReads" in v._readable and v._record.plate
        }
        reads: dict[str, PlateRead] = {}
        for found in await _gather(info.context.plate_reads_of(p) for p in plates.values()):
            for r in found:
                reads.setdefault(r.id, r)
        return sorted(reads.values(), key=lambda r: (r._record.read_at, r.id), reverse=True)


@strawberry.type(
    description="One vehicle across agencies: the vehicle records among your search hits with "
    "the same VIN, or the same plate, as far as you may read them."
)
class VehicleSubject:
    id: strawberry.ID = strawberry.field(
        description="Opaque; the same for the same members. Not a record id."
    )
    vin: str | None = strawberry.field(description="The VIN its members share, if you may read it.")
    plate: LicensePlate | None = strawberry.field(
        description="The plate of its first member with a plate you may read."
    )
    members: list[Vehicle] = strawberry.field(description="In the order of the hits.")


@strawberry.type(
    description="What a search found, and what every source did (as extensions.sources too)."
)
class SearchResult:
    hits: list[SearchHit] = strawberry.field(description="Best match first, across sources.")
    sources: list[SourceStatus] = strawberry.field(
        description="One per configured source, whether or not it was contacted."
    )

    @strawberry.field(
        description="The person hits you may read, resolved into people: each Person hit is in "
        "exactly one subject; pointers are in none. Ordered by each subject's best hit."
    )
    def subjects(self) -> list[Subject]:
        from resolvers.subjects import person_subjects

        return person_subjects([h for h in self.hits if isinstance(h, Person)])

    @strawberry.field(
        description="The vehicle hits you may read, grouped by VIN or plate: each Vehicle hit is "
        "in exactly one. Ordered by each group's best hit."
    )
    def vehicle_subjects(self) -> list[VehicleSubject]:
        from resolvers.subjects import vehicle_subjects

        return vehicle_subjects([h for h in self.hits if isinstance(h, Vehicle)])


@strawberry.type(description="A configured source system (no address or credentials).")
class Source:
    name: str = strawberry.field(description="Its configured name, e.g. marin-rms.")
    agency: Agency = strawberry.field(description="The agency that owns it.")
    system: SourceSystem
    entity_kinds: list[EntityKind] = strawberry.field(description="What kinds of record it holds.")
    timeout_ms: int = strawberry.field(
        description="Past this many milliseconds without an answer it is reported TIMEOUT."
    )


@strawberry.type(description="One source an audited operation asked (or decided not to ask).")
class AuditSourceCall:
    source: str
    agency: str = strawberry.field(description="The ORI of the agency that owns it.")
    status: str = strawberry.field(
        description="A SourceOutcome value, or CANCELLED when the request was abandoned first."
    )
    count: int
    latency_ms: float | None


@strawberry.type(description="A record that left the hub in an audited response.")
class AuditRecordAccess:
    id: strawberry.ID = strawberry.field(description=_ID)
    owner: str = strawberry.field(description="The ORI of the owning agency.")
    visibility: str | None = strawberry.field(description="FULL, or POINTER.")


@strawberry.type(description="A field withheld from the reader, and the rules that withheld it.")
class AuditWithholding:
    field: str = strawberry.field(description="Type.field, e.g. Person.ssn.")
    rules: list[str]
    count: int = strawberry.field(description="On how many records.")


@strawberry.type(
    description="One audited operation: who asked what, why, and what came back. An event of "
    "another agency's user shows only your agency's part: your records and sources, no "
    "withholdings, no client address."
)
class AuditEvent:
    seq: int = strawberry.field(description="Its place in the hash-chained trail.")
    hash: str = strawberry.field(description="Its hash in the chain.")
    at: datetime = strawberry.field(description=f"When the operation ended. {_UTC}")
    trace_id: str = strawberry.field(description="32 hex digits; the response's X-Trace-Id.")
    operation: str = strawberry.field(
        description="The operation's name, or its root fields when it has none."
    )
    outcome: str = strawberry.field(
        description="OK, PARTIAL (a source failed or a field was withheld), REFUSED, ERROR or "
        "CANCELLED."
    )
    error_code: str | None = strawberry.field(
        description="The errors[].extensions.code that ended it, when the outcome is not OK."
    )
    user: str
    agency: str = strawberry.field(description="The ORI of the user's agency.")
    roles: list[str]
    via_user: str | None = strawberry.field(
        description="The calling partner hub's account, when it came through one."
    )
    via_agency: str | None
    hub_chain: list[str] = strawberry.field(description="The hubs it passed through, in order.")
    purpose: str | None = strawberry.field(description="The purpose of use (X-Purpose).")
    case_number: str | None = strawberry.field(description="The case number (X-Case-Number).")
    criteria: strawberry.scalars.JSON | None = strawberry.field(
        description="What was asked: for each root field, the arguments of each call."
    )
    sources: list[AuditSourceCall]
    records: list[AuditRecordAccess]
    withheld: list[AuditWithholding]
    policy_version: str | None
    client_address: str | None
    part: int = strawberry.field(
        default=0,
        description="0: an operation's entry. 1, 2, ...: the entry of a stream's n-th payload, "
        "written before that payload left, with its records (the operation's entry, same "
        "traceId, holds them too).",
    )


@_values(
    EXPUNGED="The record was expunged.",
    SEALED="The record was sealed.",
)
@strawberry.enum(description="What the owning agency says has happened to a record.")
class RecordNotice(enum.Enum):
    EXPUNGED = "EXPUNGED"
    SEALED = "SEALED"


@strawberry.type(description="What the hub did on an expungement or sealing notice.")
class NoticeResult:
    id: strawberry.ID
    notice: RecordNotice
    evicted_entries: int = strawberry.field(description="Cached vendor answers removed.")
    deferred: bool = strawberry.field(
        description="The shared cache was unreachable: eviction is queued and replayed before "
        "this worker reads from it again."
    )
    partners_notified: list[str] = strawberry.field(
        default_factory=list,
        description="Partner hubs (ids) that were shown the record, per the audit trail, and "
        "took the notice.",
    )
    partners_unreached: list[str] = strawberry.field(
        default_factory=list,
        description="Partner hubs that were shown the record but could not be sent the notice.",
    )
