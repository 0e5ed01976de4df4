"""Northwind RMS adapter: the conformance suite, and the mapping of hand-written vendor payloads.

The payloads in fixtures/northwind/ are written from the protocol document
(docs/vendors/northwind-rms.md), not produced by the simulator, so a mistake shared by the
simulator and the adapter still shows up here.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web

from hub.adapters.base import SearchRequest, SourceConfig
from hub.adapters.northwind import NorthwindAdapter
from hub.demo.northwind import NorthwindSimulator
from hub.errors import (
    ConfigError,
    SourceAuthError,
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
from hub.secret import Secret
from tests.adapters.conformance import AdapterConformance, comparable

FIXTURES = Path(__file__).parent / "fixtures" / "northwind"
SOURCE = "marin-rms"
KEY = "nw-test-key"
AGENCY = Agency(ori="CA0990000", name="Marin Valley Sheriff's Office", state="CA")
SYSTEM = SourceSystem(name=SOURCE, vendor="Northwind", kind=SourceKind.RMS)
NOW = datetime(2025, 1, 1, tzinfo=UTC)


class TestNorthwindConformance(AdapterConformance):
    adapter_cls = NorthwindAdapter
    simulator_cls = NorthwindSimulator
    lossy_fields = frozenset()


# -- a stand-in vendor answering hand-written payloads -------------------------------------------


@dataclass
class Seen:
    path: str
    query: dict[str, str]
    api_key: str | None


@dataclass
class FixtureVendor:
    """Answers ``(collection, page) -> (status, fixture file)``; anything else gets empty.json."""

    answers: dict[tuple[str, str], tuple[int, str]] = field(default_factory=dict)
    seen: list[Seen] = field(default_factory=list)
    url: str = ""

    def answer(self, collection: str, fixture: str, page: int = 1, status: int = 200) -> None:
        self.answers[(collection, str(page))] = (status, fixture)

    async def handle(self, request: web.Request) -> web.Response:
        self.seen.append(Seen(request.path, dict(request.query), request.headers.get("X-Api-Key")))
        collection = request.path.rsplit("/", 1)[-1]
        status, fixture = self.answers.get(
            (collection, request.query.get("page", "1")), (200, "empty.json")
        )
        body = (FIXTURES / fixture).read_bytes()
        return web.Response(status=status, body=body, content_type="application/json")


@pytest.fixture
async def vendor() -> AsyncIterator[FixtureVendor]:
    fake = FixtureVendor()
    app = web.Application()
    app.router.add_get("/{tail:.*}", fake.handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    fake.url = f"http://127.0.0.1:{port}"
    yield fake
    await runner.cleanup()


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


def make_adapter(url: str, session: aiohttp.ClientSession, **options: str) -> NorthwindAdapter:
    config = SourceConfig(
        name=SOURCE,
        kind="northwind-rms",
        agency=AGENCY,
        url=url,
        api_key=Secret(KEY),
        options=options,
    )
    return NorthwindAdapter(config, session)


@pytest.fixture
def adapter(vendor: FixtureVendor, session: aiohttp.ClientSession) -> NorthwindAdapter:
    return make_adapter(vendor.url, session)


def hid(kind: EntityKind, record_id: str) -> str:
    return make_id(SOURCE, kind, record_id)


def prov(record_id: str, last_updated: datetime | None) -> Provenance:
    return Provenance(
        agency=AGENCY,
        system=SYSTEM,
        record_id=record_id,
        retrieved_at=NOW,
        last_updated=last_updated,
    )


def same(got: Record, want: Record) -> None:
    assert got.provenance.retrieved_at.tzinfo is not None
    assert abs(datetime.now(UTC) - got.provenance.retrieved_at) < timedelta(minutes=1)
    assert comparable(got, frozenset()) == comparable(want, frozenset())


# -- what the hand-written payloads must become ---------------------------------------------------

JORDAN = hid(EntityKind.PERSON, "NW-P-000123")
EXPECTED_PERSONS = [
    Person(
        id=JORDAN,
        provenance=prov("NW-P-000123", datetime(2023, 11, 2, 15, 15, tzinfo=UTC)),
        created=date(2019, 6, 30),
        name=PersonName(given="Jordan", middle="Avery", surname="Reyes"),
        aliases=(
            PersonName(given="Jordy", surname="Reyes"),
            PersonName(given="Jordan", middle="A", surname="Reyes-Ortiz", suffix="Jr"),
        ),
        date_of_birth=date(1988, 4, 12),
        sex="M",
        race="W",
        height=71,
        weight=180,
        ssn="123-45-6789",
        # dlState null: the agency's own state.
        driver_license=DriverLicense(number="B1234567", state="CA"),
        addresses=(
            Address(street="12 Elm St", city="San Rafael", state="CA", postal_code="94901"),
            Address(city="Novato", state="CA"),
        ),
        phones=("(415) 555-0100", "415-555-0199"),
        cautions=("ARMED AND DANGEROUS",),
        vehicle_ids=(hid(EntityKind.VEHICLE, "NW-V-000045"),),
        involvements=(
            InvolvementRef(
                role="SUSPECT",
                person_id=JORDAN,
                incident_id=hid(EntityKind.INCIDENT, "NW-I-000777"),
            ),
            InvolvementRef(
                role="VICTIM",
                person_id=JORDAN,
                incident_id=hid(EntityKind.INCIDENT, "NW-I-000901"),
                tags=frozenset({"sex-offense-victim", "juvenile"}),
            ),
        ),
    ),
    Person(
        id=hid(EntityKind.PERSON, "NW-P-000124"),
        provenance=prov("NW-P-000124", datetime(2024, 1, 15, 22, 30, 0, 250000, tzinfo=UTC)),
        tags=frozenset({"sealed", "juvenile", "in-state-only", "northwind:xyz"}),
        name=PersonName(given="Maria", surname="Reyes"),
        date_of_birth=date(2009, 1, 30),
        sex="F",
        race="A",
        height=60,
        ssn=None,  # "12345" is not an SSN
        driver_license=DriverLicense(number="WDL99X", state="WA"),
    ),
    Person(
        id=hid(EntityKind.PERSON, "NW-P-000555"),
        provenance=prov("NW-P-000555", None),
        name=PersonName(given="Sam", surname="Reyes"),
        sex="F",
        race="U",  # not in Northwind's race table
        height=None,  # "tall" is not feet and inches
    ),
]

EXPECTED_VEHICLES = [
    Vehicle(
        id=hid(EntityKind.VEHICLE, "NW-V-000045"),
        provenance=prov("NW-V-000045", datetime(2024, 1, 15, 22, 30, tzinfo=UTC)),
        created=date(2020, 2, 11),
        vin="1HGCM82633A004352",
        plate=LicensePlate(number="7ABC123", state="CA"),
        make="Honda",
        model="Accord",
        year=2016,
        color="BLACK",
        registered_owner_id=JORDAN,
    ),
    Vehicle(
        id=hid(EntityKind.VEHICLE, "NW-V-000046"),
        provenance=prov("NW-V-000046", None),
        plate=LicensePlate(number="8XYZ999", state="CA"),
        make="Tesla",
        model="Model 3",
        color="Two-tone",
    ),
]

ASSAULT = hid(EntityKind.INCIDENT, "NW-I-000777")
EXPECTED_INCIDENTS = [
    Incident(
        id=ASSAULT,
        provenance=prov("NW-I-000777", datetime(2023, 12, 5, 17, 0, tzinfo=UTC)),
        created=date(2023, 7, 4),
        number="MV-2023-004211",
        incident_kind=IncidentKind.REPORT,
        offenses=(
            Offense(code="13A", description="Aggravated Assault"),
            Offense(code="520", description="Weapon Law Violations"),
        ),
        occurred_at=datetime(2023, 7, 4, 22, 40, tzinfo=UTC),
        reported_at=datetime(2023, 7, 4, 23, 2, 30, tzinfo=UTC),
        location=Location(
            address="400 Pine St, San Rafael, CA", latitude=37.9735, longitude=-122.5311
        ),
        status="CLEARED BY ARREST",
        narrative="Victim struck with a bottle outside the bar.",
        involvements=(
            InvolvementRef(role="SUSPECT", person_id=JORDAN, incident_id=ASSAULT),
            InvolvementRef(
                role="VICTIM",
                person_id=hid(EntityKind.PERSON, "NW-P-000200"),
                incident_id=ASSAULT,
                tags=frozenset({"sex-offense-victim"}),
            ),
            InvolvementRef(
                role="OTHER",
                person_id=hid(EntityKind.PERSON, "NW-P-000201"),
                incident_id=ASSAULT,
            ),
        ),
        involved_vehicle_ids=(hid(EntityKind.VEHICLE, "NW-V-000045"),),
    ),
    Incident(
        id=hid(EntityKind.INCIDENT, "NW-I-000901"),
        provenance=prov("NW-I-000901", None),
        number="MV-2024-000017",
        incident_kind=IncidentKind.CALL,
        reported_at=datetime(2024, 3, 10, 9, 59, 59, tzinfo=UTC),
        status="REFERRED TO DA",  # not a Northwind status code: passed through
    ),
]


# -- mapping --------------------------------------------------------------------------------------


async def test_persons_map_every_field_across_pages(
    adapter: NorthwindAdapter, vendor: FixtureVendor
) -> None:
    vendor.answer("persons", "persons_reyes_page1.json", page=1)
    vendor.answer("persons", "persons_reyes_page2.json", page=2)
    found = await adapter.search(
        SearchRequest(kinds=frozenset({EntityKind.PERSON}), text=" Reyes ", limit=50)
    )
    assert len(found) == len(EXPECTED_PERSONS)
    for got, want in zip(found, EXPECTED_PERSONS, strict=True):
        same(got, want)
    assert [s.path for s in vendor.seen] == ["/api/v2/persons"] * 2
    assert [s.query for s in vendor.seen] == [
        {"q": "Reyes", "page": "1", "pageSize": "50"},
        {"q": "Reyes", "page": "2", "pageSize": "50"},
    ]
    assert all(s.api_key == KEY for s in vendor.seen)


async def test_limit_stops_paging(adapter: NorthwindAdapter, vendor: FixtureVendor) -> None:
    vendor.answer("persons", "persons_reyes_page1.json", page=1)
    vendor.answer("persons", "persons_reyes_page2.json", page=2)
    found = await adapter.search(
        SearchRequest(kinds=frozenset({EntityKind.PERSON}), text="Reyes", limit=2)
    )
    assert [r.provenance.record_id for r in found] == ["NW-P-000123", "NW-P-000124"]
    assert [s.query for s in vendor.seen] == [{"q": "Reyes", "page": "1", "pageSize": "2"}]


async def test_vehicles_by_plates(adapter: NorthwindAdapter, vendor: FixtureVendor) -> None:
    vendor.answer("vehicles", "vehicles_plates.json")
    found = await adapter.search(
        SearchRequest(
            kinds=frozenset({EntityKind.VEHICLE}), plates=("7abc-123", "8XYZ999"), plate_state="CA"
        )
    )
    for got, want in zip(found, EXPECTED_VEHICLES, strict=True):
        same(got, want)
    assert [s.query for s in vendor.seen] == [
        {"plates": "7ABC123,8XYZ999", "plateState": "CA", "page": "1", "pageSize": "50"}
    ]


async def test_text_and_plates_are_one_answer(
    adapter: NorthwindAdapter, vendor: FixtureVendor
) -> None:
    vendor.answer("vehicles", "vehicles_plates.json")
    found = await adapter.search(
        SearchRequest(kinds=frozenset({EntityKind.VEHICLE}), text="7ABC123", plates=("7ABC123",))
    )
    # Both queries are asked; a vehicle both find is answered once.
    assert [s.query.get("q", s.query.get("plates")) for s in vendor.seen] == ["7ABC123"] * 2
    assert [r.provenance.record_id for r in found] == ["NW-V-000045", "NW-V-000046"]


async def test_many_plates_are_sent_in_lists_of_100(
    adapter: NorthwindAdapter, vendor: FixtureVendor
) -> None:
    plates = tuple(f"P{n:05d}" for n in range(150))
    await adapter.search(
        SearchRequest(kinds=frozenset({EntityKind.VEHICLE}), plates=plates, limit=1000)
    )
    sent = [s.query["plates"].split(",") for s in vendor.seen]
    assert [len(p) for p in sent] == [100, 50]
    assert [p for chunk in sent for p in chunk] == list(plates)


async def test_plates_alone_ask_nothing_of_persons_or_incidents(
    adapter: NorthwindAdapter, vendor: FixtureVendor
) -> None:
    request = SearchRequest(
        kinds=frozenset({EntityKind.PERSON, EntityKind.INCIDENT}), plates=("7ABC123",)
    )
    assert await adapter.search(request) == []
    assert vendor.seen == []


async def test_every_kind_is_asked(adapter: NorthwindAdapter, vendor: FixtureVendor) -> None:
    vendor.answer("persons", "persons_reyes_page1.json")
    vendor.answer("incidents", "incidents_by_id.json")
    found = await adapter.search(SearchRequest(kinds=frozenset(EntityKind), text="Reyes", limit=2))
    assert sorted(s.path for s in vendor.seen) == [
        "/api/v2/incidents",
        "/api/v2/persons",
        "/api/v2/vehicles",
    ]
    assert sorted(type(r).__name__ for r in found) == ["Incident"] * 2 + ["Person"] * 2


async def test_incidents_by_id(adapter: NorthwindAdapter, vendor: FixtureVendor) -> None:
    vendor.answer("incidents", "incidents_by_id.json")
    found = await adapter.get_many(
        EntityKind.INCIDENT, ["NW-I-000777", "NW-I-000901", "NW-I-000777", "NW-I-404"]
    )
    for got, want in zip(found, EXPECTED_INCIDENTS, strict=True):
        same(got, want)
    assert [s.query for s in vendor.seen] == [
        {"ids": "NW-I-000777,NW-I-000901,NW-I-404", "page": "1", "pageSize": "3"}
    ]


async def test_get_many_batches_by_page_size_and_keeps_only_what_was_asked(
    vendor: FixtureVendor, session: aiohttp.ClientSession
) -> None:
    adapter = make_adapter(vendor.url, session, page_size="2")
    vendor.answer("incidents", "incidents_by_id.json")
    # The stand-in answers both incidents to every request: each must come back once, and only
    # if asked for.
    found = await adapter.get_many(EntityKind.INCIDENT, ["x1", "NW-I-000777", "x2", "x3", "x4"])
    assert [r.provenance.record_id for r in found] == ["NW-I-000777"]
    assert sorted(s.query["ids"] for s in vendor.seen) == ["x1,NW-I-000777", "x2,x3", "x4"]


async def test_get_many_asks_nothing_for_nothing(
    adapter: NorthwindAdapter, vendor: FixtureVendor
) -> None:
    assert await adapter.get_many(EntityKind.PERSON, []) == []
    assert await adapter.get_many(EntityKind.PLATE_READ, ["NW-P-000123"]) == []
    assert await adapter.get_many(EntityKind.PERSON, ["a,b"]) == []
    assert vendor.seen == []


async def test_base_path_option(vendor: FixtureVendor, session: aiohttp.ClientSession) -> None:
    adapter = make_adapter(vendor.url + "/northwind/", session, base_path="/api/v2/")
    await adapter.search(SearchRequest(kinds=frozenset({EntityKind.PERSON}), text="Reyes"))
    assert [s.path for s in vendor.seen] == ["/northwind/api/v2/persons"]


@pytest.mark.parametrize("page_size", ["0", "101", "many"])
def test_bad_page_size_is_a_config_error(page_size: str) -> None:
    config = SourceConfig(
        name=SOURCE,
        kind="northwind-rms",
        agency=AGENCY,
        url="http://x",
        options={"page_size": page_size},
    )
    with pytest.raises(ConfigError):
        NorthwindAdapter(config, session=None)  # type: ignore[arg-type]


# -- failures -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "fixture",
    [
        "bad_missing_person_id.json",
        "bad_weight_type.json",
        "bad_no_paging.json",
        "bad_data_not_list.json",
        "bad_null_list.json",
        "bad_envelope_list.json",
    ],
)
async def test_wrong_shape_is_a_protocol_error(
    adapter: NorthwindAdapter, vendor: FixtureVendor, fixture: str
) -> None:
    vendor.answer("persons", fixture)
    with pytest.raises(SourceProtocolError) as info:
        await adapter.search(SearchRequest(kinds=frozenset({EntityKind.PERSON}), text="Reyes"))
    assert info.value.source == SOURCE
    # The message names where, never what (the payload is CJI).
    assert "Reyes" not in info.value.message
    assert "180" not in info.value.message


async def test_timestamp_without_offset_is_a_protocol_error(
    adapter: NorthwindAdapter, vendor: FixtureVendor
) -> None:
    vendor.answer("incidents", "bad_naive_timestamp.json")
    with pytest.raises(SourceProtocolError, match="occurredOn"):
        await adapter.get_many(EntityKind.INCIDENT, ["NW-I-1"])


@pytest.mark.parametrize(
    ("status", "fixture", "error"),
    [
        (400, "error_400.json", SourceProtocolError),
        (401, "error_403.json", SourceAuthError),
        (403, "error_403.json", SourceAuthError),
        (503, "error_400.json", SourceUnavailable),
    ],
)
async def test_vendor_errors_map_to_the_tree(
    adapter: NorthwindAdapter,
    vendor: FixtureVendor,
    status: int,
    fixture: str,
    error: type[Exception],
) -> None:
    vendor.answer("persons", fixture, status=status)
    with pytest.raises(error):
        await adapter.search(SearchRequest(kinds=frozenset({EntityKind.PERSON}), text="Reyes"))


async def test_one_failing_kind_fails_the_search_with_its_own_error(
    adapter: NorthwindAdapter, vendor: FixtureVendor
) -> None:
    vendor.answer("persons", "persons_reyes_page1.json")
    vendor.answer("incidents", "error_400.json", status=500)
    with pytest.raises(SourceUnavailable):
        await adapter.search(SearchRequest(kinds=frozenset(EntityKind), text="Reyes"))
