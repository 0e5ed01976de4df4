"""Subjects and records for access tests, built from the demo world's agencies."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, date, datetime, timedelta
from functools import cache

from hub.context import RequestContext, Subject
from hub.demo.world import generate_world
from hub.model import (
    Agency,
    EntityKind,
    Incident,
    IncidentKind,
    LicensePlate,
    Person,
    PersonName,
    PlateRead,
    Provenance,
    Record,
    SourceKind,
    SourceSystem,
    Vehicle,
)

NOW = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)

MARIN, CASCADE, HARBOR, SIERRA = "CA0990000", "WA0990100", "OR0990200", "NV0990000"

DEFAULT_SOURCE = {
    EntityKind.PERSON: SourceKind.RMS,
    EntityKind.VEHICLE: SourceKind.RMS,
    EntityKind.INCIDENT: SourceKind.RMS,
    EntityKind.PLATE_READ: SourceKind.ALPR,
}


@cache
def agencies() -> dict[str, Agency]:
    """Every agency of both demo regions, as the world describes them (with contacts)."""
    out: dict[str, Agency] = {}
    for region in ("west", "east"):
        for agency in generate_world(size=50, region=region).agencies:
            out[agency.ori] = agency
    return out


def context(
    ori: str, roles: Iterable[str], purpose: str | None = "C", user: str = "u1"
) -> RequestContext:
    agency = agencies()[ori]
    subject = Subject(user_id=user, name=user, ori=ori, state=agency.state, roles=frozenset(roles))
    return RequestContext(subject=subject, purpose=purpose)


def record(
    kind: EntityKind,
    owner: str | Agency,
    *,
    tags: Iterable[str] = (),
    age_days: int | None = 30,
    source: SourceKind | None = None,
    now: datetime = NOW,
) -> Record:
    agency = owner if isinstance(owner, Agency) else agencies()[owner]
    source_kind = source or DEFAULT_SOURCE[kind]
    provenance = Provenance(
        agency=agency,
        system=SourceSystem(
            name=f"test-{source_kind.value.lower()}", vendor="Test", kind=source_kind
        ),
        record_id="R-1",
        retrieved_at=now,
    )
    common = {
        "id": f"id-{kind.value}",
        "provenance": provenance,
        "tags": frozenset(tags),
        "created": None if age_days is None else (now - timedelta(days=age_days)).date(),
    }
    if kind is EntityKind.PERSON:
        return Person(
            **common,
            name=PersonName(given="Jordan", surname="Reyes"),
            date_of_birth=date(1988, 4, 12),
            ssn="521-44-7810",
        )
    if kind is EntityKind.VEHICLE:
        return Vehicle(**common, plate=LicensePlate(number="7ABC123", state="CA"))
    if kind is EntityKind.INCIDENT:
        return Incident(**common, number="T-1", incident_kind=IncidentKind.REPORT, narrative="text")
    return PlateRead(**common, plate=LicensePlate(number="7ABC123", state="CA"), read_at=now)
