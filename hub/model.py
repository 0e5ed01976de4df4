"""The canonical records every source adapter produces and every resolver reads.

Names follow NIEM where it has one. A record is immutable; access control never edits a record,
it decides what of it a reader may see (``hub.access``). Records are ``msgspec`` structs so the
cache and partner hubs can move them as JSON without a hand-written codec.

Units: ``Person.height`` is in inches and ``Person.weight`` in pounds (NCIC practice); every
datetime is timezone-aware UTC. Sex and race use NCIC codes (``M``/``F``/``X``/``U``;
``W``/``B``/``A``/``I``/``U``).
"""

from __future__ import annotations

import base64
import binascii
import enum
from datetime import date, datetime

import msgspec

from hub.errors import InvalidId


class EntityKind(enum.StrEnum):
    PERSON = "PERSON"
    VEHICLE = "VEHICLE"
    INCIDENT = "INCIDENT"
    PLATE_READ = "PLATE_READ"


class SourceKind(enum.StrEnum):
    RMS = "RMS"
    CAD = "CAD"
    ALPR = "ALPR"
    HUB = "HUB"


class IncidentKind(enum.StrEnum):
    REPORT = "REPORT"
    CALL = "CALL"


class LegalTag(enum.StrEnum):
    """Facts about a record that the law attaches to it; policy reads them (``hub.access``)."""

    SEALED = "sealed"
    JUVENILE = "juvenile"
    # The record names the victim of a sex offence (on the Person and on the Involvement).
    SEX_OFFENSE_VICTIM = "sex-offense-victim"
    # ALPR data that the owner's state law forbids sharing with agencies of other states.
    IN_STATE_ONLY = "in-state-only"


class Agency(msgspec.Struct, frozen=True, kw_only=True):
    ori: str
    name: str
    state: str
    # How a pointer-only reader reaches the owner to ask for the record.
    contact: str = ""


class SourceSystem(msgspec.Struct, frozen=True, kw_only=True):
    name: str  # the configured source name, e.g. "marin-rms"
    vendor: str  # e.g. "Northwind"
    kind: SourceKind


class Provenance(msgspec.Struct, frozen=True, kw_only=True):
    agency: Agency
    system: SourceSystem
    record_id: str  # the vendor's own identifier
    retrieved_at: datetime
    last_updated: datetime | None = None


class PersonName(msgspec.Struct, frozen=True, kw_only=True):
    given: str | None = None
    middle: str | None = None
    surname: str | None = None
    suffix: str | None = None


class DriverLicense(msgspec.Struct, frozen=True, kw_only=True):
    number: str
    state: str


class Address(msgspec.Struct, frozen=True, kw_only=True):
    street: str | None = None
    city: str | None = None
    state: str | None = None
    postal_code: str | None = None


class LicensePlate(msgspec.Struct, frozen=True, kw_only=True):
    number: str  # upper case, no spaces or dashes
    state: str


class Location(msgspec.Struct, frozen=True, kw_only=True):
    address: str | None = None
    latitude: float | None = None
    longitude: float | None = None


class Offense(msgspec.Struct, frozen=True, kw_only=True):
    code: str  # NIBRS offence code, e.g. "13A"
    description: str


class InvolvementRef(msgspec.Struct, frozen=True, kw_only=True):
    """One person's part in one incident, as the source that holds the incident records it.

    Both ids are hub ids (``make_id``) of records in the same source.
    """

    role: str  # SUSPECT, VICTIM, WITNESS, ARRESTEE, REPORTING_PARTY, OWNER, DRIVER, ...
    person_id: str
    incident_id: str
    tags: frozenset[str] = frozenset()


class _Record(msgspec.Struct, frozen=True, kw_only=True, tag_field="kind"):
    id: str  # hub id: make_id(source, kind, provenance.record_id)
    provenance: Provenance
    tags: frozenset[str] = frozenset()
    # The date the record was made; retention limits count from it.
    created: date | None = None


class Person(_Record, frozen=True, kw_only=True, tag="PERSON"):
    name: PersonName
    aliases: tuple[PersonName, ...] = ()
    date_of_birth: date | None = None
    sex: str | None = None
    race: str | None = None
    height: int | None = None
    weight: int | None = None
    ssn: str | None = None
    driver_license: DriverLicense | None = None
    addresses: tuple[Address, ...] = ()
    phones: tuple[str, ...] = ()
    cautions: tuple[str, ...] = ()
    vehicle_ids: tuple[str, ...] = ()
    involvements: tuple[InvolvementRef, ...] = ()


class Vehicle(_Record, frozen=True, kw_only=True, tag="VEHICLE"):
    vin: str | None = None
    plate: LicensePlate | None = None
    make: str | None = None
    model: str | None = None
    year: int | None = None
    color: str | None = None
    registered_owner_id: str | None = None


class Incident(_Record, frozen=True, kw_only=True, tag="INCIDENT"):
    number: str
    incident_kind: IncidentKind
    offenses: tuple[Offense, ...] = ()
    occurred_at: datetime | None = None
    reported_at: datetime | None = None
    location: Location | None = None
    status: str | None = None
    narrative: str | None = None
    involvements: tuple[InvolvementRef, ...] = ()
    involved_vehicle_ids: tuple[str, ...] = ()


class PlateRead(_Record, frozen=True, kw_only=True, tag="PLATE_READ"):
    plate: LicensePlate
    read_at: datetime
    location: Location | None = None
    camera: str | None = None
    confidence: float | None = None
    image_url: str | None = None


Record = Person | Vehicle | Incident | PlateRead

KIND_OF: dict[type[_Record], EntityKind] = {
    Person: EntityKind.PERSON,
    Vehicle: EntityKind.VEHICLE,
    Incident: EntityKind.INCIDENT,
    PlateRead: EntityKind.PLATE_READ,
}


def kind_of(record: Record) -> EntityKind:
    return KIND_OF[type(record)]


class RecordRef(msgspec.Struct, frozen=True):
    """What a hub id says: which source holds the record, its kind, and the vendor's id."""

    source: str
    kind: EntityKind
    record_id: str


_SEP = "\x1f"
_URLSAFE = bytes.maketrans(b"+/", b"-_")


def make_id(source: str, kind: EntityKind, record_id: str) -> str:
    """A stable, opaque hub id. Stable: the same record always gets the same id."""
    raw = _SEP.join((source, kind, record_id)).encode()  # a StrEnum joins as its value
    # base64.urlsafe_b64encode, without its two Python calls (one id per record read).
    encoded = binascii.b2a_base64(raw, newline=False).translate(_URLSAFE)
    return encoded.rstrip(b"=").decode("ascii")


def parse_id(hub_id: str) -> RecordRef:
    try:
        padded = hub_id + "=" * (-len(hub_id) % 4)
        source, kind, record_id = base64.urlsafe_b64decode(padded).decode().split(_SEP)
        return RecordRef(source, EntityKind(kind), record_id)
    except (binascii.Error, UnicodeDecodeError, ValueError) as exc:
        raise InvalidId(f"not a hub id: {hub_id[:64]!r}") from exc


def normalise_plate(plate: str) -> str:
    return "".join(ch for ch in plate.upper() if ch.isalnum())


_record_decoder = msgspec.json.Decoder(Record)
_records_decoder = msgspec.json.Decoder(list[Record])
_encoder = msgspec.json.Encoder()


def encode_records(records: list[Record]) -> bytes:
    return _encoder.encode(records)


def decode_records(data: bytes) -> list[Record]:
    return _records_decoder.decode(data)


def decode_record(data: bytes) -> Record:
    record: Record = _record_decoder.decode(data)
    return record
