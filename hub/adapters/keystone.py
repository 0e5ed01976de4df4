"""Keystone RMS: persons, vehicles and incidents over NIEM-style XML.

The protocol is documented in ``docs/vendors/keystone-rms.md``. Every answer is parsed with
``hub.adapters.http.parse_xml`` (defusedxml: no DTDs, no entity expansion); an answer of the
wrong shape is a ``SourceProtocolError``, a fault document is mapped by its fault code.
"""

from __future__ import annotations

from collections.abc import Awaitable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from xml.etree.ElementTree import Element, SubElement, register_namespace, tostring

import aiohttp

from hub.adapters.base import Adapter, SearchRequest, SourceConfig
from hub.adapters.calls import batches, follow_pages, run_together
from hub.adapters.http import parse_xml, request_bytes
from hub.errors import (
    ConfigError,
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
    InvolvementRef,
    LegalTag,
    LicensePlate,
    Location,
    Offense,
    Person,
    PersonName,
    Provenance,
    Record,
    SourceKind,
    SourceSystem,
    Vehicle,
    make_id,
    normalise_plate,
)
from hub.ncic import VEHICLE_COLORS

NC_NS = "http://release.niem.gov/niem/niem-core/5.0/"
J_NS = "http://release.niem.gov/niem/domains/jxdm/7.0/"
KS_NS = "http://keystone.example.com/niem/rms/3.0/"
NS = {"nc": NC_NS, "j": J_NS, "ks": KS_NS}
register_namespace("ks", KS_NS)

KS = "{" + KS_NS + "}"
QUERY_PATH = "/niem/v3/query"
# The most records (and RecordIDs) Keystone answers per query.
SERVER_MAX = 200

ENTITY_TYPES: dict[EntityKind, str] = {
    EntityKind.PERSON: "Person",
    EntityKind.VEHICLE: "Vehicle",
    EntityKind.INCIDENT: "Incident",
}
RECORD_TAGS: dict[str, EntityKind] = {
    "{" + NC_NS + "}Person": EntityKind.PERSON,
    "{" + NC_NS + "}Vehicle": EntityKind.VEHICLE,
    "{" + J_NS + "}Incident": EntityKind.INCIDENT,
}

# Keystone codes to canonical values (from the vendor's documentation); a code missing from a
# table is passed through as it is rather than dropped, so a new vendor code is visible.
RESTRICTIONS: dict[str, str] = {
    "SEALED": "sealed",
    "JUV": "juvenile",
    "SXV": "sex-offense-victim",
    "INST": "in-state-only",
}
_TAG_ORDER = {tag.value: i for i, tag in enumerate(LegalTag)}
_NO_TAGS: frozenset[str] = frozenset()
ROLES: dict[str, str] = {
    "SUS": "SUSPECT",
    "VIC": "VICTIM",
    "WIT": "WITNESS",
    "ARR": "ARRESTEE",
    "RP": "REPORTING_PARTY",
    "CMP": "COMPLAINANT",
    "OWN": "OWNER",
    "DRV": "DRIVER",
    "PSG": "PASSENGER",
    "MP": "MISSING_PERSON",
    "SUB": "SUBJECT",
    "INV": "INVOLVED",
    "OTH": "OTHER",
}
STATUSES: dict[str, str] = {
    "OPN": "OPEN",
    "ACT": "ACTIVE",
    "PND": "PENDING",
    "SUS": "SUSPENDED",
    "CLS": "CLOSED",
    "CBA": "CLEARED BY ARREST",
    "CEX": "EXCEPTIONALLY CLEARED",
    "UNF": "UNFOUNDED",
    "INA": "INACTIVE",
}
CATEGORIES: dict[str, IncidentKind] = {"RPT": IncidentKind.REPORT, "CFS": IncidentKind.CALL}
MAKES: dict[str, str] = {
    "ACUR": "Acura",
    "AUDI": "Audi",
    "BMW": "BMW",
    "BUIC": "Buick",
    "CADI": "Cadillac",
    "CHEV": "Chevrolet",
    "CHRY": "Chrysler",
    "DODG": "Dodge",
    "FORD": "Ford",
    "GMC": "GMC",
    "HOND": "Honda",
    "HYUN": "Hyundai",
    "INFI": "Infiniti",
    "JEEP": "Jeep",
    "KIA": "Kia",
    "LEXS": "Lexus",
    "LINC": "Lincoln",
    "MAZD": "Mazda",
    "MERZ": "Mercedes-Benz",
    "MITS": "Mitsubishi",
    "NISS": "Nissan",
    "RAM": "Ram",
    "SUBA": "Subaru",
    "TESL": "Tesla",
    "TOYT": "Toyota",
    "VOLK": "Volkswagen",
    "VOLV": "Volvo",
}
# Fault codes that say something other than "the vendor did not like our request".
FAULTS: dict[str, type[SourceError]] = {
    "AUTHENTICATION_FAILED": SourceAuthError,
    "INTERNAL_ERROR": SourceUnavailable,
    "SERVICE_UNAVAILABLE": SourceUnavailable,
}


class _Shape(ValueError):
    """The answer is well-formed XML but not of the documented shape."""


@dataclass(frozen=True, slots=True)
class _Common:
    id: str
    provenance: Provenance
    tags: frozenset[str]
    created: date | None


@dataclass(frozen=True, slots=True)
class _Criteria:
    text: str | None = None
    plates: tuple[str, ...] = ()
    plate_state: str | None = None
    record_ids: tuple[str, ...] = ()


def _find(element: Element, path: str) -> Element | None:
    return element.find(path, NS)


def _text(element: Element, path: str) -> str | None:
    """The text of a leaf element; None when absent, "" when present but empty."""
    found = element.find(path, NS)
    if found is None:
        return None
    return found.text or ""


def _need(element: Element, path: str) -> str:
    value = _text(element, path)
    if value is None:
        raise _Shape(f"missing {path}")
    return value


def _need_element(element: Element, path: str) -> Element:
    found = element.find(path, NS)
    if found is None:
        raise _Shape(f"missing {path}")
    return found


def _int(text: str | None) -> int | None:
    return None if text is None else int(text.strip())


def _float(text: str | None) -> float | None:
    return None if text is None else float(text.strip())


def _date(text: str | None) -> date | None:
    return None if text is None else date.fromisoformat(text.strip())


def _datetime(text: str | None) -> datetime | None:
    if text is None:
        return None
    value = datetime.fromisoformat(text.strip())
    # Keystone documents its instants as UTC; a gateway that drops the "Z" still means UTC.
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


def _coded(element: Element, code_path: str, text_path: str, table: dict[str, str]) -> str | None:
    code = _text(element, code_path)
    if code is not None:
        return table.get(code, code)
    return _text(element, text_path)


def _tags(element: Element) -> frozenset[str]:
    codes = [(e.text or "").strip() for e in element.iterfind("ks:RecordRestriction", NS)]
    if not codes:
        return _NO_TAGS
    # A code this adapter does not know keeps its vendor's name: the policy reads it as an
    # unrecognised restriction (a pointer at most) until legal-tags.yaml names it.
    tags = {RESTRICTIONS.get(code, f"keystone:{code}") for code in codes}
    # Built in LegalTag order: equal frozensets built in different orders can iterate (and so
    # serialise) differently, and records are compared and cached as JSON.
    return frozenset(sorted(tags, key=lambda t: (_TAG_ORDER.get(t, len(_TAG_ORDER)), t)))


def _ref(element: Element, path: str) -> str:
    found = _need_element(element, path)
    record_id = found.get(KS + "recordRef")
    if not record_id:
        raise _Shape(f"reference without ks:recordRef in {path}")
    return record_id


def _measure(element: Element | None, unit_path: str, units: dict[str, float]) -> int | None:
    if element is None:
        return None
    value = int(_need(element, "nc:MeasureIntegerValue").strip())
    unit = (_text(element, unit_path) or next(iter(units))).strip()
    if unit not in units:
        raise _Shape(f"unknown unit {unit[:8]!r}")
    factor = units[unit]
    return value if factor == 1 else round(value * factor)


class _Reader:
    """Turns Keystone record elements into canonical records of one source."""

    def __init__(self, source: str, agency: Agency, system: SourceSystem) -> None:
        self.source = source
        self.agency = agency
        self.system = system
        self.retrieved_at = datetime.now(UTC)

    def record(self, element: Element, kind: EntityKind) -> Record:
        if kind is EntityKind.PERSON:
            return self.person(element)
        if kind is EntityKind.VEHICLE:
            return self.vehicle(element)
        return self.incident(element)

    def _common(self, element: Element, kind: EntityKind) -> _Common:
        record_id = element.get(KS + "recordID")
        if not record_id:
            raise _Shape("record without ks:recordID")
        meta = _find(element, "ks:RecordMetadata")
        created = updated = None
        tags: frozenset[str] = frozenset()
        if meta is not None:
            created = _date(_text(meta, "ks:RecordCreatedDate/nc:Date"))
            updated = _datetime(_text(meta, "ks:RecordLastUpdatedDateTime/nc:DateTime"))
            tags = _tags(meta)
        provenance = Provenance(
            agency=self.agency,
            system=self.system,
            record_id=record_id,
            retrieved_at=self.retrieved_at,
            last_updated=updated,
        )
        return _Common(make_id(self.source, kind, record_id), provenance, tags, created)

    def _id(self, kind: EntityKind, element: Element, path: str) -> str:
        return make_id(self.source, kind, _ref(element, path))

    def _involvement(self, element: Element) -> InvolvementRef:
        role = _coded(element, "ks:InvolvementRoleCode", "ks:InvolvementRoleText", ROLES)
        if role is None:
            raise _Shape("involvement without a role")
        return InvolvementRef(
            role=role,
            person_id=self._id(EntityKind.PERSON, element, "nc:Person"),
            incident_id=self._id(EntityKind.INCIDENT, element, "nc:Activity"),
            tags=_tags(element),
        )

    def _involvements(self, element: Element) -> tuple[InvolvementRef, ...]:
        return tuple(
            self._involvement(e) for e in element.iterfind("j:ActivityPersonAssociation", NS)
        )

    def person(self, element: Element) -> Person:
        common = self._common(element, EntityKind.PERSON)
        licence = _find(element, "j:DriverLicense/j:DriverLicenseCardIdentification")
        return Person(
            id=common.id,
            provenance=common.provenance,
            tags=common.tags,
            created=common.created,
            name=_name(_need_element(element, "nc:PersonName")),
            aliases=tuple(_name(e) for e in element.iterfind("nc:PersonAlternateName", NS)),
            date_of_birth=_date(_text(element, "nc:PersonBirthDate/nc:Date")),
            sex=_text(element, "j:PersonSexCode"),
            race=_text(element, "j:PersonRaceCode"),
            height=_measure(
                _find(element, "nc:PersonHeightMeasure"),
                "nc:LengthUnitCode",
                {"INH": 1, "CMT": 1 / 2.54},
            ),
            weight=_measure(
                _find(element, "nc:PersonWeightMeasure"),
                "nc:WeightUnitCode",
                {"LBR": 1, "KGM": 2.20462},
            ),
            ssn=_text(element, "nc:PersonSSNIdentification/nc:IdentificationID"),
            driver_license=None
            if licence is None
            else DriverLicense(
                number=_need(licence, "nc:IdentificationID"),
                state=_need(licence, "j:IdentificationJurisdictionNCICLISCode"),
            ),
            addresses=tuple(_address(e) for e in element.iterfind("nc:Location/nc:Address", NS)),
            phones=tuple(
                e.text or ""
                for e in element.iterfind(
                    "nc:TelephoneNumber/nc:FullTelephoneNumber/nc:TelephoneNumberFullID", NS
                )
            ),
            cautions=tuple(e.text or "" for e in element.iterfind("ks:CautionText", NS)),
            vehicle_ids=tuple(
                self._id(EntityKind.VEHICLE, e, "nc:Vehicle")
                for e in element.iterfind("nc:PersonConveyanceAssociation", NS)
            ),
            involvements=self._involvements(element),
        )

    def vehicle(self, element: Element) -> Vehicle:
        common = self._common(element, EntityKind.VEHICLE)
        plate = _find(element, "j:ConveyanceRegistrationPlateIdentification")
        owner = _find(element, "nc:ItemOwner")
        return Vehicle(
            id=common.id,
            provenance=common.provenance,
            tags=common.tags,
            created=common.created,
            vin=_text(element, "nc:VehicleIdentification/nc:IdentificationID"),
            plate=None
            if plate is None
            else LicensePlate(
                number=_need(plate, "nc:IdentificationID"),
                state=_need(plate, "j:IdentificationJurisdictionNCICLISCode"),
            ),
            make=_coded(element, "j:VehicleMakeCode", "nc:ItemMakeName", MAKES),
            model=_text(element, "nc:ItemModelName"),
            year=_int(_text(element, "nc:ItemModelYearDate")),
            color=_coded(
                element, "j:VehicleColorPrimaryCode", "nc:ItemColorDescriptionText", VEHICLE_COLORS
            ),
            registered_owner_id=None
            if owner is None
            else self._id(EntityKind.PERSON, owner, "nc:EntityPerson"),
        )

    def incident(self, element: Element) -> Incident:
        common = self._common(element, EntityKind.INCIDENT)
        category = (_text(element, "ks:IncidentCategoryCode") or "RPT").strip()
        if category not in CATEGORIES:
            raise _Shape("unknown incident category")
        status = _find(element, "nc:ActivityStatus")
        return Incident(
            id=common.id,
            provenance=common.provenance,
            tags=common.tags,
            created=common.created,
            number=_need(element, "nc:ActivityIdentification/nc:IdentificationID"),
            incident_kind=CATEGORIES[category],
            offenses=tuple(
                Offense(
                    code=_need(e, "j:OffenseUCRCode").strip(),
                    description=_text(e, "nc:ActivityDescriptionText") or "",
                )
                for e in element.iterfind("j:Offense", NS)
            ),
            occurred_at=_datetime(_text(element, "nc:ActivityDate/nc:DateTime")),
            reported_at=_datetime(_text(element, "j:IncidentReportedDate/nc:DateTime")),
            location=_location(_find(element, "nc:Location")),
            status=None
            if status is None
            else _coded(status, "ks:StatusCode", "nc:StatusDescriptionText", STATUSES),
            narrative=_text(element, "nc:ActivityDescriptionText"),
            involvements=self._involvements(element),
            involved_vehicle_ids=tuple(
                self._id(EntityKind.VEHICLE, e, "nc:Vehicle")
                for e in element.iterfind("j:ActivityConveyanceAssociation", NS)
            ),
        )


def _name(element: Element) -> PersonName:
    return PersonName(
        given=_text(element, "nc:PersonGivenName"),
        middle=_text(element, "nc:PersonMiddleName"),
        surname=_text(element, "nc:PersonSurName"),
        suffix=_text(element, "nc:PersonNameSuffixText"),
    )


def _address(element: Element) -> Address:
    return Address(
        street=_text(element, "nc:LocationStreet/nc:StreetFullText"),
        city=_text(element, "nc:LocationCityName"),
        state=_text(element, "nc:LocationStateUSPostalServiceCode"),
        postal_code=_text(element, "nc:LocationPostalCode"),
    )


def _location(element: Element | None) -> Location | None:
    if element is None:
        return None
    point = "nc:Location2DGeospatialCoordinate/"
    return Location(
        address=_text(element, "nc:Address/nc:AddressFullText"),
        latitude=_float(
            _text(element, point + "nc:GeographicCoordinateLatitude/nc:LatitudeDegreeValue")
        ),
        longitude=_float(
            _text(element, point + "nc:GeographicCoordinateLongitude/nc:LongitudeDegreeValue")
        ),
    )


def _sub(parent: Element, tag: str, text: str) -> None:
    SubElement(parent, KS + tag).text = text


def query_document(kind: EntityKind, criteria: _Criteria, start: int, max_records: int) -> bytes:
    """The ``ks:QueryRequest`` for one page of one entity type."""
    root = Element(KS + "QueryRequest")
    _sub(root, "EntityType", ENTITY_TYPES[kind])
    if criteria.text is not None:
        _sub(root, "SearchText", criteria.text)
    for plate in criteria.plates:
        _sub(root, "Plate", plate)
    if criteria.plate_state is not None:
        _sub(root, "PlateState", criteria.plate_state)
    for record_id in criteria.record_ids:
        _sub(root, "RecordID", record_id)
    _sub(root, "StartIndex", str(start))
    _sub(root, "MaxRecords", str(max_records))
    data: bytes = tostring(root, encoding="utf-8", xml_declaration=True)
    return data


class KeystoneAdapter(Adapter):
    kind = "keystone-rms"
    vendor = "Keystone"
    source_kind = SourceKind.RMS
    entity_kinds = frozenset({EntityKind.PERSON, EntityKind.VEHICLE, EntityKind.INCIDENT})

    def __init__(self, config: SourceConfig, session: aiohttp.ClientSession) -> None:
        super().__init__(config, session)
        self._endpoint = config.url.rstrip("/") + QUERY_PATH
        self._username = config.options.get("username", "hub")
        if ":" in self._username:
            raise ConfigError(f"source {config.name}: a Basic-auth username cannot contain ':'")
        self._page_size = config.int_option("page_size", SERVER_MAX, SERVER_MAX)

    def _headers(self) -> dict[str, str]:
        # Built per request so the revealed secret is never kept on the adapter.
        auth = aiohttp.encode_basic_auth(self._username, self.config.api_key.reveal(), "utf-8")
        return {
            "Authorization": auth,
            "Content-Type": "application/xml; charset=utf-8",
            "Accept": "application/xml",
        }

    async def search(self, request: SearchRequest) -> list[Record]:
        jobs: list[tuple[EntityKind, _Criteria]] = []
        text = request.text if request.text and request.text.strip() else None
        for kind in sorted(request.kinds & self.entity_kinds):
            if kind is EntityKind.VEHICLE and request.plates:
                plates = tuple(dict.fromkeys(normalise_plate(p) for p in request.plates))
                jobs.append((kind, _Criteria(text, plates, request.plate_state)))
            elif text is not None:
                jobs.append((kind, _Criteria(text, plate_state=None)))
        if not jobs or request.limit <= 0:
            return []
        pages = await run_together(
            self._query(kind, criteria, request.limit) for kind, criteria in jobs
        )
        return [record for page in pages for record in page]

    async def get_many(self, kind: EntityKind, record_ids: Sequence[str]) -> list[Record]:
        if kind not in self.entity_kinds:
            return []
        unique = tuple(dict.fromkeys(record_ids))
        found = await run_together(
            self._query(kind, _Criteria(record_ids=tuple(chunk)), len(chunk))
            for chunk in batches(unique, SERVER_MAX)
        )
        return [record for chunk in found for record in chunk]

    async def _query(self, kind: EntityKind, criteria: _Criteria, limit: int) -> list[Record]:
        """Pages through one query until ``limit`` records or the end of the result; each
        page's records read once the next page has been asked for (``follow_pages``)."""
        out: list[Record] = []
        start = 0  # where the next page starts: every record received so far
        held = 0  # the records kept of them (a page is cut to what it was asked for)

        async def page(start: int, want: int) -> tuple[int, int, list[Element]]:
            body = await request_bytes(
                self.name,
                self.session,
                "POST",
                self._endpoint,
                headers=self._headers(),
                data=query_document(kind, criteria, start, want),
            )
            assert body is not None  # not_found_ok is off
            total, elements = self.read_elements(body, kind)
            return want, total, elements

        def ask(_: int) -> Awaitable[tuple[int, int, list[Element]]]:
            return page(start, min(self._page_size, limit - held))

        def more(answer: tuple[int, int, list[Element]], _: int) -> bool:
            nonlocal start, held
            want, total, elements = answer
            start += len(elements)
            held += min(len(elements), want)
            return held < limit and bool(elements) and start < total

        def take(answer: tuple[int, int, list[Element]]) -> None:
            want, _, elements = answer
            out.extend(self.read_records(elements[:want], kind))

        if limit > 0:
            await follow_pages(ask, more, take)
        return out

    def read_elements(self, body: bytes, kind: EntityKind) -> tuple[int, list[Element]]:
        """TotalCount and the record elements of one ``ks:QueryResponse``, each of the kind
        asked for; faults become errors."""
        root = parse_xml(self.name, body)
        if root.tag == KS + "Fault":
            code = (_text(root, "ks:FaultCode") or "").strip()
            error = FAULTS.get(code, SourceProtocolError)
            # The fault text may echo the query; only a known code goes into our message.
            shown = code if code in FAULTS or code == "BAD_REQUEST" else "unknown"
            raise error(self.name, f"vendor answered with a fault ({shown})")
        try:
            if root.tag != KS + "QueryResponse":
                raise _Shape("expected ks:QueryResponse")
            total = int(_need(root, "ks:TotalCount").strip())
            elements: list[Element] = []
            for element in root:
                found = RECORD_TAGS.get(element.tag)
                if found is None:
                    continue
                if found is not kind:
                    raise _Shape("a record of a kind not asked for")
                elements.append(element)
        except (ValueError, TypeError) as exc:
            raise SourceProtocolError(self.name, "vendor answer has an unexpected shape") from exc
        return total, elements

    def read_records(self, elements: Sequence[Element], kind: EntityKind) -> list[Record]:
        """The records of ``read_elements``'s elements."""
        reader = _Reader(self.name, self.config.agency, self.system)
        try:
            return [reader.record(element, kind) for element in elements]
        except (ValueError, TypeError) as exc:
            raise SourceProtocolError(self.name, "vendor answer has an unexpected shape") from exc
