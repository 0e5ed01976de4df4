"""Keystone RMS simulator: the wire protocol of ``docs/vendors/keystone-rms.md``, over real HTTP."""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime
from xml.etree.ElementTree import Element

import aiohttp
import defusedxml.ElementTree as SafeET
import pytest

from hub.demo.keystone import KeystoneSimulator
from hub.demo.simulator import FaultKind
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

SOURCE = "cascade-rms"
KEY = "keystone-demo-key"
AGENCY = Agency(ori="WA0990100", name="Cascade City Police Department", state="WA")
SYSTEM = SourceSystem(name=SOURCE, vendor="Keystone", kind=SourceKind.RMS)
NS = {
    "nc": "http://release.niem.gov/niem/niem-core/5.0/",
    "j": "http://release.niem.gov/niem/domains/jxdm/7.0/",
    "ks": "http://keystone.example.com/niem/rms/3.0/",
}
KS = "{" + NS["ks"] + "}"
WHEN = datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC)


def prov(record_id: str) -> Provenance:
    return Provenance(
        agency=AGENCY, system=SYSTEM, record_id=record_id, retrieved_at=WHEN, last_updated=WHEN
    )


def hid(kind: EntityKind, record_id: str) -> str:
    return make_id(SOURCE, kind, record_id)


P1, V1, V2, I1 = "KS-P-1", "KS-V-1", "KS-V-2", "KS-I-1"
SUSPECT = InvolvementRef(
    role="SUSPECT",
    person_id=hid(EntityKind.PERSON, P1),
    incident_id=hid(EntityKind.INCIDENT, I1),
    tags=frozenset({"sex-offense-victim"}),
)
WITNESS = InvolvementRef(
    role="BYSTANDER",
    person_id=hid(EntityKind.PERSON, "KS-P-2"),
    incident_id=hid(EntityKind.INCIDENT, I1),
)
REYES = Person(
    id=hid(EntityKind.PERSON, P1),
    provenance=prov(P1),
    tags=frozenset({"juvenile", "sealed"}),
    created=date(2016, 9, 14),
    name=PersonName(given="Jordan", middle="Avery", surname="Reyes", suffix="Jr"),
    aliases=(PersonName(given="Jordy", surname="Reyes"),),
    date_of_birth=date(1988, 4, 12),
    sex="M",
    race="W",
    height=70,
    weight=180,
    ssn="555-12-3456",
    driver_license=DriverLicense(number="REYESJA123KP", state="WA"),
    addresses=(Address(street="1418 Alder Ave", city="Cascade City", state="WA"),),
    phones=("425-555-0147",),
    cautions=("ARMED AND DANGEROUS",),
    vehicle_ids=(hid(EntityKind.VEHICLE, V1),),
    involvements=(SUSPECT,),
)
CAMRY = Vehicle(
    id=hid(EntityKind.VEHICLE, V1),
    provenance=prov(V1),
    vin="4T1BF1FK5GU123456",
    plate=LicensePlate(number="7ABC123", state="CA"),
    make="Toyota",
    model="Camry",
    year=2016,
    color="SILVER",
    registered_owner_id=REYES.id,
)
RIVIAN = Vehicle(
    id=hid(EntityKind.VEHICLE, V2),
    provenance=prov(V2),
    plate=LicensePlate(number="7ABC123", state="WA"),
    make="Rivian",
    color="TEAL",
)
ASSAULT = Incident(
    id=hid(EntityKind.INCIDENT, I1),
    provenance=prov(I1),
    number="CC-2021-004211",
    incident_kind=IncidentKind.REPORT,
    offenses=(Offense(code="13A", description="Aggravated Assault"),),
    occurred_at=datetime(2021, 7, 4, 22, 40, 0, 123456, tzinfo=UTC),
    reported_at=datetime(2021, 7, 4, 23, 2, tzinfo=UTC),
    location=Location(address="400 Pine St", latitude=47.610123, longitude=-122.342101),
    status="CLEARED BY ARREST",
    narrative="Assault outside a bar",
    involvements=(SUSPECT, WITNESS),
    involved_vehicle_ids=(CAMRY.id,),
)
SMITHS = [
    Person(
        id=hid(EntityKind.PERSON, f"KS-P-S{n:03d}"),
        provenance=prov(f"KS-P-S{n:03d}"),
        name=PersonName(given=f"Pat{n}", surname="Smith"),
    )
    for n in range(250)
]
RECORDS: list[Record] = [REYES, CAMRY, RIVIAN, ASSAULT, *SMITHS]


@pytest.fixture
async def simulator() -> AsyncIterator[KeystoneSimulator]:
    sim = KeystoneSimulator(system_name=SOURCE, agency=AGENCY, records=RECORDS, api_key=KEY)
    await sim.start()
    yield sim
    await sim.stop()


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as client:
        yield client


def basic(login: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{login}:{password}".encode()).decode()


def query(entity: str = "Person", **criteria: str | list[str]) -> bytes:
    parts = [f"<ks:EntityType>{entity}</ks:EntityType>"]
    for name, value in criteria.items():
        for one in value if isinstance(value, list) else [value]:
            parts.append(f"<ks:{name}>{one}</ks:{name}>")
    return (
        f'<ks:QueryRequest xmlns:ks="{NS["ks"]}">' + "".join(parts) + "</ks:QueryRequest>"
    ).encode()


async def post(
    sim: KeystoneSimulator,
    session: aiohttp.ClientSession,
    body: bytes,
    authorization: str | None = None,
) -> tuple[int, bytes]:
    headers = {"Content-Type": "application/xml"}
    headers["Authorization"] = basic("hub", KEY) if authorization is None else authorization
    async with session.post(sim.url + "/niem/v3/query", data=body, headers=headers) as resp:
        assert resp.content_type == "application/xml"
        return resp.status, await resp.read()


async def ask(sim: KeystoneSimulator, session: aiohttp.ClientSession, body: bytes) -> Element:
    status, data = await post(sim, session, body)
    assert status == 200, data
    root: Element = SafeET.fromstring(data)
    assert root.tag == KS + "QueryResponse"
    return root


def record_ids(root: Element) -> list[str]:
    return [child.attrib[KS + "recordID"] for child in root if KS + "recordID" in child.attrib]


def texts(element: Element, path: str) -> list[str]:
    return [e.text or "" for e in element.iterfind(path, NS)]


# -- auth and faults -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "authorization",
    ["", basic("hub", "wrong"), f"Bearer {KEY}", "Basic !!!not-base64", basic("", KEY)],
)
async def test_refuses_without_the_basic_password(
    simulator: KeystoneSimulator, session: aiohttp.ClientSession, authorization: str
) -> None:
    status, body = await post(simulator, session, query(SearchText="reyes"), authorization)
    assert status == 401
    fault = SafeET.fromstring(body)
    assert fault.tag == KS + "Fault"
    assert fault.findtext("ks:FaultCode", namespaces=NS) == "AUTHENTICATION_FAILED"


async def test_any_user_name_with_the_password_is_accepted(
    simulator: KeystoneSimulator, session: aiohttp.ClientSession
) -> None:
    status, _ = await post(simulator, session, query(SearchText="reyes"), basic("ops-7", KEY))
    assert status == 200


@pytest.mark.parametrize(
    "body",
    [
        b"not xml at all",
        b'<ks:Other xmlns:ks="http://keystone.example.com/niem/rms/3.0/"/>',
        query("Person"),  # no criterion
        query("PlateRead", SearchText="reyes"),
        query("Person", SearchText="reyes", StartIndex="-1"),
        query("Person", SearchText="reyes", MaxRecords="0"),
        query("Person", SearchText="reyes", MaxRecords="many"),
        query("Person", RecordID=[f"KS-P-{n}" for n in range(201)]),
        b'<!DOCTYPE r [<!ENTITY e "x">]><ks:QueryRequest xmlns:ks="http://keystone.example.com'
        b'/niem/rms/3.0/"><ks:EntityType>Person</ks:EntityType>'
        b"<ks:SearchText>&e;</ks:SearchText></ks:QueryRequest>",
    ],
)
async def test_bad_queries_get_a_400_fault(
    simulator: KeystoneSimulator, session: aiohttp.ClientSession, body: bytes
) -> None:
    status, data = await post(simulator, session, body)
    assert status == 400
    assert SafeET.fromstring(data).findtext("ks:FaultCode", namespaces=NS) == "BAD_REQUEST"


async def test_injected_faults_speak_the_vendor_format(
    simulator: KeystoneSimulator, session: aiohttp.ClientSession
) -> None:
    simulator.add_fault(FaultKind.ERROR_500, times=1)
    simulator.add_fault(FaultKind.MALFORMED, times=1)
    status, body = await post(simulator, session, query(SearchText="reyes"))
    assert status == 500
    assert SafeET.fromstring(body).findtext("ks:FaultCode", namespaces=NS) == "INTERNAL_ERROR"
    status, body = await post(simulator, session, query(SearchText="reyes"))
    assert status == 200
    with pytest.raises(SafeET.ParseError):
        SafeET.fromstring(body)
    assert [e.status for e in simulator.requests] == [500, 200]
    assert "<ks:SearchText>reyes</ks:SearchText>" in simulator.requests[0].body


# -- rendering -------------------------------------------------------------------------------------


async def test_person_in_niem_xml(
    simulator: KeystoneSimulator, session: aiohttp.ClientSession
) -> None:
    root = await ask(simulator, session, query(SearchText="JORDAN reyes"))
    assert root.findtext("ks:TotalCount", namespaces=NS) == "1"
    (person,) = root.findall("nc:Person", NS)
    assert person.attrib[KS + "recordID"] == P1
    expected = {
        "ks:RecordMetadata/ks:RecordCreatedDate/nc:Date": ["2016-09-14"],
        "ks:RecordMetadata/ks:RecordLastUpdatedDateTime/nc:DateTime": ["2024-01-02T03:04:05Z"],
        "ks:RecordMetadata/ks:RecordRestriction": ["SEALED", "JUV"],
        "nc:PersonName/nc:PersonGivenName": ["Jordan"],
        "nc:PersonName/nc:PersonSurName": ["Reyes"],
        "nc:PersonName/nc:PersonNameSuffixText": ["Jr"],
        "nc:PersonAlternateName/nc:PersonGivenName": ["Jordy"],
        "nc:PersonBirthDate/nc:Date": ["1988-04-12"],
        "j:PersonSexCode": ["M"],
        "nc:PersonHeightMeasure/nc:MeasureIntegerValue": ["70"],
        "nc:PersonHeightMeasure/nc:LengthUnitCode": ["INH"],
        "nc:PersonWeightMeasure/nc:WeightUnitCode": ["LBR"],
        "nc:PersonSSNIdentification/nc:IdentificationID": ["555-12-3456"],
        "j:DriverLicense/j:DriverLicenseCardIdentification/"
        "j:IdentificationJurisdictionNCICLISCode": ["WA"],
        "nc:Location/nc:Address/nc:LocationStreet/nc:StreetFullText": ["1418 Alder Ave"],
        "nc:Location/nc:Address/nc:LocationPostalCode": [],
        "nc:TelephoneNumber/nc:FullTelephoneNumber/nc:TelephoneNumberFullID": ["425-555-0147"],
        "ks:CautionText": ["ARMED AND DANGEROUS"],
        "j:ActivityPersonAssociation/ks:InvolvementRoleCode": ["SUS"],
        "j:ActivityPersonAssociation/ks:RecordRestriction": ["SXV"],
    }
    assert {path: texts(person, path) for path in expected} == expected
    # Records reference each other by Keystone's own ids, not the hub's.
    refs = [e.attrib[KS + "recordRef"] for e in person.iter() if KS + "recordRef" in e.attrib]
    assert refs == [V1, I1, P1]


async def test_code_tables_have_free_text_twins(
    simulator: KeystoneSimulator, session: aiohttp.ClientSession
) -> None:
    root = await ask(simulator, session, query("Vehicle", RecordID=[V1, V2]))
    camry, rivian = root.findall("nc:Vehicle", NS)
    assert texts(camry, "j:VehicleMakeCode") == ["TOYT"]
    assert texts(camry, "j:VehicleColorPrimaryCode") == ["SIL"]
    assert texts(camry, "nc:ItemMakeName") == []
    assert texts(camry, "nc:ItemOwner/nc:EntityPerson") == [""]
    assert texts(rivian, "nc:ItemMakeName") == ["Rivian"]
    assert texts(rivian, "nc:ItemColorDescriptionText") == ["TEAL"]
    assert texts(rivian, "j:VehicleMakeCode") == []
    assert texts(rivian, "nc:ItemOwner") == []


async def test_incident_instants_codes_and_coordinates(
    simulator: KeystoneSimulator, session: aiohttp.ClientSession
) -> None:
    root = await ask(simulator, session, query("Incident", SearchText="CC-2021-004211"))
    (incident,) = root.findall("j:Incident", NS)
    expected = {
        "nc:ActivityIdentification/nc:IdentificationID": ["CC-2021-004211"],
        "ks:IncidentCategoryCode": ["RPT"],
        "nc:ActivityDate/nc:DateTime": ["2021-07-04T22:40:00.123456Z"],
        "j:IncidentReportedDate/nc:DateTime": ["2021-07-04T23:02:00Z"],
        "nc:ActivityStatus/ks:StatusCode": ["CBA"],
        "nc:Location/nc:Address/nc:AddressFullText": ["400 Pine St"],
        "nc:Location/nc:Location2DGeospatialCoordinate/nc:GeographicCoordinateLatitude/"
        "nc:LatitudeDegreeValue": ["47.610123"],
        "j:Offense/j:OffenseUCRCode": ["13A"],
        "j:ActivityPersonAssociation/ks:InvolvementRoleCode": ["SUS"],
        "j:ActivityPersonAssociation/ks:InvolvementRoleText": ["BYSTANDER"],
    }
    assert {path: texts(incident, path) for path in expected} == expected


# -- selection and paging --------------------------------------------------------------------------


async def test_pages_with_total_count_and_clamps_max_records(
    simulator: KeystoneSimulator, session: aiohttp.ClientSession
) -> None:
    first = await ask(simulator, session, query(SearchText="smith", MaxRecords="500"))
    assert first.findtext("ks:TotalCount", namespaces=NS) == "250"
    assert first.findtext("ks:ReturnedCount", namespaces=NS) == "200"
    second = await ask(simulator, session, query(SearchText="smith", StartIndex="200"))
    assert second.findtext("ks:StartIndex", namespaces=NS) == "200"
    ids = record_ids(first) + record_ids(second)
    assert ids == [p.provenance.record_id for p in SMITHS]
    past = await ask(simulator, session, query(SearchText="smith", StartIndex="900"))
    assert record_ids(past) == []
    assert past.findtext("ks:TotalCount", namespaces=NS) == "250"


async def test_plates_state_and_text_narrow_each_other(
    simulator: KeystoneSimulator, session: aiohttp.ClientSession
) -> None:
    async def ids(**criteria: str | list[str]) -> list[str]:
        return record_ids(await ask(simulator, session, query("Vehicle", **criteria)))

    assert await ids(Plate=["7abc-123", "7ABC123"]) == [V1, V2]
    assert await ids(Plate="7ABC123", PlateState="WA") == [V2]
    assert await ids(Plate="7ABC123", SearchText="4t1bf1fk5gu123456") == [V1]
    assert await ids(RecordID=[V2, V1], Plate="7ABC123", PlateState="CA") == [V1]
    assert await ids(Plate="NOPE1") == []


async def test_record_ids_known_only_once_each(
    simulator: KeystoneSimulator, session: aiohttp.ClientSession
) -> None:
    root = await ask(simulator, session, query(RecordID=[P1, "KS-P-404", P1, V1]))
    assert record_ids(root) == [P1]  # V1 is a vehicle, not a person
    assert root.findtext("ks:TotalCount", namespaces=NS) == "1"


async def test_answers_are_deterministic(
    simulator: KeystoneSimulator, session: aiohttp.ClientSession
) -> None:
    body = query(SearchText="reyes")
    _, once = await post(simulator, session, body)
    _, again = await post(simulator, session, body)
    assert once == again
