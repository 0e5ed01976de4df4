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

import enum
from datetime import date, datetime
from typing import Annotated, Any, Protocol

import strawberry
import strawberry.scalars
from strawberry import Info

from hub import model as canonical


@strawberry.enum(description="The kinds of record the hub knows.")
class EntityKind(enum.Enum):
    PERSON = "PERSON"
    VEHICLE = "VEHICLE"
    INCIDENT = "INCIDENT"
    PLATE_READ = "PLATE_READ"


@strawberry.enum
class SourceKind(enum.Enum):
    RMS = "RMS"
    CAD = "CAD"
    ALPR = "ALPR"
    HUB = "HUB"


@strawberry.enum
class IncidentKind(enum.Enum):
    REPORT = "REPORT"
    CALL = "CALL"


@strawberry.enum(description="What happened when the hub asked one source.")
class SourceOutcome(enum.Enum):
    OK = "OK"
    NO_HIT = "NO_HIT"
    TIMEOUT = "TIMEOUT"
    ERROR = "ERROR"
    DENIED = "DENIED"
    SKIPPED = "SKIPPED"


@strawberry.type
class Agency:
    ori: str
    name: str
    state: str


@strawberry.type
class SourceSystem:
    name: str
    vendor: str
    kind: SourceKind


@strawberry.type
class Provenance:
    agency: Agency
    system: SourceSystem
    record_id: str
    last_updated: datetime | None
    retrieved_at: datetime


@strawberry.type
class PersonName:
    given: str | None
    middle: str | None
    surname: str | None
    suffix: str | None


@strawberry.type
class DriverLicense:
    number: str
    state: str


@strawberry.type
class Address:
    street: str | None
    city: str | None
    state: str | None
    postal_code: str | None


@strawberry.type
class LicensePlate:
    number: str
    state: str


@strawberry.type
class Location:
    address: str | None
    latitude: float | None
    longitude: float | None


@strawberry.type
class Offense:
    code: str
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
    keys=["id"], description="A person as one agency's system records them."
)
class Person:
    id: strawberry.ID
    provenance: Provenance
    name: PersonName | None
    aliases: list[PersonName] | None
    date_of_birth: date | None
    sex: str | None
    race: str | None
    height: int | None = strawberry.field(description="Inches.")
    weight: int | None = strawberry.field(description="Pounds.")
    ssn: str | None
    driver_license: DriverLicense | None
    addresses: list[Address] | None
    phones: list[str] | None
    cautions: list[str] | None
    _record: strawberry.Private[canonical.Person]
    _readable: strawberry.Private[frozenset[str]]

    @classmethod
    async def resolve_reference(
        cls, info: Info[Relations, None], id: strawberry.ID
    ) -> Person | None:
        """Federation ``_entities``: the same lookup and access gate as ``person(id:)``."""
        found = await info.context.entity(id, canonical.EntityKind.PERSON, info.path.as_list())
        return found if isinstance(found, Person) else None

    @strawberry.field
    async def vehicles(self, info: Info[Relations, None]) -> list[Vehicle] | None:
        if "vehicles" not in self._readable:
            return None
        found = await info.context.records_by_id(self._record.vehicle_ids)
        return [v for v in found if isinstance(v, Vehicle)]

    @strawberry.field
    async def incidents(self, info: Info[Relations, None]) -> list[Involvement] | None:
        if "incidents" not in self._readable:
            return None
        return await info.context.involvements(self._record.involvements, "incident")


@strawberry.federation.type(keys=["id"])
class Vehicle:
    id: strawberry.ID
    provenance: Provenance
    vin: str | None
    plate: LicensePlate | None
    make: str | None
    model: str | None
    year: int | None
    color: str | None
    _record: strawberry.Private[canonical.Vehicle]
    _readable: strawberry.Private[frozenset[str]]

    @classmethod
    async def resolve_reference(
        cls, info: Info[Relations, None], id: strawberry.ID
    ) -> Vehicle | None:
        """Federation ``_entities``: the same lookup and access gate as ``vehicle(id:)``."""
        found = await info.context.entity(id, canonical.EntityKind.VEHICLE, info.path.as_list())
        return found if isinstance(found, Vehicle) else None

    @strawberry.field
    async def registered_owner(self, info: Info[Relations, None]) -> Person | None:
        owner_id = self._record.registered_owner_id
        if "registeredOwner" not in self._readable or owner_id is None:
            return None
        found = await info.context.record_by_id(owner_id)
        return found if isinstance(found, Person) else None

    @strawberry.field(description="Reads of this vehicle's plate by every ALPR source.")
    async def plate_reads(self, info: Info[Relations, None]) -> list[PlateRead] | None:
        if "plateReads" not in self._readable or self._record.plate is None:
            return None
        return await info.context.plate_reads_of(self._record.plate)


@strawberry.type(description="One person's part in one incident.")
class Involvement:
    role: str | None
    person: Person | None
    incident: Incident | None


@strawberry.federation.type(keys=["id"])
class Incident:
    id: strawberry.ID
    provenance: Provenance
    number: str | None
    kind: IncidentKind | None = strawberry.field(metadata={"model": "incident_kind"})
    offenses: list[Offense] | None
    occurred_at: datetime | None
    reported_at: datetime | None
    location: Location | None
    status: str | None
    narrative: str | None = strawberry.field(
        metadata={"free_text": True}, description="Free text: never a pointer's search key."
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

    @strawberry.field
    async def involved_persons(self, info: Info[Relations, None]) -> list[Involvement] | None:
        if "involvedPersons" not in self._readable:
            return None
        return await info.context.involvements(self._record.involvements, "person")

    @strawberry.field
    async def involved_vehicles(self, info: Info[Relations, None]) -> list[Vehicle] | None:
        if "involvedVehicles" not in self._readable:
            return None
        found = await info.context.records_by_id(self._record.involved_vehicle_ids)
        return [v for v in found if isinstance(v, Vehicle)]


@strawberry.federation.type(keys=["id"])
class PlateRead:
    id: strawberry.ID
    provenance: Provenance
    plate: LicensePlate | None
    read_at: datetime | None
    location: Location | None
    camera: str | None
    confidence: float | None
    image_url: str | None
    _record: strawberry.Private[canonical.PlateRead]
    _readable: strawberry.Private[frozenset[str]]

    @classmethod
    async def resolve_reference(
        cls, info: Info[Relations, None], id: strawberry.ID
    ) -> PlateRead | None:
        """Federation ``_entities``: the same lookup and access gate as ``plateRead(id:)``."""
        found = await info.context.entity(id, canonical.EntityKind.PLATE_READ, info.path.as_list())
        return found if isinstance(found, PlateRead) else None

    @strawberry.field(description="The vehicle with this plate, from any source that has it.")
    async def vehicle(self, info: Info[Relations, None]) -> Vehicle | None:
        if "vehicle" not in self._readable:
            return None
        return await info.context.vehicle_of_plate(self._record.plate)


@strawberry.type(
    description="That a record exists and whom to ask for it: the owner shares no more."
)
class RecordPointer:
    kind: EntityKind
    owner: Agency
    contact: str


SearchHit = Annotated[
    Person | Vehicle | Incident | PlateRead | RecordPointer, strawberry.union("SearchHit")
]


@strawberry.type
class SourceStatus:
    source: str
    agency: str
    status: SourceOutcome
    count: int
    latency_ms: float | None
    message: str | None
    cached: bool = strawberry.field(
        default=False, description="Answered from the hub's cache of this source, not just now."
    )


@strawberry.type
class SearchResult:
    hits: list[SearchHit]
    sources: list[SourceStatus]


@strawberry.type(description="A configured source system (no address or credentials).")
class Source:
    name: str
    agency: Agency
    system: SourceSystem
    entity_kinds: list[EntityKind]
    timeout_ms: int


@strawberry.type(description="One source an audited operation asked (or decided not to ask).")
class AuditSourceCall:
    source: str
    agency: str
    status: str
    count: int
    latency_ms: float | None


@strawberry.type(description="A record that left the hub in an audited response.")
class AuditRecordAccess:
    id: strawberry.ID
    owner: str
    visibility: str | None


@strawberry.type(description="A field withheld from the reader, and the rules that withheld it.")
class AuditWithholding:
    field: str
    rules: list[str]
    count: int


@strawberry.type(description="One audited operation: who asked what, why, and what came back.")
class AuditEvent:
    seq: int
    hash: str
    at: datetime
    trace_id: str
    operation: str
    outcome: str
    error_code: str | None
    user: str
    agency: str
    roles: list[str]
    via_user: str | None
    via_agency: str | None
    hub_chain: list[str]
    purpose: str | None
    case_number: str | None
    criteria: strawberry.scalars.JSON | None
    sources: list[AuditSourceCall]
    records: list[AuditRecordAccess]
    withheld: list[AuditWithholding]
    policy_version: str | None
    client_address: str | None


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
