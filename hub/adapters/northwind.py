"""Northwind RMS: a JSON REST records-management system (protocol: docs/vendors/northwind-rms.md).

The vendor's payloads are described as msgspec structs so a body of the wrong shape (a missing
id, a string where a list belongs, a timestamp without its offset) is refused as a whole with
``SourceProtocolError`` instead of surfacing later as a half-built record.
"""

from __future__ import annotations

import asyncio
import functools
import re
from collections.abc import Awaitable, Callable, Mapping, Sequence
from datetime import UTC, date, datetime
from typing import Annotated, Any, Generic, TypeVar

import aiohttp
import msgspec

from hub.adapters.base import Adapter, SearchRequest, SourceConfig
from hub.adapters.calls import batches, follow_pages, run_together
from hub.adapters.http import decode_wire, request_bytes
from hub.model import (
    Address,
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
    Vehicle,
    make_id,
    normalise_plate,
)
from hub.ncic import VEHICLE_COLORS

# Northwind refuses a pageSize above 100 and an ids / plates list longer than 100.
MAX_PAGE_SIZE = 100
# Chunks of a large get_many in flight at once (bounded everything).
MAX_PARALLEL_CHUNKS = 4

_PATHS = {
    EntityKind.PERSON: "persons",
    EntityKind.VEHICLE: "vehicles",
    EntityKind.INCIDENT: "incidents",
}

# -- code tables (vendor -> canonical) ---------------------------------------------------------
# Northwind writes words; older tenants still send the NCIC letters, so both are read.

SEX_CODES = {
    "MALE": "M",
    "M": "M",
    "FEMALE": "F",
    "F": "F",
    "NON-BINARY": "X",
    "X": "X",
    "UNKNOWN": "U",
    "U": "U",
}
RACE_CODES = {
    "WHITE": "W",
    "W": "W",
    "BLACK": "B",
    "B": "B",
    "ASIAN": "A",
    "ASIAN/PACIFIC ISLANDER": "A",
    "A": "A",
    "AMERICAN INDIAN": "I",
    "AMERICAN INDIAN/ALASKAN NATIVE": "I",
    "I": "I",
    "UNKNOWN": "U",
    "U": "U",
}
ROLE_CODES = {
    "SUS": "SUSPECT",
    "VIC": "VICTIM",
    "WIT": "WITNESS",
    "ARR": "ARRESTEE",
    "RP": "REPORTING_PARTY",
    "OWN": "OWNER",
    "DRV": "DRIVER",
    "PSG": "PASSENGER",
    "CMP": "COMPLAINANT",
    "MSP": "MISSING_PERSON",
    "OTH": "OTHER",
}
RESTRICTION_CODES = {
    "SXV": LegalTag.SEX_OFFENSE_VICTIM.value,
    "ISO": LegalTag.IN_STATE_ONLY.value,
}
REPORT_TYPES = {
    "Incident Report": IncidentKind.REPORT,
    "Call For Service": IncidentKind.CALL,
}
CASE_STATUSES = {
    "OPN": "OPEN",
    "INA": "INACTIVE",
    "CLS": "CLOSED",
    "CBA": "CLEARED BY ARREST",
    "CEX": "EXCEPTIONALLY CLEARED",
    "UNF": "UNFOUNDED",
}

_HEIGHT = re.compile(r"""^\s*(\d)\s*'\s*(\d{1,2})?\s*(?:"|'')?\s*$""")

# -- the vendor's payloads -------------------------------------------------------------------------

Timestamp = Annotated[datetime, msgspec.Meta(tz=True)]
T = TypeVar("T")


class _Paging(msgspec.Struct, rename="camel", kw_only=True):
    page: int
    page_size: int
    total_records: int


class _Page(msgspec.Struct, Generic[T], kw_only=True):
    data: list[T]
    paging: _Paging


class _Flags(msgspec.Struct, rename="camel", kw_only=True):
    sealed: bool = False
    juvenile: bool = False
    restrictions: list[str] = []


class _Common(_Flags, kw_only=True):
    created_on: date | None = None
    modified_on: Timestamp | None = None


class _Name(msgspec.Struct, rename="camel", kw_only=True):
    last_name: str | None = None
    first_name: str | None = None
    middle_name: str | None = None
    suffix: str | None = None


class _Address(msgspec.Struct, kw_only=True):
    line1: str | None = None
    city: str | None = None
    st: str | None = None
    zip: str | None = None


class _PersonInvolvement(_Flags, kw_only=True):
    incident_id: str
    incident_no: str | None = None
    role: str


class _Person(_Common, kw_only=True):
    person_id: str
    last_name: str | None = None
    first_name: str | None = None
    middle_name: str | None = None
    suffix: str | None = None
    aliases: list[_Name] = []
    dob: date | None = None
    gender: str | None = None
    race_code: str | None = None
    height_ft_in: str | None = None
    weight_lbs: int | None = None
    ssn: str | None = None
    dl_number: str | None = None
    dl_state: str | None = None
    addresses: list[_Address] = []
    phone_numbers: list[str] = []
    officer_safety_cautions: list[str] = []
    owned_vehicle_ids: list[str] = []
    involvements: list[_PersonInvolvement] = []


class _Vehicle(_Common, kw_only=True):
    vehicle_id: str
    vin: str | None = None
    plate_no: str | None = None
    plate_state: str | None = None
    make: str | None = None
    model: str | None = None
    model_year: int | None = None
    color: str | None = None
    owner_person_id: str | None = None


class _Offense(msgspec.Struct, rename="camel", kw_only=True):
    nibrs_code: str
    literal: str = ""


class _Location(msgspec.Struct, rename="camel", kw_only=True):
    street_address: str | None = None
    lat: float | None = None
    lng: float | None = None


class _IncidentPerson(_Flags, kw_only=True):
    person_id: str
    role: str


class _Incident(_Common, kw_only=True):
    incident_id: str
    incident_no: str
    report_type: str = "Incident Report"
    offenses: list[_Offense] = []
    occurred_on: Timestamp | None = None
    reported_on: Timestamp | None = None
    location: _Location | None = None
    status: str | None = None
    narrative: str | None = None
    involved_persons: list[_IncidentPerson] = []
    involved_vehicle_ids: list[str] = []


_PAGE_TYPES: dict[EntityKind, Any] = {
    EntityKind.PERSON: _Page[_Person],
    EntityKind.VEHICLE: _Page[_Vehicle],
    EntityKind.INCIDENT: _Page[_Incident],
}
_VendorRecord = _Person | _Vehicle | _Incident


def _vendor_id(item: _VendorRecord) -> str:
    if isinstance(item, _Person):
        return item.person_id
    if isinstance(item, _Vehicle):
        return item.vehicle_id
    return item.incident_id


_NO_TAGS: frozenset[str] = frozenset()


def _tags(flags: _Flags) -> frozenset[str]:
    if not (flags.restrictions or flags.sealed or flags.juvenile):
        return _NO_TAGS  # most records
    tags = {RESTRICTION_CODES.get(code, f"northwind:{code.lower()}") for code in flags.restrictions}
    if flags.sealed:
        tags.add(LegalTag.SEALED.value)
    if flags.juvenile:
        tags.add(LegalTag.JUVENILE.value)
    return frozenset(tags)


def _utc(value: datetime | None) -> datetime | None:
    if value is None or value.tzinfo is UTC:
        return value  # msgspec reads a "Z" as UTC itself
    return value.astimezone(UTC)


@functools.lru_cache(maxsize=512)
def _height_inches(text: str | None) -> int | None:
    # Remembered: a few dozen heights are written, over and over (a height alone names nobody).
    if not text:
        return None
    match = _HEIGHT.match(text)
    if match is None:
        return None
    return int(match.group(1)) * 12 + int(match.group(2) or 0)


def _ssn(text: str | None) -> str | None:
    digits = "".join(filter(str.isdigit, text or ""))
    if len(digits) != 9:
        return None
    return f"{digits[:3]}-{digits[3:5]}-{digits[5:]}"


def _code(table: Mapping[str, str], value: str | None) -> str | None:
    if value is None:
        return None
    return table.get(value.strip().upper(), "U")


def _name(
    last: str | None, first: str | None, middle: str | None, suffix: str | None
) -> PersonName:
    return PersonName(given=first, middle=middle, surname=last, suffix=suffix)


class NorthwindAdapter(Adapter):
    """Persons, vehicles and incidents from a Northwind RMS (``/api/v2``, ``X-Api-Key``).

    Options: ``base_path`` (default ``/api/v2``, appended to ``url``) and ``page_size``
    (1-100, default 100).
    """

    kind = "northwind-rms"
    vendor = "Northwind"
    source_kind = SourceKind.RMS
    entity_kinds = frozenset({EntityKind.PERSON, EntityKind.VEHICLE, EntityKind.INCIDENT})

    def __init__(self, config: SourceConfig, session: aiohttp.ClientSession) -> None:
        super().__init__(config, session)
        base_path = config.options.get("base_path", "/api/v2")
        self._base = config.url.rstrip("/") + "/" + base_path.strip("/")
        self._page_size = config.int_option("page_size", MAX_PAGE_SIZE, MAX_PAGE_SIZE)

    # -- the contract ---------------------------------------------------------------------------

    async def search(self, request: SearchRequest) -> list[Record]:
        if request.limit <= 0:
            return []
        kinds = sorted(request.kinds & self.entity_kinds)
        results = await run_together(self._search_kind(kind, request) for kind in kinds)
        return [record for found in results for record in found]

    async def get_many(self, kind: EntityKind, record_ids: Sequence[str]) -> list[Record]:
        if kind not in self.entity_kinds:
            return []
        # A comma cannot be escaped in Northwind's ids list, so such an id cannot exist there.
        ids = [i for i in dict.fromkeys(record_ids) if i and "," not in i]
        limiter = asyncio.Semaphore(MAX_PARALLEL_CHUNKS)

        async def fetch(chunk: Sequence[str]) -> list[_VendorRecord]:
            async with limiter:
                return await self._fetch(kind, {"ids": ",".join(chunk)}, len(chunk))

        retrieved_at = datetime.now(UTC)
        wanted = set(ids)
        found: dict[str, Record] = {}
        for items in await run_together(fetch(c) for c in batches(ids, self._page_size)):
            for item in items:
                # Only what was asked, once, even if the vendor volunteers more.
                if _vendor_id(item) in wanted and _vendor_id(item) not in found:
                    found[_vendor_id(item)] = self._record(item, retrieved_at)
        return list(found.values())

    # -- requests --------------------------------------------------------------------------------

    async def _search_kind(self, kind: EntityKind, request: SearchRequest) -> list[Record]:
        queries: list[dict[str, str]] = []
        if request.text and request.text.strip():
            queries.append({"q": request.text.strip()})
        if kind is EntityKind.VEHICLE and request.plates:
            plates = list(dict.fromkeys(normalise_plate(p) for p in request.plates if p))
            for chunk in batches(plates, MAX_PAGE_SIZE):
                params = {"plates": ",".join(chunk)}
                if request.plate_state:
                    params["plateState"] = request.plate_state
                queries.append(params)
        retrieved_at = datetime.now(UTC)
        found: dict[str, Record] = {}

        def take(items: Sequence[_VendorRecord]) -> None:
            # Mapped page by page as each arrives (the next page already asked for); a record
            # the vendor returns twice counts once, as it first came.
            for item in items:
                key = _vendor_id(item)
                if key not in found:
                    found[key] = self._record(item, retrieved_at)

        for params in queries:
            await self._fetch_pages(kind, params, request.limit - len(found), take)
            if len(found) >= request.limit:
                break
        return list(found.values())[: request.limit]

    async def _fetch(
        self, kind: EntityKind, params: Mapping[str, str], limit: int
    ) -> list[_VendorRecord]:
        """Up to ``limit`` records of one query, following Northwind's pages."""
        out: list[_VendorRecord] = []
        await self._fetch_pages(kind, params, limit, out.extend)
        return out

    async def _fetch_pages(
        self,
        kind: EntityKind,
        params: Mapping[str, str],
        limit: int,
        take: Callable[[Sequence[_VendorRecord]], None],
    ) -> None:
        """Follow Northwind's pages until ``limit`` records or the last page, each page's
        records (cut to the limit) given to ``take`` while the next page is being prepared
        (``follow_pages``)."""
        size = min(self._page_size, max(limit, 1))
        taken = 0

        def ask(page: int) -> Awaitable[_Page[Any]]:
            return self._get_page(kind, {**params, "page": str(page), "pageSize": str(size)})

        def more(answer: _Page[Any], page: int) -> bool:
            paging = answer.paging
            held = min(taken + len(answer.data), limit)
            return (
                held < limit
                and bool(answer.data)
                and page * max(paging.page_size, 1) < paging.total_records
            )

        def take_page(answer: _Page[Any]) -> None:
            nonlocal taken
            items = answer.data[: limit - taken]
            taken += len(items)
            take(items)

        if limit > 0:
            await follow_pages(ask, more, take_page)

    async def _get_page(self, kind: EntityKind, params: Mapping[str, str]) -> _Page[Any]:
        body = await request_bytes(
            self.name,
            self.session,
            "GET",
            f"{self._base}/{_PATHS[kind]}",
            headers={"X-Api-Key": self.config.api_key.reveal(), "Accept": "application/json"},
            params=params,
        )
        assert body is not None  # not_found_ok is off: a 404 raised
        page: _Page[Any] = decode_wire(self.name, body, _PAGE_TYPES[kind])
        return page

    # -- mapping ---------------------------------------------------------------------------------

    def _id(self, kind: EntityKind, record_id: str) -> str:
        return make_id(self.name, kind, record_id)

    def _provenance(self, record_id: str, common: _Common, retrieved_at: datetime) -> Provenance:
        return Provenance(
            agency=self.config.agency,
            system=self.system,
            record_id=record_id,
            retrieved_at=retrieved_at,
            last_updated=_utc(common.modified_on),
        )

    def _record(self, item: _VendorRecord, retrieved_at: datetime) -> Record:
        if isinstance(item, _Person):
            return self._person(item, retrieved_at)
        if isinstance(item, _Vehicle):
            return self._vehicle(item, retrieved_at)
        return self._incident(item, retrieved_at)

    def _person(self, p: _Person, retrieved_at: datetime) -> Person:
        person_id = self._id(EntityKind.PERSON, p.person_id)
        license_ = None
        if p.dl_number:
            # Northwind leaves dlState empty for the agency's own state.
            license_ = DriverLicense(
                number=p.dl_number, state=p.dl_state or self.config.agency.state
            )
        return Person(
            id=person_id,
            provenance=self._provenance(p.person_id, p, retrieved_at),
            tags=_tags(p),
            created=p.created_on,
            name=_name(p.last_name, p.first_name, p.middle_name, p.suffix),
            aliases=tuple(
                _name(a.last_name, a.first_name, a.middle_name, a.suffix) for a in p.aliases
            ),
            date_of_birth=p.dob,
            sex=_code(SEX_CODES, p.gender),
            race=_code(RACE_CODES, p.race_code),
            height=_height_inches(p.height_ft_in),
            weight=p.weight_lbs,
            ssn=_ssn(p.ssn),
            driver_license=license_,
            addresses=tuple(
                Address(street=a.line1, city=a.city, state=a.st, postal_code=a.zip)
                for a in p.addresses
            ),
            phones=tuple(p.phone_numbers),
            cautions=tuple(p.officer_safety_cautions),
            vehicle_ids=tuple(self._id(EntityKind.VEHICLE, v) for v in p.owned_vehicle_ids),
            involvements=tuple(
                InvolvementRef(
                    role=ROLE_CODES.get(i.role.upper(), "OTHER"),
                    person_id=person_id,
                    incident_id=self._id(EntityKind.INCIDENT, i.incident_id),
                    tags=_tags(i),
                )
                for i in p.involvements
            ),
        )

    def _vehicle(self, v: _Vehicle, retrieved_at: datetime) -> Vehicle:
        plate = None
        if v.plate_no:
            plate = LicensePlate(
                number=normalise_plate(v.plate_no), state=v.plate_state or self.config.agency.state
            )
        return Vehicle(
            id=self._id(EntityKind.VEHICLE, v.vehicle_id),
            provenance=self._provenance(v.vehicle_id, v, retrieved_at),
            tags=_tags(v),
            created=v.created_on,
            vin=v.vin,
            plate=plate,
            make=v.make,
            model=v.model,
            year=v.model_year,
            color=VEHICLE_COLORS.get(v.color, v.color) if v.color is not None else None,
            registered_owner_id=(
                self._id(EntityKind.PERSON, v.owner_person_id) if v.owner_person_id else None
            ),
        )

    def _incident(self, i: _Incident, retrieved_at: datetime) -> Incident:
        incident_id = self._id(EntityKind.INCIDENT, i.incident_id)
        location = None
        if i.location is not None:
            location = Location(
                address=i.location.street_address, latitude=i.location.lat, longitude=i.location.lng
            )
        return Incident(
            id=incident_id,
            provenance=self._provenance(i.incident_id, i, retrieved_at),
            tags=_tags(i),
            created=i.created_on,
            number=i.incident_no,
            incident_kind=REPORT_TYPES.get(i.report_type, IncidentKind.REPORT),
            offenses=tuple(Offense(code=o.nibrs_code, description=o.literal) for o in i.offenses),
            occurred_at=_utc(i.occurred_on),
            reported_at=_utc(i.reported_on),
            location=location,
            status=CASE_STATUSES.get(i.status, i.status) if i.status is not None else None,
            narrative=i.narrative,
            involvements=tuple(
                InvolvementRef(
                    role=ROLE_CODES.get(p.role.upper(), "OTHER"),
                    person_id=self._id(EntityKind.PERSON, p.person_id),
                    incident_id=incident_id,
                    tags=_tags(p),
                )
                for p in i.involved_persons
            ),
            involved_vehicle_ids=tuple(
                self._id(EntityKind.VEHICLE, v) for v in i.involved_vehicle_ids
            ),
        )
