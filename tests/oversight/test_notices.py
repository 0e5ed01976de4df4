"""Expungement and sealing notices reach the partner hubs that were shown the record: two real
hubs (``hub serve`` processes, tests/federation's pair), each the other's source."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
import pytest_asyncio

from hub.model import EntityKind, make_id, parse_id
from tests.federation.hubs import HubFiles, write_pair
from tests.hub_process import HubProcess

pytestmark = pytest.mark.asyncio(loop_scope="module")

HUDSON = "NY0990000"
SEARCH = """query WestSearch($text: String!) {
  search(text: $text, kinds: [PERSON], limit: 100) {
    hits { ... on Person { id provenance { agency { ori } system { name } } } }
  }
}"""
NOTICE = """mutation Seal($id: ID!) {
  recordNotice(id: $id, notice: SEALED) { id evictedEntries partnersNotified partnersUnreached }
}"""


async def post(
    session: aiohttp.ClientSession, hub: HubFiles, token: str, purpose: str, query: str,
    variables: dict[str, Any],
) -> dict[str, Any]:  # fmt: skip
    headers = {"Authorization": f"Bearer {token}", "X-Purpose": purpose}
    if purpose == "C":
        headers["X-Case-Number"] = "26-001234"
    async with session.post(
        f"{hub.url}/graphql", json={"query": query, "variables": variables}, headers=headers
    ) as resp:
        body: dict[str, Any] = await resp.json()
        assert resp.status == 200, body
        return body


def audit(hub: HubFiles) -> list[dict[str, Any]]:
    return [json.loads(line) for line in hub.audit_file.read_text().splitlines()]


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def pair(
    tmp_path_factory: pytest.TempPathFactory,
) -> AsyncIterator[tuple[HubFiles, HubFiles, aiohttp.ClientSession]]:
    root = tmp_path_factory.mktemp("notices")
    west, east = write_pair(root, size=400)
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as session:
        processes = [
            await HubProcess.start(
                f.plan.id,
                ["--config", str(f.config)],
                url=f.url,
                cwd=f.config.parent,
                env=f.env,
                logs=root,
            )
            for f in (west, east)
        ]
        try:
            await asyncio.gather(*(p.ready(session) for p in processes))
            yield west, east, session
        finally:
            await asyncio.gather(*(p.stop() for p in processes))


async def test_a_sealing_notice_reaches_the_hub_that_was_shown_the_record(
    pair: tuple[HubFiles, HubFiles, aiohttp.ClientSession],
) -> None:
    west, east, session = pair
    analyst = west.token("analyst1", "CA0990000", ("analyst",))
    body = await post(session, west, analyst, "C", SEARCH, {"text": "Jordan Reyes"})
    hudson = [
        h["id"] for h in body["data"]["search"]["hits"]
        if h and h["provenance"]["agency"]["ori"] == HUDSON
    ]  # fmt: skip
    assert hudson, body
    # West's id of the record names east's: east's own hub id of it.
    east_id = parse_id(hudson[0]).record_id
    assert parse_id(east_id).source == "hudson-rms"

    clerk = east.token("records1", HUDSON, ("records",))
    body = await post(session, east, clerk, "A", NOTICE, {"id": east_id})
    assert "errors" not in body, body
    result = body["data"]["recordNotice"]
    assert result["partnersNotified"] == ["west-hub"]
    assert result["partnersUnreached"] == []

    # West took it, as east's clerk through east's service account, and audited it.
    forwarded = [e for e in audit(west) if e["operation"] == "ForwardNotice"]
    assert len(forwarded) == 1
    entry = forwarded[0]
    assert (entry["user"], entry["agency"], entry["outcome"]) == ("records1", HUDSON, "OK")
    assert entry["via_user"] == "svc-east-hub"
    assert entry["hub_chain"] == ["east-hub"]
    assert entry["purpose"] == "A"


async def test_a_record_no_partner_was_shown_goes_nowhere(
    pair: tuple[HubFiles, HubFiles, aiohttp.ClientSession],
) -> None:
    west, east, session = pair
    before = len(audit(west))
    clerk = east.token("records1", HUDSON, ("records",))
    unseen = make_id("hudson-rms", EntityKind.PERSON, "never-shown-1")
    body = await post(session, east, clerk, "A", NOTICE, {"id": unseen})
    assert body["data"]["recordNotice"]["partnersNotified"] == []
    assert not [e for e in audit(west)[before:] if e["operation"] == "ForwardNotice"]


async def test_only_the_partner_may_forward_and_only_its_records_staff(
    pair: tuple[HubFiles, HubFiles, aiohttp.ClientSession],
) -> None:
    west, east, session = pair
    # West's own user cannot seal east's record at west: it names no source of west's.
    east_id = make_id("hudson-rms", EntityKind.PERSON, "x-1")
    clerk = west.token("records1", "CA0990000", ("records",))
    body = await post(session, west, clerk, "A", NOTICE, {"id": east_id})
    assert body["data"] is None
    assert body["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"
    # An east analyst (not records staff) cannot send one at east, so nothing is forwarded.
    analyst = east.token("analyst2", HUDSON, ("analyst",))
    body = await post(session, east, analyst, "A", NOTICE, {"id": east_id})
    assert body["errors"][0]["extensions"]["code"] == "FORBIDDEN"
