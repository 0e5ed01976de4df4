"""Beacon CAD: calls for service and their involved parties (``docs/vendors/beacon-cad.md``).

Calls become ``Incident`` records of kind ``CALL``; parties become ``Person`` records. The wire
form is validated into the structs below, so a body of the wrong shape is a protocol error rather
than a ``KeyError`` somewhere in the mapping.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Coroutine, Iterable, Sequence
from datetime import UTC, date, datetime
from typing import Any, TypeVar

import aiohttp
import msgspec

from hub.adapters.base import Adapter, SearchRequest, SourceConfig
from hub.adapters.calls import batches, follow_pages, run_together
from hub.adapters.http import decode_wire, request_bytes
from hub.errors import SourceProtocolError
from hub.model import (
    Address,
    EntityKind,
    Incident,
    IncidentKind,
    InvolvementRef,
    Location,
    Offense,
    Person,
    PersonName,
    Provenance,
    Record,
    SourceKind,
    make_id,
)

# Beacon codes to canonical words (the inverse of the vendor's documented tables); a code that
# is not here is kept as the vendor wrote it.
STATUSES: dict[str, str] = {
    "PND": "PENDING",
    "OPN": "OPEN",
    "DSP": "DISPATCHED",
    "ENR": "EN ROUTE",
    "ONS": "ON SCENE",
    "CLR": "CLEARED",
    "CLS": "CLOSED",
    "CAN": "CANCELLED",
    "RPT": "REPORT TAKEN",
    "GOA": "GONE ON ARRIVAL",
    "ADV": "ADVISED",
    "UTL": "UNABLE TO LOCATE",
    "ARR": "ARREST MADE",
}
ROLES: dict[str, str] = {
    "RP": "REPORTING_PARTY",
    "SUSP": "SUSPECT",
    "VICT": "VICTIM",
    "WITN": "WITNESS",
    "COMP": "COMPLAINANT",
    "MP": "MISSING_PERSON",
    "ARR": "ARRESTEE",
    "OWN": "OWNER",
    "DRV": "DRIVER",
    "PASS": "PASSENGER",
    "SUBJ": "SUBJECT",
    "INV": "INVOLVED",
}
FLAGS: dict[str, str] = {
    "SEAL": "sealed",
    "JUV": "juvenile",
    "SOV": "sex-offense-victim",
    "INST": "in-state-only",
}

CALLS_PATH = "/cad/v1/calls"
PARTIES_PATH = "/cad/v1/parties"
MAX_PAGE = 200
MAX_IDS = 100
NO_GIVEN = "-"


# -- the wire form ----------------------------------------------------------------------------


class _Geo(msgspec.Struct, frozen=True):
    lat: float | None = None
    lng: float | None = None


class _CallType(msgspec.Struct, frozen=True):
    call_type: str
    call_type_desc: str


class _PartyLink(msgspec.Struct, frozen=True):
    party_id: str
    role: str
    flags: list[str] = []


class _CallLink(msgspec.Struct, frozen=True):
    call_id: str
    role: str
    flags: list[str] = []


class _Call(msgspec.Struct, frozen=True):
    call_id: str
    cfs_number: str
    call_type: str | None = None
    call_type_desc: str | None = None
    addl_call_types: list[_CallType] = []
    status: str | None = None
    received_ts: float | None = None
    occurred_ts: float | None = None
    location: str | None = None
    geo: _Geo | None = None
    comments: str | None = None
    parties: list[_PartyLink] = []
    flags: list[str] = []
    entered_date: str | None = None
    updated_ts: float | None = None


class _Address(msgspec.Struct, frozen=True):
    street_addr: str | None = None
    city: str | None = None
    state_cd: str | None = None
    zip_cd: str | None = None


class _Party(msgspec.Struct, frozen=True):
    party_id: str
    name: str
    name_sfx: str | None = None
    dob: str | None = None
    sex: str | None = None
    race: str | None = None
    phones: list[str] = []
    addresses: list[_Address] = []
    alerts: list[str] = []
    calls: list[_CallLink] = []
    flags: list[str] = []
    entered_date: str | None = None
    updated_ts: float | None = None


class _CallsPage(msgspec.Struct, frozen=True):
    calls: list[_Call]
    next_cursor: str | None = None


class _PartiesPage(msgspec.Struct, frozen=True):
    parties: list[_Party]
    next_cursor: str | None = None


_Page = TypeVar("_Page", _CallsPage, _PartiesPage)
_T = TypeVar("_T")


def parse_name(name: str, suffix: str | None) -> PersonName:
    """Beacon's ``LAST, FIRST MIDDLE`` string (and separate suffix) as a canonical name."""
    surname, _, rest = name.partition(",")
    given, _, middle = rest.strip().partition(" ")
    return PersonName(
        given=given if given and given != NO_GIVEN else None,
        middle=middle.strip() or None,
        surname=surname.strip() or None,
        suffix=suffix or None,
    )


class BeaconAdapter(Adapter):
    kind = "beacon-cad"
    vendor = "Beacon"
    source_kind = SourceKind.CAD
    entity_kinds = frozenset({EntityKind.PERSON, EntityKind.INCIDENT})

    def __init__(self, config: SourceConfig, session: aiohttp.ClientSession) -> None:
        super().__init__(config, session)
        self._base = config.url.rstrip("/")
        self._headers = {
            "Authorization": f"Bearer {config.api_key.reveal()}",
            "Accept": "application/json",
        }
        self.page_size = config.int_option("page_size", 100, MAX_PAGE)

    # -- the contract -----------------------------------------------------------------------

    async def search(self, request: SearchRequest) -> list[Record]:
        text = (request.text or "").strip()
        if not text or request.limit <= 0:
            return []
        jobs: list[Coroutine[Any, Any, list[Record]]] = []
        if EntityKind.PERSON in request.kinds:
            jobs.append(self._search_parties(text, request.limit))
        if EntityKind.INCIDENT in request.kinds:
            jobs.append(self._search_calls(text, request.limit))
        return [record for found in await run_together(jobs) for record in found]

    async def get_many(self, kind: EntityKind, record_ids: Sequence[str]) -> list[Record]:
        # A comma cannot be sent in the ids list, and Beacon ids never contain one.
        ids = list(dict.fromkeys(i for i in record_ids if i and "," not in i))
        if kind not in self.entity_kinds or not ids:
            return []
        chunks = batches(ids, MAX_IDS)
        jobs: list[Coroutine[Any, Any, list[Record]]]
        if kind is EntityKind.PERSON:
            jobs = [self._parties_by_id(chunk) for chunk in chunks]
        else:
            jobs = [self._calls_by_id(chunk) for chunk in chunks]
        return [record for found in await run_together(jobs) for record in found]

    # -- requests ---------------------------------------------------------------------------

    async def _get(self, path: str, params: dict[str, str], page_type: type[_Page]) -> _Page:
        body = await request_bytes(
            self.name, self.session, "GET", self._base + path, headers=self._headers, params=params
        )
        assert body is not None  # only a not_found_ok request answers None
        return decode_wire(self.name, body, page_type)

    async def _collect(
        self,
        path: str,
        page_type: type[_Page],
        items: Callable[[_Page], list[_T]],
        convert: Callable[[Iterable[_T]], list[Record]],
        text: str,
        limit: int,
    ) -> list[Record]:
        """Up to ``limit`` records of one search, following Beacon's cursor; each page
        converted once the next one has been asked for (``follow_pages``)."""
        out: list[Record] = []
        counted = 0
        cursor: str | None = None

        def ask(_: int) -> Awaitable[_Page]:
            params = {"search": text, "limit": str(min(self.page_size, limit - counted))}
            if cursor is not None:
                params["cursor"] = cursor
            return self._get(path, params, page_type)

        def more(page: _Page, _: int) -> bool:
            nonlocal counted, cursor
            counted += len(items(page))
            cursor = page.next_cursor
            # An empty page that still offers a cursor would otherwise loop for ever.
            return counted < limit and cursor is not None and bool(items(page))

        def take(page: _Page) -> None:
            out.extend(convert(items(page)[: limit - len(out)]))

        await follow_pages(ask, more, take)
        return out

    async def _search_calls(self, text: str, limit: int) -> list[Record]:
        return await self._collect(CALLS_PATH, _CallsPage, _calls_of, self._calls, text, limit)

    async def _search_parties(self, text: str, limit: int) -> list[Record]:
        return await self._collect(
            PARTIES_PATH, _PartiesPage, _parties_of, self._parties, text, limit
        )

    async def _calls_by_id(self, ids: Sequence[str]) -> list[Record]:
        page = await self._get(CALLS_PATH, {"ids": ",".join(ids)}, _CallsPage)
        return self._calls(page.calls)

    async def _parties_by_id(self, ids: Sequence[str]) -> list[Record]:
        page = await self._get(PARTIES_PATH, {"ids": ",".join(ids)}, _PartiesPage)
        return self._parties(page.parties)

    # -- mapping ----------------------------------------------------------------------------

    def _calls(self, calls: Iterable[_Call]) -> list[Record]:
        now = datetime.now(UTC)
        return [self._incident(call, now) for call in calls]

    def _parties(self, parties: Iterable[_Party]) -> list[Record]:
        now = datetime.now(UTC)
        return [self._person(party, now) for party in parties]

    def _provenance(
        self, record_id: str, retrieved_at: datetime, updated: float | None
    ) -> Provenance:
        return Provenance(
            agency=self.config.agency,
            system=self.system,
            record_id=record_id,
            retrieved_at=retrieved_at,
            last_updated=self._time(updated),
        )

    def _incident(self, call: _Call, now: datetime) -> Incident:
        call_id = make_id(self.name, EntityKind.INCIDENT, call.call_id)
        offenses: list[Offense] = []
        if call.call_type is not None:
            offenses.append(Offense(code=call.call_type, description=call.call_type_desc or ""))
        offenses.extend(
            Offense(code=extra.call_type, description=extra.call_type_desc)
            for extra in call.addl_call_types
        )
        location = None
        if call.location is not None or call.geo is not None:
            location = Location(
                address=call.location,
                latitude=call.geo.lat if call.geo is not None else None,
                longitude=call.geo.lng if call.geo is not None else None,
            )
        return Incident(
            id=call_id,
            provenance=self._provenance(call.call_id, now, call.updated_ts),
            tags=_tags(call.flags),
            created=self._date(call.entered_date),
            number=call.cfs_number,
            incident_kind=IncidentKind.CALL,
            offenses=tuple(offenses),
            occurred_at=self._time(call.occurred_ts),
            reported_at=self._time(call.received_ts),
            location=location,
            status=STATUSES.get(call.status, call.status) if call.status is not None else None,
            narrative=call.comments,
            involvements=tuple(
                InvolvementRef(
                    role=ROLES.get(link.role, link.role),
                    person_id=make_id(self.name, EntityKind.PERSON, link.party_id),
                    incident_id=call_id,
                    tags=_tags(link.flags),
                )
                for link in call.parties
            ),
        )

    def _person(self, party: _Party, now: datetime) -> Person:
        person_id = make_id(self.name, EntityKind.PERSON, party.party_id)
        return Person(
            id=person_id,
            provenance=self._provenance(party.party_id, now, party.updated_ts),
            tags=_tags(party.flags),
            created=self._date(party.entered_date),
            name=parse_name(party.name, party.name_sfx),
            date_of_birth=self._date(party.dob),
            sex=party.sex,
            race=party.race,
            addresses=tuple(
                Address(street=a.street_addr, city=a.city, state=a.state_cd, postal_code=a.zip_cd)
                for a in party.addresses
            ),
            phones=tuple(party.phones),
            cautions=tuple(party.alerts),
            involvements=tuple(
                InvolvementRef(
                    role=ROLES.get(link.role, link.role),
                    person_id=person_id,
                    incident_id=make_id(self.name, EntityKind.INCIDENT, link.call_id),
                    tags=_tags(link.flags),
                )
                for link in party.calls
            ),
        )

    def _date(self, value: str | None) -> date | None:
        if value is None:
            return None
        try:
            return datetime.strptime(value, "%m/%d/%Y").date()
        except ValueError:
            raise SourceProtocolError(self.name, "vendor date is not MM/DD/YYYY") from None

    def _time(self, value: float | None) -> datetime | None:
        if value is None:
            return None
        try:
            return datetime.fromtimestamp(value, UTC)
        except (OverflowError, OSError, ValueError):
            raise SourceProtocolError(self.name, "vendor timestamp out of range") from None


def _calls_of(page: _CallsPage) -> list[_Call]:
    return page.calls


def _parties_of(page: _PartiesPage) -> list[_Party]:
    return page.parties


def _tags(flags: Iterable[str]) -> frozenset[str]:
    # A flag this adapter does not know keeps its vendor's name: the policy reads it as an
    # unrecognised restriction (a pointer at most) until legal-tags.yaml names it.
    return frozenset(FLAGS.get(flag, f"beacon:{flag}") for flag in flags)
