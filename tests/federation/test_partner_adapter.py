"""The ``hub`` adapter against a real partner hub (the east hub, served over HTTP in-process),
and the partner hub's edge: who may call it, for whom, and what its audit trail keeps."""

from __future__ import annotations

import dataclasses
import json
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import jwt
import msgspec
import pytest
import pytest_asyncio
from opentelemetry.sdk.trace import TracerProvider

from hub.adapters.base import SearchRequest
from hub.adapters.partner import PartnerHubAdapter
from hub.adapters.registry import AdapterRegistry
from hub.context import RequestContext, Subject
from hub.demo.world import REYES_PLATE, generate_world, today
from hub.errors import SourceAuthError, SourceError, SourceProtocolError
from hub.model import (
    EntityKind,
    Incident,
    Person,
    PlateRead,
    Record,
    SourceKind,
    Vehicle,
    parse_id,
)
from hub.settings import SourceConfig
from hub.trust.federation import ASSERTION_HEADER, AssertionSigner, current_request
from hub.trust.identity import load_or_create_demo_key
from tests.conftest import HubServer, serve_hub
from tests.federation.hubs import HubFiles, write_pair

pytestmark = pytest.mark.asyncio(loop_scope="module")

EAST_WORLD = generate_world(size=500, seed=3, region="east", as_of=today())


@pytest.fixture(scope="module")
def pair(tmp_path_factory: pytest.TempPathFactory) -> tuple[HubFiles, HubFiles]:
    return write_pair(tmp_path_factory.mktemp("partner"))


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def east(pair: tuple[HubFiles, HubFiles]) -> AsyncIterator[HubServer]:
    async for server in serve_hub(pair[1].settings(), world=EAST_WORLD):
        yield server


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as s:
        yield s


def _source(pair: tuple[HubFiles, HubFiles], east: HubServer) -> SourceConfig:
    (source,) = [s for s in pair[0].settings().sources if s.kind == "hub"]
    # serve_hub listens on a port of its own choosing, not the configured one.
    return dataclasses.replace(source, url=east.url)


@pytest.fixture
def adapter(
    pair: tuple[HubFiles, HubFiles], east: HubServer, session: aiohttp.ClientSession
) -> PartnerHubAdapter:
    west = pair[0].settings()
    return PartnerHubAdapter(_source(pair, east), session, AssertionSigner.from_settings(west))


def _ctx(
    roles: tuple[str, ...] = ("analyst",),
    ori: str = "CA0990000",
    purpose: str | None = "C",
    chain: tuple[str, ...] = (),
) -> RequestContext:
    subject = Subject(
        user_id="analyst1", name="Ana Lyst", ori=ori, state=ori[:2], roles=frozenset(roles)
    )
    return RequestContext(
        subject=subject, purpose=purpose, case_number="26-001234", hub_chain=chain
    )


def _audit(east: HubServer) -> list[dict[str, Any]]:
    path = Path(east.settings.audit_location) / "audit.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()]


def _unretrieved(record: Record) -> Any:
    data = msgspec.to_builtins(record)
    data["provenance"].pop("retrieved_at")
    return data


def _search(text: str, ctx: RequestContext, *kinds: EntityKind) -> SearchRequest:
    return SearchRequest(kinds=frozenset(kinds or EntityKind), text=text, context=ctx)


async def test_the_adapter_is_registered_as_hub() -> None:
    cls = AdapterRegistry.from_entry_points().get("hub")
    assert cls is PartnerHubAdapter
    assert cls.source_kind is SourceKind.HUB
    assert cls.entity_kinds == frozenset(EntityKind)


async def test_partner_records_keep_the_partner_provenance(
    adapter: PartnerHubAdapter, east: HubServer
) -> None:
    records = await adapter.search(_search("Jordan Reyes", _ctx(), EntityKind.PERSON))
    reyes = [r for r in records if isinstance(r, Person) and r.name.surname == "Reyes"]
    assert reyes, records
    person = reyes[0]
    # Owner, system and vendor id are the partner's...
    assert person.provenance.agency.ori == "NY0990000"
    assert person.provenance.system.name == "hudson-rms"
    assert person.provenance.system.vendor == "Northwind"
    assert person.provenance.system.kind is SourceKind.RMS
    assert person.provenance.record_id.startswith("NW-P-")
    # ...the id is ours, and wraps the partner's hub id (which wraps its vendor's id).
    ours = parse_id(person.id)
    assert (ours.source, ours.kind) == ("east-hub", EntityKind.PERSON)
    theirs = parse_id(ours.record_id)
    assert (theirs.source, theirs.record_id) == ("hudson-rms", person.provenance.record_id)
    # The east hub applied its policy to the Marin analyst: identification, no SSN or addresses.
    assert person.date_of_birth is not None
    assert person.date_of_birth.isoformat() == "1988-04-12"
    assert person.ssn is None
    assert person.addresses == ()


async def test_the_partner_audits_the_original_requester_via_our_account(
    adapter: PartnerHubAdapter, east: HubServer
) -> None:
    provider = TracerProvider()
    with provider.get_tracer("test").start_as_current_span("west operation") as span:
        trace_id = format(span.get_span_context().trace_id, "032x")
        await adapter.search(_search("Reyes", _ctx(), EntityKind.PERSON))
    provider.shutdown()
    (entry,) = [e for e in _audit(east) if e["trace_id"] == trace_id]
    assert (entry["user"], entry["agency"], entry["roles"]) == (
        "analyst1",
        "CA0990000",
        ["analyst"],
    )
    assert (entry["via_user"], entry["via_agency"]) == ("svc-west-hub", "WA0990100")
    assert entry["hub_chain"] == ["west-hub"]
    assert (entry["purpose"], entry["case_number"]) == ("C", "26-001234")
    assert entry["records"]
    assert {r["owner"] for r in entry["records"]} <= {"NY0990000", "PA0990100", "NJ0990200"}
    assert {w["field"] for w in entry["withheld"]} >= {"Person.ssn"}


async def test_policy_is_the_original_requesters_not_the_service_accounts(
    adapter: PartnerHubAdapter,
) -> None:
    # The agreement lets Marin analysts read Hudson Ridge persons, not Marin patrol officers:
    # the east hub answers the patrol officer with pointers, which do not cross.
    analyst = await adapter.search(_search("Reyes", _ctx(), EntityKind.PERSON))
    patrol = await adapter.search(_search("Reyes", _ctx(("patrol",)), EntityKind.PERSON))
    assert any(r.provenance.agency.ori == "NY0990000" for r in analyst)
    assert patrol == []


async def test_lookup_by_id_goes_to_the_partners_entities(adapter: PartnerHubAdapter) -> None:
    planted = next(
        r
        for r in EAST_WORLD.records["hudson-rms"]
        if isinstance(r, Incident) and "visiting from California" in (r.narrative or "")
    )
    found = await adapter.search(_search("Reyes", _ctx(), EntityKind.PERSON))
    found += await adapter.search(_search(planted.number, _ctx(), EntityKind.INCIDENT))
    person = next(r for r in found if isinstance(r, Person))
    incident = next(r for r in found if isinstance(r, Incident) and r.number == planted.number)
    token = current_request.set(_ctx())
    try:
        people = await adapter.get_many(
            EntityKind.PERSON, [parse_id(person.id).record_id, "bm90LWFuLWlk"]
        )
        incidents = await adapter.get_many(EntityKind.INCIDENT, [parse_id(incident.id).record_id])
    finally:
        current_request.reset(token)
    # The same records (retrieved again, so only their retrieval time differs); the unknown id
    # is absent, not an error.
    assert [_unretrieved(r) for r in people] == [_unretrieved(person)]
    assert [_unretrieved(r) for r in incidents] == [_unretrieved(incident)]
    assert incident.narrative is None  # withheld by the east hub's policy
    assert incident.number


async def test_plates_reach_the_partners_plate_reads_and_vehicles(
    adapter: PartnerHubAdapter,
) -> None:
    detective = _ctx(("detective",), ori="WA0990100")
    reads = await adapter.search(
        SearchRequest(
            kinds=frozenset({EntityKind.PLATE_READ}),
            plates=(REYES_PLATE.number,),
            context=detective,
        )
    )
    assert len(reads) == 6  # Reyes drove east: six Hudson Ridge reads of his plate
    assert all(isinstance(r, PlateRead) and r.plate == REYES_PLATE for r in reads)
    assert {r.provenance.system.name for r in reads} == {"hudson-alpr"}
    vehicle = next(
        r
        for r in EAST_WORLD.records["hudson-rms"]
        if isinstance(r, Vehicle) and r.plate is not None
    )
    assert vehicle.plate is not None
    found = await adapter.search(
        SearchRequest(
            kinds=frozenset({EntityKind.VEHICLE}),
            plates=(vehicle.plate.number, "ZZZ0000"),
            context=detective,
        )
    )
    assert [(v.provenance.record_id, v.plate) for v in found] == [
        (vehicle.provenance.record_id, vehicle.plate)
    ]


async def test_a_partner_already_in_the_chain_is_not_asked(adapter: PartnerHubAdapter) -> None:
    looped = _ctx(chain=("east-hub", "north-hub"))
    assert not adapter.answers(_search("Reyes", looped))
    assert adapter.answers(_search("Reyes", _ctx(chain=("north-hub",))))
    with pytest.raises(SourceError, match="already in this request's chain"):
        await adapter.search(_search("Reyes", looped))


async def test_no_purpose_is_the_partners_refusal(adapter: PartnerHubAdapter) -> None:
    with pytest.raises(SourceProtocolError, match="PURPOSE_REQUIRED"):
        await adapter.search(_search("Reyes", _ctx(purpose=None)))


async def test_a_partner_is_only_asked_on_someones_behalf(adapter: PartnerHubAdapter) -> None:
    with pytest.raises(SourceError, match="no requester"):
        await adapter.get_many(EntityKind.PERSON, ["x"])


async def test_an_untrusted_signer_is_refused(
    pair: tuple[HubFiles, HubFiles], east: HubServer, session: aiohttp.ClientSession
) -> None:
    stranger = AssertionSigner("west-hub", load_or_create_demo_key(pair[0].var_dir / "other.pem"))
    adapter = PartnerHubAdapter(_source(pair, east), session, stranger)
    with pytest.raises(SourceAuthError):
        await adapter.search(_search("Reyes", _ctx()))


# -- the partner's edge, over raw HTTP --------------------------------------------------------

QUERY = '{ search(text: "Reyes", kinds: [PERSON]) { hits { __typename } } }'


async def _post(east: HubServer, token: str, **headers: str) -> tuple[int, dict[str, Any]]:
    return await east.post(QUERY, token=token, headers=headers)


async def test_the_edge_refuses_what_is_not_a_proper_partner_call(
    pair: tuple[HubFiles, HubFiles], east: HubServer
) -> None:
    west_files, east_files = pair
    service = west_files.env["EAST_HUB_TOKEN"]
    signer = AssertionSigner.from_settings(west_files.settings())
    assertion = signer.sign(_ctx(), "east-hub")
    # A partner account must say for whom it asks.
    status, body = await _post(east, service)
    assert (status, body["errors"][0]["extensions"]["code"]) == (403, "FORBIDDEN")
    # An ordinary user may not present an assertion (it would become someone else).
    user = east_files.token("analyst9", "NY0990000", ("analyst",))
    status, body = await _post(east, user, **{ASSERTION_HEADER: assertion})
    assert (status, body["errors"][0]["extensions"]["code"]) == (403, "FORBIDDEN")
    # The east hub finds itself in the chain: a loop, refused with its own code.
    now = int(time.time())
    key = load_or_create_demo_key(west_files.var_dir / "hub-signing-key.pem")
    looped = jwt.encode(
        {
            "iss": "west-hub",
            "aud": "east-hub",
            "iat": now,
            "exp": now + 60,
            "jti": "looped-1",
            "sub": "analyst1",
            "ori": "CA0990000",
            "state": "CA",
            "roles": ["analyst"],
            "purpose": "C",
            "chain": ["east-hub", "west-hub"],
        },
        key,
        algorithm="ES256",
    )
    status, body = await _post(east, service, **{ASSERTION_HEADER: looped})
    assert (status, body["errors"][0]["extensions"]["code"]) == (409, "HUB_LOOP")
    # A header that contradicts the signed purpose is not taken.
    status, body = await _post(east, service, **{ASSERTION_HEADER: assertion, "X-Purpose": "J"})
    assert (status, body["errors"][0]["extensions"]["code"]) == (401, "UNAUTHENTICATED")
    # And a proper call works.
    status, body = await _post(east, service, **{ASSERTION_HEADER: assertion})
    assert status == 200, body
    assert body["data"]["search"]["hits"]
    # Once: a replayed assertion is refused.
    status, body = await _post(east, service, **{ASSERTION_HEADER: assertion})
    assert (status, body["errors"][0]["extensions"]["code"]) == (401, "UNAUTHENTICATED")


async def test_the_hub_publishes_its_assertion_key(
    pair: tuple[HubFiles, HubFiles], east: HubServer, session: aiohttp.ClientSession
) -> None:
    async with session.get(f"{east.url}/.well-known/hub-jwks.json") as resp:
        assert resp.status == 200
        jwks = await resp.json()
    signer = AssertionSigner.from_settings(pair[1].settings())
    assert jwks == signer.jwks()
