"""``auditReview`` over real HTTP: the demo history in the hub's own audit log, reviewed by
each agency's auditor; deny by default; the review is itself audited."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio

from hub.audit import FileAuditLog, SealedEntry
from hub.audit.entry import decode_entry
from hub.demo.history import CASCADE, MARIN, SIERRA, History, write_history
from tests.adapters.conformance import small_world
from tests.conftest import HubServer, demo_settings, serve_hub
from tests.oversight.conftest import END

pytestmark = pytest.mark.asyncio(loop_scope="module")

REVIEW = """query Review($since: DateTime!, $until: DateTime) {
  auditReview(since: $since, until: $until) {
    agency since until entriesReviewed
    findings { kind summary user agency purpose agreement recordId users score
               entries { seq hash at } }
  }
}"""


def stored_entries(hub: HubServer) -> list[SealedEntry]:
    lines = Path(hub.settings.audit_location, "audit.jsonl").read_bytes().splitlines()
    return [decode_entry(line) for line in lines]


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def served(
    tmp_path_factory: pytest.TempPathFactory,
) -> AsyncIterator[tuple[HubServer, History]]:
    tmp = tmp_path_factory.mktemp("review-http")
    settings = demo_settings(tmp)
    # The history first, through the writer; the hub then continues the same chain.
    async with FileAuditLog(Path(settings.audit_location), fsync="never") as log:
        history = await write_history(log, end=END)
    async for hub in serve_hub(settings, world=small_world()):
        yield hub, history


async def review(
    hub: HubServer, history: History, agency: str, roles: tuple[str, ...] = ("auditor",),
    purpose: str | None = "A", **variables: Any,
) -> tuple[int, dict[str, Any]]:  # fmt: skip
    token = hub.token(agency, roles, user=f"{roles[0]}-{agency}")
    values = {
        "since": history.window_start.isoformat(),
        "until": history.end.isoformat(),
        **variables,
    }
    return await hub.post(REVIEW, values, token=token, purpose=purpose)


async def test_an_auditor_gets_the_findings_of_their_part(
    served: tuple[HubServer, History],
) -> None:
    hub, history = served
    status, body = await review(hub, history, CASCADE)
    assert status == 200
    assert "errors" not in body, body
    report = body["data"]["auditReview"]
    assert report["agency"] == CASCADE
    assert report["entriesReviewed"] > 100
    kinds = {f["kind"]: f for f in report["findings"]}
    assert set(kinds) == {
        "PURPOSE_OUTSIDE_AGREEMENT", "OUT_OF_STATE_ALPR", "MANY_USERS_ONE_SUBJECT",
    }  # fmt: skip
    assert kinds["PURPOSE_OUTSIDE_AGREEMENT"]["user"] == "wa-analyst-bgcheck"
    assert kinds["PURPOSE_OUTSIDE_AGREEMENT"]["agreement"] == "MVSO-CCPD-2024"
    subject = kinds["MANY_USERS_ONE_SUBJECT"]
    assert subject["recordId"] == history.seeded["MANY_USERS_ONE_SUBJECT"].record_id
    assert subject["users"] == 7
    # The entries behind a finding are the stored ones.
    stored = {e.seq: e.hash for e in stored_entries(hub)}
    for finding in report["findings"]:
        for ref in finding["entries"]:
            assert stored[ref["seq"]] == ref["hash"]


async def test_marin_and_sierra_see_their_own_findings_only(
    served: tuple[HubServer, History],
) -> None:
    hub, history = served
    _, body = await review(hub, history, MARIN)
    marin = {f["kind"] for f in body["data"]["auditReview"]["findings"]}
    assert marin == {
        "MISSING_CASE_NUMBER", "PURPOSE_OUTSIDE_AGREEMENT", "OUT_OF_STATE_ALPR",
        "UNUSUAL_VOLUME", "AFTER_AGREEMENT_ENDED",
    }  # fmt: skip
    subject = history.seeded["MANY_USERS_ONE_SUBJECT"].record_id
    assert subject is not None
    assert subject not in str(body)
    _, body = await review(hub, history, SIERRA)
    assert body["data"]["auditReview"]["findings"] == []
    # An agency that took part in none of it: nothing, not even a count.
    _, body = await review(hub, history, "NY0990000")
    assert body["data"]["auditReview"]["entriesReviewed"] == 0
    assert body["data"]["auditReview"]["findings"] == []


async def test_deny_by_default(served: tuple[HubServer, History]) -> None:
    hub, history = served
    for roles in (("analyst",), ("supervisor",), ("records",)):
        _, body = await review(hub, history, CASCADE, roles)
        assert body["data"] is None
        assert body["errors"][0]["extensions"]["code"] == "FORBIDDEN", body
        assert "findings" not in str(body["errors"])
    _, body = await review(hub, history, CASCADE, purpose=None)
    assert body["errors"][0]["extensions"]["code"] == "PURPOSE_REQUIRED"
    _, body = await review(
        hub, history, CASCADE, since="2020-01-01T00:00:00+00:00", until=history.end.isoformat()
    )
    assert body["errors"][0]["extensions"]["code"] == "QUERY_REJECTED"


async def test_the_review_is_audited(served: tuple[HubServer, History]) -> None:
    hub, history = served
    status, _ = await review(hub, history, CASCADE)
    assert status == 200
    last = [e for e in stored_entries(hub) if e.user == f"auditor-{CASCADE}"][-1]
    assert last.operation == "Review"
    assert last.outcome == "OK"
    assert last.criteria is not None
    assert "since" in str(last.criteria["auditReview"])
    assert last.seq > history.entries
