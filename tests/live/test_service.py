"""Watches, hot-list alerts and deconfliction over real HTTP: one hub (uvicorn) in front of the
demo world's simulators (real aiohttp servers), the live store in the real Redis at REDIS_URL.

Events arrive as they do in deployment: the Sentinel simulator pushes new reads to the hub's
``/sources/NAME/reads``, a vendor pushes record notices to ``/sources/NAME/notices``.
"""

from __future__ import annotations

import asyncio
import dataclasses
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import msgspec
import pytest
import redis.asyncio as aioredis

from hub.audit import open_audit_log
from hub.audit.entry import decode_entry
from hub.demo.northwind import NorthwindSimulator
from hub.demo.sentinel import SentinelSimulator
from hub.demo.simulator import FaultKind
from hub.live import service as live_service
from hub.live.store import EVENTS_MAX
from hub.model import EntityKind, LegalTag, Person, PersonName, PlateRead, make_id
from tests.adapters.conformance import small_world
from tests.conftest import HubServer, demo_settings, serve_hub
from tests.redis_server import drop_prefix, shared_url

WATCH = """mutation($until: DateTime!, $purpose: String!, $case: String!, $text: String,
  $plate: String, $person: ID) {
  watch(until: $until, purpose: $purpose, caseNumber: $case, text: $text, plate: $plate,
        person: $person) {
    watch { id target text until } interests { ori name contact } } }"""
INBOX = """query($after: String) { inbox(after: $after) { id cursor watchId
  record { __typename ... on Person { name { given surname } ssn provenance { recordId } }
           ... on PlateRead { plate { number } } }
  interest { ori name contact } } }"""
ALERTS = """{ hotListAlerts { id reasons { code reference }
  read { plate { number state } provenance { agency { ori } system { name } } } } }"""
HOT_PLATE = "HOT4242"


def hot_lists(path: Path) -> Path:
    path.write_text(
        f"""
WA0990100:
  - {{plate: {HOT_PLATE}, reason: STOLEN_VEHICLE, reference: "V26-0001"}}
CA0990000:
  - {{plate: {HOT_PLATE}, state: NV, reason: AMBER_ALERT}}
OR0990200:
  - {{plate: OTHER99, reason: WANTED_PERSON}}
"""
    )
    return path


@pytest.fixture
async def live_hub(tmp_path: Path) -> AsyncIterator[HubServer]:
    url = shared_url()
    prefix = f"test-live-{uuid.uuid4().hex[:10]}"
    settings = demo_settings(
        tmp_path,
        REDIS_URL=url,
        HUB_REDIS_PREFIX=prefix,
        HUB_HOT_LISTS=str(hot_lists(tmp_path / "hot-lists.yaml")),
    )
    settings = dataclasses.replace(
        settings, live=dataclasses.replace(settings.live, requery_s=0.5, claim_idle_ms=500)
    )
    try:
        async for server in serve_hub(settings, world=small_world()):
            yield server
    finally:
        await drop_prefix(url, prefix)


def sim(hub: HubServer, name: str) -> Any:
    assert hub.runtime.world is not None
    return hub.runtime.world.simulators[name]


async def eventually(check: Callable[[], Awaitable[bool]], within_s: float = 10.0) -> None:
    deadline = asyncio.get_running_loop().time() + within_s
    while not await check():
        assert asyncio.get_running_loop().time() < deadline, "not within the time allowed"
        await asyncio.sleep(0.05)


async def settled(hub: HubServer) -> None:
    """Every event appended so far is handled and acknowledged."""
    live = hub.runtime.services.live
    assert live is not None
    await eventually(live.store.handled_all)


def until(seconds: float = 86400) -> str:
    return (datetime.now(UTC) + timedelta(seconds=seconds)).isoformat()


async def watch(
    hub: HubServer, agency: str, roles: tuple[str, ...] = ("analyst",), user: str = "u1",
    purpose: str = "C", **args: Any,
) -> dict[str, Any]:  # fmt: skip
    variables = {"until": until(), "purpose": purpose, "case": "26-000777", **args}
    status, body = await hub.post(
        WATCH, variables, token=hub.token(agency, roles, user), purpose=purpose
    )
    assert status == 200, body
    return body


async def inbox(hub: HubServer, agency: str, roles: tuple[str, ...] = ("analyst",),
                user: str = "u1") -> list[dict[str, Any]]:  # fmt: skip
    status, body = await hub.post(INBOX, {}, token=hub.token(agency, roles, user))
    assert status == 200, body
    # a withheld field is reported (FORBIDDEN_FIELD), nothing else may go wrong
    assert {e["extensions"]["code"] for e in body.get("errors", ())} <= {"FORBIDDEN_FIELD"}, body
    items: list[dict[str, Any]] = body["data"]["inbox"]
    return items


async def records(hub: HubServer, agency: str, **kwargs: Any) -> list[dict[str, Any]]:
    """The inbox's record deliveries (not the interests other agencies told of)."""
    return [item for item in await inbox(hub, agency, **kwargs) if item["interest"] is None]


def new_person(hub: HubServer, source: str, given: str, surname: str, **changes: Any) -> Person:
    return new_person_of(sim(hub, source), given, surname, **changes)


def new_person_of(simulator: Any, given: str, surname: str, **changes: Any) -> Person:
    """A person record that reaches a vendor's system after the watch began."""
    source = simulator.system_name
    template = next(r for r in simulator.records if isinstance(r, Person))
    record_id = f"NW-P-{uuid.uuid4().hex[:8].upper()}"
    return msgspec.structs.replace(
        template,
        id=make_id(source, EntityKind.PERSON, record_id),
        provenance=msgspec.structs.replace(template.provenance, record_id=record_id),
        name=PersonName(given=given, surname=surname),
        aliases=(),
        involvements=(),
        vehicle_ids=(),
        **changes,
    )


async def notify(hub: HubServer, source: str, records: list[Person]) -> None:
    simulator: NorthwindSimulator = sim(hub, source)
    simulator.add_records(records)
    body = {"notices": [{"kind": "PERSON", "recordId": r.provenance.record_id, "notice": "NEW"}
                        for r in records]}  # fmt: skip
    async with hub.session.post(
        f"{hub.url}/sources/{source}/notices", json=body,
        headers={"X-Notice-Key": simulator.api_key},
    ) as resp:  # fmt: skip
        assert resp.status == 200, await resp.text()


async def test_a_watch_delivers_a_new_record_once_never_a_sealed_one_and_expires(
    live_hub: HubServer,
) -> None:
    hub = live_hub
    made = await watch(hub, "CA0990000", text="Zebulon Quartermaine")
    assert "errors" not in made, made
    watch_id = made["data"]["watch"]["watch"]["id"]
    # Sierra State Patrol has no records agreement with Marin: its watch gets nothing of it.
    outsider = await watch(hub, "NV0990000", roles=("detective",), text="Zebulon Quartermaine")
    assert "errors" not in outsider, outsider

    # A new record reaches Marin's RMS after the watch began: delivered to the watcher.
    first = new_person(hub, "marin-rms", "Zebulon", "Quartermaine")
    await notify(hub, "marin-rms", [first])

    async def one() -> bool:
        return len(await records(hub, "CA0990000")) == 1

    await eventually(one)
    # The same notice again, and the re-query that finds the record too: still once.
    await notify(hub, "marin-rms", [first])
    await asyncio.sleep(1.2)  # two re-query rounds
    await settled(hub)
    items = await records(hub, "CA0990000")
    assert len(items) == 1
    # Marin and Sierra both allow it (policies/live.yaml): each is told of the other.
    told = [i["interest"] for i in await inbox(hub, "CA0990000") if i["interest"]]
    assert [t["ori"] for t in told] == ["NV0990000"]
    assert items[0]["watchId"] == watch_id
    assert items[0]["record"]["name"] == {"given": "Zebulon", "surname": "Quartermaine"}
    assert items[0]["record"]["provenance"]["recordId"] == first.provenance.record_id

    # Sealed at the vendor before the event is handled: not delivered.
    sealed = new_person(hub, "marin-rms", "Zebulon", "Quartermaine",
                        tags=frozenset({LegalTag.SEALED.value}))  # fmt: skip
    await notify(hub, "marin-rms", [sealed])
    await asyncio.sleep(1.2)
    await settled(hub)
    assert len(await records(hub, "CA0990000")) == 1

    # Another user of the same agency sees nothing of it, nor does the outsider.
    assert await records(hub, "CA0990000", user="u2") == []
    assert await records(hub, "NV0990000", roles=("detective",)) == []

    # Expired: a watch of two seconds delivers nothing after them and is no longer listed.
    status, body = await hub.post(
        WATCH,
        {"until": until(2), "purpose": "C", "case": "26-1", "text": "Ysolde Pemberton"},
        token=hub.token("CA0990000", ("analyst",), "u3"),
    )
    assert status == 200, body
    assert "errors" not in body, body
    await asyncio.sleep(2.2)
    await notify(hub, "marin-rms", [new_person(hub, "marin-rms", "Ysolde", "Pemberton")])
    await asyncio.sleep(1.0)
    await settled(hub)
    assert await records(hub, "CA0990000", user="u3") == []
    u3 = hub.token("CA0990000", ("analyst",), "u3")
    _, listed = await hub.post("{ watches { id } }", token=u3)
    assert listed["data"]["watches"] == []

    # Every delivery left an audit entry naming the watch and the record.
    log = open_audit_log(hub.settings.audit_location)
    try:
        entries = [decode_entry(raw.line) async for raw in log.scan()]
    finally:
        await log.close()
    deliveries = [e for e in entries if e.operation == "watchDelivery"]
    assert len(deliveries) == 1
    assert [r.id for r in deliveries[0].records] == [first.id]
    assert deliveries[0].criteria is not None
    assert deliveries[0].criteria["watch"] == watch_id


async def test_watch_arguments_are_checked_and_bounded_by_policy(live_hub: HubServer) -> None:
    hub = live_hub
    for args, code in [
        ({"text": "A", "plate": "B"}, "BAD_USER_INPUT"),  # exactly one subject
        ({}, "BAD_USER_INPUT"),
        ({"text": "x" * 201}, "BAD_USER_INPUT"),
    ]:
        body = await watch(hub, "CA0990000", **args)
        assert body["errors"][0]["extensions"]["code"] == code, body
    # Beyond the longest a patrol officer's watch may stand (14 days, policies/live.yaml).
    _, body = await hub.post(
        WATCH, {"until": until(15 * 86400), "purpose": "C", "case": "26-2", "plate": "ABC123"},
        token=hub.token("CA0990000", ("patrol",)),
    )  # fmt: skip
    assert body["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT", body
    assert "at most" in body["errors"][0]["message"]
    # A purpose policy names no expiry for cannot be watched for (deny by default).
    body = await watch(hub, "CA0990000", roles=("records",), purpose="J", plate="ABC123")
    assert body["errors"][0]["extensions"]["code"] == "FORBIDDEN", body
    # No case number.
    _, body = await hub.post(
        WATCH, {"until": until(), "purpose": "C", "case": " ", "plate": "ABC123"},
        token=hub.token("CA0990000"),
    )  # fmt: skip
    assert body["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT", body
    # Another user's watch cannot be cancelled, and is answered as one that does not exist.
    made = await watch(hub, "CA0990000", plate="ABC123")
    wid = made["data"]["watch"]["watch"]["id"]
    cancel = "mutation($id: ID!) { cancelWatch(id: $id) }"
    _, other = await hub.post(cancel, {"id": wid}, token=hub.token("WA0990100"))
    _, none = await hub.post(cancel, {"id": uuid.uuid4().hex}, token=hub.token("WA0990100"))
    assert other["data"] == none["data"] == {"cancelWatch": False}
    _, mine = await hub.post(cancel, {"id": wid}, token=hub.token("CA0990000"))
    assert mine["data"] == {"cancelWatch": True}


async def test_hot_list_alerts_reach_the_listing_agency_only_and_respect_in_state_law(
    live_hub: HubServer,
) -> None:
    hub = live_hub
    sierra: SentinelSimulator = sim(hub, "sierra-alpr")
    marin: SentinelSimulator = sim(hub, "marin-alpr")
    for simulator, name in ((sierra, "sierra-alpr"), (marin, "marin-alpr")):
        simulator.push_to(f"{hub.url}/sources/{name}/reads", simulator.api_key)

    def read(simulator: SentinelSimulator, state: str) -> PlateRead:
        template = next(r for r in simulator.records if isinstance(r, PlateRead))
        record_id = f"SEN-{uuid.uuid4().hex[:10]}"
        return msgspec.structs.replace(
            template,
            id=make_id(simulator.system_name, EntityKind.PLATE_READ, record_id),
            provenance=msgspec.structs.replace(template.provenance, record_id=record_id),
            plate=msgspec.structs.replace(template.plate, number=HOT_PLATE, state=state),
            read_at=datetime.now(UTC).replace(microsecond=0),
            created=datetime.now(UTC).date(),
        )

    # Plate watches too: Cascade's and Marin's analysts watch the plate (purpose C).
    for agency in ("WA0990100", "CA0990000"):
        made = await watch(hub, agency, user="pw", plate=HOT_PLATE.lower())
        assert "errors" not in made, made

    # A Nevada read (Sierra State Patrol shares reads for ALPR-HOT with Marin and Cascade).
    assert await sierra.ingest([read(sierra, "NV")]) == 200

    async def alerts(agency: str, roles: tuple[str, ...] = ("patrol",)) -> list[dict[str, Any]]:
        status, body = await hub.post(ALERTS, token=hub.token(agency, roles), purpose="C")
        assert status == 200, body
        assert "errors" not in body, body
        found: list[dict[str, Any]] = body["data"]["hotListAlerts"]
        return found

    async def both() -> bool:
        return len(await alerts("WA0990100")) == 1 and len(await alerts("CA0990000")) == 1

    await eventually(both)
    wa = (await alerts("WA0990100"))[0]
    assert wa["reasons"] == [{"code": "STOLEN_VEHICLE", "reference": "V26-0001"}]
    assert wa["read"]["provenance"]["agency"]["ori"] == "NV0990000"
    ca = (await alerts("CA0990000"))[0]
    assert [r["code"] for r in ca["reasons"]] == ["AMBER_ALERT"]

    # A Marin read (California: in-state-only): Marin's own list would match only an NV plate,
    # Cascade's list matches, but the read may not leave California: no alert for anyone.
    assert await marin.ingest([read(marin, "CA")]) == 200
    await settled(hub)
    assert len(await alerts("WA0990100")) == 1
    assert len(await alerts("CA0990000")) == 1
    # The watches: Cascade gets the Nevada read only, Marin its own read too.
    wa_reads = await records(hub, "WA0990100", user="pw")
    ca_reads = await records(hub, "CA0990000", user="pw")
    assert [r["record"]["plate"]["number"] for r in wa_reads] == [HOT_PLATE]
    assert [r["record"]["plate"]["number"] for r in ca_reads] == [HOT_PLATE, HOT_PLATE]
    # Harbor Falls listed another plate: it learns nothing of the others' lists or reads.
    assert await alerts("OR0990200") == []
    # An analyst (no ALPR-HOT purpose in the hub rules) is shown none of its agency's alerts.
    assert await alerts("WA0990100", ("analyst",)) == []


async def test_deconfliction_tells_both_agencies_only_where_both_allow(
    live_hub: HubServer,
) -> None:
    hub = live_hub
    plate = f"DC{uuid.uuid4().hex[:5].upper()}"
    harbor = await watch(hub, "OR0990200", plate=plate)
    assert harbor["data"]["watch"]["interests"] == []
    marin = await watch(hub, "CA0990000", plate=plate)
    # Harbor Falls consents to no one (no entry in policies/live.yaml): neither learns of it.
    assert marin["data"]["watch"]["interests"] == []
    cascade = await watch(hub, "WA0990100", plate=plate)
    assert [i["ori"] for i in cascade["data"]["watch"]["interests"]] == ["CA0990000"]
    assert cascade["data"]["watch"]["interests"][0]["contact"].startswith("Investigations Desk")
    told = [i["interest"] for i in await inbox(hub, "CA0990000") if i["interest"]]
    assert [t["ori"] for t in told] == ["WA0990100"]
    assert all(i["interest"] is None for i in await inbox(hub, "OR0990200"))
    # A different plate: no one is told anything.
    other = await watch(hub, "WA0990100", user="u9", plate=plate + "X")
    assert other["data"]["watch"]["interests"] == []


async def subscribe(hub_url: str, session: Any, token: str, query: str, purpose: str = "C") -> Any:
    """A graphql-transport-ws subscription: the socket, once acknowledged and subscribed."""
    ws = await session.ws_connect(f"{hub_url}/graphql", protocols=["graphql-transport-ws"])
    await ws.send_json(
        {"type": "connection_init",
         "payload": {"Authorization": f"Bearer {token}", "X-Purpose": purpose}}
    )  # fmt: skip
    ack = await ws.receive_json(timeout=10)
    assert ack["type"] == "connection_ack", ack
    await ws.send_json({"id": "1", "type": "subscribe", "payload": {"query": query}})
    return ws


async def test_deliveries_are_pushed_over_the_websocket(live_hub: HubServer) -> None:
    hub = live_hub
    made = await watch(hub, "CA0990000", user="ws1", text="Octavia Brightwater")
    assert "errors" not in made, made
    # From the start of the (empty) inbox: nothing made before the socket opened is missed.
    ws = await subscribe(
        hub.url, hub.session, hub.token("CA0990000", ("analyst",), "ws1"),
        'subscription { watchDeliveries(after: "0-0") { id watchId '
        "record { ... on Person { name { given surname } } } } }",
    )  # fmt: skip
    try:
        await notify(hub, "marin-rms", [new_person(hub, "marin-rms", "Octavia", "Brightwater")])
        message = await ws.receive_json(timeout=10)
        assert message["type"] == "next", message
        delivery = message["payload"]["data"]["watchDeliveries"]
        assert delivery["watchId"] == made["data"]["watch"]["watch"]["id"]
        assert delivery["record"]["name"] == {"given": "Octavia", "surname": "Brightwater"}
    finally:
        await ws.close()


async def test_pushed_reads_need_the_source_key_and_its_format(live_hub: HubServer) -> None:
    hub = live_hub
    sierra: SentinelSimulator = sim(hub, "sierra-alpr")
    url = f"{hub.url}/sources/sierra-alpr/reads"
    for key, body, status, code in [
        ("wrong", b"", 403, "FORBIDDEN"),
        (sierra.api_key, b'{"read_id": "x"}\n', 400, "BAD_REQUEST"),
        (sierra.api_key, b"not json\n", 400, "BAD_REQUEST"),
    ]:
        async with hub.session.post(url, data=body, headers={"X-Notice-Key": key}) as resp:
            assert resp.status == status
            answer = await resp.json()
            assert answer["errors"][0]["extensions"]["code"] == code
            assert "x" not in answer["errors"][0]["message"].split()  # the line is not echoed
    # A system that does not push reads (an RMS) refuses them, with its own key too.
    marin = sim(hub, "marin-rms")
    async with hub.session.post(
        f"{hub.url}/sources/marin-rms/reads", data=b"{}", headers={"X-Notice-Key": marin.api_key}
    ) as resp:
        assert resp.status == 400


async def test_a_source_that_cannot_push_is_asked_again_as_the_watcher(
    live_hub: HubServer,
) -> None:
    hub = live_hub
    made = await watch(hub, "WA0990100", user="rq", text="Perpetua Lindqvist")
    assert "errors" not in made, made
    # Marin's record reaches its RMS; no notice is sent: the re-query (0.5 s here) finds it,
    # as Cascade City's analyst (agreement MVSO-CCPD-2024: no SSN).
    sim(hub, "marin-rms").add_records([new_person(hub, "marin-rms", "Perpetua", "Lindqvist")])

    async def delivered() -> bool:
        return len(await records(hub, "WA0990100", user="rq")) == 1

    await eventually(delivered)
    [item] = await records(hub, "WA0990100", user="rq")
    assert item["record"]["name"] == {"given": "Perpetua", "surname": "Lindqvist"}
    assert item["record"]["ssn"] is None
    _, body = await hub.post(INBOX, {}, token=hub.token("WA0990100", ("analyst",), "rq"))
    assert [e["extensions"]["field"] for e in body["errors"]] == ["Person.ssn"]


async def test_without_redis_live_results_say_so(hub: HubServer) -> None:
    body = await watch(hub, "CA0990000", plate="ABC123")
    assert body["data"] is None
    assert body["errors"][0]["extensions"]["code"] == "SOURCE_UNAVAILABLE"
    assert "Redis" in body["errors"][0]["message"]
    # Pushed reads are refused with 503: the ALPR system keeps them and pushes again.
    sierra = hub.runtime.world.simulators["sierra-alpr"] if hub.runtime.world else None
    assert sierra is not None
    async with hub.session.post(
        f"{hub.url}/sources/sierra-alpr/reads", data=b"", headers={"X-Notice-Key": sierra.api_key}
    ) as resp:
        assert resp.status == 503


NOTICE = """mutation Notice($id: ID!) { recordNotice(id: $id, notice: SEALED) { id } }"""


async def test_the_owners_record_notice_makes_watches_look_again(tmp_path: Path) -> None:
    """Without re-query (an hour apart) and without the vendor's push: the owner's clerk's
    ``recordNotice`` alone makes the watches see the record, fetched fresh from the vendor."""
    url = shared_url()
    prefix = f"test-live-{uuid.uuid4().hex[:10]}"
    settings = demo_settings(tmp_path, REDIS_URL=url, HUB_REDIS_PREFIX=prefix)
    settings = dataclasses.replace(
        settings, live=dataclasses.replace(settings.live, requery_s=3600, claim_idle_ms=500)
    )
    try:
        async for hub in serve_hub(settings, world=small_world()):
            made = await watch(hub, "CA0990000", text="Wilhelmina Ashgrove")
            assert "errors" not in made, made
            record = new_person(hub, "marin-rms", "Wilhelmina", "Ashgrove")
            sim(hub, "marin-rms").add_records([record])
            await asyncio.sleep(0.5)
            await settled(hub)
            assert await records(hub, "CA0990000") == []  # nothing told the hub yet
            clerk = hub.token("CA0990000", ("records",), "clerk1")
            status, body = await hub.post(NOTICE, {"id": record.id}, token=clerk, purpose="A")
            assert status == 200, body
            assert "errors" not in body, body

            async def delivered(hub: HubServer = hub) -> bool:
                return len(await records(hub, "CA0990000")) == 1

            await eventually(delivered)
    finally:
        await drop_prefix(url, prefix)


async def test_an_event_whose_vendor_never_answers_is_set_aside_after_its_attempts(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A notice whose record the vendor never hands over (HTTP 500 on every fetch) is retried,
    never delivered half-known, then set aside on the dead-letter stream and acknowledged, so it
    does not cycle for ever; once set aside it is not asked again."""
    monkeypatch.setattr(live_service, "MAX_ATTEMPTS", 3)
    url = shared_url()
    prefix = f"test-live-{uuid.uuid4().hex[:10]}"
    settings = demo_settings(tmp_path, REDIS_URL=url, HUB_REDIS_PREFIX=prefix)
    settings = dataclasses.replace(
        settings, live=dataclasses.replace(settings.live, requery_s=3600, claim_idle_ms=200)
    )
    client = aioredis.Redis.from_url(url)
    try:
        async for hub in serve_hub(settings, world=small_world()):
            made = await watch(hub, "CA0990000", text="Ottoline Brackwater")
            assert "errors" not in made, made
            vendor = sim(hub, "marin-rms")
            vendor.add_fault(FaultKind.ERROR_500, path="/persons")
            record = new_person(hub, "marin-rms", "Ottoline", "Brackwater")
            await notify(hub, "marin-rms", [record])
            events = f"{hub.settings.resilience.redis_prefix}:live:events"
            dead = f"{hub.settings.resilience.redis_prefix}:live:dead"

            async def set_aside(dead: str = dead) -> bool:
                return bool(await client.xlen(dead))

            await eventually(set_aside, within_s=20)
            [(_, fields)] = await client.xrange(dead)
            [(event_id, _)] = await client.xrange(events)
            assert fields[b"event"] == event_id
            wanted = f"ids={record.provenance.record_id}&"

            def fetches(vendor: Any = vendor, wanted: str = wanted) -> list[Any]:
                return [r for r in vendor.requests if r.query.startswith(wanted)]

            assert [r.fault for r in fetches()] == [FaultKind.ERROR_500] * 3  # one an attempt
            await settled(hub)  # acknowledged: nothing pending, nothing new
            vendor.clear_faults()
            await asyncio.sleep(1.0)  # several claim intervals: not handled again
            assert len(fetches()) == 3
            assert await records(hub, "CA0990000") == []
    finally:
        await client.aclose()
        await drop_prefix(url, prefix)


async def test_a_notice_the_watches_cannot_take_is_refused_then_taken_when_sent_again(
    live_hub: HubServer,
) -> None:
    """The live event stream full (its workers that far behind): the notice is answered 503,
    with what the cache did, so that the vendor sends it again; nothing is dropped unhandled."""
    hub = live_hub
    made = await watch(hub, "CA0990000", user="bp", text="Leocadia Fairweather")
    assert "errors" not in made, made
    live = hub.runtime.services.live
    assert live is not None
    person = new_person(hub, "marin-rms", "Leocadia", "Fairweather")
    simulator: NorthwindSimulator = sim(hub, "marin-rms")
    simulator.add_records([person])
    body = {"notices": [{"kind": "PERSON", "recordId": person.provenance.record_id,
                         "notice": "NEW"}]}  # fmt: skip
    url, headers = f"{hub.url}/sources/marin-rms/notices", {"X-Notice-Key": simulator.api_key}
    live.store.events_max = 0
    try:
        async with hub.session.post(url, json=body, headers=headers) as resp:
            assert resp.status == 503
            refused = await resp.json()
    finally:
        live.store.events_max = EVENTS_MAX
    assert refused["notices"] == 1
    assert refused["live"]["code"] == "SOURCE_UNAVAILABLE"
    assert "send it again later" in refused["live"]["message"]
    await settled(hub)
    assert await records(hub, "CA0990000", user="bp") == []
    async with hub.session.post(url, json=body, headers=headers) as resp:
        assert resp.status == 200, await resp.text()

    async def delivered() -> bool:
        return len(await records(hub, "CA0990000", user="bp")) == 1

    await eventually(delivered)
