"""Trace context between partner hubs through ``opentelemetry.propagate``: the calling hub's
adapter injects its operation's span (W3C ``traceparent``); the answering hub's operation is
that span's child, in the trace the signed assertion names. An unsigned ``traceparent`` never
moves an audited operation into another trace."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
import pytest_asyncio
from opentelemetry import baggage, trace
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from hub.adapters.base import SearchRequest
from hub.adapters.partner import PartnerHubAdapter
from hub.audit import attributes as attr
from hub.context import RequestContext, Subject
from hub.demo.world import generate_world, today
from hub.model import EntityKind
from hub.trust.federation import ASSERTION_HEADER, AssertionSigner, caller_span
from tests.conftest import HubServer, serve_hub
from tests.federation.hubs import HubFiles, write_pair

pytestmark = pytest.mark.asyncio(loop_scope="module")

EAST_WORLD = generate_world(size=300, seed=3, region="east", as_of=today())
SEARCH = '{ search(text: "Reyes", kinds: [PERSON]) { hits { __typename } } }'


@dataclasses.dataclass
class East:
    server: HubServer
    exporter: InMemorySpanExporter

    def operations(self, trace_id: str) -> list[ReadableSpan]:
        assert self.server.runtime.trail is not None
        self.server.runtime.trail.tracer_provider.force_flush()
        return [
            s
            for s in self.exporter.get_finished_spans()
            if s.name == attr.SPAN_OPERATION and format(s.context.trace_id, "032x") == trace_id
        ]


@pytest.fixture(scope="module")
def pair(tmp_path_factory: pytest.TempPathFactory) -> tuple[HubFiles, HubFiles]:
    return write_pair(tmp_path_factory.mktemp("propagation"), size=300)


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def east(pair: tuple[HubFiles, HubFiles]) -> AsyncIterator[East]:
    exporter = InMemorySpanExporter()
    async for server in serve_hub(pair[1].settings(), world=EAST_WORLD, ops_exporter=exporter):
        yield East(server, exporter)


def _ctx() -> RequestContext:
    subject = Subject(user_id="analyst1", name="Ana Lyst", ori="CA0990000", state="CA",
                      roles=frozenset({"analyst"}))  # fmt: skip
    return RequestContext(subject=subject, purpose="C", case_number="26-001234")


async def _post(east: East, token: str, **headers: str) -> tuple[int, dict[str, Any], str]:
    async with east.server.session.post(
        f"{east.server.url}/graphql",
        json={"query": SEARCH},
        headers={"Authorization": f"Bearer {token}", "X-Purpose": "C", **headers},
    ) as resp:
        return resp.status, await resp.json(), resp.headers.get("X-Trace-Id", "")


async def test_the_partners_operation_is_the_child_of_the_callers_span(
    pair: tuple[HubFiles, HubFiles], east: East
) -> None:
    west = pair[0].settings()
    (source,) = [s for s in west.sources if s.kind == "hub"]
    async with aiohttp.ClientSession() as session:
        adapter = PartnerHubAdapter(
            dataclasses.replace(source, url=east.server.url), session,
            AssertionSigner.from_settings(west),
        )  # fmt: skip
        provider = TracerProvider()
        with provider.get_tracer("west").start_as_current_span("west operation") as span:
            caller = span.get_span_context()
            await adapter.search(SearchRequest(kinds=frozenset({EntityKind.PERSON}), text="Reyes",
                                               context=_ctx()))  # fmt: skip
        provider.shutdown()
    (operation,) = east.operations(format(caller.trace_id, "032x"))
    assert operation.parent is not None
    assert operation.parent.is_remote
    assert operation.parent.span_id == caller.span_id


async def test_a_traceparent_naming_another_trace_than_the_assertion_is_not_believed(
    pair: tuple[HubFiles, HubFiles], east: East
) -> None:
    west_files, _ = pair
    signer = AssertionSigner.from_settings(west_files.settings())
    signed, forged = "4bf92f3577b34da6a3ce929d0e0e4736", "0af7651916cd43dd8448eb211c80319c"
    assertion = signer.sign(_ctx(), "east-hub", trace_id=signed)
    status, body, trace_id = await _post(
        east, west_files.env["EAST_HUB_TOKEN"],
        **{ASSERTION_HEADER: assertion, "traceparent": f"00-{forged}-b7ad6b7169203331-01"},
    )  # fmt: skip
    assert status == 200, body
    assert trace_id == signed
    (operation,) = east.operations(signed)
    assert operation.parent is not None
    assert operation.parent.span_id != 0xB7AD6B7169203331
    assert east.operations(forged) == []


async def test_an_ordinary_callers_traceparent_starts_no_shared_trace(
    pair: tuple[HubFiles, HubFiles], east: East
) -> None:
    _, east_files = pair
    user = east_files.token("analyst9", "NY0990000", ("analyst",))
    chosen = "0af7651916cd43dd8448eb211c80319d"
    status, body, trace_id = await _post(east, user, traceparent=f"00-{chosen}-b7ad6b7169203331-01")
    assert status == 200, body
    assert trace_id != chosen
    (operation,) = east.operations(trace_id)
    assert operation.parent is None


async def test_caller_span_reads_the_w3c_header_for_the_signed_trace_only() -> None:
    signed = "4bf92f3577b34da6a3ce929d0e0e4736"
    header = {"traceparent": f"00-{signed}-00f067aa0ba902b7-01", "baggage": "user=someone"}
    found = caller_span(signed, header)
    assert found is not None
    parent = trace.get_current_span(found).get_span_context()
    assert (parent.span_id, parent.is_remote) == (0x00F067AA0BA902B7, True)
    assert baggage.get_all(found) == {}  # what a caller sends along goes no further
    assert caller_span(None, header) is None
    assert caller_span("0af7651916cd43dd8448eb211c80319c", header) is None
    assert caller_span(signed, {"traceparent": "garbage"}) is None
    assert caller_span(signed, {}) is None
