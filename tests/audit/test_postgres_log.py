"""The PostgreSQL audit log, on the real server: the chain, its continuation from the file and
Redis logs, the indexed query path against the scan path, purge, and the server going away."""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import msgspec
import pytest
import redis.asyncio as aioredis
from click.testing import CliRunner
from cryptography.hazmat.primitives.asymmetric import ec

from hub.audit.chain import FaultKind, verify_log
from hub.audit.checkpoint import CheckpointSigner, read_checkpoint, verify_with_checkpoints
from hub.audit.entry import AuditEntry, RecordAccess, SealedEntry, SourceCall
from hub.audit.file_log import FileAuditLog
from hub.audit.location import open_audit_log
from hub.audit.postgres_log import ChainBroken, PostgresAuditLog
from hub.audit.query import AuditQuery, query_events, tail
from hub.audit.redis_log import RedisAuditLog
from hub.cli import main
from hub.errors import AuditUnavailable
from tests.audit.conftest import make_entry
from tests.audit.postgres import TcpProxy, via_proxy
from tests.audit.test_query import trail_entries
from tests.conftest import demo_settings, running_hub

A, B, C, D = "CA0990000", "WA0990100", "OR0990200", "NV0990000"


def seqs(entries: list[object]) -> list[int]:
    return [e.seq for e in entries]  # type: ignore[attr-defined]


def pg(url: str) -> PostgresAuditLog:
    log = open_audit_log(url)
    assert isinstance(log, PostgresAuditLog)
    return log


def signer() -> CheckpointSigner:
    return CheckpointSigner(ec.generate_private_key(ec.SECP256R1()), "test-kid", "test-hub")


async def test_appends_chain_and_a_new_writer_continues(pg_url: str) -> None:
    async with pg(pg_url) as log:
        hashes = await asyncio.gather(*(log.append(make_entry(n)) for n in range(1, 41)))
        assert len(set(hashes)) == 40
        assert (await log.head())[0] == 40
    async with pg(pg_url) as again:  # another process, later: the chain goes on
        await again.append(make_entry(41))
        report = await verify_log(again)
        assert report.ok, report.describe()
        assert report.head_seq == 41
        assert [e.seq async for e in _tail(again, 2)] == [40, 41]


async def _tail(log: PostgresAuditLog, n: int) -> AsyncIterator[SealedEntry]:
    async for entry in tail(log, n):
        yield entry


async def test_two_writers_share_one_chain(pg_url: str) -> None:
    async with pg(pg_url) as one, pg(pg_url) as two:
        await asyncio.gather(
            *(one.append(make_entry(n)) for n in range(30)),
            *(two.append(make_entry(100 + n)) for n in range(30)),
        )
        report = await verify_log(one)
    assert report.ok, report.describe()
    assert report.head_seq == 60


async def test_commits_are_synchronous(pg_url: str) -> None:
    async with pg(pg_url) as log:
        await log.append(make_entry(1))
        async with log._pool.connection() as conn:  # the pool's configured connection
            cur = await conn.execute("SHOW synchronous_commit")
            assert (await cur.fetchone()) == ("on",)


async def test_the_chain_continues_from_a_file_log(tmp_path: Path, pg_url: str) -> None:
    async with FileAuditLog(tmp_path) as file_log:
        for n in range(1, 11):
            await file_log.append(make_entry(n))
        file_head = file_log.head
    async with pg(pg_url) as log:
        assert await log.import_lines(file_log.scan()) == (10, 0)
        assert await log.import_lines(file_log.scan()) == (0, 10)  # again: nothing new
        for n in range(11, 16):
            await log.append(make_entry(n))
        assert await log.import_lines(file_log.scan()) == (0, 10)  # the table is ahead: fine
        checked = await verify_with_checkpoints(log, head=file_head)
        assert checked.ok, checked.describe()
        assert checked.report.head_seq == 15
        # Byte for byte the file's lines: the file's verify and the table's agree on every hash.
        copied = [raw.line async for raw in log.scan()][:10]
        assert copied == [raw.line async for raw in file_log.scan()]


async def test_the_cli_copies_and_verifies_across_sinks(tmp_path: Path, pg_url: str) -> None:
    async with FileAuditLog(tmp_path / "audit") as file_log:
        for n in range(1, 6):
            await file_log.append(make_entry(n))
    env = {"HUB_VAR_DIR": str(tmp_path / "var")}
    runner = CliRunner()
    done = await asyncio.to_thread(
        runner.invoke,
        main,
        ["audit", "copy", "--from", str(tmp_path / "audit"), "--to", pg_url],
        env=env,
    )
    assert done.exit_code == 0, done.output
    assert "copied 5 entries" in done.output
    async with pg(pg_url) as log:
        await log.append(make_entry(6))
    across = ["audit", "verify", "--log", str(tmp_path / "audit"), "--log", pg_url]
    done = await asyncio.to_thread(runner.invoke, main, across, env=env)
    assert done.exit_code == 0, done.output
    assert "head seq 6" in done.output
    # A PostgreSQL log that does not hold the file's head is not its continuation.
    async with pg(pg_url) as log, log._pool.connection() as conn:
        await conn.execute(f'DELETE FROM "{log.schema}".entries WHERE seq >= 5')
    done = await asyncio.to_thread(runner.invoke, main, across, env=env)
    assert done.exit_code == 1
    assert "REMOVED" in done.output


async def test_the_cli_tails_the_postgres_log_without_cji(tmp_path: Path, pg_url: str) -> None:
    async with pg(pg_url) as log:
        for n in range(1, 4):
            await log.append(make_entry(n, records=(("rec-secret", A),)))
    done = await asyncio.to_thread(
        CliRunner().invoke,
        main,
        ["audit", "tail", "--log", pg_url, "-n", "2"],
        env={"HUB_VAR_DIR": str(tmp_path / "var")},
    )
    assert done.exit_code == 0, done.output
    assert [line.split()[0] for line in done.output.splitlines()] == ["#2", "#3"]
    assert "Reyes" not in done.output
    assert "rec-secret" not in done.output


async def test_the_chain_continues_from_a_redis_stream(
    redis_client: aioredis.Redis, stream_key: str, pg_url: str
) -> None:
    stream = RedisAuditLog(redis_client, key=stream_key)
    for n in range(1, 8):
        await stream.append(make_entry(n))
    async with pg(pg_url) as log:
        assert await log.import_lines(stream.scan()) == (7, 0)
        await log.append(make_entry(8))
        report = await verify_log(log)
    assert report.ok
    assert report.head_seq == 8


async def test_copy_refuses_another_chain_and_a_broken_one(tmp_path: Path, pg_url: str) -> None:
    async with pg(pg_url) as log:
        await log.append(make_entry(99))  # this table already holds a chain of its own
        async with FileAuditLog(tmp_path) as file_log:
            await file_log.append(make_entry(1))
            await file_log.append(make_entry(2))
        with pytest.raises(ChainBroken, match="another chain"):
            await log.import_lines(file_log.scan())
        for n in range(3, 6):  # longer than the file, and still another chain
            await log.append(make_entry(n))
        with pytest.raises(ChainBroken, match="another chain"):
            await log.import_lines(file_log.scan())
    lines = file_log.path.read_bytes().splitlines(keepends=True)
    file_log.path.write_bytes(lines[0].replace(b"Reyes", b"Smith") + lines[1])
    async with pg(f"{pg_url}x") as fresh:
        with pytest.raises(ChainBroken, match="chain breaks"):
            await fresh.import_lines(file_log.scan())
        assert await fresh.head() == (0, "0" * 64)  # nothing of a broken chain is kept


def varied_entries(count: int, seed: int) -> list[AuditEntry]:
    """Entries over four agencies, users, purposes, cases, records and source statuses."""
    rng = random.Random(seed)
    agencies = [A, B, C, D]
    statuses = ["OK", "NO_HIT", "TIMEOUT", "ERROR", "DENIED", "SKIPPED"]
    base = datetime(2026, 1, 1, tzinfo=UTC)
    out = []
    for n in range(count):
        agency = rng.choice(agencies)
        records = tuple(
            RecordAccess(id=f"rec-{rng.randrange(12)}", owner=rng.choice(agencies))
            for _ in range(rng.randrange(3))
        )
        sources = tuple(
            SourceCall(
                source=f"src-{i}",
                agency=rng.choice(agencies),
                status=rng.choice(statuses),
                latency_ms=rng.choice([None, 3.0]),
            )
            for i in range(rng.randrange(3))
        )
        out.append(
            msgspec.structs.replace(
                make_entry(n, user=f"user-{rng.randrange(5)}", agency=agency),
                at=(base + timedelta(hours=n)).isoformat(timespec="microseconds"),
                purpose=rng.choice(["C", "J", "F", None]),
                case_number=rng.choice([None, "26-0001", "26-0002"]),
                records=records,
                sources=sources,
            )
        )
    return out


QUERIES = [
    AuditQuery(),
    AuditQuery(user="user-1"),
    AuditQuery(user="user-2", purpose="C"),
    AuditQuery(agency=B),
    AuditQuery(agency=A),
    AuditQuery(record_id="rec-3"),
    AuditQuery(record_id="rec-7", agency=C),
    AuditQuery(purpose="J", limit=7),
    AuditQuery(case_number="26-0002"),
    AuditQuery(since=datetime(2026, 1, 2, tzinfo=UTC), until=datetime(2026, 1, 4, tzinfo=UTC)),
    AuditQuery(user="user-3", since=datetime(2026, 1, 3, 5, tzinfo=UTC)),
    AuditQuery(until=datetime(2026, 1, 2, 12)),  # naive: UTC
    AuditQuery(user="nobody"),
    AuditQuery(limit=3),
]


async def test_the_index_path_and_the_scan_path_agree(tmp_path: Path, pg_url: str) -> None:
    entries = [*trail_entries(), *varied_entries(150, seed=15)]
    async with FileAuditLog(tmp_path) as file_log, pg(pg_url) as log:
        for entry in entries:
            await file_log.append(entry)
        await log.import_lines(file_log.scan())
        nonempty = 0
        for reader in (A, B, C, D, "ZZ0000000"):
            for query in QUERIES:
                scanned = await query_events(file_log, reader, query)
                indexed = await query_events(log, reader, query)
                assert indexed == scanned, (reader, query)
                nonempty += bool(scanned)
    assert nonempty > 40  # the grid asks questions with answers, not only empty ones


async def test_appended_entries_are_indexed_like_copied_ones(tmp_path: Path, pg_url: str) -> None:
    # The write path (INSERT, or COPY for a batch past 32) indexes like the import path.
    entries = varied_entries(120, seed=7)
    async with pg(pg_url) as log:
        await asyncio.gather(*(log.append(e) for e in entries))
        lines = [raw.line async for raw in log.scan()]
        (tmp_path / "audit.jsonl").write_bytes(b"".join(line + b"\n" for line in lines))
        file_log = FileAuditLog(tmp_path)  # the same chain, read by scanning
        assert (await verify_log(file_log)).ok
        for reader in (A, B, C):
            for query in QUERIES:
                indexed = await query_events(log, reader, query)
                assert indexed == await query_events(file_log, reader, query)


def _ago(days: float) -> str:
    return (datetime.now(UTC) - timedelta(days=days)).isoformat(timespec="microseconds")


async def test_purge_keeps_the_rest_verifiable(pg_url: str) -> None:
    key = signer()
    async with pg(pg_url) as log:
        for n, days in enumerate((800, 700, 500, 400, 100, 10), start=1):
            await log.append(make_entry(n, at=_ago(days)))
        result = await log.purge(datetime.now(UTC) - timedelta(days=450), key.sign)
        assert result.removed == 3
        assert result.base is not None
        assert result.base.seq == 3
        assert result.base.checkpoint is not None
        boundary = read_checkpoint(result.base.checkpoint, key.public_key)
        assert boundary.seq == 3
        kept = [e async for e in _tail(log, 10)]
        assert [e.seq for e in kept] == [4, 5, 6]  # nothing younger than the date went
        checked = await verify_with_checkpoints(log, key=key.public_key)
        assert checked.ok, checked.describe()
        assert "from the signed purge checkpoint at seq 3" in checked.describe()
        # Without the key the purge cannot be told from a truncation of the log's start.
        assert not (await verify_with_checkpoints(log)).ok
        other = signer()
        assert not (await verify_with_checkpoints(log, key=other.public_key)).ok
        # New entries chain on; a purge of nothing old enough does nothing.
        await log.append(make_entry(7))
        assert (await log.purge(datetime.now(UTC) - timedelta(days=450), key.sign)).removed == 0
        assert (await verify_with_checkpoints(log, key=key.public_key)).ok


async def test_a_forged_base_is_refused(pg_url: str) -> None:
    key = signer()
    async with pg(pg_url) as log:
        for n, days in enumerate((800, 700, 10), start=1):
            await log.append(make_entry(n, at=_ago(days)))
        await log.purge(datetime.now(UTC) - timedelta(days=400), key.sign)
        # Someone deletes entry 3 and moves the base to cover it: its checkpoint no longer fits.
        async with log._pool.connection() as conn:
            await conn.execute(f'DELETE FROM "{log.schema}".entries WHERE seq = 3')
            await conn.execute(
                f'UPDATE "{log.schema}".chain_base SET seq = 3, hash = %s', ("f" * 64,)
            )
        checked = await verify_with_checkpoints(log, key=key.public_key)
    assert not checked.ok
    assert checked.report.fault is not None
    assert checked.report.fault.kind == FaultKind.CHANGED


async def test_purging_everything_keeps_the_head(pg_url: str) -> None:
    key = signer()
    async with pg(pg_url) as log:
        for n in (1, 2):
            await log.append(make_entry(n, at=_ago(900)))
        head = await log.head()
        assert (await log.purge(datetime.now(UTC) - timedelta(days=400), key.sign)).removed == 2
        assert await log.head() == head
        await log.append(make_entry(3))
        assert [e.seq async for e in _tail(log, 5)] == [3]
        assert (await verify_with_checkpoints(log, key=key.public_key)).ok


async def test_the_cli_refuses_a_purge_inside_the_retention(tmp_path: Path, pg_url: str) -> None:
    env = {"HUB_VAR_DIR": str(tmp_path / "var")}
    runner = CliRunner()
    recent = (datetime.now(UTC) - timedelta(days=300)).strftime("%Y-%m-%d")
    done = await asyncio.to_thread(
        runner.invoke,
        main,
        ["audit", "purge", "--log", pg_url, "--before", recent, "--yes"],
        env=env,
    )
    assert done.exit_code == 1
    assert "refused" in done.output
    assert "365 days" in done.output
    # A longer schedule is honoured; a shorter one than the CJIS minimum does not load.
    longer = {**env, "HUB_AUDIT_RETENTION_DAYS": "730"}
    old = (datetime.now(UTC) - timedelta(days=500)).strftime("%Y-%m-%d")
    done = await asyncio.to_thread(
        runner.invoke,
        main,
        ["audit", "purge", "--log", pg_url, "--before", old, "--yes"],
        env=longer,
    )
    assert done.exit_code == 1
    assert "730 days" in done.output
    shorter = {**env, "HUB_AUDIT_RETENTION_DAYS": "90"}
    done = await asyncio.to_thread(
        runner.invoke,
        main,
        ["audit", "purge", "--log", pg_url, "--before", old, "--yes"],
        env=shorter,
    )
    assert done.exit_code != 0
    assert "HUB_AUDIT_RETENTION_DAYS" in done.output


async def test_the_cli_purges_and_verify_passes_from_the_checkpoint(
    tmp_path: Path, pg_url: str
) -> None:
    env = {"HUB_VAR_DIR": str(tmp_path / "var")}
    async with pg(pg_url) as log:
        for n, days in enumerate((900, 800, 20), start=1):
            await log.append(make_entry(n, at=_ago(days)))
    runner = CliRunner()
    before = (datetime.now(UTC) - timedelta(days=400)).strftime("%Y-%m-%d")
    done = await asyncio.to_thread(
        runner.invoke,
        main,
        ["audit", "purge", "--log", pg_url, "--before", before, "--yes"],
        env=env,
    )
    assert done.exit_code == 0, done.output
    assert "purged 2 entries up to seq 2" in done.output
    done = await asyncio.to_thread(
        runner.invoke, main, ["audit", "verify", "--log", pg_url], env=env
    )
    assert done.exit_code == 0, done.output
    assert "verified from the signed purge checkpoint at seq 2" in done.output
    # A file log is not purged by this command (it says where to move it).
    (tmp_path / "audit").mkdir()
    done = await asyncio.to_thread(
        runner.invoke,
        main,
        ["audit", "purge", "--log", str(tmp_path / "audit"), "--before", before, "--yes"],
        env=env,
    )
    assert done.exit_code == 1
    assert "PostgreSQL" in done.output


async def test_the_server_going_away_fails_closed_then_recovers(
    pg_database: str, pg_schema: str, pg_proxy: TcpProxy
) -> None:
    async with pg(via_proxy(pg_database, pg_schema, pg_proxy)) as log:
        await log.append(make_entry(1))
        await pg_proxy.cut()
        with pytest.raises(AuditUnavailable):
            await log.append(make_entry(2))
        with pytest.raises(AuditUnavailable):
            await query_events(log, A)
        await pg_proxy.restore()
        await log.append(make_entry(3))
        report = await verify_log(log)
    assert report.ok
    assert report.head_seq == 2


SOURCES_QUERY = "{ sources { name } }"
SEARCH = '{ search(text: "Reyes") { hits { __typename } } }'


async def test_over_http_no_data_leaves_while_the_database_is_away(
    tmp_path: Path, pg_database: str, pg_schema: str, pg_proxy: TcpProxy
) -> None:
    location = via_proxy(pg_database, pg_schema, pg_proxy)
    settings = demo_settings(tmp_path, HUB_AUDIT_LOG=location, HUB_AUDIT_CHECKPOINT_S="0")
    async with running_hub(settings) as hub:
        status, body = await hub.post(SEARCH, token=hub.token())
        assert status == 200, body
        assert body["data"]["search"]["hits"]
        await pg_proxy.cut()
        status, body = await hub.post(SEARCH, token=hub.token())
        assert status == 503
        assert body["data"] is None
        assert body["errors"][0]["extensions"]["code"] == "AUDIT_UNAVAILABLE"
        assert "Reyes" not in str(body)
        # The auditor's view fails closed too.
        status, body = await hub.post(
            "{ auditEvents { seq } }", token=hub.token(roles=("auditor",)), purpose="A"
        )
        assert status == 503
        assert body["data"] is None
        await pg_proxy.restore()
        status, body = await hub.post(SEARCH, token=hub.token())
        assert status == 200
        assert body["data"]["search"]["hits"]
    async with pg(f"{pg_database}#{pg_schema}") as log:
        report = await verify_log(log)
        operations = [e.operation async for e in _tail(log, 10)]
    assert report.ok
    assert len(operations) == 2  # the two searches served; nothing of the refused ones


async def test_a_schema_name_and_a_timeout_are_checked(pg_database: str) -> None:
    with pytest.raises(ValueError, match="schema"):
        open_audit_log(f"{pg_database}#Robert'); DROP TABLE")
    for bad in ("abc", "0", "-1"):
        with pytest.raises(ValueError, match="connect_timeout"):
            open_audit_log(f"{pg_database}?connect_timeout={bad}#ok")


async def test_an_unreachable_server_at_start_is_unavailable_not_a_crash() -> None:
    log = open_audit_log("postgresql://postgres@127.0.0.1:1/none?connect_timeout=0.5#x")
    try:
        with pytest.raises(AuditUnavailable):
            await log.append(make_entry(1))
    finally:
        await log.close()
