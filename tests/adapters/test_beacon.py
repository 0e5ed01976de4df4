"""Beacon CAD adapter: the conformance suite, and the mapping of hand-written vendor payloads."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web
from hypothesis import given
from hypothesis import strategies as st

from hub.adapters import beacon as adapter_module
from hub.adapters.base import SearchRequest, SourceConfig
from hub.adapters.beacon import BeaconAdapter, parse_name
from hub.demo import beacon as simulator_module
from hub.demo.beacon import BeaconSimulator, format_name
from hub.demo.world import generate_world
from hub.errors import ConfigError, SourceAuthError, SourceProtocolError
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
    SourceKind,
    kind_of,
    make_id,
)
from hub.secret import Secret
from tests.adapters.conformance import AdapterConformance, comparable

FIXTURES = Path(__file__).parent / "fixtures" / "beacon"
AGENCY = Agency(ori="WA0990100", name="Cascade City Police Department", state="WA")
SOURCE = "cascade-cad"
KEY = "beacon-test-key"


class TestBeaconConformance(AdapterConformance):
    adapter_cls = BeaconAdapter
    simulator_cls = BeaconSimulator


async def test_every_record_of_a_world_round_trips(session: aiohttp.ClientSession) -> None:
    # The conformance suite samples a few records; here every Beacon record of a world goes
    # through the wire and back, so each variation the world makes is covered.
    world = generate_world(size=4000, seed=3)
    systems = [s for s in world.systems if s.kind == BeaconAdapter.kind]
    assert len(systems) >= 2
    for system in systems:
        records = world.records[system.name]
        sim = BeaconSimulator(
            system_name=system.name,
            agency=world.agency(system.agency),
            records=records,
            api_key=system.api_key,
        )
        await sim.start()
        try:
            config = SourceConfig(
                name=system.name,
                kind=system.kind,
                agency=world.agency(system.agency),
                url=sim.url,
                api_key=Secret(system.api_key),
            )
            adapter = BeaconAdapter(config, session)
            for kind in (EntityKind.PERSON, EntityKind.INCIDENT):
                want = [r for r in records if kind_of(r) is kind]
                got = await adapter.get_many(kind, [r.provenance.record_id for r in want])
                assert len(got) == len(want) > 0
                by_id = {r.provenance.record_id: r for r in got}
                for record in want:
                    back = by_id[record.provenance.record_id]
                    assert comparable(back, frozenset()) == comparable(record, frozenset())
        finally:
            await sim.stop()


# -- a vendor endpoint that answers with hand-written payloads ------------------------------------


@dataclass
class Seen:
    path: str
    query: dict[str, str]
    authorization: str | None


# (path, query) -> (HTTP status, fixture file name)
Script = Callable[[str, dict[str, str]], tuple[int, str]]


@dataclass
class FixtureVendor:
    script: Script
    seen: list[Seen] = field(default_factory=list)

    async def handle(self, request: web.Request) -> web.Response:
        query = dict(request.query)
        self.seen.append(Seen(request.path, query, request.headers.get("Authorization")))
        status, name = self.script(request.path, query)
        return web.Response(
            status=status, body=(FIXTURES / name).read_bytes(), content_type="application/json"
        )


Serve = Callable[[Script], Awaitable[tuple[FixtureVendor, str]]]


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


@pytest.fixture
async def serve() -> AsyncIterator[Serve]:
    runners: list[web.AppRunner] = []

    async def start(script: Script) -> tuple[FixtureVendor, str]:
        vendor = FixtureVendor(script)
        app = web.Application()
        app.router.add_get("/{tail:.*}", vendor.handle)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        runners.append(runner)
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = runner.addresses[0][1]
        return vendor, f"http://127.0.0.1:{port}/"

    yield start
    for runner in runners:
        await runner.cleanup()


def make_adapter(
    url: str, session: aiohttp.ClientSession, options: dict[str, str] | None = None
) -> BeaconAdapter:
    config = SourceConfig(
        name=SOURCE,
        kind="beacon-cad",
        agency=AGENCY,
        url=url,
        api_key=Secret(KEY),
        options=options or {},
    )
    return BeaconAdapter(config, session)


async def vendor_answering(
    serve: Serve, session: aiohttp.ClientSession, script: Script, **options: str
) -> tuple[FixtureVendor, BeaconAdapter]:
    vendor, url = await serve(script)
    return vendor, make_adapter(url, session, options)


def pid(record_id: str) -> str:
    return make_id(SOURCE, EntityKind.PERSON, record_id)


def cid(record_id: str) -> str:
    return make_id(SOURCE, EntityKind.INCIDENT, record_id)


def ts(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


# -- mapping --------------------------------------------------------------------------------------


async def test_call_maps_every_field(serve: Serve, session: aiohttp.ClientSession) -> None:
    vendor, adapter = await vendor_answering(
        serve, session, lambda p, q: (200, "calls_search.json")
    )
    found = await adapter.search(SearchRequest(kinds=frozenset({EntityKind.INCIDENT}), text="415"))
    assert [r.provenance.record_id for r in found] == ["CFS-000123", "CFS-000124"]
    call = found[0]
    assert isinstance(call, Incident)
    assert call.id == cid("CFS-000123")
    assert call.number == "24-004512"
    assert call.incident_kind is IncidentKind.CALL
    assert call.offenses == (
        Offense(code="415", description="Disturbance"),
        Offense(code="242", description="Battery"),
    )
    assert call.status == "CLOSED"
    # 1713006120 s after the epoch is 2024-04-13 11:02:00 UTC.
    assert call.reported_at == ts("2024-04-13T11:02:00")
    assert call.occurred_at == ts("2024-04-13T10:55:00")
    assert call.location == Location(
        address="1200 Pacific Ave, Cascade City, WA", latitude=47.2529, longitude=-122.4443
    )
    assert call.narrative == "RP reports two males arguing in the lot, one with a bat."
    assert call.involvements == (
        InvolvementRef(role="REPORTING_PARTY", person_id=pid("NM-000045"), incident_id=call.id),
        InvolvementRef(
            role="SUSPECT",
            person_id=pid("NM-000046"),
            incident_id=call.id,
            tags=frozenset({"juvenile"}),
        ),
        InvolvementRef(
            role="VICTIM",
            person_id=pid("NM-000047"),
            incident_id=call.id,
            tags=frozenset({"sex-offense-victim", "sealed"}),
        ),
    )
    assert call.tags == frozenset({"sealed"})
    assert call.created == date(2024, 4, 13)
    assert call.involved_vehicle_ids == ()
    prov = call.provenance
    assert prov.agency == AGENCY
    assert (prov.system.name, prov.system.vendor, prov.system.kind) == (
        SOURCE,
        "Beacon",
        SourceKind.CAD,
    )
    assert prov.last_updated == ts("2024-04-13T12:40:00")
    assert prov.retrieved_at.tzinfo is not None
    assert abs((datetime.now(UTC) - prov.retrieved_at).total_seconds()) < 60
    # The vendor's own words reach the hub as the vendor wrote them.
    assert vendor.seen[0].authorization == f"Bearer {KEY}"


async def test_sparse_call_and_unknown_codes(serve: Serve, session: aiohttp.ClientSession) -> None:
    _, adapter = await vendor_answering(serve, session, lambda p, q: (200, "calls_search.json"))
    found = await adapter.search(SearchRequest(kinds=frozenset({EntityKind.INCIDENT}), text="x"))
    call = found[1]
    assert isinstance(call, Incident)
    assert call.offenses == ()
    assert call.status == "HLD"  # not in the table: kept as the vendor wrote it
    assert call.occurred_at is None
    assert call.location == Location(address="Alder St / 9th Ave")
    assert call.narrative is None
    assert call.created is None
    assert call.provenance.last_updated is None
    (inv,) = call.involvements
    assert (inv.role, inv.tags) == ("TOW", frozenset({"beacon:HAZMAT"}))


async def test_party_maps_every_field(serve: Serve, session: aiohttp.ClientSession) -> None:
    vendor, adapter = await vendor_answering(
        serve, session, lambda p, q: (200, "parties_search.json")
    )
    found = await adapter.search(
        SearchRequest(kinds=frozenset({EntityKind.PERSON}), text="Jordan Reyes")
    )
    assert vendor.seen[0].path == "/cad/v1/parties"
    assert vendor.seen[0].query["search"] == "Jordan Reyes"
    reyes, cruz = found
    assert isinstance(reyes, Person)
    assert isinstance(cruz, Person)
    assert reyes.id == pid("NM-000045")
    assert reyes.name == PersonName(given="Jordan", middle="Avery", surname="Reyes")
    assert reyes.date_of_birth == date(1988, 4, 12)
    assert (reyes.sex, reyes.race) == ("M", "W")
    assert reyes.phones == ("(360) 555-0142", "360-555-0199")
    assert reyes.addresses == (
        Address(street="88 Alder St", city="Cascade City", state="WA", postal_code="98402"),
        Address(city="Tacoma", state="WA"),
    )
    assert reyes.cautions == ("KNOWN TO CARRY KNIFE",)
    assert reyes.involvements == (
        InvolvementRef(role="REPORTING_PARTY", person_id=reyes.id, incident_id=cid("CFS-000123")),
        InvolvementRef(role="WITNESS", person_id=reyes.id, incident_id=cid("CFS-000098")),
    )
    assert reyes.tags == frozenset()
    assert reyes.created == date(2024, 4, 13)
    assert reyes.provenance.last_updated == ts("2024-04-13T12:40:00")
    # What Beacon does not hold stays empty.
    assert (reyes.aliases, reyes.height, reyes.ssn, reyes.driver_license, reyes.vehicle_ids) == (
        (),
        None,
        None,
        None,
        (),
    )

    assert cruz.name == PersonName(middle="Lee", surname="De La Cruz", suffix="III")
    assert cruz.date_of_birth is None
    assert cruz.tags == frozenset({"sex-offense-victim", "juvenile"})
    assert cruz.involvements[0].tags == frozenset({"sex-offense-victim", "sealed"})


async def test_pages_with_the_cursor_until_the_limit(
    serve: Serve, session: aiohttp.ClientSession
) -> None:
    def script(path: str, query: dict[str, str]) -> tuple[int, str]:
        return (200, "calls_page2.json" if "cursor" in query else "calls_page1.json")

    vendor, adapter = await vendor_answering(serve, session, script, page_size="2")
    found = await adapter.search(
        SearchRequest(kinds=frozenset({EntityKind.INCIDENT}), text="10851", limit=3)
    )
    assert [r.provenance.record_id for r in found] == ["CFS-000200", "CFS-000201", "CFS-000202"]
    assert [s.query for s in vendor.seen] == [
        {"search": "10851", "limit": "2"},
        # Only what is still missing is asked for, with the cursor passed back unchanged.
        {"search": "10851", "limit": "1", "cursor": "b2Zmc2V0OjJ8MTIzNDU="},
    ]
    statuses = [r.status for r in found if isinstance(r, Incident)]
    assert statuses == ["OPEN", "DISPATCHED", "EN ROUTE"]


async def test_stops_when_the_vendor_has_no_more(
    serve: Serve, session: aiohttp.ClientSession
) -> None:
    def script(path: str, query: dict[str, str]) -> tuple[int, str]:
        return (200, "calls_page2.json" if "cursor" in query else "calls_page1.json")

    vendor, adapter = await vendor_answering(serve, session, script)
    found = await adapter.search(
        SearchRequest(kinds=frozenset({EntityKind.INCIDENT}), text="10851", limit=50)
    )
    assert len(found) == 4
    assert len(vendor.seen) == 2


async def test_search_asks_each_kind_at_its_endpoint(
    serve: Serve, session: aiohttp.ClientSession
) -> None:
    def script(path: str, query: dict[str, str]) -> tuple[int, str]:
        return (200, "parties_search.json" if path.endswith("parties") else "calls_search.json")

    vendor, adapter = await vendor_answering(serve, session, script)
    found = await adapter.search(
        SearchRequest(kinds=frozenset(EntityKind), text="Reyes", plates=("7ABC123",))
    )
    assert sorted(s.path for s in vendor.seen) == ["/cad/v1/calls", "/cad/v1/parties"]
    assert sum(isinstance(r, Person) for r in found) == 2
    assert sum(isinstance(r, Incident) for r in found) == 2


async def test_blank_text_asks_nothing(serve: Serve, session: aiohttp.ClientSession) -> None:
    vendor, adapter = await vendor_answering(
        serve, session, lambda p, q: (200, "calls_search.json")
    )
    assert await adapter.search(SearchRequest(kinds=adapter.entity_kinds, text="  ")) == []
    assert (
        await adapter.search(SearchRequest(kinds=adapter.entity_kinds, plates=("7ABC123",))) == []
    )
    assert vendor.seen == []


async def test_get_many_batches_ids_in_chunks(serve: Serve, session: aiohttp.ClientSession) -> None:
    vendor, adapter = await vendor_answering(
        serve, session, lambda p, q: (200, "parties_search.json")
    )
    ids = [f"NM-{n:06d}" for n in range(150)]
    found = await adapter.get_many(EntityKind.PERSON, [*ids, ids[0], "has,comma"])
    assert {s.path for s in vendor.seen} == {"/cad/v1/parties"}
    asked = sorted((s.query["ids"].split(",") for s in vendor.seen), key=len, reverse=True)
    assert [len(a) for a in asked] == [100, 50]
    assert sorted(asked[0] + asked[1]) == ids
    assert all("search" not in s.query for s in vendor.seen)
    assert len(found) == 4  # each chunk answered with the two fixture parties


async def test_get_many_of_a_kind_it_does_not_hold(
    serve: Serve, session: aiohttp.ClientSession
) -> None:
    vendor, adapter = await vendor_answering(
        serve, session, lambda p, q: (200, "calls_search.json")
    )
    assert await adapter.get_many(EntityKind.VEHICLE, ["V-1"]) == []
    assert vendor.seen == []


# -- failures -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "fixture",
    ["calls_wrong_shape.json", "calls_string_timestamp.json", "error_bad_cursor.json"],
)
async def test_wrong_shape_is_protocol_error(
    serve: Serve, session: aiohttp.ClientSession, fixture: str
) -> None:
    _, adapter = await vendor_answering(serve, session, lambda p, q: (200, fixture))
    with pytest.raises(SourceProtocolError) as info:
        await adapter.search(SearchRequest(kinds=frozenset({EntityKind.INCIDENT}), text="415"))
    assert info.value.source == SOURCE


async def test_bad_date_is_protocol_error_without_the_value(
    serve: Serve, session: aiohttp.ClientSession
) -> None:
    _, adapter = await vendor_answering(serve, session, lambda p, q: (200, "parties_bad_dob.json"))
    with pytest.raises(SourceProtocolError) as info:
        await adapter.search(SearchRequest(kinds=frozenset({EntityKind.PERSON}), text="Reyes"))
    assert "1988" not in str(info.value)


async def test_vendor_400_is_protocol_error(serve: Serve, session: aiohttp.ClientSession) -> None:
    _, adapter = await vendor_answering(serve, session, lambda p, q: (400, "error_bad_cursor.json"))
    with pytest.raises(SourceProtocolError):
        await adapter.get_many(EntityKind.INCIDENT, ["CFS-000123"])


async def test_vendor_401_is_auth_error(serve: Serve, session: aiohttp.ClientSession) -> None:
    _, adapter = await vendor_answering(
        serve, session, lambda p, q: (401, "error_unauthorized.json")
    )
    with pytest.raises(SourceAuthError):
        await adapter.search(SearchRequest(kinds=adapter.entity_kinds, text="Reyes"))


@pytest.mark.parametrize("page_size", ["0", "201", "ten"])
def test_bad_page_size_is_config_error(page_size: str) -> None:
    with pytest.raises(ConfigError):
        make_adapter("http://127.0.0.1:9", None, {"page_size": page_size})  # type: ignore[arg-type]


# -- the two sides agree --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("vendor_table", "hub_table"),
    [
        (simulator_module.STATUS_CODES, adapter_module.STATUSES),
        (simulator_module.ROLE_CODES, adapter_module.ROLES),
        (simulator_module.FLAG_CODES, adapter_module.FLAGS),
    ],
)
def test_code_tables_are_inverse(vendor_table: dict[str, str], hub_table: dict[str, str]) -> None:
    assert {code: word for word, code in vendor_table.items()} == hub_table


@pytest.mark.parametrize(
    ("wire", "suffix", "name"),
    [
        ("Reyes, Jordan Avery", None, PersonName(given="Jordan", middle="Avery", surname="Reyes")),
        ("Reyes, Jordan", "JR", PersonName(given="Jordan", surname="Reyes", suffix="JR")),
        (
            "O'Neil-Smith, Ann Marie Lou",
            None,
            PersonName(given="Ann", middle="Marie Lou", surname="O'Neil-Smith"),
        ),
        ("Doe, - Lee", None, PersonName(middle="Lee", surname="Doe")),
        ("Doe,", None, PersonName(surname="Doe")),
        (", Jordan", None, PersonName(given="Jordan")),
        ("Cher", None, PersonName(surname="Cher")),
    ],
)
def test_parse_name(wire: str, suffix: str | None, name: PersonName) -> None:
    assert parse_name(wire, suffix) == name


_part = st.text(
    alphabet=st.characters(categories=["L"], include_characters="'-."), min_size=1
).filter(lambda s: s != "-")
_words = st.lists(_part, min_size=1, max_size=3).map(" ".join)


@given(
    given_=st.none() | _part,
    middle=st.none() | _words,
    surname=st.none() | _words,
    suffix=st.none() | st.sampled_from(["JR", "SR", "III"]),
)
def test_names_round_trip(
    given_: str | None, middle: str | None, surname: str | None, suffix: str | None
) -> None:
    name = PersonName(given=given_, middle=middle, surname=surname, suffix=suffix)
    assert parse_name(format_name(name), name.suffix) == name
