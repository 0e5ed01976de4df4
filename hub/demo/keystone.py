"""Keystone RMS: a simulated records-management system speaking NIEM-style XML.

The protocol is documented in ``docs/vendors/keystone-rms.md``; this module is the vendor's side
of it. Records stay canonical in memory (``RecordIndex``) and are rendered to Keystone's XML only
when a query returns them, so a world of a million records costs one index build at start.

The code tables here are the vendor's own; the adapter keeps its reading of them separately, as a
hub reading a real vendor's documentation would, and the conformance suite checks they agree.
"""

from __future__ import annotations

import base64
import binascii
import hmac
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from xml.etree.ElementTree import Element, ParseError, SubElement, register_namespace, tostring

import defusedxml.ElementTree as SafeET
from aiohttp import hdrs, web
from defusedxml import DefusedXmlException

from hub.demo.simulator import Simulator
from hub.model import (
    Address,
    EntityKind,
    Incident,
    IncidentKind,
    InvolvementRef,
    Person,
    PersonName,
    Record,
    Vehicle,
    normalise_plate,
    parse_id,
)

NC_NS = "http://release.niem.gov/niem/niem-core/5.0/"
J_NS = "http://release.niem.gov/niem/domains/jxdm/7.0/"
KS_NS = "http://keystone.example.com/niem/rms/3.0/"
for _prefix, _uri in (("nc", NC_NS), ("j", J_NS), ("ks", KS_NS)):
    register_namespace(_prefix, _uri)

NC = "{" + NC_NS + "}"
J = "{" + J_NS + "}"
KS = "{" + KS_NS + "}"

QUERY_PATH = "/niem/v3/query"
MAX_RECORDS = 200
MAX_RECORD_IDS = 200
XML = "application/xml"

ENTITY_TYPES: dict[str, EntityKind] = {
    "Person": EntityKind.PERSON,
    "Vehicle": EntityKind.VEHICLE,
    "Incident": EntityKind.INCIDENT,
}

# Canonical values to Keystone codes; values outside a table travel in the free-text twin.
RESTRICTION_CODES: dict[str, str] = {
    "sealed": "SEALED",
    "juvenile": "JUV",
    "sex-offense-victim": "SXV",
    "in-state-only": "INST",
}
_RESTRICTION_ORDER = {tag: i for i, tag in enumerate(RESTRICTION_CODES)}
ROLE_CODES: dict[str, str] = {
    "SUSPECT": "SUS",
    "VICTIM": "VIC",
    "WITNESS": "WIT",
    "ARRESTEE": "ARR",
    "REPORTING_PARTY": "RP",
    "COMPLAINANT": "CMP",
    "OWNER": "OWN",
    "DRIVER": "DRV",
    "PASSENGER": "PSG",
    "MISSING_PERSON": "MP",
    "SUBJECT": "SUB",
    "INVOLVED": "INV",
    "OTHER": "OTH",
}
STATUS_CODES: dict[str, str] = {
    "OPEN": "OPN",
    "ACTIVE": "ACT",
    "PENDING": "PND",
    "SUSPENDED": "SUS",
    "CLOSED": "CLS",
    "CLEARED BY ARREST": "CBA",
    "EXCEPTIONALLY CLEARED": "CEX",
    "UNFOUNDED": "UNF",
    "INACTIVE": "INA",
}
CATEGORY_CODES: dict[IncidentKind, str] = {IncidentKind.REPORT: "RPT", IncidentKind.CALL: "CFS"}
MAKE_CODES: dict[str, str] = {
    "Acura": "ACUR",
    "Audi": "AUDI",
    "BMW": "BMW",
    "Buick": "BUIC",
    "Cadillac": "CADI",
    "Chevrolet": "CHEV",
    "Chrysler": "CHRY",
    "Dodge": "DODG",
    "Ford": "FORD",
    "GMC": "GMC",
    "Honda": "HOND",
    "Hyundai": "HYUN",
    "Infiniti": "INFI",
    "Jeep": "JEEP",
    "Kia": "KIA",
    "Lexus": "LEXS",
    "Lincoln": "LINC",
    "Mazda": "MAZD",
    "Mercedes-Benz": "MERZ",
    "Mitsubishi": "MITS",
    "Nissan": "NISS",
    "Ram": "RAM",
    "Subaru": "SUBA",
    "Tesla": "TESL",
    "Toyota": "TOYT",
    "Volkswagen": "VOLK",
    "Volvo": "VOLV",
}
COLOR_CODES: dict[str, str] = {
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


def xs_date(value: date) -> str:
    return value.isoformat()


def xs_datetime(value: datetime) -> str:
    """``xs:dateTime`` in UTC with ``Z``; fractional seconds only when there are some."""
    value = value.astimezone(UTC)
    text = value.strftime("%Y-%m-%dT%H:%M:%S")
    if value.microsecond:
        text += f".{value.microsecond:06d}"
    return text + "Z"


def _sub(parent: Element, tag: str, text: str | None = None, **attrib: str) -> Element:
    element = SubElement(parent, tag, attrib)
    if text is not None:
        element.text = text
    return element


def _ref(parent: Element, tag: str, hub_id: str) -> None:
    # Hub ids carry the vendor id; Keystone references records by its own id.
    _sub(parent, tag, **{KS + "recordRef": parse_id(hub_id).record_id})


def _coded(
    parent: Element, value: str, table: dict[str, str], code_tag: str, text_tag: str
) -> None:
    code = table.get(value)
    if code is not None:
        _sub(parent, code_tag, code)
    else:
        _sub(parent, text_tag, value)


def _restrictions(parent: Element, tags: Iterable[str]) -> None:
    # Table order first (a stable rendering), then codes Keystone has no table entry for.
    for tag in sorted(tags, key=lambda t: (_RESTRICTION_ORDER.get(t, len(_RESTRICTION_ORDER)), t)):
        # a code the hub's adapter does not know comes back to it as `keystone:<code>`
        code = RESTRICTION_CODES.get(tag, tag.removeprefix("keystone:"))
        _sub(parent, KS + "RecordRestriction", code)


def _metadata(parent: Element, record: Record) -> None:
    meta = _sub(parent, KS + "RecordMetadata")
    if record.created is not None:
        _sub(_sub(meta, KS + "RecordCreatedDate"), NC + "Date", xs_date(record.created))
    if record.provenance.last_updated is not None:
        updated = _sub(meta, KS + "RecordLastUpdatedDateTime")
        _sub(updated, NC + "DateTime", xs_datetime(record.provenance.last_updated))
    _restrictions(meta, record.tags)


def _name(parent: Element, tag: str, name: PersonName) -> None:
    element = _sub(parent, tag)
    for part, value in (
        ("PersonGivenName", name.given),
        ("PersonMiddleName", name.middle),
        ("PersonSurName", name.surname),
        ("PersonNameSuffixText", name.suffix),
    ):
        if value is not None:
            _sub(element, NC + part, value)


def _identification(parent: Element, tag: str, number: str, state: str | None = None) -> None:
    element = _sub(parent, tag)
    _sub(element, NC + "IdentificationID", number)
    if state is not None:
        _sub(element, J + "IdentificationJurisdictionNCICLISCode", state)


def _address(parent: Element, address: Address) -> None:
    element = _sub(_sub(parent, NC + "Location"), NC + "Address")
    if address.street is not None:
        _sub(_sub(element, NC + "LocationStreet"), NC + "StreetFullText", address.street)
    if address.city is not None:
        _sub(element, NC + "LocationCityName", address.city)
    if address.state is not None:
        _sub(element, NC + "LocationStateUSPostalServiceCode", address.state)
    if address.postal_code is not None:
        _sub(element, NC + "LocationPostalCode", address.postal_code)


def _measure(parent: Element, tag: str, value: int, unit_tag: str, unit: str) -> None:
    element = _sub(parent, tag)
    _sub(element, NC + "MeasureIntegerValue", str(value))
    _sub(element, NC + unit_tag, unit)


def _involvement(parent: Element, involvement: InvolvementRef) -> None:
    element = _sub(parent, J + "ActivityPersonAssociation")
    _ref(element, NC + "Activity", involvement.incident_id)
    _ref(element, NC + "Person", involvement.person_id)
    _coded(
        element,
        involvement.role,
        ROLE_CODES,
        KS + "InvolvementRoleCode",
        KS + "InvolvementRoleText",
    )
    _restrictions(element, involvement.tags)


def render_person(parent: Element, person: Person) -> None:
    element = _sub(parent, NC + "Person", **{KS + "recordID": person.provenance.record_id})
    _metadata(element, person)
    _name(element, NC + "PersonName", person.name)
    for alias in person.aliases:
        _name(element, NC + "PersonAlternateName", alias)
    if person.date_of_birth is not None:
        _sub(_sub(element, NC + "PersonBirthDate"), NC + "Date", xs_date(person.date_of_birth))
    if person.sex is not None:
        _sub(element, J + "PersonSexCode", person.sex)
    if person.race is not None:
        _sub(element, J + "PersonRaceCode", person.race)
    if person.height is not None:
        _measure(element, NC + "PersonHeightMeasure", person.height, "LengthUnitCode", "INH")
    if person.weight is not None:
        _measure(element, NC + "PersonWeightMeasure", person.weight, "WeightUnitCode", "LBR")
    if person.ssn is not None:
        _identification(element, NC + "PersonSSNIdentification", person.ssn)
    if person.driver_license is not None:
        licence = _sub(element, J + "DriverLicense")
        _identification(
            licence,
            J + "DriverLicenseCardIdentification",
            person.driver_license.number,
            person.driver_license.state,
        )
    for address in person.addresses:
        _address(element, address)
    for phone in person.phones:
        number = _sub(_sub(element, NC + "TelephoneNumber"), NC + "FullTelephoneNumber")
        _sub(number, NC + "TelephoneNumberFullID", phone)
    for caution in person.cautions:
        _sub(element, KS + "CautionText", caution)
    for vehicle_id in person.vehicle_ids:
        _ref(_sub(element, NC + "PersonConveyanceAssociation"), NC + "Vehicle", vehicle_id)
    for involvement in person.involvements:
        _involvement(element, involvement)


def render_vehicle(parent: Element, vehicle: Vehicle) -> None:
    element = _sub(parent, NC + "Vehicle", **{KS + "recordID": vehicle.provenance.record_id})
    _metadata(element, vehicle)
    if vehicle.vin is not None:
        _identification(element, NC + "VehicleIdentification", vehicle.vin)
    if vehicle.plate is not None:
        _identification(
            element,
            J + "ConveyanceRegistrationPlateIdentification",
            vehicle.plate.number,
            vehicle.plate.state,
        )
    if vehicle.make is not None:
        _coded(element, vehicle.make, MAKE_CODES, J + "VehicleMakeCode", NC + "ItemMakeName")
    if vehicle.model is not None:
        _sub(element, NC + "ItemModelName", vehicle.model)
    if vehicle.year is not None:
        _sub(element, NC + "ItemModelYearDate", str(vehicle.year))
    if vehicle.color is not None:
        _coded(
            element,
            vehicle.color,
            COLOR_CODES,
            J + "VehicleColorPrimaryCode",
            NC + "ItemColorDescriptionText",
        )
    if vehicle.registered_owner_id is not None:
        _ref(_sub(element, NC + "ItemOwner"), NC + "EntityPerson", vehicle.registered_owner_id)


def render_incident(parent: Element, incident: Incident) -> None:
    element = _sub(parent, J + "Incident", **{KS + "recordID": incident.provenance.record_id})
    _metadata(element, incident)
    _identification(element, NC + "ActivityIdentification", incident.number)
    _sub(element, KS + "IncidentCategoryCode", CATEGORY_CODES[incident.incident_kind])
    if incident.occurred_at is not None:
        _sub(_sub(element, NC + "ActivityDate"), NC + "DateTime", xs_datetime(incident.occurred_at))
    if incident.reported_at is not None:
        reported = _sub(element, J + "IncidentReportedDate")
        _sub(reported, NC + "DateTime", xs_datetime(incident.reported_at))
    if incident.status is not None:
        status = _sub(element, NC + "ActivityStatus")
        _coded(
            status, incident.status, STATUS_CODES, KS + "StatusCode", NC + "StatusDescriptionText"
        )
    if incident.narrative is not None:
        _sub(element, NC + "ActivityDescriptionText", incident.narrative)
    if incident.location is not None:
        location = _sub(element, NC + "Location")
        if incident.location.address is not None:
            _sub(_sub(location, NC + "Address"), NC + "AddressFullText", incident.location.address)
        latitude, longitude = incident.location.latitude, incident.location.longitude
        if latitude is not None or longitude is not None:
            point = _sub(location, NC + "Location2DGeospatialCoordinate")
            if latitude is not None:
                _sub(
                    _sub(point, NC + "GeographicCoordinateLatitude"),
                    NC + "LatitudeDegreeValue",
                    repr(latitude),
                )
            if longitude is not None:
                _sub(
                    _sub(point, NC + "GeographicCoordinateLongitude"),
                    NC + "LongitudeDegreeValue",
                    repr(longitude),
                )
    for offense in incident.offenses:
        element_offense = _sub(element, J + "Offense")
        _sub(element_offense, J + "OffenseUCRCode", offense.code)
        _sub(element_offense, NC + "ActivityDescriptionText", offense.description)
    for involvement in incident.involvements:
        _involvement(element, involvement)
    for vehicle_id in incident.involved_vehicle_ids:
        _ref(_sub(element, J + "ActivityConveyanceAssociation"), NC + "Vehicle", vehicle_id)


def render_record(parent: Element, record: Record) -> None:
    if isinstance(record, Person):
        render_person(parent, record)
    elif isinstance(record, Vehicle):
        render_vehicle(parent, record)
    elif isinstance(record, Incident):
        render_incident(parent, record)
    else:  # Keystone holds no plate reads; a world that gives it some is a bug upstream.
        raise TypeError(f"Keystone cannot render {type(record).__name__}")


def _serialise(root: Element) -> bytes:
    data: bytes = tostring(root, encoding="utf-8", xml_declaration=True)
    return data


def render_response(records: Sequence[Record], total: int, start: int) -> bytes:
    root = Element(KS + "QueryResponse")
    _sub(root, KS + "TotalCount", str(total))
    _sub(root, KS + "StartIndex", str(start))
    _sub(root, KS + "ReturnedCount", str(len(records)))
    for record in records:
        render_record(root, record)
    return _serialise(root)


FAULT_CODES: dict[int, str] = {
    400: "BAD_REQUEST",
    401: "AUTHENTICATION_FAILED",
    404: "NOT_FOUND",
    500: "INTERNAL_ERROR",
    503: "SERVICE_UNAVAILABLE",
}
FAULT_TEXTS: dict[int, str] = {
    401: "credentials not accepted",
    404: "no such service",
    500: "the query could not be completed",
    503: "the service is temporarily unavailable",
}


def render_fault(status: int, text: str | None = None) -> bytes:
    root = Element(KS + "Fault")
    _sub(root, KS + "FaultCode", FAULT_CODES.get(status, "INTERNAL_ERROR"))
    _sub(root, KS + "FaultText", text or FAULT_TEXTS.get(status, "request failed"))
    return _serialise(root)


class BadQuery(ValueError):
    """The query document is not one Keystone understands (answered with a 400 fault)."""


@dataclass(frozen=True, slots=True)
class Query:
    kind: EntityKind
    text: str | None
    plates: tuple[str, ...]
    plate_state: str | None
    record_ids: tuple[str, ...]
    start: int
    max_records: int


def _int(root: Element, tag: str, default: int) -> int:
    element = root.find(tag)
    if element is None:
        return default
    try:
        return int((element.text or "").strip())
    except ValueError as exc:
        raise BadQuery(f"{tag.rsplit('}', 1)[-1]} is not a number") from exc


def read_query(body: bytes) -> Query:
    try:
        root = SafeET.fromstring(body)
    except (ParseError, DefusedXmlException, ValueError) as exc:
        raise BadQuery("the query is not well-formed XML") from exc
    if root.tag != KS + "QueryRequest":
        raise BadQuery("expected ks:QueryRequest")
    entity = root.findtext(KS + "EntityType", "").strip()
    if entity not in ENTITY_TYPES:
        raise BadQuery("EntityType must be Person, Vehicle or Incident")
    text = root.findtext(KS + "SearchText")
    plates = tuple((e.text or "").strip() for e in root.iterfind(KS + "Plate"))
    record_ids = tuple((e.text or "").strip() for e in root.iterfind(KS + "RecordID"))
    if not (text and text.strip()) and not plates and not record_ids:
        raise BadQuery("at least one of SearchText, Plate, RecordID is required")
    if len(record_ids) > MAX_RECORD_IDS:
        raise BadQuery(f"at most {MAX_RECORD_IDS} RecordID per query")
    start = _int(root, KS + "StartIndex", 0)
    max_records = _int(root, KS + "MaxRecords", MAX_RECORDS)
    if start < 0 or max_records < 1:
        raise BadQuery("StartIndex must be >= 0 and MaxRecords >= 1")
    plate_state = (root.findtext(KS + "PlateState") or "").strip() or None
    return Query(
        kind=ENTITY_TYPES[entity],
        text=text,
        plates=plates,
        plate_state=plate_state,
        record_ids=record_ids,
        start=start,
        max_records=min(max_records, MAX_RECORDS),
    )


class KeystoneSimulator(Simulator):
    vendor = "Keystone"
    kind = "keystone-rms"

    def routes(self) -> list[web.RouteDef]:
        return [web.post(QUERY_PATH, self._query)]

    def authorized(self, request: web.Request) -> bool:
        scheme, _, encoded = request.headers.get(hdrs.AUTHORIZATION, "").partition(" ")
        if scheme.lower() != "basic":
            return False
        try:
            decoded = base64.b64decode(encoded.strip(), validate=True)
        except binascii.Error:
            return False
        login, colon, password = decoded.partition(b":")
        return bool(login and colon) and hmac.compare_digest(password, self.api_key.encode())

    def error_body(self, status: int) -> tuple[bytes, str]:
        return render_fault(status), XML

    def malformed_body(self) -> tuple[bytes, str]:
        return (
            b'<?xml version="1.0"?><ks:QueryResponse xmlns:ks="' + KS_NS.encode() + b'">'
            b"<ks:TotalCount>3</ks:TotalCount><nc:Person ks:recordID=",
            XML,
        )

    def select(self, query: Query) -> list[Record]:
        """Every record the query matches, in a stable order (before paging)."""
        kind = query.kind
        # Each given criterion narrows the result; the first one given orders it.
        matches: list[list[Record]] = []
        if query.record_ids:
            found = (self.index.get(kind, rid) for rid in dict.fromkeys(query.record_ids))
            matches.append([r for r in found if r is not None])
        if query.plates:
            plates = list(dict.fromkeys(normalise_plate(p) for p in query.plates))
            matches.append(self.index.by_plates(plates, kind, query.plate_state))
        elif query.plate_state is not None:
            matches.append(
                [
                    r
                    for r in self.index.records
                    if isinstance(r, Vehicle)
                    and r.plate is not None
                    and r.plate.state == query.plate_state
                ]
            )
        if query.text and query.text.strip():
            matches.append(self.index.search(query.text, [kind]))
        records, *narrowing = matches
        for other in narrowing:
            keep = {id(r) for r in other}
            records = [r for r in records if id(r) in keep]
        return records

    async def _query(self, request: web.Request) -> web.Response:
        try:
            query = read_query(await request.read())
        except BadQuery as exc:
            return web.Response(status=400, body=render_fault(400, str(exc)), content_type=XML)
        matched = self.select(query)
        page = matched[query.start : query.start + query.max_records]
        body = render_response(page, len(matched), query.start)
        return web.Response(body=body, content_type=XML)
