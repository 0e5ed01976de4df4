"""Keystone RMS adapter: the conformance suite, and the mapping of hand-written vendor payloads.

The payloads in ``fixtures/keystone/`` are written from ``docs/vendors/keystone-rms.md``, not
produced by the simulator, so a mistake shared by the simulator and the adapter shows up here.
"""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import aiohttp
import defusedxml.ElementTree as SafeET
import pytest
from aiohttp import web

from hub.adapters.base import SearchRequest, SourceConfig
from hub.adapters.keystone import KeystoneAdapter
from hub.demo.keystone import KeystoneSimulator
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
    LicensePlate,
    Location,
    Offense,
    Person,
    PersonName,
    Provenance,
    SourceKind,
    SourceSystem,
    Vehicle,
    make_id,
)
from hub.secret import Secret
from tests.adapters.conformance import AdapterConformance

FIXTURES = Path(__file__).parent / "fixtures" / "keystone"
KS = "{http://keystone.example.com/niem/rms/3.0/}"
SOURCE = "cascade-rms"
AGENCY = Agency(ori="WA0990100", name="Cascade City Police Department", state="WA")
SYSTEM = SourceSystem(name=SOURCE, vendor="Keystone", kind=SourceKind.RMS)
KEY = "s3cret-pässword"


class TestKeystoneConformance(AdapterConformance):
    adapter_cls = KeystoneAdapter
    simulator_cls = KeystoneSimulator


# -- a vendor that answers hand-written payloads ---------------------------------------------------


@dataclass
class Received:
    authorization: str
    content_type: str
    body: bytes

    def query(self) -> dict[str, list[str]]:
        root = SafeET.fromstring(self.body)
        assert root.tag == KS + "QueryRequest"
        out: dict[str, list[str]] = {}
        for child in root:
            out.setdefault(child.tag.removeprefix(KS), []).append(child.text or "")
        return out


@dataclass
class FixtureVendor:
    """Answers each query with the next (status, fixture) in ``answers``, then with no records."""

    url: str = ""
    answers: list[tuple[int, str]] = field(default_factory=list)
    received: list[Received] = field(default_factory=list)

    def answer(self, *fixtures: str, status: int = 200) -> None:
        self.answers.extend((status, name) for name in fixtures)

    async def handle(self, request: web.Request) -> web.Response:
        self.received.append(
            Received(
                request.headers.get("Authorization", ""),
                request.headers.get("Content-Type", ""),
                await request.read(),
            )
        )
        status, name = self.answers.pop(0) if self.answers else (200, "empty.xml")
        body = (FIXTURES / name).read_bytes()
        return web.Response(status=status, body=body, content_type="application/xml")


@pytest.fixture
async def vendor() -> AsyncIterator[FixtureVendor]:
    fake = FixtureVendor()
    app = web.Application()
    app.add_routes([web.post("/niem/v3/query", fake.handle)])
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    fake.url = f"http://127.0.0.1:{port}/"
    yield fake
    await runner.cleanup()


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as client:
        yield client


def make_adapter(url: str, session: aiohttp.ClientSession, **options: str) -> KeystoneAdapter:
    config = SourceConfig(
        name=SOURCE,
        kind="keystone-rms",
        agency=AGENCY,
        url=url,
        api_key=Secret(KEY),
        options=options,
    )
    return KeystoneAdapter(config, session)


@pytest.fixture
def adapter(vendor: FixtureVendor, session: aiohttp.ClientSession) -> KeystoneAdapter:
    return make_adapter(vendor.url, session)


def basic_credentials(header: str) -> tuple[str, str]:
    scheme, _, encoded = header.partition(" ")
    assert scheme == "Basic"
    login, _, password = base64.b64decode(encoded).decode().partition(":")
    return login, password


def hub_id(kind: EntityKind, record_id: str) -> str:
    return make_id(SOURCE, kind, record_id)


def provenance(record_id: str, retrieved_at: datetime, updated: datetime | None) -> Provenance:
    return Provenance(
        agency=AGENCY,
        system=SYSTEM,
        record_id=record_id,
        retrieved_at=retrieved_at,
        last_updated=updated,
    )


def person_search(text: str = "jordan reyes", limit: int = 50) -> SearchRequest:
    return SearchRequest(kinds=frozenset({EntityKind.PERSON}), text=text, limit=limit)


# -- mapping ---------------------------------------------------------------------------------------


async def test_person_maps_every_field(adapter: KeystoneAdapter, vendor: FixtureVendor) -> None:
    vendor.answer("person.xml")
    (got,) = await adapter.search(person_search())
    assert isinstance(got, Person)
    assert got.provenance.retrieved_at.tzinfo is not None
    p417 = hub_id(EntityKind.PERSON, "CC-P-000417")
    assert got == Person(
        id=p417,
        provenance=provenance(
            "CC-P-000417", got.provenance.retrieved_at, datetime(2023, 2, 1, 17, 45, 9, tzinfo=UTC)
        ),
        tags=frozenset({"juvenile", "sealed"}),
        created=date(2016, 9, 14),
        name=PersonName(given="Jordan", middle="Avery", surname="Reyes", suffix="Jr"),
        aliases=(PersonName(given="Jordy", surname="Reyes-Ortiz"), PersonName(surname="")),
        date_of_birth=date(1988, 4, 12),
        sex="M",
        race="W",
        height=70,
        weight=181,  # 82 kg
        ssn="555-12-3456",
        driver_license=DriverLicense(number="REYESJA123KP", state="WA"),
        addresses=(
            Address(
                street="1418 Alder Ave Apt 3",
                city="Cascade City",
                state="WA",
                postal_code="98052",
            ),
            Address(city="San Rafael", state="CA"),
        ),
        phones=("(425) 555-0147", "425-555-0199"),
        cautions=("ARMED AND DANGEROUS",),
        vehicle_ids=(hub_id(EntityKind.VEHICLE, "CC-V-000088"),),
        involvements=(
            InvolvementRef(
                role="SUSPECT",
                person_id=p417,
                incident_id=hub_id(EntityKind.INCIDENT, "CC-I-002231"),
            ),
            InvolvementRef(
                role="PERSON OF INTEREST",
                person_id=p417,
                incident_id=hub_id(EntityKind.INCIDENT, "CC-I-002232"),
                tags=frozenset({"sex-offense-victim", "keystone:COURT-ORDER-17"}),
            ),
        ),
    )


async def test_vehicles_map_codes_and_their_free_text_twins(
    adapter: KeystoneAdapter, vendor: FixtureVendor
) -> None:
    vendor.answer("vehicles.xml")
    first, second = await adapter.search(
        SearchRequest(kinds=frozenset({EntityKind.VEHICLE}), text="7ABC123")
    )
    retrieved = first.provenance.retrieved_at
    assert first == Vehicle(
        id=hub_id(EntityKind.VEHICLE, "CC-V-000088"),
        provenance=provenance("CC-V-000088", retrieved, datetime(2022, 12, 24, 8, tzinfo=UTC)),
        created=date(2019, 1, 30),
        vin="4T1BF1FK5GU123456",
        plate=LicensePlate(number="7ABC123", state="CA"),
        make="Toyota",
        model="Camry",
        year=2016,
        color="SILVER",
        registered_owner_id=hub_id(EntityKind.PERSON, "CC-P-000417"),
    )
    assert second == Vehicle(
        id=hub_id(EntityKind.VEHICLE, "CC-V-000091"),
        provenance=provenance("CC-V-000091", retrieved, None),
        plate=LicensePlate(number="BXK4471", state="WA"),
        make="Rivian",  # not an NCIC code: the vendor sent the name
        color="XYZ",  # an NCIC code the hub has no word for: passed through
    )


async def test_incidents_map_every_field(adapter: KeystoneAdapter, vendor: FixtureVendor) -> None:
    vendor.answer("incidents.xml")
    report, call = await adapter.search(
        SearchRequest(kinds=frozenset({EntityKind.INCIDENT}), text="CC-2021-004211")
    )
    retrieved = report.provenance.retrieved_at
    i2231 = hub_id(EntityKind.INCIDENT, "CC-I-002231")
    assert report == Incident(
        id=i2231,
        provenance=provenance(
            "CC-I-002231", retrieved, datetime(2021, 8, 1, 10, 0, 0, 250000, tzinfo=UTC)
        ),
        tags=frozenset({"sealed"}),
        created=date(2021, 7, 5),
        number="CC-2021-004211",
        incident_kind=IncidentKind.REPORT,
        offenses=(
            Offense(code="13A", description="Aggravated Assault"),
            Offense(code="290", description="Destruction/Damage/Vandalism of Property"),
        ),
        occurred_at=datetime(2021, 7, 4, 22, 40, tzinfo=UTC),
        # Sent with a -07:00 offset: read as the same instant in UTC.
        reported_at=datetime(2021, 7, 4, 23, 2, tzinfo=UTC),
        location=Location(
            address="400 Pine St, Cascade City, WA 98052",
            latitude=47.610123,
            longitude=-122.342101,
        ),
        status="CLEARED BY ARREST",
        narrative="Victim reports assault outside bar; suspect left in silver sedan.",
        involvements=(
            InvolvementRef(
                role="SUSPECT",
                person_id=hub_id(EntityKind.PERSON, "CC-P-000417"),
                incident_id=i2231,
            ),
            InvolvementRef(
                role="VICTIM",
                person_id=hub_id(EntityKind.PERSON, "CC-P-000502"),
                incident_id=i2231,
                tags=frozenset({"juvenile"}),
            ),
        ),
        involved_vehicle_ids=(hub_id(EntityKind.VEHICLE, "CC-V-000088"),),
    )
    # Equal instants compare equal whatever their zone; the hub keeps UTC.
    assert report.reported_at is not None
    assert report.reported_at.utcoffset() == timedelta(0)
    assert call == Incident(
        id=hub_id(EntityKind.INCIDENT, "CC-I-002232"),
        provenance=provenance("CC-I-002232", retrieved, None),
        number="CC-2022-000017",
        incident_kind=IncidentKind.CALL,
        location=Location(latitude=47.5),
        status="REFERRED TO DA",
    )


# -- the request the adapter sends ----------------------------------------------------------------


async def test_query_carries_basic_auth_and_the_criteria(
    adapter: KeystoneAdapter, vendor: FixtureVendor
) -> None:
    vendor.answer("person.xml")
    await adapter.search(person_search("jordan reyes", limit=7))
    (sent,) = vendor.received
    assert basic_credentials(sent.authorization) == ("hub", KEY)
    assert sent.content_type.startswith("application/xml")
    assert sent.query() == {
        "EntityType": ["Person"],
        "SearchText": ["jordan reyes"],
        "StartIndex": ["0"],
        "MaxRecords": ["7"],
    }


async def test_username_comes_from_the_options(
    vendor: FixtureVendor, session: aiohttp.ClientSession
) -> None:
    adapter = make_adapter(vendor.url, session, username="cascade-hub")
    await adapter.search(person_search())
    assert basic_credentials(vendor.received[0].authorization) == ("cascade-hub", KEY)
    assert "s3cret" not in repr(adapter.__dict__)


async def test_plates_go_to_vehicles_only_normalised(
    adapter: KeystoneAdapter, vendor: FixtureVendor
) -> None:
    request = SearchRequest(
        kinds=frozenset({EntityKind.PERSON, EntityKind.VEHICLE}),
        plates=("7abc-123", "7ABC123", "bxk 4471"),
        plate_state="CA",
    )
    assert await adapter.search(request) == []
    (sent,) = vendor.received  # no text: nothing to ask about persons
    assert sent.query() == {
        "EntityType": ["Vehicle"],
        "Plate": ["7ABC123", "BXK4471"],
        "PlateState": ["CA"],
        "StartIndex": ["0"],
        "MaxRecords": ["50"],
    }


async def test_each_kind_is_its_own_query(adapter: KeystoneAdapter, vendor: FixtureVendor) -> None:
    await adapter.search(SearchRequest(kinds=frozenset(EntityKind), text="reyes"))
    assert sorted(r.query()["EntityType"][0] for r in vendor.received) == [
        "Incident",
        "Person",
        "Vehicle",
    ]


async def test_nothing_to_ask_asks_nothing(adapter: KeystoneAdapter, vendor: FixtureVendor) -> None:
    assert await adapter.search(person_search("   ")) == []
    assert await adapter.search(person_search(limit=0)) == []
    assert await adapter.get_many(EntityKind.PLATE_READ, ["x"]) == []
    assert vendor.received == []


async def test_pages_until_the_total(adapter: KeystoneAdapter, vendor: FixtureVendor) -> None:
    vendor.answer("persons_page1.xml", "persons_page2.xml")
    found = await adapter.search(person_search("reyes", limit=10))
    assert [r.provenance.record_id for r in found] == ["CC-P-000001", "CC-P-000002", "CC-P-000003"]
    assert [(r.query()["StartIndex"], r.query()["MaxRecords"]) for r in vendor.received] == [
        (["0"], ["10"]),
        (["2"], ["8"]),
    ]


async def test_pages_until_the_limit(vendor: FixtureVendor, session: aiohttp.ClientSession) -> None:
    adapter = make_adapter(vendor.url, session, page_size="2")
    vendor.answer("persons_page1.xml", "persons_page2.xml")
    found = await adapter.search(person_search("reyes", limit=2))
    assert len(found) == 2
    assert len(vendor.received) == 1


async def test_get_many_asks_by_record_id_in_chunks(
    adapter: KeystoneAdapter, vendor: FixtureVendor
) -> None:
    ids = [f"CC-P-{n:06d}" for n in range(450)]
    assert await adapter.get_many(EntityKind.PERSON, [*ids, ids[0]]) == []
    sent = sorted((r.query() for r in vendor.received), key=lambda q: q["RecordID"][0])
    assert [len(q["RecordID"]) for q in sent] == [200, 200, 50]
    assert [i for q in sent for i in q["RecordID"]] == ids
    assert all(q["EntityType"] == ["Person"] and "SearchText" not in q for q in sent)


@pytest.mark.parametrize(
    "options",
    [{"page_size": "lots"}, {"page_size": "0"}, {"page_size": "201"}, {"username": "a:b"}],
)
def test_bad_options_are_config_errors(
    options: dict[str, str], session: aiohttp.ClientSession
) -> None:
    with pytest.raises(ConfigError):
        make_adapter("http://127.0.0.1:9", session, **options)


# -- failures -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fixture", "status", "error"),
    [
        ("fault_auth.xml", 401, SourceAuthError),
        ("fault_auth.xml", 200, SourceAuthError),
        ("fault_unavailable.xml", 503, SourceUnavailable),
        ("fault_unavailable.xml", 200, SourceUnavailable),
        ("fault_bad_request.xml", 400, SourceProtocolError),
        ("fault_bad_request.xml", 200, SourceProtocolError),
    ],
)
async def test_faults_map_to_the_error_tree(
    adapter: KeystoneAdapter,
    vendor: FixtureVendor,
    fixture: str,
    status: int,
    error: type[SourceError],
) -> None:
    vendor.answer(fixture, status=status)
    with pytest.raises(error) as info:
        await adapter.search(person_search())
    assert type(info.value) is error
    assert info.value.source == SOURCE
    # Fault text may echo the criteria; it never reaches our message.
    assert "Reyes" not in info.value.message
    assert "expired" not in info.value.message


@pytest.mark.parametrize(
    "fixture",
    [
        "wrong_root.xml",
        "wrong_namespace.xml",
        "missing_total.xml",
        "missing_name.xml",
        "missing_record_id.xml",
        "bad_date.xml",
        "bad_unit.xml",
        "wrong_kind.xml",
        "reference_without_id.xml",
    ],
)
async def test_wrong_shape_is_a_protocol_error(
    adapter: KeystoneAdapter, vendor: FixtureVendor, fixture: str
) -> None:
    vendor.answer(fixture)
    with pytest.raises(SourceProtocolError):
        await adapter.search(person_search())


@pytest.mark.parametrize("fixture", ["billion_laughs.xml", "external_entity.xml"])
async def test_entity_attacks_are_refused(
    adapter: KeystoneAdapter, vendor: FixtureVendor, fixture: str
) -> None:
    vendor.answer(fixture)
    with pytest.raises(SourceProtocolError):
        await adapter.search(person_search())


async def test_one_kind_failing_fails_the_search_with_a_source_error(
    adapter: KeystoneAdapter, vendor: FixtureVendor
) -> None:
    vendor.answer("fault_unavailable.xml", "fault_unavailable.xml", "fault_unavailable.xml")
    with pytest.raises(SourceUnavailable):
        await adapter.search(SearchRequest(kinds=frozenset(EntityKind), text="reyes"))
