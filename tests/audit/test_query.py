"""auditEvents: filtered, scoped to the reader's agency; tail for operators."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path

import msgspec
import pytest
import redis.asyncio as aioredis

from hub.audit.entry import AuditEntry, RecordAccess, SealedEntry, SourceCall, Withholding
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
        make_entry(1, user="a-user", agency=A, at=at(1), records=(("rec-a1", A), ("rec-b1", B))),
        # 2: B's user saw a record of A (and one of B): A must see it, trimmed to A's part.
        msgspec.structs.replace(
            make_entry(
                2, user="b-user", agency=B, at=at(2), records=(("rec-a1", A), ("rec-b2", B))
            ),
            sources=(
                SourceCall(source="marin-rms", agency=A, status="OK", count=1),
                SourceCall(source="cascade-rms", agency=B, status="OK", count=1),
            ),
            withheld=(Withholding(field="Person.ssn", rules=("b-rule",), count=1),),
            client_address="10.9.9.9",
        ),
        # 3: B's user, only B's records and sources: not A's business.
        msgspec.structs.replace(
            make_entry(3, user="b-user", agency=B, at=at(3), records=(("rec-b3", B),)),
            sources=(SourceCall(source="cascade-rms", agency=B, status="OK", count=1),),
        ),
        # 4: C's user searched A's source and found nothing: a search of A's systems.
        msgspec.structs.replace(
            make_entry(4, user="c-user", agency=C, at=at(4), purpose="J"),
            sources=(SourceCall(source="marin-rms", agency=A, status="NO_HIT"),),
        ),
        # 5: A's user again, another purpose.
        make_entry(5, user="a-user2", agency=A, at=at(5), purpose="F", records=(("rec-a2", A),)),
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


async def test_another_agencys_event_is_trimmed_to_the_readers_part(file_log: FileAuditLog) -> None:
    by_seq = {e.seq: e for e in await query_events(file_log, A)}
    foreign = by_seq[2]
    assert [(r.id, r.owner) for r in foreign.records] == [("rec-a1", A)]
    assert [s.source for s in foreign.sources] == ["marin-rms"]
    assert foreign.withheld == ()
    assert foreign.client_address is None
    # Who, why and what for stay: that is what the owner needs to know.
    assert (foreign.user, foreign.agency, foreign.purpose, foreign.case_number) == (
        "b-user",
        B,
        "C",
        None,
    )
    assert foreign.criteria == {"text": "Reyes 2", "plate": "7ABC123"}
    # The reader's own users' events are whole.
    own = by_seq[1]
    assert [r.id for r in own.records] == ["rec-a1", "rec-b1"]
    # B sees its own user's event 2 whole.
    whole = next(e for e in await query_events(file_log, B) if e.seq == 2)
    assert len(whole.records) == 2
    assert whole.client_address == "10.9.9.9"


@pytest.mark.parametrize(
    ("query", "expected"),
    [
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
    ],
)
async def test_filters(file_log: FileAuditLog, query: AuditQuery, expected: list[int]) -> None:
    assert seqs(await query_events(file_log, A, query)) == expected


def foreign(n: int, *sources: SourceCall, records: tuple[tuple[str, str], ...] = ()) -> AuditEntry:
    """C's user's search, with exactly these sources (make_entry adds one of A's)."""
    entry = make_entry(n, user=f"c-user{n}", agency=C, at=at(n), records=records)
    return msgspec.structs.replace(entry, sources=sources)


def marin(status: str, latency_ms: float | None = 1.5, source: str = "marin-rms") -> SourceCall:
    return SourceCall(source=source, agency=A, status=status, latency_ms=latency_ms)


@pytest.mark.parametrize(
    ("call", "in_scope"),
    [
        (marin("OK"), True),
        (marin("NO_HIT"), True),
        (marin("TIMEOUT"), True),
        (marin("ERROR"), True),
        (marin("OK", latency_ms=0.0), True),  # answered from the hub's cache
        # Never contacted: policy refused (e.g. an in-state-only ALPR law), nothing to ask it,
        # or an open circuit breaker (ERROR without a latency).
        (marin("DENIED", source="marin-alpr"), False),
        (marin("DENIED", latency_ms=None, source="marin-alpr"), False),
        (marin("SKIPPED", source="marin-alpr"), False),
        (marin("ERROR", latency_ms=None), False),
    ],
    ids=[
        "ok",
        "no-hit",
        "timeout",
        "error",
        "cached",
        "denied",
        "denied-no-latency",
        "skipped",
        "breaker-open",
    ],
)
async def test_only_a_source_that_was_asked_puts_an_entry_in_scope(
    tmp_path: Path, call: SourceCall, in_scope: bool
) -> None:
    async with FileAuditLog(tmp_path) as log:
        await log.append(foreign(1, call, SourceCall(source="harbor-rms", agency=C, status="OK")))
    found = await query_events(log, A)
    assert seqs(found) == ([1] if in_scope else [])
    if in_scope:
        assert [(s.source, s.status) for s in found[0].sources] == [(call.source, call.status)]
    # Filters cannot bring an out-of-scope entry back.
    assert seqs(await query_events(log, A, AuditQuery(user="c-user1"))) == seqs(found)
    # The subject's own agency sees it whole, whatever happened to A's source.
    (own,) = await query_events(log, C)
    assert len(own.sources) == 2


async def test_a_trimmed_entry_keeps_only_the_readers_sources_that_were_asked(
    tmp_path: Path,
) -> None:
    async with FileAuditLog(tmp_path) as log:
        await log.append(
            foreign(1, marin("OK"), marin("DENIED", source="marin-alpr"), marin("ERROR", None))
        )
        # In scope by a record A owns (a pointer), although A's only source was refused.
        pointer = msgspec.structs.replace(
            foreign(2, marin("DENIED", source="marin-alpr")),
            records=(RecordAccess(id="rec-a9", owner=A, visibility="POINTER"),),
        )
        await log.append(pointer)
    by_seq = {e.seq: e for e in await query_events(log, A)}
    assert [(s.source, s.status) for s in by_seq[1].sources] == [("marin-rms", "OK")]
    assert by_seq[2].sources == ()
    assert [(r.id, r.visibility) for r in by_seq[2].records] == [("rec-a9", "POINTER")]


async def test_filters_match_the_trimmed_entry(tmp_path: Path) -> None:
    async with FileAuditLog(tmp_path) as log:
        # C's user received B's record; A's source was asked too (no hit).
        await log.append(foreign(1, marin("NO_HIT"), records=(("rec-b9", B), ("rec-c9", C))))
        # C's user received A's record and B's record.
        await log.append(foreign(2, marin("OK"), records=(("rec-a8", A), ("rec-b8", B))))
    assert seqs(await query_events(log, A)) == [2, 1]
    # A cannot learn who received B's records: they are not in A's part of either entry.
    for record_id in ("rec-b9", "rec-b8", "rec-c9"):
        assert seqs(await query_events(log, A, AuditQuery(record_id=record_id))) == []
    assert seqs(await query_events(log, A, AuditQuery(record_id="rec-a8"))) == [2]
    # agency=: the subject's agency, or the owner of a record in the reader's part.
    assert seqs(await query_events(log, A, AuditQuery(agency=B))) == []
    assert seqs(await query_events(log, A, AuditQuery(agency=C))) == [2, 1]
    assert seqs(await query_events(log, A, AuditQuery(agency=A))) == [2]
    # B, whose records they are, finds both accesses.
    assert seqs(await query_events(log, B, AuditQuery(record_id="rec-b9"))) == [1]
    assert seqs(await query_events(log, B, AuditQuery(agency=B))) == [2, 1]
    # The subject's own agency filters the whole entry.
    assert seqs(await query_events(log, C, AuditQuery(record_id="rec-b9"))) == [1]


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
        f.write(b"garbage mentioning CA0990000\n")
    assert seqs(await query_events(log, A)) == [1]
    assert [e.seq async for e in tail(log, 5)] == [1]


def test_summary_lines_carry_no_cji() -> None:
    entry = msgspec.structs.replace(
        make_entry(1, records=(("rec-secret", A),)),
        outcome="REFUSED",
        error_code="PURPOSE_REQUIRED",
    )
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


async def test_a_payload_entry_of_another_agencys_stream_says_only_that_it_is_one(
    tmp_path: Path,
) -> None:
    """C's user streamed a search: the payloads before the one with A's record held B's hits.
    A's auditor reads that payload's entry as part 1, not 3: how many payloads left before it
    is none of A's business. C's own auditor reads the whole entry, its place included."""
    async with FileAuditLog(tmp_path) as log:
        stream = foreign(1, records=(("rec-b1", B), ("rec-b2", B), ("rec-a1", A)))
        for n, record in enumerate(stream.records, start=1):
            await log.append(msgspec.structs.replace(stream, part=n, records=(record,)))
        await log.append(stream)
    mine = await query_events(log, A)
    assert [(e.part, [r.id for r in e.records]) for e in mine] == [(0, ["rec-a1"]), (1, ["rec-a1"])]
    assert [e.part for e in await query_events(log, C)] == [0, 3, 2, 1]
    assert [e.part for e in await query_events(log, B)] == [0, 1, 1]
