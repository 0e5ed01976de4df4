"""The audit review: each seeded misuse of the demo history produces its finding, a clean
history none; findings link to the stored entries; an auditor learns only of their part."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import msgspec
import pytest

from hub.audit import FileAuditLog, verify_file
from hub.demo.history import CASCADE, HARBOR, MARIN, SIERRA
from hub.oversight import FindingKind, ReviewFacts, ReviewReport, Thresholds, review_trail, robust_z
from hub.oversight.review import review_entries
from tests.oversight.conftest import Trail

pytestmark = pytest.mark.asyncio(loop_scope="module")
EAST_ORI = "NY0990000"  # an agency of no part in the west's history


_REVIEWS: dict[tuple[str, str], ReviewReport] = {}


async def review(trail: Trail, reader: str, facts: ReviewFacts) -> ReviewReport:
    """The review of the history's window (each trail and reader reviewed once: a review is
    a pure function of the trail, which the tests never change)."""
    key = (str(trail.directory), reader)
    if key not in _REVIEWS:
        async with FileAuditLog(trail.directory, fsync="never") as log:
            h = trail.history
            _REVIEWS[key] = await review_trail(
                log, reader, facts, since=h.window_start, until=h.end
            )
    return _REVIEWS[key]


async def test_the_history_is_chained_by_the_real_writer(seeded: Trail) -> None:
    report = verify_file(seeded.directory / "audit.jsonl")
    assert report.ok, report.describe()
    assert report.entries == seeded.history.entries > 3000


async def test_each_seeded_misuse_produces_its_finding(seeded: Trail, facts: ReviewFacts) -> None:
    stored = seeded.entries()
    found: dict[str, set[tuple[str | None, str | None]]] = {}
    for reader in (MARIN, CASCADE, HARBOR, SIERRA):
        for f in (await review(seeded, reader, facts)).findings:
            found.setdefault(f.kind.value, set()).add((f.user, f.record_id))
            # Every finding names the stored entries behind it, by seq and hash.
            assert f.entries
            for ref in f.entries:
                assert stored[ref.seq].hash == ref.hash
                assert stored[ref.seq].at == ref.at
    assert set(found) == {k.value for k in FindingKind}
    for kind, seeded_case in seeded.history.seeded.items():
        # Each finding is that misuse's, and only that misuse's: nothing else is flagged.
        assert found[kind] == {(seeded_case.user, seeded_case.record_id)}, kind


async def test_a_clean_history_yields_no_finding(clean: Trail, facts: ReviewFacts) -> None:
    for reader in (MARIN, CASCADE, HARBOR, SIERRA):
        report = await review(clean, reader, facts)
        assert report.entries_reviewed > 100
        assert report.findings == (), [f.summary for f in report.findings]


async def test_findings_behind_entries_the_auditor_may_read(
    seeded: Trail, facts: ReviewFacts
) -> None:
    # The subject searched by many users is Cascade City's record, searched by 3 Cascade City
    # and 4 Marin users: Cascade City's auditor reads all seven; Marin's reads only its four
    # users' entries (fewer than the threshold), so it learns of no such finding.
    subject = seeded.history.seeded["MANY_USERS_ONE_SUBJECT"].record_id
    cascade = await review(seeded, CASCADE, facts)
    many = [f for f in cascade.findings if f.kind is FindingKind.MANY_USERS_ONE_SUBJECT]
    assert [(f.record_id, f.users) for f in many] == [(subject, 7)]
    marin = await review(seeded, MARIN, facts)
    assert all(f.kind is not FindingKind.MANY_USERS_ONE_SUBJECT for f in marin.findings)
    # An agency with no part in any of it: no finding, no entry, no record id, no count.
    outsider = await review(seeded, EAST_ORI, facts)
    assert outsider.entries_reviewed == 0
    assert outsider.findings == ()
    # Sierra's auditor sees Sierra's ALPR system searched, under its agreement: nothing else.
    sierra = await review(seeded, SIERRA, facts)
    assert sierra.findings == ()
    assert subject is not None
    for f in sierra.findings + outsider.findings:
        assert subject not in repr(f)


async def test_summaries_carry_no_criteria(seeded: Trail, facts: ReviewFacts) -> None:
    stored = seeded.entries()
    for reader in (MARIN, CASCADE, HARBOR):
        for f in (await review(seeded, reader, facts)).findings:
            for ref in f.entries:
                entry = stored[ref.seq]
                for value in (entry.criteria or {}).values():
                    if isinstance(value, str):
                        assert value not in f.summary
                if entry.case_number:
                    assert entry.case_number not in f.summary


async def test_volume_against_peers_of_the_same_agency_and_role(
    seeded: Trail, facts: ReviewFacts
) -> None:
    # No history at all before the window: only the peers can tell.
    entries = [
        e for e in seeded.entries().values() if e.at >= seeded.history.window_start.isoformat()
    ]
    report = review_entries(
        entries, MARIN, facts, since=seeded.history.window_start, until=seeded.history.end,
        thresholds=Thresholds(history_days=0),
    )  # fmt: skip
    volume = [f for f in report.findings if f.kind is FindingKind.UNUSUAL_VOLUME]
    assert [f.user for f in volume] == ["ca-analyst1"]
    assert "other analyst" in volume[0].summary


async def test_robust_z() -> None:
    assert robust_z(5, []) == 0.0
    assert robust_z(10, [10, 10, 10]) == 0.0
    # MAD 1 of a flat history is floored at a Poisson count's: 60 against a median of 3.
    assert robust_z(60, [3, 3, 4, 2, 3]) == pytest.approx(0.6745 * 57 / (0.6745 * 3**0.5))
    assert robust_z(14, [10, 12, 8, 30, 10]) < 3.5


async def test_a_window_before_any_history_is_empty(seeded: Trail, facts: ReviewFacts) -> None:
    async with FileAuditLog(seeded.directory, fsync="never") as log:
        start = seeded.history.start - timedelta(days=30)
        report = await review_trail(log, MARIN, facts, since=start, until=seeded.history.start)
    assert report.entries_reviewed == 0
    assert report.findings == ()


def _with_stream_parts(entries: list[Any], every: int = 3, parts: int = 4) -> list[Any]:
    """``entries`` as if every ``every``-th had been a stream: before its own entry, one entry
    per payload (part 1, 2, ...) holding the records that payload released."""
    out: list[Any] = []
    for i, e in enumerate(entries):
        if i % every == 0:
            out += [
                msgspec.structs.replace(e, part=n, records=e.records[n - 1 :: parts], sources=())
                for n in range(1, parts + 1)
            ]
        out.append(e)
    return out


async def test_a_streams_payload_entries_count_as_one_search(
    seeded: Trail, facts: ReviewFacts
) -> None:
    """Volume, missing case numbers and many users on one subject count operations: a stream's
    payload entries are not searches of their own."""
    entries = sorted(seeded.entries().values(), key=lambda e: e.seq)
    since, until = seeded.history.window_start, seeded.history.end
    plain = review_entries(entries, MARIN, facts, since=since, until=until)
    streamed = review_entries(_with_stream_parts(entries), MARIN, facts, since=since, until=until)
    assert streamed == plain
    assert plain.findings
