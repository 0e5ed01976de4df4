"""audit-query: auditors' queries on the PostgreSQL audit log at 1 million entries (issue 15 §1).

Loads synthetic entries (one chain, a year of them, 20 agencies, 5,000 users, records, cases and
purposes) into a database of its own with COPY (``PostgresAuditLog.import_lines``: the same path
as ``hub audit copy``), then times ``query_events`` — the ``auditEvents`` query — pushed down to
the indexes, and once, for the ratio, the scan path over the same store. Target: a user's last
30 days in under 100 ms (p50). ``--quick``: 100,000 entries.

Needs PostgreSQL at ``HUB_BENCH_POSTGRES`` (default ``postgresql://postgres@127.0.0.1:5432``);
the database it makes is dropped afterwards.
"""

from __future__ import annotations

import os
import random
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg

from bench.context import BenchContext
from bench.measure import percentile, ratio
from bench.report import Column, ScenarioResult, Table, Target
from hub.audit.entry import (
    GENESIS,
    AuditEntry,
    RawEntry,
    RecordAccess,
    SealedEntry,
    SourceCall,
    canonical_body,
    seal,
)
from hub.audit.postgres_log import PostgresAuditLog
from hub.audit.query import AuditQuery, query_events

NAME = "audit-query"
TITLE = "auditors' queries on the PostgreSQL audit log at 1M entries (target < 100 ms)"
TARGET_MS = 100.0
SERVER = os.environ.get("HUB_BENCH_POSTGRES", "postgresql://postgres@127.0.0.1:5432")
AGENCIES = [f"{state}0{n:02d}0000" for state in ("CA", "WA", "OR", "NV", "NY") for n in range(4)]
USERS = 5000
PURPOSES = ["C", "C", "C", "J", "F", "D", "A", "X"]


class _ScanOnly:
    """The same log seen through the ``AuditLog`` contract only: ``query_events`` scans it."""

    def __init__(self, log: PostgresAuditLog) -> None:
        self._log = log

    def scan(self, **hints: Any) -> AsyncIterator[RawEntry]:
        return self._log.scan(**hints)

    def tail(self, n: int, *, follow: bool = False) -> AsyncIterator[RawEntry]:
        return self._log.tail(n, follow=follow)

    async def append(self, entry: AuditEntry) -> str:
        return await self._log.append(entry)

    async def close(self) -> None:
        return None


def _user_agency(user: int) -> str:
    return AGENCIES[user % len(AGENCIES)]


async def _synthetic(count: int, now: datetime, seed: int) -> AsyncIterator[RawEntry]:
    """``count`` sealed lines, oldest first, evenly over the year before ``now``."""
    rng = random.Random(seed)  # noqa: S311 (synthetic data, reproducible)
    step = timedelta(days=365) / count
    start = now - timedelta(days=365)
    prev = GENESIS
    for n in range(count):
        user = rng.randrange(USERS)
        agency = _user_agency(user)
        other = rng.choice(AGENCIES)
        entry = AuditEntry(
            at=(start + step * n).isoformat(timespec="microseconds"),
            trace_id=f"{n:032x}",
            operation="search",
            outcome="OK",
            user=f"user{user:05d}",
            agency=agency,
            roles=("analyst",),
            purpose=rng.choice(PURPOSES),
            case_number=f"26-{rng.randrange(100_000):06d}" if rng.random() < 0.5 else None,
            criteria={"text": f"name {rng.randrange(50_000)}"},
            sources=(
                SourceCall(source="rms", agency=agency, status="OK", count=1, latency_ms=4.0),
                SourceCall(source="alpr", agency=other, status="NO_HIT", latency_ms=6.0),
            ),
            records=tuple(
                RecordAccess(id=f"rec-{rng.randrange(200_000)}", owner=rng.choice((agency, other)))
                for _ in range(rng.randrange(3))
            ),
            duration_ms=12.0,
        )
        line, prev = seal(canonical_body(entry), n + 1, prev)
        yield RawEntry(f"synthetic {n + 1}", line)


async def _timed(
    samples: int, ask: Callable[[int], Awaitable[list[SealedEntry]]]
) -> tuple[float, float, float]:
    times: list[float] = []
    rows = 0
    for i in range(samples):
        started = time.perf_counter()
        found = await ask(i)
        times.append((time.perf_counter() - started) * 1000)
        rows += len(found)
    return percentile(times, 50), percentile(times, 99), rows / samples


async def run(ctx: BenchContext) -> ScenarioResult:
    count = ctx.pick(100_000, 1_000_000, tiny=2_000)
    samples = ctx.pick(20, 50, tiny=3)
    result = ScenarioResult(NAME, TITLE, settings={"entries": count, "samples": samples})
    database = f"hub_bench_{uuid.uuid4().hex[:12]}"
    try:
        async with await psycopg.AsyncConnection.connect(
            f"{SERVER}/postgres", autocommit=True, connect_timeout=5
        ) as admin:
            await admin.execute(f'CREATE DATABASE "{database}"')
    except psycopg.Error as exc:
        result.unavailable = f"not available: PostgreSQL at {SERVER}: {type(exc).__name__}"
        return result
    try:
        await _measure(ctx, result, f"{SERVER}/{database}", count, samples)
    finally:
        async with await psycopg.AsyncConnection.connect(
            f"{SERVER}/postgres", autocommit=True
        ) as admin:
            await admin.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
    return result


async def _measure(
    ctx: BenchContext, result: ScenarioResult, url: str, count: int, samples: int
) -> None:
    now = datetime.now(UTC)
    log = PostgresAuditLog(url, timeout=60.0)
    try:
        ctx.progress(f"loading {count:,} entries with COPY")
        started = time.perf_counter()
        copied, _ = await log.import_lines(_synthetic(count, now, seed=15))
        load_s = time.perf_counter() - started
        async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
            await conn.execute("ANALYZE")
            cur = await conn.execute(
                "SELECT sum(pg_total_relation_size(c.oid)) FROM pg_class c "
                "JOIN pg_namespace n ON n.oid = c.relnamespace "
                "WHERE n.nspname = %s AND c.relkind = 'r'",
                (log.schema,),
            )
            size = (await cur.fetchone() or (0,))[0]
        load = Table(
            "the store",
            [
                Column("entries", "int"),
                Column("load (COPY)", "s"),
                Column("tables + indexes", "MB"),
            ],
        )
        load.add(copied, load_s, float(size or 0) / 2**20)
        result.tables.append(load)

        rng = random.Random(7)  # noqa: S311 (which samples to ask, reproducible)
        users = [rng.randrange(USERS) for _ in range(samples)]
        month = now - timedelta(days=30)

        def user_month(i: int) -> tuple[str, AuditQuery]:
            user = users[i]
            return _user_agency(user), AuditQuery(user=f"user{user:05d}", since=month, limit=1000)

        queries: list[tuple[str, Callable[[int], tuple[str, AuditQuery]]]] = [
            ("a user's last 30 days", user_month),
            ("a record id, all time", lambda i: (AGENCIES[i % 20], AuditQuery(
                record_id=f"rec-{rng.randrange(200_000)}", limit=1000))),
            ("a case number, all time", lambda i: (AGENCIES[i % 20], AuditQuery(
                case_number=f"26-{rng.randrange(100_000):06d}", limit=1000))),
            ("an agency's users, last day", lambda i: (AGENCIES[i % 20], AuditQuery(
                agency=AGENCIES[i % 20], since=now - timedelta(days=1), limit=1000))),
            ("purpose F, last 7 days (first 100)", lambda i: (AGENCIES[i % 20], AuditQuery(
                purpose="F", since=now - timedelta(days=7), limit=100))),
            ("newest 100 in the reader's scope", lambda i: (AGENCIES[i % 20], AuditQuery())),
        ]  # fmt: skip
        table = Table(
            f"query_events (auditEvents) on {copied:,} entries, pushed down to the indexes",
            [Column("query"), Column("p50", "ms"), Column("p99", "ms"), Column("rows (mean)")],
        )
        result.tables.append(table)
        user_p50 = float("nan")
        for label, make in queries:

            async def ask(i: int, make: Any = make) -> list[SealedEntry]:
                reader, query = make(i)
                return await query_events(log, reader, query)

            p50, p99, rows = await _timed(samples, ask)
            table.add(label, p50, p99, f"{rows:.1f}")
            if label == "a user's last 30 days":
                user_p50 = p50
        ctx.progress("the scan path, once, for the ratio")
        scan_only = _ScanOnly(log)

        async def scan(i: int) -> list[SealedEntry]:
            reader, query = user_month(i)
            return await query_events(scan_only, reader, query)

        scan_ms, _, _ = await _timed(1, scan)
        index_one, _, _ = await _timed(1, lambda i: query_events(log, *user_month(i)))
        same = await query_events(log, *user_month(0)) == await scan(0)
        compare = Table(
            "a user's last 30 days: scan path / index path (same store, same answer)",
            [Column("scan", "ms"), Column("index", "ms"), Column("scan / index", "ratio"),
             Column("same answer")],
        )  # fmt: skip
        compare.add(scan_ms, index_one, ratio(scan_ms, index_one), "yes" if same else "NO")
        result.tables.append(compare)
        result.targets.append(
            Target(
                f"a user's last 30 days at {copied:,} entries, p50 ms", user_p50, TARGET_MS, "<="
            )
        )
        if not same:
            result.notes.append("the scan path and the index path answered differently")
    finally:
        await log.close()
