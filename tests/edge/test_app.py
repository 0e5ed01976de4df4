"""The foundation end to end: real HTTP to the hub, real HTTP from the hub to the simulators."""

from __future__ import annotations

import base64
import dataclasses
import json
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from hub.demo.runner import start_world
from hub.demo.simulator import FaultKind
from hub.settings import DemoSettings
from hub.trust.identity import mint_token
from tests.adapters.conformance import small_world
from tests.conftest import HubServer, demo_settings, running_hub, serve_hub

SEARCH = """
query Search($text: String!, $kinds: [EntityKind!], $limit: Int) {
  search(text: $text, kinds: $kinds, limit: $limit) {
    hits {
      __typename
      ... on Person {
        id name { given middle surname } dateOfBirth
        provenance {
          agency { ori name state } system { name vendor kind } recordId retrievedAt
        }
      }
      ... on Vehicle { id plate { number state } provenance { agency { ori } } }
      ... on Incident { id number provenance { agency { ori } } }
      ... on PlateRead { id plate { number } provenance { agency { ori } } }
      ... on RecordPointer { kind owner { ori } contact }
    }
    sources { source agency status count latencyMs message }
  }
}
"""
RMS = ("marin-rms", "cascade-rms", "harbor-rms")


def all_requests(hub: HubServer) -> int:
    assert hub.runtime.world is not None
    return sum(len(s.requests) for s in hub.runtime.world.simulators.values())


async def test_healthz(hub: HubServer) -> None:
    async with hub.session.get(f"{hub.url}/healthz") as resp:
        assert resp.status == 200
        body = await resp.json()
    assert body["status"] == "ok"
    assert body["sources"] == len(small_world().systems)


async def test_worked_example_reyes_across_agencies(hub: HubServer) -> None:
    body = await hub.query(SEARCH, {"text": "Reyes"})
    result = body["data"]["search"]
    people = [h for h in result["hits"] if h["__typename"] == "Person"]
    agencies = {p["provenance"]["agency"]["ori"] for p in people}
    assert len(agencies) >= 3, agencies
    assert all(p["name"]["surname"].lower().startswith("reyes") for p in people if p["name"])
    jordan = [p for p in people if p["dateOfBirth"] == "1988-04-12"]
    assert {p["provenance"]["agency"]["ori"] for p in jordan} >= {"CA0990000"}
    # every configured source is listed, with what it answered
    statuses = {s["source"]: s for s in result["sources"]}
    assert set(statuses) == {s.name for s in small_world().systems}
    for name in RMS:
        assert statuses[name]["status"] == "OK"
        assert statuses[name]["count"] >= 1
    # ALPR holds no names: reported as skipped, never silently missing
    assert statuses["marin-alpr"]["status"] in ("SKIPPED", "NO_HIT")
    # and extensions.sources rides on the response as well
    ext = {s["source"]: s for s in body["extensions"]["sources"]}
    assert set(ext) >= set(RMS)
    assert body["extensions"]["purpose"] == "C"


async def test_counts_match_hits(hub: HubServer) -> None:
    body = await hub.query(SEARCH, {"text": "Reyes"})
    result = body["data"]["search"]
    counted = sum(s["count"] for s in result["sources"])
    assert counted == len(result["hits"])


async def test_limit_caps_hits(hub: HubServer) -> None:
    body = await hub.query(SEARCH, {"text": "Reyes", "limit": 2})
    assert len(body["data"]["search"]["hits"]) == 2


@pytest.fixture
async def slow_hub(tmp_path: Path) -> AsyncIterator[HubServer]:
    settings = demo_settings(tmp_path)
    settings = dataclasses.replace(settings, demo=DemoSettings(latency_ms=150))
    async for server in serve_hub(settings, world=small_world()):
        yield server


async def test_sources_are_asked_in_parallel(slow_hub: HubServer) -> None:
    body = await slow_hub.query(SEARCH, {"text": "Reyes", "kinds": ["PERSON"]})
    asked = [s["source"] for s in body["data"]["search"]["sources"] if s["status"] == "OK"]
    assert len(asked) >= 3
    logs = [slow_hub.simulator_requests(name) for name in asked]
    # Structural: every source had its request before any source answered.
    assert max(log[0].started_ns for log in logs) < min(log[0].finished_ns for log in logs)


@pytest.mark.parametrize(
    ("fault", "status"),
    [
        (FaultKind.TIMEOUT, "TIMEOUT"),
        (FaultKind.ERROR_500, "ERROR"),
        (FaultKind.MALFORMED, "ERROR"),
        (FaultKind.TRUNCATED, "ERROR"),
        (FaultKind.DRIP, "TIMEOUT"),
    ],
)
async def test_one_failing_source_is_reported_and_the_rest_answer(
    hub: HubServer, fault: FaultKind, status: str
) -> None:
    assert hub.runtime.world is not None
    hub.runtime.world.simulators["cascade-rms"].add_fault(fault, delay_ms=5000)
    body = await hub.query(SEARCH, {"text": "Reyes", "kinds": ["PERSON"]})
    statuses = {s["source"]: s for s in body["data"]["search"]["sources"]}
    assert statuses["cascade-rms"]["status"] == status
    assert statuses["cascade-rms"]["count"] == 0
    assert statuses["cascade-rms"]["message"]
    assert statuses["marin-rms"]["status"] == "OK"
    assert statuses["harbor-rms"]["status"] == "OK"
    hits = body["data"]["search"]["hits"]
    systems = {h["provenance"]["system"]["name"] for h in hits if h["__typename"] == "Person"}
    assert systems
    assert "cascade-rms" not in systems


async def test_a_vendor_cookie_never_rides_on_a_later_call(tmp_path: Path) -> None:
    """One vendor session serves every user: a cookie a vendor sets while answering one
    user's question must not be sent back with anyone's next question. The vendors are
    reached by host name (aiohttp's jar would ignore a cookie from a bare IP address)."""
    running = await start_world(small_world())
    try:
        by_name = tuple(
            dataclasses.replace(s, url=s.url.replace("127.0.0.1", "localhost"))
            for s in running.sources
        )
        settings = demo_settings(tmp_path).with_sources(by_name, running.agencies)
        simulator = running.simulators["cascade-rms"]
        simulator.add_fault(FaultKind.SET_COOKIE)
        async with running_hub(settings) as hub:
            await hub.query(SEARCH, {"text": "Reyes", "kinds": ["PERSON"]})
            await hub.query(SEARCH, {"text": "Reyes", "kinds": ["PERSON"]}, agency="WA0990100")
        asked = [r for r in simulator.requests if r.fault == FaultKind.SET_COOKIE]
        assert len(asked) >= 2
        assert not any(r.carried_cookie for r in asked)
    finally:
        await running.stop()


async def test_missing_token_is_401_and_calls_nothing(hub: HubServer) -> None:
    status, body = await hub.post(SEARCH, {"text": "Reyes"}, token=None)
    assert status == 401
    assert body["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
    assert "Bearer" in body["errors"][0]["message"]
    assert all_requests(hub) == 0


def _b64(d: dict[str, object]) -> str:
    return base64.urlsafe_b64encode(json.dumps(d).encode()).rstrip(b"=").decode()


@pytest.mark.parametrize("case", ["garbage", "alg-none", "expired", "stranger"])
async def test_bad_tokens_are_401_with_a_clear_message(hub: HubServer, case: str) -> None:
    auth = hub.settings.auth
    claims = {"user": "u", "agency": "CA0990000", "state": "CA", "roles": ["analyst"]}
    token = {
        "garbage": "abc.def.ghi",
        "alg-none": f"{_b64({'alg': 'none'})}.{_b64({'sub': 'u', 'exp': time.time() + 60})}.",
        "expired": mint_token(hub.key, auth, ttl_s=1, now=time.time() - 600, **claims),  # type: ignore[arg-type]
        "stranger": mint_token(ec.generate_private_key(ec.SECP256R1()), auth, **claims),  # type: ignore[arg-type]
    }[case]
    status, body = await hub.post(SEARCH, {"text": "Reyes"}, token=token)
    assert status == 401
    error = body["errors"][0]
    assert error["extensions"]["code"] == "UNAUTHENTICATED"
    assert error["message"].startswith("token")
    assert all_requests(hub) == 0


async def test_missing_purpose_refused_before_any_vendor_call(hub: HubServer) -> None:
    body = await hub.query(SEARCH, {"text": "Reyes"}, purpose=None)
    assert body["data"] is None
    assert [e["extensions"]["code"] for e in body["errors"]] == ["PURPOSE_REQUIRED"]
    assert all_requests(hub) == 0


async def test_unknown_purpose_refused(hub: HubServer) -> None:
    # Refused at the edge (HTTP 400), whatever the query: tests/edge/test_input.py.
    status, body = await hub.post(SEARCH, {"text": "Reyes"}, token=hub.token(), purpose="Z")
    assert status == 400
    assert body["data"] is None
    assert body["errors"][0]["extensions"]["code"] == "INVALID_PURPOSE"
    assert all_requests(hub) == 0


async def test_purpose_required_through_fragments_too(hub: HubServer) -> None:
    query = 'query { ...F } fragment F on Query { person(id: "x") { id } }'
    body = await hub.query(query, purpose=None)
    assert body["errors"][0]["extensions"]["code"] == "PURPOSE_REQUIRED"


async def test_sources_listing_needs_no_purpose(hub: HubServer) -> None:
    body = await hub.query("{ sources { name agency { ori } system { kind } entityKinds } }",
                           purpose=None)  # fmt: skip
    names = {s["name"] for s in body["data"]["sources"]}
    assert names == {s.name for s in small_world().systems}
    assert "url" not in json.dumps(body)
    assert all_requests(hub) == 0


@pytest.mark.parametrize(
    ("query", "code"),
    [
        ('{ search(text: "x") { hits ', "GRAPHQL_PARSE_FAILED"),
        ("{ nosuchfield }", "GRAPHQL_VALIDATION_FAILED"),
        ('{ search(text: "x", limit: 100000) { hits { __typename } } }', "QUERY_REJECTED"),
        ('{ search(text: "   ") { hits { __typename } } }', "QUERY_REJECTED"),
        ('{ person(id: "not-an-id!") { id } }', "BAD_USER_INPUT"),
    ],
)
async def test_bad_queries_get_clear_errors(hub: HubServer, query: str, code: str) -> None:
    body = await hub.query(query)
    assert body["errors"][0]["extensions"]["code"] == code
    assert body["errors"][0]["message"]


async def test_depth_limit(hub: HubServer) -> None:
    deep = "{ search(text: \"Reyes\") { hits { ... on Person { vehicles { registeredOwner { " \
           "vehicles { registeredOwner { vehicles { registeredOwner { vehicles { " \
           "registeredOwner { vehicles { id } } } } } } } } } } } } }"  # fmt: skip
    body = await hub.query(deep)
    assert body["errors"][0]["extensions"]["code"] == "QUERY_REJECTED"
    assert body["data"] is None
    assert all_requests(hub) == 0


@pytest.mark.parametrize(
    ("content_type", "data", "status"),
    [
        ("text/plain", b'{"query": "{ sources { name } }"}', 415),
        ("application/x-www-form-urlencoded", b"query=%7Bsources%7Bname%7D%7D", 415),
        ("application/json", b"{not json", 400),
        ("application/json", b'{"query": "' + b"x" * 300_000 + b'"}', 413),
    ],
)
async def test_edge_refuses_what_it_must(
    hub: HubServer, content_type: str, data: bytes, status: int
) -> None:
    headers = {"Content-Type": content_type, "Authorization": f"Bearer {hub.token()}"}
    async with hub.session.post(f"{hub.url}/graphql", data=data, headers=headers) as resp:
        assert resp.status == status


async def test_batched_requests_are_refused(hub: HubServer) -> None:
    headers = {"Content-Type": "application/json", "Authorization": f"Bearer {hub.token()}",
               "X-Purpose": "C"}  # fmt: skip
    batch = [{"query": "{ sources { name } }"}] * 3
    async with hub.session.post(f"{hub.url}/graphql", json=batch, headers=headers) as resp:
        assert resp.status == 400


async def test_lookup_by_id_returns_the_same_record(hub: HubServer) -> None:
    body = await hub.query(SEARCH, {"text": "Reyes", "kinds": ["PERSON"]})
    person = next(h for h in body["data"]["search"]["hits"] if h["__typename"] == "Person")
    found = await hub.query(
        "query($id: ID!) { person(id: $id) { id name { surname } provenance { recordId } } }",
        {"id": person["id"]},
    )
    assert found["data"]["person"]["id"] == person["id"]
    assert found["data"]["person"]["provenance"]["recordId"] == person["provenance"]["recordId"]
    sources = found["extensions"]["sources"]
    assert [s["source"] for s in sources] == [person["provenance"]["system"]["name"]]


async def test_wrong_kind_of_id_is_refused(hub: HubServer) -> None:
    body = await hub.query(SEARCH, {"text": "Reyes", "kinds": ["PERSON"]})
    person = next(h for h in body["data"]["search"]["hits"] if h["__typename"] == "Person")
    found = await hub.query("query($id: ID!) { vehicle(id: $id) { id } }", {"id": person["id"]})
    assert found["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"


REYES_VEHICLES = """
{ search(text: "Jordan Reyes", kinds: [PERSON]) { hits { ... on Person {
    provenance { agency { ori } } dateOfBirth
    vehicles { plate { number state }
      plateReads { readAt provenance { agency { ori } system { name } } vehicle { vin } }
      registeredOwner { name { given surname } } } } } } }
"""


async def test_relationships_cross_sources_batched(hub: HubServer) -> None:
    body = await hub.query(REYES_VEHICLES)
    assert "errors" not in body or all(
        e["extensions"]["code"] == "FORBIDDEN_FIELD" for e in body["errors"]
    )
    marin = [h for h in body["data"]["search"]["hits"]
             if h and h["provenance"]["agency"]["ori"] == "CA0990000"
             and h["dateOfBirth"] == "1988-04-12"]  # fmt: skip
    assert marin
    vehicles = [v for p in marin for v in p["vehicles"]]
    camry = next(v for v in vehicles if v["plate"]["number"] == "7ABC123")
    assert camry["registeredOwner"]["name"]["surname"] == "Reyes"
    reads = camry["plateReads"]
    # Marin (own agency) and Sierra (its ALPR agreement with Marin) both read the plate
    assert {r["provenance"]["system"]["name"] for r in reads} == {"marin-alpr", "sierra-alpr"}
    assert len(reads) >= 10
    times = [r["readAt"] for r in reads]
    assert times == sorted(times, reverse=True)
    # the reads' vehicle resolves back across sources (RMS, by plate)
    assert all(r["vehicle"] is not None for r in reads)
    # batched: one request per ALPR source however many vehicles and reads
    assert len(hub.simulator_requests("marin-alpr")) == 1
    assert len(hub.simulator_requests("sierra-alpr")) <= 1


async def test_plate_reads_root(hub: HubServer) -> None:
    body = await hub.query(
        '{ plateReads(plate: "7abc-123", limit: 5) { plate { number } readAt camera } }'
    )
    reads = body["data"]["plateReads"]
    assert len(reads) == 5
    assert {r["plate"]["number"] for r in reads} == {"7ABC123"}
    assert [r["readAt"] for r in reads] == sorted((r["readAt"] for r in reads), reverse=True)
    assert {s["source"] for s in body["extensions"]["sources"]} >= {"marin-alpr"}


async def test_graphiql_in_demo_mode(hub: HubServer) -> None:
    async with hub.session.get(f"{hub.url}/graphql", headers={"Accept": "text/html"}) as resp:
        assert resp.status == 200
        assert "graphiql" in (await resp.text()).lower()


async def test_estimated_cost_limit(hub: HubServer) -> None:
    wide = (
        '{ search(text: "Reyes", limit: 1000) { hits { ... on Person { vehicles { '
        "plateReads { vehicle { plateReads { readAt } } } } } } } }"
    )
    body = await hub.query(wide)
    assert body["data"] is None
    error = body["errors"][0]
    assert error["extensions"]["code"] == "QUERY_REJECTED"
    assert error["extensions"]["cost"] > hub.settings.limits.max_cost
    assert all_requests(hub) == 0
    # the everyday relationship query stays well within it
    body = await hub.query(REYES_VEHICLES)
    assert body["data"]["search"]["hits"]
