"""The Northwind RMS simulator: a JSON REST records-management system.

It renders the canonical records of one agency's system in Northwind's wire format (protocol:
docs/vendors/northwind-rms.md). The rendering is written out field by field here, on purpose not
shared with the adapter: the simulator stands in for the vendor, and a mistake in one should show
up as a conformance failure rather than cancel out.

Lookups go through ``RecordIndex`` (by id, word, plate); only the page asked for is rendered.
The matches of the last few queries are kept so that paging through a large answer does not
search again for every page.
"""

from __future__ import annotations

import hmac
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

import msgspec
from aiohttp import web

from hub.demo.simulator import Simulator
from hub.model import (
    Agency,
    EntityKind,
    Incident,
    IncidentKind,
    InvolvementRef,
    LegalTag,
    Person,
    PersonName,
    Record,
    Vehicle,
    kind_of,
    parse_id,
)

MAX_PAGE_SIZE = 100
DEFAULT_PAGE_SIZE = 25
MAX_LIST = 100  # ids / plates in one request
_RECENT_QUERIES = 64

# Northwind keeps timestamps in the agency's wall-clock time, with the offset.
STATE_ZONES = {
    "CA": "America/Los_Angeles",
    "OR": "America/Los_Angeles",
    "WA": "America/Los_Angeles",
    "NV": "America/Los_Angeles",
    "ID": "America/Boise",
    "AZ": "America/Phoenix",
    "UT": "America/Denver",
    "CO": "America/Denver",
    "TX": "America/Chicago",
    "IL": "America/Chicago",
    "NY": "America/New_York",
}

# -- Northwind's code tables (canonical -> vendor) ------------------------------------------------

GENDERS = {"M": "Male", "F": "Female", "X": "Non-Binary", "U": "Unknown"}
RACES = {"W": "White", "B": "Black", "A": "Asian", "I": "American Indian", "U": "Unknown"}
ROLES = {
    "SUSPECT": "SUS",
    "VICTIM": "VIC",
    "WITNESS": "WIT",
    "ARRESTEE": "ARR",
    "REPORTING_PARTY": "RP",
    "OWNER": "OWN",
    "DRIVER": "DRV",
    "PASSENGER": "PSG",
    "COMPLAINANT": "CMP",
    "MISSING_PERSON": "MSP",
    "OTHER": "OTH",
}
RESTRICTIONS = {
    LegalTag.SEX_OFFENSE_VICTIM.value: "SXV",
    LegalTag.IN_STATE_ONLY.value: "ISO",
}
REPORT_TYPES = {IncidentKind.REPORT: "Incident Report", IncidentKind.CALL: "Call For Service"}
CASE_STATUSES = {
    "OPEN": "OPN",
    "INACTIVE": "INA",
    "CLOSED": "CLS",
    "CLEARED BY ARREST": "CBA",
    "EXCEPTIONALLY CLEARED": "CEX",
    "UNFOUNDED": "UNF",
}
# NCIC vehicle colour codes.
COLORS = {
    "BEIGE": "BGE",
    "BLACK": "BLK",
    "BLUE": "BLU",
    "BROWN": "BRO",
    "GOLD": "GLD",
    "GREEN": "GRN",
    "GRAY": "GRY",
    "MAROON": "MAR",
    "ORANGE": "ONG",
    "PURPLE": "PLE",
    "RED": "RED",
    "SILVER": "SIL",
    "TAN": "TAN",
    "WHITE": "WHI",
    "YELLOW": "YEL",
}

_PATHS = {
    "persons": EntityKind.PERSON,
    "vehicles": EntityKind.VEHICLE,
    "incidents": EntityKind.INCIDENT,
}
_encoder = msgspec.json.Encoder()


class BadQuery(Exception):
    """The request breaks a rule of the protocol (answered 400 with Northwind's error body)."""


def _errors(status: int, code: str, message: str) -> web.Response:
    body = _encoder.encode({"errors": [{"code": code, "message": message}]})
    return web.Response(status=status, body=body, content_type="application/json")


def _vendor_id(hub_id: str) -> str:
    return parse_id(hub_id).record_id


def _date(value: date | None) -> str | None:
    return value.isoformat() if value is not None else None


def _height(inches: int | None) -> str | None:
    if inches is None:
        return None
    return f"{inches // 12}'{inches % 12}\""


def _flags(tags: frozenset[str]) -> dict[str, Any]:
    return {
        "sealed": LegalTag.SEALED.value in tags,
        "juvenile": LegalTag.JUVENILE.value in tags,
        "restrictions": _restrictions(tags),
    }


def _restrictions(tags: frozenset[str]) -> list[str]:
    codes = []
    for tag in sorted(tags):
        if tag in RESTRICTIONS:
            codes.append(RESTRICTIONS[tag])
        elif tag.startswith("northwind:"):
            codes.append(tag.removeprefix("northwind:").upper())
    return codes


def _name(name: PersonName) -> dict[str, Any]:
    return {
        "lastName": name.surname,
        "firstName": name.given,
        "middleName": name.middle,
        "suffix": name.suffix,
    }


def _positive_int(value: str, what: str, default: int) -> int:
    if value == "":
        return default
    try:
        number = int(value)
    except ValueError:
        raise BadQuery(f"{what} must be an integer") from None
    if number < 1:
        raise BadQuery(f"{what} must be at least 1")
    return number


class NorthwindSimulator(Simulator):
    vendor = "Northwind"
    kind = "northwind-rms"

    def __init__(
        self,
        *,
        system_name: str,
        agency: Agency,
        records: Sequence[Record],
        api_key: str,
        latency_ms: float = 0.0,
    ) -> None:
        super().__init__(
            system_name=system_name,
            agency=agency,
            records=records,
            api_key=api_key,
            latency_ms=latency_ms,
        )
        self.zone = ZoneInfo(STATE_ZONES.get(agency.state, "UTC"))
        self._recent: OrderedDict[tuple[EntityKind, str], list[Record]] = OrderedDict()

    # -- the protocol ---------------------------------------------------------------------------

    def routes(self) -> list[web.RouteDef]:
        return [
            web.get("/api/v2/{collection:persons|vehicles|incidents}", self._list),
            web.get("/api/v2/{collection:persons|vehicles|incidents}/{record_id}", self._one),
        ]

    def authorized(self, request: web.Request) -> bool:
        given = request.headers.get("X-Api-Key", "")
        return hmac.compare_digest(given.encode(), self.api_key.encode())

    def error_body(self, status: int) -> tuple[bytes, str]:
        if status == 401:
            error = {"code": "AUTH_INVALID_KEY", "message": "Missing or invalid API key."}
        else:
            error = {"code": "INTERNAL_ERROR", "message": "An unexpected error occurred."}
        return (_encoder.encode({"errors": [error]}), "application/json")

    def malformed_body(self) -> tuple[bytes, str]:
        # What a load balancer in front of the RMS answers during maintenance.
        return (b"<html><body><h1>Service Temporarily Unavailable</h1></body></html>", "text/html")

    async def _list(self, request: web.Request) -> web.Response:
        kind = _PATHS[request.match_info["collection"]]
        try:
            page = _positive_int(request.query.get("page", ""), "page", 1)
            size = _positive_int(request.query.get("pageSize", ""), "pageSize", DEFAULT_PAGE_SIZE)
            if size > MAX_PAGE_SIZE:
                raise BadQuery(f"pageSize must be at most {MAX_PAGE_SIZE}")
            matches = self._matches(kind, request.query)
        except BadQuery as exc:
            return _errors(400, "BAD_QUERY", str(exc))
        chunk = matches[(page - 1) * size : page * size]
        payload = {
            "data": [self.render(record) for record in chunk],
            "paging": {"page": page, "pageSize": size, "totalRecords": len(matches)},
        }
        return web.Response(body=_encoder.encode(payload), content_type="application/json")

    async def _one(self, request: web.Request) -> web.Response:
        kind = _PATHS[request.match_info["collection"]]
        record = self.index.get(kind, request.match_info["record_id"])
        if record is None:
            return _errors(404, "NOT_FOUND", "No such record.")
        return web.Response(
            body=_encoder.encode(self.render(record)), content_type="application/json"
        )

    def _matches(self, kind: EntityKind, query: Mapping[str, str]) -> list[Record]:
        given = [key for key in ("q", "ids", "plates") if key in query]
        if len(given) != 1:
            raise BadQuery("exactly one of q, ids, plates is required")
        value: str = query[given[0]]
        if given[0] == "ids":
            ids = [i for i in dict.fromkeys(value.split(",")) if i]
            if len(ids) > MAX_LIST:
                raise BadQuery(f"at most {MAX_LIST} ids")
            return [r for r in (self.index.get(kind, i) for i in ids) if r is not None]
        if given[0] == "plates":
            if kind is not EntityKind.VEHICLE:
                raise BadQuery("plates is only accepted on vehicles")
            plates = [p for p in dict.fromkeys(value.split(",")) if p.strip()]
            if len(plates) > MAX_LIST:
                raise BadQuery(f"at most {MAX_LIST} plates")
            state = query.get("plateState") or None
            return self.index.by_plates(plates, kind, state=state)
        if not value.strip():
            raise BadQuery("q must not be empty")
        return self._search(kind, value)

    def records_changed(self) -> None:
        self._recent.clear()

    def _search(self, kind: EntityKind, text: str) -> list[Record]:
        key = (kind, " ".join(sorted(text.lower().split())))
        found = self._recent.get(key)
        if found is None:
            found = self.index.search(text, [kind])
            self._recent[key] = found
            if len(self._recent) > _RECENT_QUERIES:
                self._recent.popitem(last=False)
        else:
            self._recent.move_to_end(key)
        return found

    # -- rendering ------------------------------------------------------------------------------

    def _timestamp(self, value: datetime | None) -> str | None:
        return value.astimezone(self.zone).isoformat() if value is not None else None

    def _common(self, record: Record) -> dict[str, Any]:
        return {
            **_flags(record.tags),
            "createdOn": _date(record.created),
            "modifiedOn": self._timestamp(record.provenance.last_updated),
        }

    def render(self, record: Record) -> dict[str, Any]:
        """One record as Northwind writes it."""
        if isinstance(record, Person):
            return self._person(record)
        if isinstance(record, Vehicle):
            return self._vehicle(record)
        if isinstance(record, Incident):
            return self._incident(record)
        raise TypeError(f"Northwind RMS holds no {kind_of(record)} records")

    def _person(self, p: Person) -> dict[str, Any]:
        license_ = p.driver_license
        return {
            "personId": p.provenance.record_id,
            **_name(p.name),
            "aliases": [_name(a) for a in p.aliases],
            "dob": _date(p.date_of_birth),
            "gender": GENDERS.get(p.sex, "Unknown") if p.sex else None,
            "raceCode": RACES.get(p.race, "Unknown") if p.race else None,
            "heightFtIn": _height(p.height),
            "weightLbs": p.weight,
            "ssn": p.ssn.replace("-", "") if p.ssn else None,
            "dlNumber": license_.number if license_ else None,
            # Northwind leaves the state empty when it is the agency's own.
            "dlState": (
                license_.state if license_ and license_.state != self.agency.state else None
            ),
            "addresses": [
                {"line1": a.street, "city": a.city, "st": a.state, "zip": a.postal_code}
                for a in p.addresses
            ],
            "phoneNumbers": list(p.phones),
            "officerSafetyCautions": list(p.cautions),
            "ownedVehicleIds": [_vendor_id(v) for v in p.vehicle_ids],
            "involvements": [self._person_involvement(i) for i in p.involvements],
            **self._common(p),
        }

    def _person_involvement(self, involvement: InvolvementRef) -> dict[str, Any]:
        incident_id = _vendor_id(involvement.incident_id)
        incident = self.index.get(EntityKind.INCIDENT, incident_id)
        return {
            "incidentId": incident_id,
            "incidentNo": incident.number if isinstance(incident, Incident) else None,
            "role": ROLES.get(involvement.role, "OTH"),
            **_flags(involvement.tags),
        }

    def _vehicle(self, v: Vehicle) -> dict[str, Any]:
        return {
            "vehicleId": v.provenance.record_id,
            "vin": v.vin,
            "plateNo": v.plate.number if v.plate else None,
            "plateState": v.plate.state if v.plate else None,
            "make": v.make,
            "model": v.model,
            "modelYear": v.year,
            "color": COLORS.get(v.color, v.color) if v.color else None,
            "ownerPersonId": _vendor_id(v.registered_owner_id) if v.registered_owner_id else None,
            **self._common(v),
        }

    def _incident(self, i: Incident) -> dict[str, Any]:
        location = None
        if i.location is not None:
            location = {
                "streetAddress": i.location.address,
                "lat": i.location.latitude,
                "lng": i.location.longitude,
            }
        return {
            "incidentId": i.provenance.record_id,
            "incidentNo": i.number,
            "reportType": REPORT_TYPES[i.incident_kind],
            "offenses": [{"nibrsCode": o.code, "literal": o.description} for o in i.offenses],
            "occurredOn": self._timestamp(i.occurred_at),
            "reportedOn": self._timestamp(i.reported_at),
            "location": location,
            "status": CASE_STATUSES.get(i.status, i.status) if i.status else None,
            "narrative": i.narrative,
            "involvedPersons": [
                {
                    "personId": _vendor_id(p.person_id),
                    "role": ROLES.get(p.role, "OTH"),
                    **_flags(p.tags),
                }
                for p in i.involvements
            ],
            "involvedVehicleIds": [_vendor_id(v) for v in i.involved_vehicle_ids],
            **self._common(i),
        }
