"""Canonical records to GraphQL objects, with a record's field mask applied once, here.

``denied`` holds GraphQL field names of the record's type; each reads null. This is the only
place record values are copied into the response, so a mask cannot be bypassed by another path.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import strawberry
from rapidfuzz import fuzz

from hub import model
from resolvers import types as t

TYPE_NAME: dict[model.EntityKind, str] = {
    model.EntityKind.PERSON: "Person",
    model.EntityKind.VEHICLE: "Vehicle",
    model.EntityKind.INCIDENT: "Incident",
    model.EntityKind.PLATE_READ: "PlateRead",
}


def agency(a: model.Agency) -> t.Agency:
    return t.Agency(ori=a.ori, name=a.name, state=a.state)


def provenance(p: model.Provenance) -> t.Provenance:
    return t.Provenance(
        agency=agency(p.agency),
        system=t.SourceSystem(
            name=p.system.name, vendor=p.system.vendor, kind=t.SourceKind(p.system.kind.value)
        ),
        record_id=p.record_id,
        last_updated=p.last_updated,
        retrieved_at=p.retrieved_at,
    )


def _name(n: model.PersonName) -> t.PersonName:
    return t.PersonName(given=n.given, middle=n.middle, surname=n.surname, suffix=n.suffix)


def _plate(p: model.LicensePlate | None) -> t.LicensePlate | None:
    return None if p is None else t.LicensePlate(number=p.number, state=p.state)


def _location(loc: model.Location | None) -> t.Location | None:
    if loc is None:
        return None
    return t.Location(address=loc.address, latitude=loc.latitude, longitude=loc.longitude)


def _masked(values: dict[str, Any], denied: frozenset[str]) -> dict[str, Any]:
    for field in denied:
        if field in values:
            values[field] = None
    return values


def person(r: model.Person, denied: frozenset[str]) -> t.Person:
    dl = r.driver_license
    v = _masked(
        {
            "name": _name(r.name),
            "aliases": [_name(a) for a in r.aliases],
            "dateOfBirth": r.date_of_birth,
            "sex": r.sex,
            "race": r.race,
            "height": r.height,
            "weight": r.weight,
            "ssn": r.ssn,
            "driverLicense": None
            if dl is None
            else t.DriverLicense(number=dl.number, state=dl.state),
            "addresses": [
                t.Address(street=a.street, city=a.city, state=a.state, postal_code=a.postal_code)
                for a in r.addresses
            ],
            "phones": list(r.phones),
            "cautions": list(r.cautions),
        },
        denied,
    )
    return t.Person(
        id=strawberry.ID(r.id),
        provenance=provenance(r.provenance),
        name=v["name"],
        aliases=v["aliases"],
        date_of_birth=v["dateOfBirth"],
        sex=v["sex"],
        race=v["race"],
        height=v["height"],
        weight=v["weight"],
        ssn=v["ssn"],
        driver_license=v["driverLicense"],
        addresses=v["addresses"],
        phones=v["phones"],
        cautions=v["cautions"],
        _record=r,
        _denied=denied,
    )


def vehicle(r: model.Vehicle, denied: frozenset[str]) -> t.Vehicle:
    v = _masked(
        {
            "vin": r.vin,
            "plate": _plate(r.plate),
            "make": r.make,
            "model": r.model,
            "year": r.year,
            "color": r.color,
        },
        denied,
    )
    return t.Vehicle(
        id=strawberry.ID(r.id),
        provenance=provenance(r.provenance),
        vin=v["vin"],
        plate=v["plate"],
        make=v["make"],
        model=v["model"],
        year=v["year"],
        color=v["color"],
        _record=r,
        _denied=denied,
    )


def incident(r: model.Incident, denied: frozenset[str]) -> t.Incident:
    v = _masked(
        {
            "number": r.number,
            "kind": t.IncidentKind(r.incident_kind.value),
            "offenses": [t.Offense(code=o.code, description=o.description) for o in r.offenses],
            "occurredAt": r.occurred_at,
            "reportedAt": r.reported_at,
            "location": _location(r.location),
            "status": r.status,
            "narrative": r.narrative,
        },
        denied,
    )
    return t.Incident(
        id=strawberry.ID(r.id),
        provenance=provenance(r.provenance),
        number=v["number"],
        kind=v["kind"],
        offenses=v["offenses"],
        occurred_at=v["occurredAt"],
        reported_at=v["reportedAt"],
        location=v["location"],
        status=v["status"],
        narrative=v["narrative"],
        _record=r,
        _denied=denied,
    )


def plate_read(r: model.PlateRead, denied: frozenset[str]) -> t.PlateRead:
    v = _masked(
        {
            "plate": _plate(r.plate),
            "readAt": r.read_at,
            "location": _location(r.location),
            "camera": r.camera,
            "confidence": r.confidence,
            "imageUrl": r.image_url,
        },
        denied,
    )
    return t.PlateRead(
        id=strawberry.ID(r.id),
        provenance=provenance(r.provenance),
        plate=v["plate"],
        read_at=v["readAt"],
        location=v["location"],
        camera=v["camera"],
        confidence=v["confidence"],
        image_url=v["imageUrl"],
        _record=r,
        _denied=denied,
    )


def pointer(r: model.Record) -> t.RecordPointer:
    owner = r.provenance.agency
    return t.RecordPointer(
        kind=t.EntityKind(model.kind_of(r).value), owner=agency(owner), contact=owner.contact
    )


PRESENTERS: dict[type[Any], Callable[[Any, frozenset[str]], Any]] = {
    model.Person: person,
    model.Vehicle: vehicle,
    model.Incident: incident,
    model.PlateRead: plate_read,
}


def present(
    record: model.Record, denied: frozenset[str]
) -> t.Person | t.Vehicle | t.Incident | t.PlateRead:
    result: t.Person | t.Vehicle | t.Incident | t.PlateRead = PRESENTERS[type(record)](
        record, denied
    )
    return result


# -- matching on what the reader may read ------------------------------------------------------

_WORD = re.compile(r"[A-Za-z0-9]+")


def words(text: str | None) -> set[str]:
    return {w.lower() for w in _WORD.findall(text or "")}


def _readable_text(record: model.Record, denied: frozenset[str]) -> list[str | None]:
    """The values a search could have matched, of the fields this reader may read."""
    if isinstance(record, model.Person):
        names = ([record.name] if "name" not in denied else []) + (
            list(record.aliases) if "aliases" not in denied else []
        )
        return [x for n in names for x in (n.given, n.middle, n.surname, n.suffix)]
    if isinstance(record, model.Vehicle):
        plate = record.plate.number if record.plate and "plate" not in denied else None
        return [plate, record.vin if "vin" not in denied else None]
    if isinstance(record, model.Incident):
        out: list[str | None] = []
        if "number" not in denied:
            out.append(record.number)
        if "narrative" not in denied:
            out.append(record.narrative)
        if "location" not in denied and record.location is not None:
            out.append(record.location.address)
        if "offenses" not in denied:
            out += [f"{o.code} {o.description}" for o in record.offenses]
        return out
    return [record.plate.number] if "plate" not in denied else []


def matches_readable(record: model.Record, denied: frozenset[str], text: str) -> bool:
    """Whether ``text`` matches the record on fields the reader may read.

    A vendor matched the record on all of its fields; a hit whose match lies only in a withheld
    field (a victim's name, a narrative) would confirm that field's content, so it is not
    shown. Each word of the search must be (nearly: spelling variants) a readable word.
    """
    asked = words(text)
    if not asked:
        return True
    readable = set().union(*(words(v) for v in _readable_text(record, denied)))
    compact = {model.normalise_plate(text).lower()}
    if compact & readable:
        return True
    return all(w in readable or any(fuzz.ratio(w, r) >= 85 for r in readable) for w in asked)
