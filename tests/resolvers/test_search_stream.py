"""Streaming search (``resolvers.search``, ``Subscription.searchStream``) follows the policy of
``search`` exactly: over a real WebSocket against the real app and the demo world's simulators,
each subject learns from the stream what ``search`` tells it, no more (hits, pointers, counts,
withheld fields), and the limit holds across sources. And ``HubContext.ask_as_completed``, the
fan-out the stream rides on: closing it cancels the calls still out.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from datetime import UTC, datetime
from typing import Any

import pytest

from hub import model
from hub.adapters.base import SearchRequest
from hub.adapters.fanout import SourceAnswer, SourceStatus
from hub.context import RequestContext, Subject
from hub.demo.world import REYES_PLATE, SEALED_SURNAME, SEX_OFFENSE_VICTIM_SURNAME
from hub.errors import AuditUnavailable
from resolvers.context import HubContext
from resolvers.search import search_stream
from tests.conftest import HubServer
from tests.edge.test_websocket import STREAM, auth, connected, stream_payloads

HITS = STREAM[STREAM.index("hits {") : STREAM.index("sources {")]
SEARCH = f"""
query Search($text: String!, $kinds: [EntityKind!], $limit: Int) {{
  search(text: $text, kinds: $kinds, limit: $limit) {{
    {HITS}
    sources {{ source agency status count }}
  }}
}}
"""
SUBJECTS = [
    ("NV0990000", ("analyst",)),  # no agreement for Reyes's records: pointers only
    ("OR0990200", ("patrol",)),
    ("WA0990100", ("analyst",)),
    ("CA0990000", ("analyst",)),
]
TEXTS = ["Reyes", SEALED_SURNAME, SEX_OFFENSE_VICTIM_SURNAME, REYES_PLATE.number, "Jordan"]


def hit_key(hit: dict[str, Any]) -> tuple[Any, ...]:
    if hit["__typename"] == "RecordPointer":
        return ("RecordPointer", hit["kind"], hit["owner"]["ori"], hit["contact"])
    return (hit["__typename"], hit["id"], repr(sorted(hit.items())))


def withheld(errors: list[dict[str, Any]] | None) -> Counter[str]:
    out: Counter[str] = Counter()
    for error in errors or []:
        assert error["extensions"]["code"] == "FORBIDDEN_FIELD", error
        out[error["extensions"]["field"]] += error["extensions"]["withheld"]
    return out


async def test_each_subject_learns_from_the_stream_what_search_tells_it(hub: HubServer) -> None:
    for agency, roles in SUBJECTS:
        async for client in connected(hub, **auth(hub, agency=agency, roles=roles)):
            for n, text in enumerate(TEXTS):
                variables = {"text": text}
                body = await hub.query(SEARCH, variables, agency=agency, roles=roles)
                await client.subscribe(str(n), STREAM, variables)
                messages = await client.until_complete(str(n))
                payloads = stream_payloads(messages)
                case = (agency, roles, text)
                # the same hits and pointers (the order may differ: by arrival, then score)
                streamed = [h for p in payloads for h in p["hits"]]
                searched = body["data"]["search"]["hits"]
                assert sorted(map(hit_key, streamed)) == sorted(map(hit_key, searched)), case
                # the same statuses and counts of hits shown, one per configured source
                last = payloads[-1]
                assert last["done"], case
                assert last["sources"] == body["data"]["search"]["sources"], case
                # the same fields withheld, as often
                told = sum(
                    (withheld(m["payload"].get("errors")) for m in messages if m["type"] == "next"),
                    Counter(),
                )
                assert told == withheld(body.get("errors")), case
                if agency == "NV0990000" and text == "Reyes":
                    # the outsider: pointers only, never another agency's record
                    assert streamed
                    assert all(h["__typename"] == "RecordPointer" for h in streamed)


async def test_the_limit_holds_across_sources(hub: HubServer) -> None:
    async for client in connected(hub):
        for limit in (1, 3):
            await client.subscribe(f"l{limit}", STREAM, {"text": "Reyes", "limit": limit})
            payloads = stream_payloads(await client.until_complete(f"l{limit}"))
            streamed = [h for p in payloads for h in p["hits"]]
            assert len(streamed) == limit
            assert sum(s["count"] for s in payloads[-1]["sources"]) == limit
            for payload in payloads[:-1]:
                assert payload["source"]["count"] == len(payload["hits"])
            body = await hub.query(SEARCH, {"text": "Reyes", "limit": limit})
            assert len(body["data"]["search"]["hits"]) == limit
        await client.subscribe("bad", STREAM, {"text": "Reyes", "limit": 0})
        refused = await client.until_complete("bad")
        assert refused[0]["type"] == "error"
        assert refused[0]["payload"][0]["extensions"]["code"] == "QUERY_REJECTED"


def _context(hub: HubServer) -> HubContext:
    subject = Subject(
        user_id="u1", name="U One", ori="CA0990000", state="CA", roles=frozenset({"analyst"})
    )
    request = RequestContext(
        subject=subject, purpose="C", request_id="r1", received_at=datetime.now(UTC)
    )
    return HubContext(hub.runtime.services, request)


async def test_closing_the_answers_early_cancels_the_calls_still_out(hub: HubServer) -> None:
    assert hub.runtime.world is not None
    hub.runtime.world.simulators["harbor-rms"].add_fault("timeout")
    ctx = _context(hub)
    request = SearchRequest(
        kinds=frozenset(model.EntityKind), text="Reyes", limit=50, context=ctx.request
    )
    answers = ctx.ask_as_completed(
        list(hub.runtime.services.adapters), request.kinds, lambda a: a.search(request)
    )
    seen: list[SourceAnswer | SourceStatus] = []
    async for item in answers:
        seen.append(item)
        if isinstance(item, SourceAnswer) and item.adapter.name == "marin-rms":
            break
    await answers.aclose()
    outstanding = [t for t in asyncio.all_tasks() if t.get_coro().__name__ == "ask_source"]
    assert outstanding == []
    names = [i.adapter.name if isinstance(i, SourceAnswer) else i.source for i in seen]
    assert "harbor-rms" not in names
    assert "marin-rms" in names


async def test_nothing_streams_without_an_audited_stream(hub: HubServer) -> None:
    ctx = _context(hub)  # no edge set before_last_payload: not the WebSocket's
    stream = search_stream(ctx, ["searchStream"], "Reyes", None, None, None)
    with pytest.raises(AuditUnavailable):
        await anext(stream)
    assert not ctx.touched_sources
