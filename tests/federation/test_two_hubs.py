"""Two hub processes, west and east, each the other's source (``hub serve --config``).

Each runs its own demo world (the east one with the east region's agencies), its own var dir,
keys and audit log. A search on one returns the other's records with the owner's provenance
and under the policy of the original requester; both audit logs hold the request under the
same trace id, the receiving one naming the calling hub's account and the hub chain.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import pytest_asyncio

from hub.model import parse_id
from tests.federation.hubs import HubFiles, write_pair
from tests.hub_process import HubProcess

pytestmark = pytest.mark.asyncio(loop_scope="module")

SEARCH = """
query Search($text: String!, $kinds: [EntityKind!]) {
  search(text: $text, kinds: $kinds, limit: 100) {
    hits {
      __typename
      ... on Person {
        id name { given surname } dateOfBirth ssn addresses { city }
        provenance { agency { ori } system { name vendor kind } recordId }
      }
      ... on RecordPointer { kind owner { ori } }
    }
    sources { source agency status count message }
  }
}
"""


@dataclass
class Running:
    files: HubFiles
    process: HubProcess
    session: aiohttp.ClientSession

    async def search(
        self,
        text: str,
        *,
        agency: str,
        roles: tuple[str, ...],
        kinds: list[str] | None = None,
        query: str = SEARCH,
    ) -> tuple[dict[str, Any], str]:
        """(response body, trace id) of a search by a user of ``agency``."""
        token = self.files.token(f"{roles[0]}1", agency, roles)
        headers = {
            "Authorization": f"Bearer {token}",
            "X-Purpose": "C",
            "X-Case-Number": "26-001234",
        }
        async with self.session.post(
            f"{self.files.url}/graphql",
            json={"query": query, "variables": {"text": text, "kinds": kinds}},
            headers=headers,
        ) as resp:
            body = await resp.json()
            assert resp.status == 200, body
            return body, resp.headers["X-Trace-Id"]

    def audit(self, trace_id: str) -> list[dict[str, Any]]:
        lines = self.files.audit_file.read_text().splitlines()
        return [e for e in map(json.loads, lines) if e["trace_id"] == trace_id]


async def _start(files: HubFiles, session: aiohttp.ClientSession, logs: Path) -> Running:
    process = await HubProcess.start(
        files.plan.id, ["--config", str(files.config)], url=files.url,
        cwd=files.config.parent, env=files.env, logs=logs,
    )  # fmt: skip
    return Running(files, process, session)


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def hubs(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[tuple[Running, Running]]:
    root = tmp_path_factory.mktemp("two-hubs")
    west_files, east_files = write_pair(root, size=600)
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as session:
        west = await _start(west_files, session, root)
        east = await _start(east_files, session, root)
        try:
            await asyncio.gather(west.process.ready(session), east.process.ready(session))
            yield west, east
        finally:
            await asyncio.gather(west.process.stop(), east.process.stop())


def _people(body: dict[str, Any]) -> list[dict[str, Any]]:
    return [h for h in body["data"]["search"]["hits"] if h["__typename"] == "Person"]


def _sources(body: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {s["source"]: s for s in body["data"]["search"]["sources"]}


async def test_west_finds_east_records_with_the_owners_provenance(
    hubs: tuple[Running, Running],
) -> None:
    west, east = hubs
    body, trace_id = await west.search("Jordan Reyes", agency="CA0990000", roles=("analyst",))
    people = _people(body)
    hudson = [p for p in people if p["provenance"]["agency"]["ori"] == "NY0990000"]
    assert hudson, people
    (reyes,) = [p for p in hudson if p["dateOfBirth"] == "1988-04-12"]
    assert reyes["provenance"]["system"] == {
        "name": "hudson-rms",
        "vendor": "Northwind",
        "kind": "RMS",
    }
    assert reyes["provenance"]["recordId"].startswith("NW-P-")
    assert parse_id(reyes["id"]).source == "east-hub"  # a lookup by this id goes to the partner
    # The agreement shares identification only: both hubs withhold the SSN and addresses.
    assert (reyes["ssn"], reyes["addresses"]) == (None, None)
    codes = {e["extensions"].get("field") for e in body.get("errors", [])}
    assert {"Person.ssn", "Person.addresses"} <= codes
    # West's own records are there too, alongside.
    assert {"CA0990000", "WA0990100"} <= {p["provenance"]["agency"]["ori"] for p in people}
    assert _sources(body)["east-hub"]["status"] != "ERROR"

    # Both audit trails hold the request, under one trace id.
    (west_entry,) = west.audit(trace_id)
    (east_entry,) = east.audit(trace_id)
    assert (west_entry["user"], west_entry["agency"]) == ("analyst1", "CA0990000")
    assert west_entry["via_user"] is None
    assert any(s["source"] == "east-hub" and s["status"] == "OK" for s in west_entry["sources"])
    assert reyes["id"] in {r["id"] for r in west_entry["records"]}
    # East saw the Marin analyst, through the west hub's account, for the same purpose and case.
    assert (east_entry["user"], east_entry["agency"]) == ("analyst1", "CA0990000")
    assert (east_entry["via_user"], east_entry["via_agency"]) == ("svc-west-hub", "WA0990100")
    assert east_entry["hub_chain"] == ["west-hub"]
    assert (east_entry["purpose"], east_entry["case_number"]) == ("C", "26-001234")
    assert parse_id(reyes["id"]).record_id in {r["id"] for r in east_entry["records"]}
    # East did not send the request back west: that would loop.
    assert "west-hub" not in {s["source"] for s in east_entry["sources"]}


async def test_east_finds_west_records_under_the_east_users_policy(
    hubs: tuple[Running, Running],
) -> None:
    west, east = hubs
    body, trace_id = await east.search(
        "Jordan Reyes", agency="NY0990000", roles=("analyst",), kinds=["PERSON"]
    )
    owners = {p["provenance"]["agency"]["ori"] for p in _people(body)}
    # Cascade City and Harbor Falls share identification with the east region; Marin does not
    # (its records are pointers at the west hub, and pointers do not cross).
    assert {"NY0990000", "WA0990100", "OR0990200"} <= owners
    assert "CA0990000" not in owners
    (entry,) = west.audit(trace_id)
    assert (entry["user"], entry["agency"], entry["roles"]) == (
        "analyst1",
        "NY0990000",
        ["analyst"],
    )
    assert (entry["via_user"], entry["via_agency"]) == ("svc-east-hub", "NY0990000")
    assert entry["hub_chain"] == ["east-hub"]
    visibilities = {r["owner"]: r.get("visibility") for r in entry["records"]}
    assert visibilities.get("CA0990000") in (None, "POINTER")
    assert visibilities["WA0990100"] == "FULL"
    assert len(east.audit(trace_id)) == 1


async def test_the_original_requester_is_who_the_partner_decides_for(
    hubs: tuple[Running, Running],
) -> None:
    # The west-east agreement names analysts and detectives (and partner-hub accounts). An east
    # patrol officer asking through the east hub is decided as a patrol officer, not as the
    # east hub's account: pointers only, so nothing of the west crosses.
    west, east = hubs
    body, trace_id = await east.search(
        "Jordan Reyes", agency="NY0990000", roles=("patrol",), kinds=["PERSON"]
    )
    owners = {p["provenance"]["agency"]["ori"] for p in _people(body)}
    assert owners == {"NY0990000"}
    (entry,) = west.audit(trace_id)
    assert entry["roles"] == ["patrol"]
    assert entry["via_user"] == "svc-east-hub"
    assert {r.get("visibility") for r in entry["records"]} <= {"POINTER"}


PLATE_READS = """
query Reads($text: String!, $kinds: [EntityKind!]) {
  search(text: $text, kinds: $kinds) {
    hits { ... on Person { provenance { agency { ori } } vehicles { plate { number }
      plateReads { provenance { agency { ori } system { name } } } } } }
  }
}
"""


async def test_relationships_by_plate_cross_hubs(hubs: tuple[Running, Running]) -> None:
    # A Marin person's vehicle -> its plate reads: Marin's own ALPR, Sierra's, and Hudson
    # Ridge's through the east hub (Reyes drove east), in one response.
    west, east = hubs
    body, trace_id = await west.search(
        "Jordan Reyes", agency="CA0990000", roles=("analyst",), kinds=["PERSON"], query=PLATE_READS
    )
    marin = [
        h
        for h in body["data"]["search"]["hits"]
        if h and h["provenance"]["agency"]["ori"] == "CA0990000" and h["vehicles"]
    ]
    reads = [r for h in marin for v in h["vehicles"] for r in v["plateReads"] or []]
    systems = {r["provenance"]["system"]["name"] for r in reads}
    assert {"marin-alpr", "hudson-alpr"} <= systems, systems
    # West asked east twice in this one operation (the search, then the plates): two entries
    # at east, both in west's trace.
    east_entries = east.audit(trace_id)
    assert len(east_entries) == 2
    assert all(e["hub_chain"] == ["west-hub"] for e in east_entries)
    assert any(r["owner"] == "NY0990000" for e in east_entries for r in e["records"])


async def test_the_partner_source_counts_its_hits(hubs: tuple[Running, Running]) -> None:
    west, _ = hubs
    body, _ = await west.search("Jordan Reyes", agency="CA0990000", roles=("analyst",))
    from_east = [p for p in _people(body) if parse_id(p["id"]).source == "east-hub"]
    status = _sources(body)["east-hub"]
    assert (status["status"], status["count"]) == ("OK", len(from_east))
    assert sum(s["count"] for s in body["data"]["search"]["sources"]) == len(
        body["data"]["search"]["hits"]
    )
