"""GraphQL over WebSocket (graphql-transport-ws) against the real app, over a real socket, in
front of the demo world's simulators: the edge of every connection and every operation.

The client is aiohttp's WebSocket speaking the protocol frame by frame, so that a test can
send what no well-behaved client library would.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from hub.settings import Settings
from hub.trust.identity import mint_token
from tests.adapters.conformance import small_world
from tests.audit import postgres
from tests.conftest import HubServer, demo_settings, running_hub, serve_hub
from tests.edge.test_app import SEARCH
from tests.edge.test_app_audit import entries_of

PROTOCOL = "graphql-transport-ws"
STREAM = """
subscription Stream($text: String!, $kinds: [EntityKind!], $limit: Int) {
  searchStream(text: $text, kinds: $kinds, limit: $limit) {
    done
    source { source agency status count message }
    hits {
      __typename
      ... on Person { id name { surname } ssn provenance { agency { ori } } }
      ... on Vehicle { id provenance { agency { ori } } }
      ... on Incident { id provenance { agency { ori } } }
      ... on PlateRead { id provenance { agency { ori } } }
      ... on RecordPointer { kind owner { ori } contact }
    }
    sources { source agency status count }
  }
}
"""


class Closed(Exception):
    def __init__(self, code: int, reason: str) -> None:
        super().__init__(f"{code} {reason}")
        self.code = code
        self.reason = reason


class Client:
    """One graphql-transport-ws connection, frame by frame."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        self.ws = ws

    async def send(self, message: Any) -> None:
        await self.ws.send_str(message if isinstance(message, str) else json.dumps(message))

    async def receive(self) -> dict[str, Any]:
        """The next message; Closed when the server closes the connection instead."""
        msg = await self.ws.receive(timeout=30)
        if msg.type is aiohttp.WSMsgType.TEXT:
            received: dict[str, Any] = json.loads(msg.data)
            return received
        if msg.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED):
            raise Closed(int(msg.data or self.ws.close_code or 0), str(msg.extra or ""))
        raise AssertionError(f"unexpected frame {msg.type}")

    async def closed(self) -> Closed:
        """The close the server sends next (messages before it are skipped)."""
        while True:
            try:
                await self.receive()
            except Closed as closed:
                return closed

    async def init(self, **payload: Any) -> dict[str, Any]:
        await self.send({"type": "connection_init", "payload": payload})
        return await self.receive()

    async def subscribe(
        self, op_id: str, query: str, variables: dict[str, Any] | None = None, **extra: Any
    ) -> None:
        payload = {"query": query, "variables": variables or {}, **extra}
        await self.send({"type": "subscribe", "id": op_id, "payload": payload})

    async def until_complete(self, op_id: str) -> list[dict[str, Any]]:
        """Every message of one operation up to its complete (or error)."""
        out = []
        while True:
            message = await self.receive()
            if message.get("id") != op_id:
                continue
            out.append(message)
            if message["type"] in ("complete", "error"):
                return out


def auth(hub: HubServer, purpose: str | None = "C", **token: Any) -> dict[str, str]:
    payload = {"Authorization": f"Bearer {hub.token(**token)}"}
    if purpose is not None:
        payload["X-Purpose"] = purpose
    return payload


@dataclasses.dataclass
class Socket:
    hub: HubServer

    def connect(
        self, protocols: tuple[str, ...] = (PROTOCOL,), **kw: Any
    ) -> aiohttp.client._WSRequestContextManager:
        url = self.hub.url.replace("http://", "ws://") + "/graphql"
        return self.hub.session.ws_connect(url, protocols=protocols, **kw)


async def connected(hub: HubServer, **payload: Any) -> AsyncIterator[Client]:
    async with Socket(hub).connect() as ws:
        client = Client(ws)
        ack = await client.init(**(payload or auth(hub)))
        assert ack == {"type": "connection_ack"}
        yield client


def stream_payloads(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [m["payload"]["data"]["searchStream"] for m in messages if m["type"] == "next"]


def with_limits(settings: Settings, **limits: int) -> Settings:
    return dataclasses.replace(settings, limits=dataclasses.replace(settings.limits, **limits))


# -- streaming search ------------------------------------------------------------------------


async def test_a_fast_source_hits_arrive_before_a_slow_source_times_out(hub: HubServer) -> None:
    assert hub.runtime.world is not None
    hub.runtime.world.simulators["harbor-rms"].add_fault("timeout")
    before = len(await entries_of(hub.settings.audit_location))
    async for client in connected(hub):
        await client.subscribe("s1", STREAM, {"text": "Reyes"})
        messages = await client.until_complete("s1")
    assert messages[-1] == {"id": "s1", "type": "complete"}
    payloads = stream_payloads(messages)
    order = [p["source"]["source"] for p in payloads if not p["done"]]
    # marin-rms answered (with Reyes's record) before harbor-rms was given up on.
    assert order.index("marin-rms") < order.index("harbor-rms")
    marin = payloads[order.index("marin-rms")]
    assert marin["source"]["status"] == "OK"
    assert marin["hits"]
    assert marin["source"]["count"] == len(marin["hits"])
    harbor = payloads[order.index("harbor-rms")]
    assert harbor["source"]["status"] == "TIMEOUT"
    assert harbor["hits"] == []
    # one payload per source asked; the last one done, with every source's status
    assert len(order) == len(set(order))
    last = payloads[-1]
    assert last["done"]
    assert last["source"] is None
    assert last["hits"] == []
    assert [p["done"] for p in payloads].count(True) == 1
    configured = [a.name for a in hub.runtime.services.adapters]
    assert [s["source"] for s in last["sources"]] == configured
    final = {s["source"]: s for s in last["sources"]}
    assert final["harbor-rms"]["status"] == "TIMEOUT"
    shown = [h for p in payloads for h in p["hits"]]
    assert sum(s["count"] for s in last["sources"]) == len(shown)
    # An entry per payload that released hits, written before it left (part 1, 2, ...), then
    # the operation's own, whole: every record, the sources, what was withheld, how it ended.
    entries = (await entries_of(hub.settings.audit_location))[before:]
    *parts, entry = entries
    criteria = {
        "searchStream": [
            {"text": "Reyes", "kinds": ["INCIDENT", "PERSON", "PLATE_READ", "VEHICLE"],
             "limit": 50}
        ]
    }  # fmt: skip
    assert len(parts) == sum(1 for p in payloads if p["hits"])
    assert [part.part for part in parts] == list(range(1, len(parts) + 1))
    assert entry.part == 0
    for part in parts:
        assert (part.operation, part.outcome, part.trace_id) == ("Stream", "OK", entry.trace_id)
        assert part.criteria == criteria
        assert part.records
        assert not part.sources
        assert not part.withheld
    assert entry.operation == "Stream"
    assert entry.outcome == "PARTIAL"
    assert entry.criteria == criteria
    audited = {s.source: s.status for s in entry.sources}
    assert audited["harbor-rms"] == "TIMEOUT"
    assert audited["marin-rms"] == "OK"
    released = [r.id for part in parts for r in part.records]
    assert len(released) == len(set(released)) == len(shown)
    assert released == [r.id for r in entry.records]
    assert {h["id"] for h in shown if "id" in h} <= set(released)
    assert {w.field for w in entry.withheld} == {"Person.ssn"}


async def test_what_a_payload_releases_is_audited_before_it_leaves(hub: HubServer) -> None:
    """Each payload's hits are in the audit log when the payload arrives: a stream that dies
    (the hub killed, the log lost) has released nothing unaudited."""
    before = len(await entries_of(hub.settings.audit_location))
    async for client in connected(hub):
        await client.subscribe("w", STREAM, {"text": "Reyes"})
        checked = 0
        while (message := await client.receive())["type"] == "next":
            payload = message["payload"]["data"]["searchStream"]
            written = (await entries_of(hub.settings.audit_location))[before:]
            audited = {r.id for e in written for r in e.records}
            hits = {h["id"] for h in payload["hits"] if "id" in h}
            assert hits <= audited, payload["source"]
            checked += len(hits)
    assert message["type"] == "complete"
    assert checked


async def test_withheld_fields_are_reported_in_the_payload_that_withholds_them(
    hub: HubServer,
) -> None:
    variables = {"text": "Reyes", "kinds": ["PERSON"]}
    async for client in connected(hub):
        await client.subscribe("w", STREAM, variables)
        messages = await client.until_complete("w")
    withheld = 0
    for message in messages:
        if message["type"] != "next":
            continue
        data = message["payload"]["data"]["searchStream"]
        nulls = sum(1 for h in data["hits"] if h["__typename"] == "Person" and h["ssn"] is None)
        errors = message["payload"].get("errors", [])
        assert {e["extensions"]["code"] for e in errors} <= {"FORBIDDEN_FIELD"}
        reported = sum(e["extensions"]["withheld"] for e in errors)
        assert reported <= nulls  # a null may also be an SSN never recorded
        for error in errors:
            hit = data["hits"][error["path"][2]]
            assert error["path"][:2] == ["searchStream", "hits"]
            assert hit["ssn"] is None
        withheld += reported
    search = (
        "query S($text: String!, $kinds: [EntityKind!]) { search(text: $text, kinds: $kinds) "
        "{ hits { ... on Person { ssn } } } }"
    )
    over_http = await hub.query(search, variables)
    assert withheld == sum(e["extensions"]["withheld"] for e in over_http["errors"]) > 0


async def test_a_query_runs_over_the_socket_as_over_http(hub: HubServer) -> None:
    over_http = await hub.query(SEARCH, {"text": "Reyes"})
    before = len(await entries_of(hub.settings.audit_location))
    async for client in connected(hub):
        await client.subscribe("q", SEARCH, {"text": "Reyes"}, operationName="Search")
        messages = await client.until_complete("q")
    assert [m["type"] for m in messages] == ["next", "complete"]
    over_ws = messages[0]["payload"]

    def hits(body: dict[str, Any]) -> list[tuple[str, str | None, str | None]]:
        return [
            (h["__typename"], h.get("id"), h.get("kind")) for h in body["data"]["search"]["hits"]
        ]

    def counts(body: dict[str, Any]) -> list[tuple[str, str, int]]:
        return [(s["source"], s["status"], s["count"]) for s in body["data"]["search"]["sources"]]

    assert hits(over_ws) == hits(over_http)
    assert counts(over_ws) == counts(over_http)
    assert over_ws.get("errors") == over_http.get("errors")
    assert over_ws["extensions"]["purpose"] == "C"
    entries = (await entries_of(hub.settings.audit_location))[before:]
    assert [e.operation for e in entries] == ["Search"]
    assert entries[0].outcome in ("OK", "PARTIAL")
    assert len(entries[0].records) == len(over_ws["data"]["search"]["hits"])


async def test_a_mutation_over_the_socket(hub: HubServer) -> None:
    async for client in connected(hub, **auth(hub, purpose="A", roles=("records",))):
        mutation = (
            "mutation Seal($id: ID!) { recordNotice(id: $id, notice: SEALED) "
            "{ id notice evictedEntries } }"
        )
        body = await hub.query(SEARCH, {"text": "Reyes"})
        marin = next(
            h["id"] for h in body["data"]["search"]["hits"]
            if h["__typename"] == "Person" and h["provenance"]["agency"]["ori"] == "CA0990000"
        )  # fmt: skip
        await client.subscribe("m", mutation, {"id": marin})
        messages = await client.until_complete("m")
    assert messages[0]["type"] == "next"
    assert messages[0]["payload"]["data"]["recordNotice"]["notice"] == "SEALED"


# -- the connection's edge -------------------------------------------------------------------


async def _close_of(hub: HubServer, *frames: Any) -> Closed:
    async with Socket(hub).connect() as ws:
        client = Client(ws)
        for frame in frames:
            await client.send(frame)
        return await client.closed()


async def test_who_may_not_connect_is_closed_with_4403_and_audited(hub: HubServer) -> None:
    before = len(await entries_of(hub.settings.audit_location))
    cases = [
        ({}, "UNAUTHENTICATED"),
        ({"Authorization": "Bearer not-a-token", "X-Purpose": "C"}, "UNAUTHENTICATED"),
        ({"Authorization": hub.token(), "X-Purpose": "C"}, "UNAUTHENTICATED"),  # no "Bearer"
        ({**auth(hub, agency="ZZ0000000")}, "UNKNOWN_AGENCY"),
        ({**auth(hub, roles=("janitor",))}, "UNKNOWN_ROLE"),
        ({**auth(hub, roles=("partner-hub",))}, "FORBIDDEN"),
    ]
    for payload, code in cases:
        closed = await _close_of(hub, {"type": "connection_init", "payload": payload})
        assert (closed.code, closed.reason.split(":")[0]) == (4403, code), payload
    refused = (await entries_of(hub.settings.audit_location))[before:]
    assert [(e.outcome, e.error_code) for e in refused] == [("REFUSED", c) for _, c in cases]
    assert refused[0].user == "anonymous"


async def test_a_purpose_that_names_none_closes_and_a_missing_one_refuses_data(
    hub: HubServer,
) -> None:
    closed = await _close_of(
        hub, {"type": "connection_init", "payload": auth(hub, purpose="nonsense")}
    )
    assert (closed.code, closed.reason.split(":")[0]) == (4400, "INVALID_PURPOSE")
    assert hub.runtime.world is not None
    called = sum(len(s.requests) for s in hub.runtime.world.simulators.values())
    async for client in connected(hub, **auth(hub, purpose=None)):
        await client.subscribe("s", STREAM, {"text": "Reyes"})
        messages = await client.until_complete("s")
        await client.subscribe("q", "query Q { sources { name } }")
        sources = await client.until_complete("q")
    assert [m["type"] for m in messages] == ["error"]
    assert messages[0]["payload"][0]["extensions"]["code"] == "PURPOSE_REQUIRED"
    assert sum(len(s.requests) for s in hub.runtime.world.simulators.values()) == called
    assert sources[0]["payload"]["data"]["sources"]  # what needs no purpose still works


@pytest.mark.parametrize(
    ("frames", "code", "says"),
    [
        (["not json"], 4400, "not JSON"),
        (["[1, 2]"], 4400, "JSON object"),
        (['{"type": 7}'], 4400, "string 'type'"),
        (['{"type": "gossip"}'], 4400, "unknown message type"),
        (['{"type": "connection_init", "payload": "x"}'], 4400, "payload"),
        (["[" * 100 + "]" * 100], 4400, "nests"),
        (['{"type": "subscribe", "id": "1", "payload": {"query": "{ sources { name } }"}}'],
         4401, "connection_init"),
    ],
)  # fmt: skip
async def test_bad_frames_get_protocol_errors(
    hub: HubServer, frames: list[str], code: int, says: str
) -> None:
    closed = await _close_of(hub, *frames)
    assert closed.code == code
    assert says in closed.reason
    # and the hub is none the worse
    async for client in connected(hub):
        await client.send({"type": "ping"})
        assert await client.receive() == {"type": "pong"}


async def test_a_second_connection_init_closes_with_4429(hub: HubServer) -> None:
    init = {"type": "connection_init", "payload": auth(hub)}
    closed = await _close_of(hub, init, init)
    assert (closed.code, closed.reason) == (4429, "Too many initialisation requests")


async def test_bad_subscribe_messages_close_with_4400(hub: HubServer) -> None:
    for message in (
        {"type": "subscribe", "payload": {"query": "{ sources { name } }"}},
        {"type": "subscribe", "id": "x" * 500, "payload": {"query": "{ sources { name } }"}},
        {"type": "subscribe", "id": "1", "payload": {"query": 42}},
        {"type": "subscribe", "id": "1", "payload": {"query": "{ x }", "variables": [1]}},
        {"type": "subscribe", "id": "1"},
    ):
        async for client in connected(hub):
            await client.send(message)
            closed = await client.closed()
            assert closed.code == 4400, message


async def test_binary_and_oversized_messages_are_refused(hub: HubServer) -> None:
    async with Socket(hub).connect() as ws:
        await ws.send_bytes(b'{"type": "connection_init"}')
        closed = await Client(ws).closed()
    assert closed.code == 4400
    assert "text" in closed.reason
    limit = hub.settings.limits.ws_max_message_bytes
    big = json.dumps({"type": "ping", "payload": {"x": "y" * limit}})
    assert (await _close_of(hub, big)).code == 1009


async def test_only_graphql_transport_ws_and_only_from_the_hubs_own_pages(
    hub: HubServer,
) -> None:
    async with Socket(hub).connect(protocols=("graphql-ws",)) as ws:
        closed = await Client(ws).closed()
    assert closed.code == 4406
    with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
        async with Socket(hub).connect(origin="https://evil.example"):
            pass
    assert refused.value.status == 403
    same = hub.url  # a page of the hub itself
    async with Socket(hub).connect(origin=same) as ws:
        assert await Client(ws).init(**auth(hub)) == {"type": "connection_ack"}


async def test_ping_pong_and_complete_of_an_unknown_id(hub: HubServer) -> None:
    async for client in connected(hub):
        await client.send({"type": "ping"})
        assert await client.receive() == {"type": "pong"}
        await client.send({"type": "complete", "id": "nothing"})
        await client.send({"type": "ping", "payload": {"n": 1}})
        assert await client.receive() == {"type": "pong"}


async def test_a_duplicate_operation_id_closes_with_4409(hub: HubServer) -> None:
    assert hub.runtime.world is not None
    hub.runtime.world.simulators["harbor-rms"].add_fault("timeout")
    async for client in connected(hub):
        await client.subscribe("d", STREAM, {"text": "Reyes"})
        await client.subscribe("d", STREAM, {"text": "Reyes"})
        assert (await client.closed()).code == 4409


# -- bounded ---------------------------------------------------------------------------------


async def test_operations_at_once_connection_init_and_silence_are_bounded(
    tmp_path: Path,
) -> None:
    settings = with_limits(
        demo_settings(tmp_path), ws_max_operations=1, ws_init_timeout_s=1, ws_idle_timeout_s=1
    )
    async with running_hub(settings, world=small_world()) as hub:
        assert hub.runtime.world is not None
        hub.runtime.world.simulators["harbor-rms"].add_fault("latency", delay_ms=300)
        async for client in connected(hub):
            await client.subscribe("a", STREAM, {"text": "Reyes"})
            await client.subscribe("b", STREAM, {"text": "Reyes"})
            second = await client.until_complete("b")
            assert second[0]["type"] == "error"
            assert second[0]["payload"][0]["extensions"]["code"] == "RATE_LIMITED"
            first = await client.until_complete("a")
            assert stream_payloads(first)[-1]["done"]
            # nothing running, nothing said: closed
            assert (await client.closed()).code == 4408
        async with Socket(hub).connect() as ws:  # no connection_init at all
            assert (await Client(ws).closed()).code == 4408


async def test_cost_and_depth_limits_stop_a_subscription_before_any_source(
    tmp_path: Path,
) -> None:
    settings = with_limits(demo_settings(tmp_path), max_cost=5, max_depth=3)
    costly = 'subscription C { searchStream(text: "Reyes", limit: 1000) { hits { __typename } } }'
    async with running_hub(settings, world=small_world()) as hub:
        async for client in connected(hub):
            await client.subscribe("c", costly)
            too_costly = await client.until_complete("c")
            await client.subscribe("d", STREAM, {"text": "Reyes"})  # hits.provenance.agency
            too_deep = await client.until_complete("d")
        assert hub.runtime.world is not None
        assert sum(len(s.requests) for s in hub.runtime.world.simulators.values()) == 0
    for refused, says in ((too_costly, "cost"), (too_deep, "depth")):
        assert [m["type"] for m in refused] == ["error"]
        error = refused[0]["payload"][0]
        assert error["extensions"]["code"] == "QUERY_REJECTED"
        assert says in error["message"]


async def test_rate_limits_count_each_operation(tmp_path: Path) -> None:
    settings = demo_settings(tmp_path)
    settings = dataclasses.replace(
        settings, resilience=dataclasses.replace(settings.resilience, user_per_minute=2)
    )
    async with running_hub(settings, world=small_world()) as hub:
        async for client in connected(hub):
            codes = []
            for n in range(3):
                await client.subscribe(str(n), "query Q { sources { name } }")
                first = (await client.until_complete(str(n)))[0]
                codes.append(first["payload"][0]["extensions"] if first["type"] == "error" else {})
    assert codes[:2] == [{}, {}]
    assert codes[2]["code"] == "RATE_LIMITED"
    assert int(codes[2]["retryAfter"]) >= 1


async def test_a_token_that_expires_on_an_open_connection_ends_it(tmp_path: Path) -> None:
    settings = demo_settings(tmp_path)
    settings = dataclasses.replace(settings, auth=dataclasses.replace(settings.auth, leeway_s=0))
    async with running_hub(settings, world=small_world()) as hub:
        token = mint_token(
            hub.key, settings.auth, user="u1", agency="CA0990000", state="CA",
            roles=("analyst",), ttl_s=1,
        )  # fmt: skip
        async for client in connected(hub, Authorization=f"Bearer {token}", **{"X-Purpose": "C"}):
            await asyncio.sleep(1.2)
            await client.subscribe("late", STREAM, {"text": "Reyes"})
            closed = await client.closed()
    assert closed.code == 4403
    assert "UNAUTHENTICATED" in closed.reason


# -- fail closed -----------------------------------------------------------------------------


async def test_an_audit_log_that_cannot_be_written_releases_no_hit(hub: HubServer) -> None:
    assert hub.runtime.world is not None
    await hub.runtime.services.audit_log.close()
    async for client in connected(hub):
        await client.subscribe("s", STREAM, {"text": "Reyes"})
        messages = await client.until_complete("s")
        # shown unwritable before anything was asked
        assert sum(len(s.requests) for s in hub.runtime.world.simulators.values()) == 0
        await client.subscribe("q", SEARCH, {"text": "Reyes"})
        query = await client.until_complete("q")
    for answer in (messages, query):
        assert [m["type"] for m in answer] == ["error"]
        assert answer[0]["payload"][0]["extensions"]["code"] == "AUDIT_UNAVAILABLE"


async def test_an_audit_log_lost_mid_stream_withholds_the_last_payload(hub: HubServer) -> None:
    assert hub.runtime.world is not None
    hub.runtime.world.simulators["harbor-rms"].add_fault("latency", delay_ms=600)
    async for client in connected(hub):
        await client.subscribe("s", STREAM, {"text": "Reyes"})
        first = await client.receive()
        assert first["type"] == "next"
        await hub.runtime.services.audit_log.close()
        messages = [first, *await client.until_complete("s")]
    assert messages[-1]["type"] in ("error", "complete")
    nexts = [m for m in messages if m["type"] == "next"]
    # Nothing more leaves once its entry cannot be written.
    assert not any(m["payload"]["data"]["searchStream"]["hits"] for m in nexts[1:])
    assert not any(m["payload"]["data"] and m["payload"]["data"]["searchStream"]["done"]
                   for m in nexts)  # fmt: skip
    codes = {
        e["extensions"]["code"]
        for m in messages
        for e in (m["payload"] if m["type"] == "error" else m.get("payload", {}).get("errors", []))
    }
    assert "AUDIT_UNAVAILABLE" in codes


async def test_a_stream_the_client_completes_is_audited_as_cancelled(hub: HubServer) -> None:
    assert hub.runtime.world is not None
    hub.runtime.world.simulators["harbor-rms"].add_fault("timeout")
    before = len(await entries_of(hub.settings.audit_location))
    async for client in connected(hub):
        await client.subscribe("c", STREAM, {"text": "Reyes"})
        while (await client.receive())["payload"]["data"]["searchStream"]["source"][
            "source"
        ] != "marin-rms":
            pass
        await client.send({"type": "complete", "id": "c"})
        await client.send({"type": "ping"})
        while (await client.receive())["type"] != "pong":
            pass
    for _ in range(100):
        entries = (await entries_of(hub.settings.audit_location))[before:]
        if entries and entries[-1].outcome != "OK":  # the operation's own, after the payloads'
            break
        await asyncio.sleep(0.02)
    *parts, entry = entries
    assert entry.outcome == "CANCELLED"
    # What left before the client stopped, each payload's before it left; what was shown but
    # never sent, if anything, is in the operation's entry.
    assert parts
    assert all(p.outcome == "OK" and p.trace_id == entry.trace_id and p.records for p in parts)
    assert all(p.operation == entry.operation == "Stream" for p in parts)
    assert {r.id for p in parts for r in p.records} <= {r.id for r in entry.records}


async def test_subscriptions_are_not_served_over_http(hub: HubServer) -> None:
    status, body = await hub.post(STREAM, {"text": "Reyes"}, token=hub.token())
    assert status == 400
    assert body["data"] is None
    assert body["errors"][0]["extensions"]["code"] == "BAD_REQUEST"
    assert "WebSocket" in body["errors"][0]["message"]
    assert hub.runtime.world is not None
    assert sum(len(s.requests) for s in hub.runtime.world.simulators.values()) == 0


@pytest.fixture
async def redis_audited(tmp_path: Path, redis_servers: Any) -> AsyncIterator[tuple[HubServer, Any]]:
    server = redis_servers()
    settings = dataclasses.replace(demo_settings(tmp_path), audit_log=f"{server.url}#hub:audit")
    async for hub in serve_hub(settings, world=small_world()):
        yield hub, server


async def test_a_redis_audit_stream_that_is_down_releases_no_hit(
    redis_audited: tuple[HubServer, Any],
) -> None:
    hub, server = redis_audited
    async for client in connected(hub):
        await client.subscribe("ok", STREAM, {"text": "Reyes"})
        assert stream_payloads(await client.until_complete("ok"))[-1]["done"]
        server.kill()
        await client.subscribe("s", STREAM, {"text": "Reyes"})
        messages = await client.until_complete("s")
    assert [m["type"] for m in messages] == ["error"]
    assert messages[0]["payload"][0]["extensions"]["code"] == "AUDIT_UNAVAILABLE"


pg_database, pg_schema = postgres.pg_database, postgres.pg_schema  # fixtures pg_url needs


@pytest.fixture
def pg_url(pg_database: str, pg_schema: str) -> str:
    return f"{pg_database}#{pg_schema}"


async def test_a_postgresql_audit_log_is_shown_writable_and_takes_the_entry(
    tmp_path: Path, pg_url: str
) -> None:
    settings = dataclasses.replace(demo_settings(tmp_path), audit_log=pg_url)
    async with running_hub(settings, world=small_world()) as hub:
        async for client in connected(hub):
            await client.subscribe("pg", STREAM, {"text": "Reyes"})
            payloads = stream_payloads(await client.until_complete("pg"))
        entries = await entries_of(pg_url)
    assert payloads[-1]["done"]
    assert {e.operation for e in entries} == {"Stream"}
    assert len(entries) == 1 + sum(1 for p in payloads if p["hits"])
    (whole,) = [e for e in entries if e.part == 0]
    assert len(whole.records) == sum(len(p["hits"]) for p in payloads)
