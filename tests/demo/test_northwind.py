"""The Northwind RMS simulator as a client sees it on the wire (docs/vendors/northwind-rms.md)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, date, datetime
from typing import Any

import aiohttp
import pytest

from hub.demo.northwind import NorthwindSimulator
from hub.demo.simulator import FaultKind
from hub.model import (
    Agency,
    DriverLicense,
    EntityKind,
    Incident,
    IncidentKind,
    InvolvementRef,
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
)

KEY = "sim-key"
SOURCE = "marin-rms"
AGENCY = Agency(ori="CA0990000", name="Marin Valley Sheriff's Office", state="CA")
SYSTEM = SourceSystem(name=SOURCE, vendor="Northwind", kind=SourceKind.RMS)
SUMMER = datetime(2023, 7, 4, 22, 40, tzinfo=UTC)
WINTER = datetime(2024, 1, 15, 22, 30, tzinfo=UTC)


def prov(record_id: str, last_updated: datetime | None = None) -> Provenance:
    return Provenance(
        agency=AGENCY,
        system=SYSTEM,
        record_id=record_id,
        retrieved_at=WINTER,
        last_updated=last_updated,
    )


def hid(kind: EntityKind, record_id: str) -> str:
    return make_id(SOURCE, kind, record_id)


def person(record_id: str, given: str, surname: str = "Reyes", **fields: Any) -> Person:
    return Person(
        id=hid(EntityKind.PERSON, record_id),
        provenance=prov(record_id, fields.pop("last_updated", None)),
        name=PersonName(given=given, surname=surname),
        **fields,
    )


JORDAN = person(
    "NW-P-1",
    "Jordan",
    last_updated=SUMMER,
    created=date(2019, 6, 30),
    date_of_birth=date(1988, 4, 12),
    sex="M",
    race="W",
    height=71,
    weight=180,
    ssn="123-45-6789",
    driver_license=DriverLicense(number="B1234567", state="CA"),
    vehicle_ids=(hid(EntityKind.VEHICLE, "NW-V-1"),),
    involvements=(
        InvolvementRef(
            role="SUSPECT",
            person_id=hid(EntityKind.PERSON, "NW-P-1"),
            incident_id=hid(EntityKind.INCIDENT, "NW-I-1"),
            tags=frozenset({"juvenile"}),
        ),
    ),
)
OTHERS = [
    person(f"NW-P-{n}", given)
    for n, given in enumerate(["Maria", "Sam", "Ana", "Luis", "Eva", "Jo"], 2)
]
SMITH = person(
    "NW-P-9", "Jordan", surname="Smith", driver_license=DriverLicense(number="X1", state="NV")
)
CAR = Vehicle(
    id=hid(EntityKind.VEHICLE, "NW-V-1"),
    provenance=prov("NW-V-1", WINTER),
    plate=LicensePlate(number="7ABC123", state="CA"),
    make="Honda",
    model="Accord",
    year=2016,
    color="BLACK",
    registered_owner_id=JORDAN.id,
    tags=frozenset({"sealed", "in-state-only"}),
)
NV_CAR = Vehicle(
    id=hid(EntityKind.VEHICLE, "NW-V-2"),
    provenance=prov("NW-V-2"),
    plate=LicensePlate(number="7ABC123", state="NV"),
)
ASSAULT = Incident(
    id=hid(EntityKind.INCIDENT, "NW-I-1"),
    provenance=prov("NW-I-1", WINTER),
    number="MV-2023-004211",
    incident_kind=IncidentKind.REPORT,
    offenses=(Offense(code="13A", description="Aggravated Assault"),),
    occurred_at=SUMMER,
    reported_at=WINTER,
    location=Location(address="400 Pine St", latitude=37.9735, longitude=-122.5311),
    status="CLEARED BY ARREST",
    involvements=(
        InvolvementRef(
            role="VICTIM",
            person_id=hid(EntityKind.PERSON, "NW-P-2"),
            incident_id=hid(EntityKind.INCIDENT, "NW-I-1"),
            tags=frozenset({"sex-offense-victim"}),
        ),
    ),
    involved_vehicle_ids=(CAR.id,),
)
RECORDS: list[Record] = [JORDAN, *OTHERS, SMITH, CAR, NV_CAR, ASSAULT]


@pytest.fixture
async def sim() -> AsyncIterator[NorthwindSimulator]:
    simulator = NorthwindSimulator(system_name=SOURCE, agency=AGENCY, records=RECORDS, api_key=KEY)
    await simulator.start()
    yield simulator
    await simulator.stop()


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


async def get(
    session: aiohttp.ClientSession,
    sim: NorthwindSimulator,
    path: str,
    key: str | None = KEY,
    **params: str,
) -> tuple[int, Any]:
    headers = {"X-Api-Key": key} if key is not None else {}
    async with session.get(sim.url + path, params=params, headers=headers) as resp:
        if resp.content_type != "application/json":
            return resp.status, await resp.text()
        return resp.status, await resp.json()


def ids(body: Any) -> list[str]:
    return [
        item.get("personId") or item.get("vehicleId") or item["incidentId"] for item in body["data"]
    ]


# -- auth ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("key", [None, "", "not-the-key"])
async def test_without_the_key_is_401_with_vendor_error(
    sim: NorthwindSimulator, session: aiohttp.ClientSession, key: str | None
) -> None:
    status, body = await get(session, sim, "/api/v2/persons", key=key, q="Reyes")
    assert status == 401
    assert body["errors"][0]["code"] == "AUTH_INVALID_KEY"


# -- queries and paging -------------------------------------------------------------------------


async def test_pages_are_disjoint_complete_and_stable(
    sim: NorthwindSimulator, session: aiohttp.ClientSession
) -> None:
    pages = []
    for page in ("1", "2", "3", "4"):
        status, body = await get(
            session, sim, "/api/v2/persons", q="reyes", page=page, pageSize="3"
        )
        assert status == 200
        assert body["paging"] == {"page": int(page), "pageSize": 3, "totalRecords": 7}
        pages.append(ids(body))
    assert pages == [
        ["NW-P-1", "NW-P-2", "NW-P-3"],
        ["NW-P-4", "NW-P-5", "NW-P-6"],
        ["NW-P-7"],
        [],
    ]
    _, again = await get(session, sim, "/api/v2/persons", q="REYES", page="2", pageSize="3")
    assert ids(again) == pages[1]


async def test_default_page_size_is_25(
    sim: NorthwindSimulator, session: aiohttp.ClientSession
) -> None:
    _, body = await get(session, sim, "/api/v2/persons", q="Reyes")
    assert body["paging"] == {"page": 1, "pageSize": 25, "totalRecords": 7}


async def test_every_word_must_match(
    sim: NorthwindSimulator, session: aiohttp.ClientSession
) -> None:
    _, body = await get(session, sim, "/api/v2/persons", q="jordan reyes")
    assert ids(body) == ["NW-P-1"]
    _, body = await get(session, sim, "/api/v2/persons", q="jordan")
    assert ids(body) == ["NW-P-1", "NW-P-9"]
    _, body = await get(session, sim, "/api/v2/incidents", q="aggravated pine")
    assert ids(body) == ["NW-I-1"]


async def test_batch_get_by_ids(sim: NorthwindSimulator, session: aiohttp.ClientSession) -> None:
    _, body = await get(session, sim, "/api/v2/persons", ids="NW-P-3,nope,NW-P-1,NW-P-3,NW-V-1")
    assert ids(body) == ["NW-P-3", "NW-P-1"]
    assert body["paging"]["totalRecords"] == 2


async def test_plates_match_normalised_and_filter_by_state(
    sim: NorthwindSimulator, session: aiohttp.ClientSession
) -> None:
    _, body = await get(session, sim, "/api/v2/vehicles", plates="7abc-123,ZZZ")
    assert ids(body) == ["NW-V-1", "NW-V-2"]
    _, body = await get(session, sim, "/api/v2/vehicles", plates="7ABC123", plateState="NV")
    assert ids(body) == ["NW-V-2"]


async def test_single_record_and_404(
    sim: NorthwindSimulator, session: aiohttp.ClientSession
) -> None:
    status, body = await get(session, sim, "/api/v2/vehicles/NW-V-1")
    assert status == 200
    assert body["vehicleId"] == "NW-V-1"
    status, body = await get(session, sim, "/api/v2/vehicles/NW-P-1")
    assert status == 404
    assert body["errors"][0]["code"] == "NOT_FOUND"


@pytest.mark.parametrize(
    ("path", "params"),
    [
        ("/api/v2/persons", {}),
        ("/api/v2/persons", {"q": "  "}),
        ("/api/v2/persons", {"q": "Reyes", "ids": "NW-P-1"}),
        ("/api/v2/persons", {"plates": "7ABC123"}),
        ("/api/v2/persons", {"q": "Reyes", "pageSize": "101"}),
        ("/api/v2/persons", {"q": "Reyes", "pageSize": "0"}),
        ("/api/v2/persons", {"q": "Reyes", "page": "first"}),
        ("/api/v2/persons", {"ids": ",".join(f"NW-P-{n}" for n in range(101))}),
        ("/api/v2/vehicles", {"plates": ",".join(f"P{n}" for n in range(101))}),
    ],
)
async def test_protocol_violations_are_400(
    sim: NorthwindSimulator, session: aiohttp.ClientSession, path: str, params: dict[str, str]
) -> None:
    status, body = await get(session, sim, path, **params)
    assert status == 400
    assert body["errors"][0]["code"] == "BAD_QUERY"


# -- the wire format ------------------------------------------------------------------------------


async def test_person_wire_format(sim: NorthwindSimulator, session: aiohttp.ClientSession) -> None:
    _, body = await get(session, sim, "/api/v2/persons", ids="NW-P-1,NW-P-9")
    jordan, smith = body["data"]
    assert jordan == {
        "personId": "NW-P-1",
        "lastName": "Reyes",
        "firstName": "Jordan",
        "middleName": None,
        "suffix": None,
        "aliases": [],
        "dob": "1988-04-12",
        "gender": "Male",
        "raceCode": "White",
        "heightFtIn": "5'11\"",
        "weightLbs": 180,
        "ssn": "123456789",
        "dlNumber": "B1234567",
        "dlState": None,  # the agency's own state is left empty
        "addresses": [],
        "phoneNumbers": [],
        "officerSafetyCautions": [],
        "ownedVehicleIds": ["NW-V-1"],
        "involvements": [
            {
                "incidentId": "NW-I-1",
                "incidentNo": "MV-2023-004211",
                "role": "SUS",
                "sealed": False,
                "juvenile": True,
                "restrictions": [],
            }
        ],
        "sealed": False,
        "juvenile": False,
        "restrictions": [],
        "createdOn": "2019-06-30",
        # Pacific daylight time, the agency's wall clock.
        "modifiedOn": "2023-07-04T15:40:00-07:00",
    }
    assert smith["dlState"] == "NV"
    assert smith["modifiedOn"] is None


async def test_vehicle_and_incident_wire_format(
    sim: NorthwindSimulator, session: aiohttp.ClientSession
) -> None:
    _, body = await get(session, sim, "/api/v2/vehicles", ids="NW-V-1")
    car = body["data"][0]
    assert car["plateNo"] == "7ABC123"
    assert car["plateState"] == "CA"
    assert car["color"] == "BLK"
    assert car["modelYear"] == 2016
    assert car["ownerPersonId"] == "NW-P-1"
    assert (car["sealed"], car["restrictions"]) == (True, ["ISO"])
    # Pacific standard time in January.
    assert car["modifiedOn"] == "2024-01-15T14:30:00-08:00"

    _, body = await get(session, sim, "/api/v2/incidents", ids="NW-I-1")
    incident = body["data"][0]
    assert incident["incidentNo"] == "MV-2023-004211"
    assert incident["reportType"] == "Incident Report"
    assert incident["status"] == "CBA"
    assert incident["occurredOn"] == "2023-07-04T15:40:00-07:00"
    assert incident["reportedOn"] == "2024-01-15T14:30:00-08:00"
    assert incident["offenses"] == [{"nibrsCode": "13A", "literal": "Aggravated Assault"}]
    assert incident["location"] == {
        "streetAddress": "400 Pine St",
        "lat": 37.9735,
        "lng": -122.5311,
    }
    assert incident["involvedPersons"] == [
        {
            "personId": "NW-P-2",
            "role": "VIC",
            "sealed": False,
            "juvenile": False,
            "restrictions": ["SXV"],
        }
    ]
    assert incident["involvedVehicleIds"] == ["NW-V-1"]


async def test_time_zone_follows_the_agency_state(session: aiohttp.ClientSession) -> None:
    agency = Agency(ori="NY0990000", name="Elsewhere PD", state="NY")
    sim = NorthwindSimulator(system_name=SOURCE, agency=agency, records=[CAR], api_key=KEY)
    await sim.start()
    try:
        _, body = await get(session, sim, "/api/v2/vehicles", ids="NW-V-1")
    finally:
        await sim.stop()
    assert body["data"][0]["modifiedOn"] == "2024-01-15T17:30:00-05:00"


# -- faults and the request log -----------------------------------------------------------------


async def test_http_500_carries_the_vendor_error_body(
    sim: NorthwindSimulator, session: aiohttp.ClientSession
) -> None:
    sim.add_fault(FaultKind.ERROR_500, path="/persons", times=1)
    status, body = await get(session, sim, "/api/v2/persons", q="Reyes")
    assert status == 500
    assert body["errors"][0]["code"] == "INTERNAL_ERROR"
    # Only once, only that path.
    status, _ = await get(session, sim, "/api/v2/persons", q="Reyes")
    assert status == 200


async def test_malformed_is_an_html_page(
    sim: NorthwindSimulator, session: aiohttp.ClientSession
) -> None:
    sim.add_fault(FaultKind.MALFORMED)
    status, body = await get(session, sim, "/api/v2/vehicles", plates="7ABC123")
    assert status == 200
    assert isinstance(body, str)
    assert body.startswith("<html>")


async def test_requests_are_logged_with_query_status_and_fault(
    sim: NorthwindSimulator, session: aiohttp.ClientSession
) -> None:
    sim.add_fault(FaultKind.ERROR_500, path="/incidents")
    await get(session, sim, "/api/v2/persons", q="Reyes", page="2", pageSize="3")
    await get(session, sim, "/api/v2/incidents", q="x")
    await get(session, sim, "/api/v2/persons", key="wrong", q="Reyes")
    log = [(e.path, e.query, e.status, e.fault) for e in sim.requests]
    assert log == [
        ("/api/v2/persons", "q=Reyes&page=2&pageSize=3", 200, None),
        ("/api/v2/incidents", "q=x", 500, "error500"),
        ("/api/v2/persons", "q=Reyes", 401, None),
    ]
