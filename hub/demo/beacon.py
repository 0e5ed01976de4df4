"""Beacon CAD: a simulated computer-aided-dispatch calls-for-service API (JSON).

The protocol is documented in ``docs/vendors/beacon-cad.md``; this module is the vendor's side of
it. Calls are canonical ``Incident`` records, involved parties are ``Person`` records; both are
rendered to Beacon's wire form only when a request asks for them, so a world of a million records
costs one index build and nothing per record at start.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import zlib
from collections.abc import Callable, Sequence
from datetime import date, datetime
from typing import Any

import msgspec
from aiohttp import web

from hub.demo.simulator import Simulator
from hub.model import (
    Address,
    Agency,
    EntityKind,
    Incident,
    InvolvementRef,
    Person,
    PersonName,
    Record,
    parse_id,
)

# Canonical words to Beacon codes; what is not in a table goes over the wire as it is.
STATUS_CODES: dict[str, str] = {
    "PENDING": "PND",
    "OPEN": "OPN",
    "DISPATCHED": "DSP",
    "EN ROUTE": "ENR",
    "ON SCENE": "ONS",
    "CLEARED": "CLR",
    "CLOSED": "CLS",
    "CANCELLED": "CAN",
    "REPORT TAKEN": "RPT",
    "GONE ON ARRIVAL": "GOA",
    "ADVISED": "ADV",
    "UNABLE TO LOCATE": "UTL",
    "ARREST MADE": "ARR",
}
ROLE_CODES: dict[str, str] = {
    "REPORTING_PARTY": "RP",
    "SUSPECT": "SUSP",
    "VICTIM": "VICT",
    "WITNESS": "WITN",
    "COMPLAINANT": "COMP",
    "MISSING_PERSON": "MP",
    "ARRESTEE": "ARR",
    "OWNER": "OWN",
    "DRIVER": "DRV",
    "PASSENGER": "PASS",
    "SUBJECT": "SUBJ",
    "INVOLVED": "INV",
}
FLAG_CODES: dict[str, str] = {
    "sealed": "SEAL",
    "juvenile": "JUV",
    "sex-offense-victim": "SOV",
    "in-state-only": "INST",
}

DEFAULT_LIMIT = 25
MAX_LIMIT = 200
MAX_IDS = 100
NO_GIVEN = "-"

_encoder = msgspec.json.Encoder()


def format_name(name: PersonName) -> str:
    """``LAST, FIRST MIDDLE`` as Beacon stores it (the suffix travels apart, in ``name_sfx``)."""
    given = name.given or (NO_GIVEN if name.middle else None)
    rest = " ".join(p for p in (given, name.middle) if p)
    return f"{name.surname or ''}, {rest}" if rest else f"{name.surname or ''},"


def format_date(value: date | None) -> str | None:
    return value.strftime("%m/%d/%Y") if value is not None else None


def epoch_seconds(value: datetime | None) -> int | None:
    return int(value.timestamp()) if value is not None else None


def _flags(tags: frozenset[str]) -> list[str]:
    # a flag the hub's adapter does not know comes back to it as `beacon:<flag>`
    return sorted(FLAG_CODES.get(t, t.removeprefix("beacon:")) for t in tags)


def _vendor_id(hub_id: str) -> str:
    return parse_id(hub_id).record_id


def _address(address: Address) -> dict[str, Any]:
    return {
        "street_addr": address.street,
        "city": address.city,
        "state_cd": address.state,
        "zip_cd": address.postal_code,
    }


def render_party(person: Person) -> dict[str, Any]:
    return {
        "party_id": person.provenance.record_id,
        "name": format_name(person.name),
        "name_sfx": person.name.suffix,
        "dob": format_date(person.date_of_birth),
        "sex": person.sex,
        "race": person.race,
        "phones": list(person.phones),
        "addresses": [_address(a) for a in person.addresses],
        "alerts": list(person.cautions),
        "calls": [_link("call_id", inv, inv.incident_id) for inv in person.involvements],
        "flags": _flags(person.tags),
        "entered_date": format_date(person.created),
        "updated_ts": epoch_seconds(person.provenance.last_updated),
    }


def _link(id_field: str, inv: InvolvementRef, other: str) -> dict[str, Any]:
    return {
        id_field: _vendor_id(other),
        "role": ROLE_CODES.get(inv.role, inv.role),
        "flags": _flags(inv.tags),
    }


def render_call(incident: Incident) -> dict[str, Any]:
    first, *others = incident.offenses or (None,)
    location = incident.location
    geo = None
    if location is not None and (location.latitude is not None or location.longitude is not None):
        geo = {"lat": location.latitude, "lng": location.longitude}
    status = incident.status
    return {
        "call_id": incident.provenance.record_id,
        "cfs_number": incident.number,
        "call_type": first.code if first is not None else None,
        "call_type_desc": first.description if first is not None else None,
        "addl_call_types": [
            {"call_type": o.code, "call_type_desc": o.description} for o in others if o is not None
        ],
        "status": STATUS_CODES.get(status, status) if status is not None else None,
        "received_ts": epoch_seconds(incident.reported_at),
        "occurred_ts": epoch_seconds(incident.occurred_at),
        "location": location.address if location is not None else None,
        "geo": geo,
        "comments": incident.narrative,
        "parties": [_link("party_id", inv, inv.person_id) for inv in incident.involvements],
        "flags": _flags(incident.tags),
        "entered_date": format_date(incident.created),
        "updated_ts": epoch_seconds(incident.provenance.last_updated),
    }


def _error(status: int, code: str, message: str) -> web.Response:
    return web.Response(
        status=status,
        body=_encoder.encode({"error": {"code": code, "message": message}}),
        content_type="application/json",
    )


def _cursor_tag(search: str) -> int:
    # Binds a cursor to the search that issued it; crc32 is stable across processes, hash() is not.
    return zlib.crc32(search.encode())


def encode_cursor(offset: int, search: str) -> str:
    raw = f"offset:{offset}|{_cursor_tag(search)}".encode()
    return base64.urlsafe_b64encode(raw).decode("ascii")


def decode_cursor(cursor: str, search: str) -> int | None:
    """The offset a cursor stands for, or None when it was not issued for this search."""
    try:
        raw = base64.urlsafe_b64decode(cursor.encode("ascii")).decode("ascii")
        head, tag = raw.split("|")
        name, offset = head.split(":")
        if name != "offset" or int(tag) != _cursor_tag(search) or int(offset) < 0:
            return None
        return int(offset)
    except (ValueError, UnicodeError, binascii.Error):
        return None


class BeaconSimulator(Simulator):
    vendor = "Beacon"
    kind = "beacon-cad"

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
        self._expected_auth = f"Bearer {api_key}".encode()

    def routes(self) -> list[web.RouteDef]:
        return [
            web.get("/cad/v1/calls", self._calls),
            web.get("/cad/v1/parties", self._parties),
        ]

    def authorized(self, request: web.Request) -> bool:
        given = request.headers.get("Authorization", "").encode()
        return hmac.compare_digest(given, self._expected_auth)

    def error_body(self, status: int) -> tuple[bytes, str]:
        if status == 401:
            error = {"code": "UNAUTHORIZED", "message": "missing or invalid bearer token"}
        else:
            error = {"code": "INTERNAL", "message": "internal server error"}
        return _encoder.encode({"error": error}), "application/json"

    def malformed_body(self) -> tuple[bytes, str]:
        return b'{"calls": [{"call_id": "CFS-0', "application/json"

    async def _calls(self, request: web.Request) -> web.Response:
        return self._answer_list(request, EntityKind.INCIDENT, "calls", render_call)

    async def _parties(self, request: web.Request) -> web.Response:
        return self._answer_list(request, EntityKind.PERSON, "parties", render_party)

    def _answer_list(
        self,
        request: web.Request,
        kind: EntityKind,
        envelope: str,
        render: Callable[[Any], dict[str, Any]],
    ) -> web.Response:
        query = request.query
        search, ids = query.get("search"), query.get("ids")
        if (search is None) == (ids is None):
            return _error(400, "BAD_REQUEST", "give exactly one of search and ids")
        if ids is not None:
            wanted = [i for i in ids.split(",") if i]
            if len(wanted) > MAX_IDS:
                return _error(400, "TOO_MANY_IDS", f"at most {MAX_IDS} ids per request")
            found = [r for r in (self.index.get(kind, i) for i in wanted) if r is not None]
            return self._page(envelope, [render(r) for r in found], None)
        assert search is not None
        try:
            limit = int(query.get("limit", DEFAULT_LIMIT))
        except ValueError:
            return _error(400, "BAD_REQUEST", "limit must be an integer")
        if not 1 <= limit <= MAX_LIMIT:
            return _error(400, "BAD_REQUEST", f"limit must be 1..{MAX_LIMIT}")
        offset = 0
        if "cursor" in query:
            decoded = decode_cursor(query["cursor"], search)
            if decoded is None:
                return _error(400, "BAD_CURSOR", "cursor not valid for this search")
            offset = decoded
        # The index answers in a fixed order, so recomputing the match per page is consistent.
        matches = self.index.search(search, (kind,))
        page = matches[offset : offset + limit]
        end = offset + len(page)
        next_cursor = encode_cursor(end, search) if end < len(matches) else None
        return self._page(envelope, [render(r) for r in page], next_cursor)

    @staticmethod
    def _page(envelope: str, items: list[dict[str, Any]], next_cursor: str | None) -> web.Response:
        return web.Response(
            body=_encoder.encode({envelope: items, "next_cursor": next_cursor}),
            content_type="application/json",
        )
