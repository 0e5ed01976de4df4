"""The Beacon CAD simulator: its wire form, paging, batch get, errors and auth, over real HTTP."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime
from typing import Any

import aiohttp
import pytest

from hub.demo.beacon import BeaconSimulator, decode_cursor, encode_cursor, format_name
from hub.demo.simulator import FaultKind
from hub.model import (
    Address,
    Agency,
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
    SourceSystem,
    make_id,
)

AGENCY = Agency(ori="OR0990200", name="Harbor Falls Police Department", state="OR")
SYSTEM = SourceSystem(name="harbor-cad", vendor="Beacon", kind=SourceKind.CAD)
KEY = "harbor-cad-key"
UPDATED = datetime(2024, 4, 13, 12, 40, tzinfo=UTC)


def prov(record_id: str) -> Provenance:
    return Provenance(
        agency=AGENCY,
        system=SYSTEM,
        record_id=record_id,
        retrieved_at=UPDATED,
        last_updated=UPDATED,
    )


def person(n: int, surname: str = "Reyes", **extra: Any) -> Person:
    rid = f"NM-{n:06d}"
    return Person(
        id=make_id(SYSTEM.name, EntityKind.PERSON, rid),
        provenance=prov(rid),
        name=PersonName(given=f"Given{n}", surname=surname),
        **extra,
    )


def call(n: int, **extra: Any) -> Incident:
    rid = f"CFS-{n:06d}"
    return Incident(
        id=make_id(SYSTEM.name, EntityKind.INCIDENT, rid),
        provenance=prov(rid),
        number=f"24-{n:06d}",
        incident_kind=IncidentKind.CALL,
        offenses=(Offense(code="415", description="Disturbance"),),
        **extra,
    )


REYES = Person(
    id=make_id(SYSTEM.name, EntityKind.PERSON, "NM-900001"),
    provenance=prov("NM-900001"),
    tags=frozenset({"juvenile", "sealed"}),
    created=date(2024, 4, 13),
    name=PersonName(given="Jordan", middle="Avery", surname="Reyes", suffix="JR"),
    date_of_birth=date(1988, 4, 12),
    sex="M",
    race="W",
    phones=("(541) 555-0100",),
    addresses=(
        Address(street="88 Alder St", city="Harbor Falls", state="OR", postal_code="97420"),
    ),
    cautions=("ARMED",),
    involvements=(
        InvolvementRef(
            role="REPORTING_PARTY",
            person_id=make_id(SYSTEM.name, EntityKind.PERSON, "NM-900001"),
            incident_id=make_id(SYSTEM.name, EntityKind.INCIDENT, "CFS-900001"),
        ),
    ),
)
FIGHT = Incident(
    id=make_id(SYSTEM.name, EntityKind.INCIDENT, "CFS-900001"),
    provenance=prov("CFS-900001"),
    tags=frozenset({"sealed"}),
    created=date(2024, 4, 13),
    number="24-900001",
    incident_kind=IncidentKind.CALL,
    offenses=(
        Offense(code="415", description="Disturbance"),
        Offense(code="242", description="Battery"),
    ),
    occurred_at=datetime(2024, 4, 13, 10, 55, tzinfo=UTC),
    reported_at=datetime(2024, 4, 13, 11, 2, tzinfo=UTC),
    location=Location(address="1200 Bay St, Harbor Falls, OR", latitude=43.4, longitude=-124.2),
    status="CLOSED",
    narrative="Two males fighting outside the bar.",
    involvements=(
        InvolvementRef(
            role="SUSPECT",
            person_id=make_id(SYSTEM.name, EntityKind.PERSON, "NM-900001"),
            incident_id=make_id(SYSTEM.name, EntityKind.INCIDENT, "CFS-900001"),
            tags=frozenset({"sex-offense-victim"}),
        ),
    ),
)

RECORDS: list[Record] = [
    REYES,
    FIGHT,
    *(person(n) for n in range(1, 60)),
    *(person(n, surname="Nguyen") for n in range(60, 65)),
    *(call(n) for n in range(1, 40)),
]


@pytest.fixture
async def sim() -> AsyncIterator[BeaconSimulator]:
    simulator = BeaconSimulator(
        system_name=SYSTEM.name, agency=AGENCY, records=RECORDS, api_key=KEY
    )
    await simulator.start()
    yield simulator
    await simulator.stop()


@pytest.fixture
async def client() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession(headers={"Authorization": f"Bearer {KEY}"}) as session:
        yield session


async def get(
    client: aiohttp.ClientSession, sim: BeaconSimulator, path: str, **params: str
) -> tuple[int, Any]:
    async with client.get(sim.url + path, params=params) as resp:
        return resp.status, await resp.json()


async def test_renders_a_party_in_beacon_form(
    sim: BeaconSimulator, client: aiohttp.ClientSession
) -> None:
    status, body = await get(client, sim, "/cad/v1/parties", ids="NM-900001")
    assert status == 200
    assert body == {
        "parties": [
            {
                "party_id": "NM-900001",
                "name": "Reyes, Jordan Avery",
                "name_sfx": "JR",
                "dob": "04/12/1988",
                "sex": "M",
                "race": "W",
                "phones": ["(541) 555-0100"],
                "addresses": [
                    {
                        "street_addr": "88 Alder St",
                        "city": "Harbor Falls",
                        "state_cd": "OR",
                        "zip_cd": "97420",
                    }
                ],
                "alerts": ["ARMED"],
                "calls": [{"call_id": "CFS-900001", "role": "RP", "flags": []}],
                "flags": ["JUV", "SEAL"],
                "entered_date": "04/13/2024",
                "updated_ts": 1713012000,
            }
        ],
        "next_cursor": None,
    }


async def test_renders_a_call_in_beacon_form(
    sim: BeaconSimulator, client: aiohttp.ClientSession
) -> None:
    status, body = await get(client, sim, "/cad/v1/calls", ids="CFS-900001")
    assert status == 200
    assert body["calls"] == [
        {
            "call_id": "CFS-900001",
            "cfs_number": "24-900001",
            "call_type": "415",
            "call_type_desc": "Disturbance",
            "addl_call_types": [{"call_type": "242", "call_type_desc": "Battery"}],
            "status": "CLS",
            "received_ts": 1713006120,
            "occurred_ts": 1713005700,
            "location": "1200 Bay St, Harbor Falls, OR",
            "geo": {"lat": 43.4, "lng": -124.2},
            "comments": "Two males fighting outside the bar.",
            "parties": [{"party_id": "NM-900001", "role": "SUSP", "flags": ["SOV"]}],
            "flags": ["SEAL"],
            "entered_date": "04/13/2024",
            "updated_ts": 1713012000,
        }
    ]


async def test_a_call_without_type_status_or_place(
    sim: BeaconSimulator, client: aiohttp.ClientSession
) -> None:
    bare = Incident(
        id=make_id(SYSTEM.name, EntityKind.INCIDENT, "CFS-1"),
        provenance=Provenance(
            agency=AGENCY, system=SYSTEM, record_id="CFS-1", retrieved_at=UPDATED
        ),
        number="24-1",
        incident_kind=IncidentKind.CALL,
        status="HOLDING",
    )
    other = BeaconSimulator(system_name=SYSTEM.name, agency=AGENCY, records=[bare], api_key=KEY)
    await other.start()
    try:
        status, body = await get(client, other, "/cad/v1/calls", ids="CFS-1")
    finally:
        await other.stop()
    assert status == 200
    (wire,) = body["calls"]
    assert (wire["call_type"], wire["call_type_desc"], wire["addl_call_types"]) == (None, None, [])
    assert wire["status"] == "HOLDING"  # not in the code table: sent as it is
    assert (wire["location"], wire["geo"], wire["updated_ts"]) == (None, None, None)


async def test_search_matches_names_and_call_text(
    sim: BeaconSimulator, client: aiohttp.ClientSession
) -> None:
    _, parties = await get(client, sim, "/cad/v1/parties", search="jordan REYES")
    assert [p["party_id"] for p in parties["parties"]] == ["NM-900001"]
    _, calls = await get(client, sim, "/cad/v1/calls", search="bar battery")
    assert [c["call_id"] for c in calls["calls"]] == ["CFS-900001"]
    _, calls = await get(client, sim, "/cad/v1/calls", search="24-900001")
    assert [c["call_id"] for c in calls["calls"]] == ["CFS-900001"]
    # A call is not a party: the person index is not searched for calls.
    _, calls = await get(client, sim, "/cad/v1/calls", search="Jordan")
    assert calls == {"calls": [], "next_cursor": None}


async def test_cursor_pages_through_every_match_once(
    sim: BeaconSimulator, client: aiohttp.ClientSession
) -> None:
    seen: list[str] = []
    pages = 0
    params = {"search": "Reyes", "limit": "7"}
    while True:
        status, body = await get(client, sim, "/cad/v1/parties", **params)
        assert status == 200
        assert len(body["parties"]) <= 7
        seen += [p["party_id"] for p in body["parties"]]
        pages += 1
        if body["next_cursor"] is None:
            break
        params["cursor"] = body["next_cursor"]
    assert pages == 9  # 60 Reyes: 8 full pages and one of 4
    assert len(seen) == len(set(seen)) == 60


async def test_default_page_size(sim: BeaconSimulator, client: aiohttp.ClientSession) -> None:
    _, body = await get(client, sim, "/cad/v1/parties", search="Reyes")
    assert len(body["parties"]) == 25
    assert body["next_cursor"] is not None


@pytest.mark.parametrize(
    ("params", "code"),
    [
        ({}, "BAD_REQUEST"),
        ({"search": "Reyes", "ids": "NM-000001"}, "BAD_REQUEST"),
        ({"search": "Reyes", "limit": "0"}, "BAD_REQUEST"),
        ({"search": "Reyes", "limit": "201"}, "BAD_REQUEST"),
        ({"search": "Reyes", "limit": "many"}, "BAD_REQUEST"),
        ({"search": "Reyes", "cursor": "not a cursor"}, "BAD_CURSOR"),
        ({"search": "Reyes", "cursor": encode_cursor(7, "Nguyen")}, "BAD_CURSOR"),
        ({"ids": ",".join(f"NM-{n:06d}" for n in range(101))}, "TOO_MANY_IDS"),
    ],
)
async def test_bad_requests_get_vendor_errors(
    sim: BeaconSimulator, client: aiohttp.ClientSession, params: dict[str, str], code: str
) -> None:
    status, body = await get(client, sim, "/cad/v1/parties", **params)
    assert status == 400
    assert body["error"]["code"] == code
    assert isinstance(body["error"]["message"], str)
    # Error messages carry no search words.
    assert "Reyes" not in body["error"]["message"]


async def test_batch_get_answers_known_ids_only(
    sim: BeaconSimulator, client: aiohttp.ClientSession
) -> None:
    _, body = await get(client, sim, "/cad/v1/calls", ids="CFS-000003,nope,CFS-000001,NM-000001")
    assert [c["call_id"] for c in body["calls"]] == ["CFS-000003", "CFS-000001"]
    assert body["next_cursor"] is None


@pytest.mark.parametrize("auth", [None, "Bearer wrong", f"Basic {KEY}", KEY])
async def test_requires_the_bearer_key(sim: BeaconSimulator, auth: str | None) -> None:
    headers = {"Authorization": auth} if auth is not None else {}
    async with (
        aiohttp.ClientSession() as session,
        session.get(sim.url + "/cad/v1/calls", params={"search": "415"}, headers=headers) as resp,
    ):
        assert resp.status == 401
        assert (await resp.json())["error"]["code"] == "UNAUTHORIZED"


async def test_fault_500_uses_the_vendor_error_body(
    sim: BeaconSimulator, client: aiohttp.ClientSession
) -> None:
    sim.add_fault(FaultKind.ERROR_500, path="^/cad/v1/calls", times=1)
    status, body = await get(client, sim, "/cad/v1/calls", search="415")
    assert (status, body["error"]["code"]) == (500, "INTERNAL")
    status, _ = await get(client, sim, "/cad/v1/calls", search="415")
    assert status == 200
    assert [(e.path, e.status, e.fault) for e in sim.requests] == [
        ("/cad/v1/calls", 500, "error500"),
        ("/cad/v1/calls", 200, None),
    ]


async def test_answers_are_deterministic(
    sim: BeaconSimulator, client: aiohttp.ClientSession
) -> None:
    async def raw() -> bytes:
        async with client.get(sim.url + "/cad/v1/parties", params={"search": "Reyes"}) as resp:
            return await resp.read()

    assert await raw() == await raw()


def test_cursor_is_bound_to_its_search() -> None:
    cursor = encode_cursor(50, "jordan reyes")
    assert decode_cursor(cursor, "jordan reyes") == 50
    assert decode_cursor(cursor, "reyes") is None
    assert decode_cursor("%%%", "reyes") is None


@pytest.mark.parametrize(
    ("name", "wire"),
    [
        (
            PersonName(given="Jordan", middle="Avery", surname="Reyes", suffix="JR"),
            "Reyes, Jordan Avery",
        ),
        (PersonName(middle="Lee", surname="Doe"), "Doe, - Lee"),
        (PersonName(surname="Doe"), "Doe,"),
        (PersonName(given="Jordan"), ", Jordan"),
    ],
)
def test_format_name(name: PersonName, wire: str) -> None:
    assert format_name(name) == wire


def test_a_large_system_starts_without_rendering() -> None:
    # Start-up is one index pass (~8 µs a record); rendering happens per request.
    records = [call(n) for n in range(20_000)]
    started = time.perf_counter()
    BeaconSimulator(system_name=SYSTEM.name, agency=AGENCY, records=records, api_key=KEY)
    assert time.perf_counter() - started < 1.0
