"""Whose auditor reads which question, end to end (real HTTP, the demo world's simulators).

An agency's auditor learns of another agency's user's question only when the question reached the
auditor's agency's systems or returned its records. A source that policy forbade asking (DENIED)
was never contacted: its agency's auditor must not read the question, its criteria or its case.
"""

from __future__ import annotations

from typing import Any

from hub.audit import SealedEntry, open_audit_log
from hub.audit.entry import decode_entry
from hub.demo.world import REYES_PLATE
from tests.conftest import HubServer

MARIN, CASCADE, HARBOR, SIERRA = "CA0990000", "WA0990100", "OR0990200", "NV0990000"

PLATE_READS = """query($plate: String!) {
  plateReads(plate: $plate) { id provenance { agency { ori } system { name } } }
}"""
SEARCH = """query($text: String!) {
  search(text: $text) {
    hits {
      __typename
      ... on Person { id provenance { agency { ori } } }
      ... on Vehicle { id provenance { agency { ori } } }
      ... on Incident { id provenance { agency { ori } } }
      ... on PlateRead { id provenance { agency { ori } } }
    }
  }
}"""
AUDIT_EVENTS = """query($user: String, $recordId: ID) {
  auditEvents(user: $user, recordId: $recordId) {
    seq user agency caseNumber criteria clientAddress
    sources { source status } records { id owner } withheld { field }
  }
}"""


async def ask(
    hub: HubServer,
    query: str,
    variables: dict[str, Any],
    *,
    user: str,
    agency: str,
    roles: tuple[str, ...],
    purpose: str,
    case_number: str | None = None,
) -> dict[str, Any]:
    headers = {"X-Case-Number": case_number} if case_number is not None else None
    token = hub.token(agency, roles, user=user)
    status, body = await hub.post(query, variables, token=token, purpose=purpose, headers=headers)
    assert status == 200, body
    assert "errors" not in body or body["data"] is not None, body
    return body


async def audit_events(
    hub: HubServer, agency: str, *, user: str | None = None, record_id: str | None = None
) -> list[dict[str, Any]]:
    body = await ask(
        hub, AUDIT_EVENTS, {"user": user, "recordId": record_id},
        user=f"auditor-{agency}", agency=agency, roles=("auditor",), purpose="A",
    )  # fmt: skip
    assert "errors" not in body, body
    events: list[dict[str, Any]] = body["data"]["auditEvents"]
    return events


async def stored_entries(hub: HubServer, user: str) -> list[SealedEntry]:
    log = open_audit_log(hub.settings.audit_location)
    try:
        return [e async for raw in log.scan() if (e := decode_entry(raw.line)).user == user]
    finally:
        await log.close()


def hit_ids(body: dict[str, Any], field: str) -> dict[str, str]:
    """Hit id -> owning ORI, of the hits that carry an id (pointers do not)."""
    hits = body["data"][field]
    if isinstance(hits, dict):
        hits = hits["hits"]
    return {h["id"]: h["provenance"]["agency"]["ori"] for h in hits if h.get("id")}


async def test_a_denied_source_does_not_show_the_question_to_its_agencys_auditor(
    hub: HubServer,
) -> None:
    detective = "det-cascade-1"
    body = await ask(
        hub, PLATE_READS, {"plate": REYES_PLATE.number}, user=detective, agency=CASCADE,
        roles=("detective",), purpose="ALPR-INV", case_number="26-004711",
    )  # fmt: skip
    sources = {s["source"]: s for s in body["extensions"]["sources"]}
    # California's in-state-only ALPR law: Marin's ALPR was never contacted.
    assert sources["marin-alpr"]["status"] == "DENIED"
    assert sources["marin-alpr"]["latencyMs"] is None
    assert not hub.simulator_requests("marin-alpr")
    # The stored entry names marin-alpr, DENIED (the trail records where the question did not go).
    (entry,) = await stored_entries(hub, detective)
    assert entry.case_number == "26-004711"
    assert {(s.source, s.status) for s in entry.sources if s.agency == MARIN} == {
        ("marin-alpr", "DENIED")
    }
    assert all(r.owner != MARIN for r in entry.records)

    # Marin's auditor does not read it: not the criteria, not the case number, not that it was.
    assert await audit_events(hub, MARIN, user=detective) == []
    assert all(e["user"] != detective for e in await audit_events(hub, MARIN))

    # Cascade's auditor reads its own detective's search whole, DENIED source included.
    (own,) = await audit_events(hub, CASCADE, user=detective)
    assert own["caseNumber"] == "26-004711"
    assert {"source": "marin-alpr", "status": "DENIED"} in own["sources"]
    # Sierra's ALPR was asked and answered: Sierra's auditor reads the question, its own part.
    reads = hit_ids(body, "plateReads")
    assert reads
    assert set(reads.values()) == {SIERRA}
    (sierra,) = await audit_events(hub, SIERRA, user=detective)
    assert sierra["caseNumber"] == "26-004711"
    assert sierra["criteria"]["plateReads"][0]["plate"] == REYES_PLATE.number
    assert {s["source"] for s in sierra["sources"]} == {"sierra-alpr"}
    assert {r["owner"] for r in sierra["records"]} == {SIERRA}


async def test_an_agency_whose_records_came_back_reads_only_its_own_part(hub: HubServer) -> None:
    analyst = "analyst-cascade-1"
    body = await ask(
        hub, SEARCH, {"text": "Reyes"}, user=analyst, agency=CASCADE, roles=("analyst",),
        purpose="C", case_number="26-004712",
    )  # fmt: skip
    returned = hit_ids(body, "search")
    # Marin shares with Cascade (agreement MVSO-CCPD-2024): Marin's records came back.
    marin_ids = {i for i, owner in returned.items() if owner == MARIN}
    assert marin_ids
    assert set(returned.values()) - {MARIN}, "only Marin's records came back"
    (entry,) = await stored_entries(hub, analyst)
    assert {r.owner for r in entry.records} - {MARIN}

    (event,) = await audit_events(hub, MARIN, user=analyst)
    assert (event["user"], event["agency"], event["caseNumber"]) == (analyst, CASCADE, "26-004712")
    assert event["criteria"]["search"][0]["text"] == "Reyes"
    # Only Marin's records (every one of them, pointers included), only Marin's sources that
    # were asked; no address, no withheld list.
    assert {r["owner"] for r in event["records"]} == {MARIN}
    assert {r["id"] for r in event["records"]} == {r.id for r in entry.records if r.owner == MARIN}
    assert marin_ids <= {r["id"] for r in event["records"]}
    asked = {
        s.source
        for s in entry.sources
        if s.agency == MARIN and s.status in ("OK", "NO_HIT", "TIMEOUT", "ERROR")
    }
    assert "marin-rms" in asked
    assert {s["source"] for s in event["sources"]} == asked
    assert all(s["status"] not in ("DENIED", "SKIPPED") for s in event["sources"])
    assert event["clientAddress"] is None
    assert event["withheld"] == []


async def test_a_record_id_filter_does_not_confirm_another_agencys_access(
    hub: HubServer,
) -> None:
    analyst = "analyst-marin-1"
    body = await ask(
        hub, SEARCH, {"text": "Reyes"}, user=analyst, agency=MARIN, roles=("analyst",),
        purpose="C", case_number="26-004713",
    )  # fmt: skip
    returned = hit_ids(body, "search")
    # Cascade shares with Marin (agreement CCPD-MVSO-2024): a Cascade record came back.
    cascade_id = next(i for i, owner in returned.items() if owner == CASCADE)
    (entry,) = await stored_entries(hub, analyst)
    harbor_asked = [s for s in entry.sources if s.agency == HARBOR]
    assert harbor_asked
    assert all(s.status in ("OK", "NO_HIT") for s in harbor_asked)

    # Harbor's systems were asked, so Harbor's auditor reads the search (its own part) ...
    (event,) = await audit_events(hub, HARBOR, user=analyst)
    assert all(r["owner"] == HARBOR for r in event["records"])
    assert cascade_id not in {r["id"] for r in event["records"]}
    # ... but cannot learn who received Cascade's record: the filter sees only Harbor's part.
    assert await audit_events(hub, HARBOR, record_id=cascade_id) == []
    assert await audit_events(hub, HARBOR, user=analyst, record_id=cascade_id) == []
    # Cascade's auditor, whose record it is, finds the access by its id.
    (found,) = await audit_events(hub, CASCADE, record_id=cascade_id)
    assert (found["user"], found["agency"]) == (analyst, MARIN)
    assert {r["id"] for r in found["records"]} >= {cascade_id}
    assert {r["owner"] for r in found["records"]} == {CASCADE}
    # A Harbor record that came back (agreement HFPD-MVSO-2025) is Harbor's to find.
    harbor_id = next(i for i, owner in returned.items() if owner == HARBOR)
    (by_own_record,) = await audit_events(hub, HARBOR, record_id=harbor_id)
    assert by_own_record["user"] == analyst
