"""auditEvents: filtered, scoped to the reader's agency; tail for operators."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path

import msgspec
import pytest
import redis.asyncio as aioredis

from hub.audit.entry import AuditEntry, SealedEntry, SourceCall, Withholding
from hub.audit.file_log import FileAuditLog
from hub.audit.location import open_audit_log
from hub.audit.log import AuditLog
from hub.audit.query import AuditQuery, query_events, summarize, tail
from hub.audit.redis_log import RedisAuditLog
from tests.audit.conftest import make_entry

A, B, C = "CA0990000", "WA0990100", "OR0990200"


def at(minute: int) -> str:
    return f"2024-03-01T10:{minute:02d}:00.000000+00:00"


def trail_entries() -> list[AuditEntry]:
    return [
        # 1: A's user, records of A and B.
        make_entry(1, user="a-user", agency=A, at=at(1),
                   records=(("rec-a1", A), ("rec-b1", B))),
        # 2: B's user saw a record of A (and one of B): A must see it, trimmed to A's part.
        msgspec.structs.replace(
            make_entry(2, user="b-user", agency=B, at=at(2),
                       records=(("rec-a1", A), ("rec-b2", B))),
            sources=(SourceCall(source="marin-rms", agency=A, status="OK", count=1),
                     SourceCall(source="cascade-rms", agency=B, status="OK", count=1)),
            withheld=(Withholding(field="Person.ssn", rules=("b-rule",), count=1),),
            client_address="10.9.9.9"),
        # 3: B's user, only B's records and sources: not A's business.
        msgspec.structs.replace(
            make_entry(3, user="b-user", agency=B, at=at(3), records=(("rec-b3", B),)),
            sources=(SourceCall(source="cascade-rms", agency=B, status="OK", count=1),)),
        # 4: C's user searched A's source and found nothing: a search of A's systems.
        msgspec.structs.replace(
            make_entry(4, user="c-user", agency=C, at=at(4), purpose="J"),
            sources=(SourceCall(source="marin-rms", agency=A, status="NO_HIT"),)),
        # 5: A's user again, another purpose.
        make_entry(5, user="a-user2", agency=A, at=at(5), purpose="F",
                   records=(("rec-a2", A),)),
    ]


async def fill(log: AuditLog) -> None:
    for entry in trail_entries():
        await log.append(entry)


@pytest.fixture
async def file_log(tmp_path: Path) -> FileAuditLog:
    log = FileAuditLog(tmp_path)
    await fill(log)
    await log.close()
    return log


def seqs(found: list[SealedEntry]) -> list[int]:
    return [e.seq for e in found]


async def test_an_auditor_sees_only_events_about_their_agency(file_log: FileAuditLog) -> None:
    assert seqs(await query_events(file_log, A)) == [5, 4, 2, 1]  # newest first
    assert seqs(await query_events(file_log, B)) == [3, 2, 1]
    assert seqs(await query_events(file_log, C)) == [4]
    assert seqs(await query_events(file_log, "NV0990000")) == []


async def test_another_agencys_event_is_trimmed_to_the_readers_part(
    file_log: FileAuditLog
) -> None:
    by_seq = {e.seq: e for e in await query_events(file_log, A)}
    foreign = by_seq[2]
    assert [(r.id, r.owner) for r in foreign.records] == [("rec-a1", A)]
    assert [s.source for s in foreign.sources] == ["marin-rms"]
    assert foreign.withheld == ()
    assert foreign.client_address is None
    # Who, why and what for stay: that is what the owner needs to know.
    assert (foreign.user, foreign.agency, foreign.purpose, foreign.case_number) == (
        "b-user", B, "C", None)
    assert foreign.criteria == {"text": "Reyes 2", "plate": "7ABC123"}
    # The reader's own users' events are whole.
    own = by_seq[1]
    assert [r.id for r in own.records] == ["rec-a1", "rec-b1"]
    # B sees its own user's event 2 whole.
    whole = next(e for e in await query_events(file_log, B) if e.seq == 2)
    assert len(whole.records) == 2
    assert whole.client_address == "10.9.9.9"


@pytest.mark.parametrize(("query", "expected"), [
    (AuditQuery(user="a-user"), [1]),
    (AuditQuery(user="b-user"), [2]),  # event 3 is out of A's scope
    (AuditQuery(agency=B), [2, 1]),  # B's users or B's records, within A's scope
    (AuditQuery(agency=A), [5, 2, 1]),  # A's users, or A's records
    (AuditQuery(record_id="rec-a1"), [2, 1]),
    (AuditQuery(record_id="rec-b3"), []),
    (AuditQuery(purpose="J"), [4]),
    (AuditQuery(since=datetime(2024, 3, 1, 10, 2, tzinfo=UTC)), [5, 4, 2]),
    (AuditQuery(until=datetime(2024, 3, 1, 10, 2, tzinfo=UTC)), [1]),
    (AuditQuery(since=datetime(2024, 3, 1, 10, 2), until=datetime(2024, 3, 1, 10, 5)), [4, 2]),
    (AuditQuery(limit=2), [5, 4]),
    (AuditQuery(limit=0), []),
    (AuditQuery(user="a-user", purpose="F"), []),
])
async def test_filters(file_log: FileAuditLog, query: AuditQuery, expected: list[int]) -> None:
    assert seqs(await query_events(file_log, A, query)) == expected


async def test_query_and_tail_on_a_redis_stream(
    redis_client: aioredis.Redis, stream_key: str
) -> None:
    log = RedisAuditLog(redis_client, key=stream_key)
    await fill(log)
    assert seqs(await query_events(log, A)) == [5, 4, 2, 1]
    assert [e.seq async for e in tail(log, 2)] == [4, 5]


async def test_a_time_window_on_a_redis_stream(
    redis_client: aioredis.Redis, stream_key: str
) -> None:
    # Entries are written when their operation ends, so the stream id (Redis's clock) is close
    # to the entry's own time; the window is pushed down to XRANGE with room for clock skew.
    log = RedisAuditLog(redis_client, key=stream_key)
    now = datetime.now(UTC)
    for n, minutes_ago in enumerate((4, 2, 0), start=1):
        when = (now - timedelta(minutes=minutes_ago)).isoformat(timespec="microseconds")
        await log.append(make_entry(n, agency=A, at=when))
    window = AuditQuery(since=now - timedelta(minutes=3), until=now + timedelta(seconds=1))
    assert seqs(await query_events(log, A, window)) == [3, 2]
    old = AuditQuery(until=now - timedelta(minutes=3))
    assert seqs(await query_events(log, A, old)) == [1]


async def test_tail_follows_new_entries(tmp_path: Path) -> None:
    async with FileAuditLog(tmp_path, poll_interval=0.01) as log:
        await fill(log)
        seen: list[int] = []
        caught_up = asyncio.Event()

        async def follow() -> None:
            async for entry in tail(log, 1, follow=True):
                seen.append(entry.seq)
                if len(seen) == 1:
                    caught_up.set()
                if len(seen) == 3:
                    return

        follower = asyncio.create_task(follow())
        await asyncio.wait_for(caught_up.wait(), 5)
        await log.append(make_entry(6))
        await log.append(make_entry(7))
        await asyncio.wait_for(follower, 5)
    assert seen == [5, 6, 7]


async def test_tail_follows_a_redis_stream(redis_client: aioredis.Redis, stream_key: str) -> None:
    log = RedisAuditLog(redis_client, key=stream_key)
    await log.append(make_entry(1))
    seen: list[int] = []
    caught_up = asyncio.Event()

    async def follow() -> None:
        async for entry in tail(log, 5, follow=True):
            seen.append(entry.seq)
            if len(seen) == 1:
                caught_up.set()
            if len(seen) == 3:
                return

    follower = asyncio.create_task(follow())
    await asyncio.wait_for(caught_up.wait(), 5)
    writer = RedisAuditLog(redis_client, key=stream_key)
    await writer.append(make_entry(2))
    await writer.append(make_entry(3))
    await asyncio.wait_for(follower, 5)
    assert seen == [1, 2, 3]


async def test_lines_that_are_not_entries_are_skipped_by_readers(tmp_path: Path) -> None:
    async with FileAuditLog(tmp_path) as log:
        await log.append(make_entry(1, agency=A))
    with log.path.open("ab") as f:
        f.write(b'garbage mentioning CA0990000\n')
    assert seqs(await query_events(log, A)) == [1]
    assert [e.seq async for e in tail(log, 5)] == [1]


def test_summary_lines_carry_no_cji() -> None:
    entry = msgspec.structs.replace(
        make_entry(1, records=(("rec-secret", A),)), outcome="REFUSED",
        error_code="PURPOSE_REQUIRED")
    sealed = SealedEntry(**msgspec.structs.asdict(entry), seq=7, prev="0" * 64, hash="f" * 64)
    line = summarize(sealed)
    assert line.startswith("#7 ")
    assert "u1@CA0990000" in line
    assert "PURPOSE_REQUIRED" in line
    assert "records=1" in line
    for secret in ("Reyes", "7ABC123", "rec-secret"):
        assert secret not in line


async def test_open_audit_log_by_location(tmp_path: Path, redis_url: str) -> None:
    by_dir = open_audit_log(tmp_path)
    assert isinstance(by_dir, FileAuditLog)
    assert by_dir.path == tmp_path / "audit.jsonl"
    by_file = open_audit_log(str(tmp_path / "audit.jsonl"), fsync="never")
    assert isinstance(by_file, FileAuditLog)
    assert by_file.path == tmp_path / "audit.jsonl"
    assert by_file.fsync == "never"
    by_url = open_audit_log(redis_url + "#audit:custom")
    assert isinstance(by_url, RedisAuditLog)
    assert by_url.key == "audit:custom"
    await by_url.close()
    default_key = open_audit_log(redis_url)
    assert isinstance(default_key, RedisAuditLog)
    assert default_key.key == "hub:audit"
    await default_key.close()
