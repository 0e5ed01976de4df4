"""The audit log in PostgreSQL: the same chain, durable on commit, indexed for auditors' queries.

Configured like the other logs: ``audit_log = "postgresql://user@host:5432/db#hub_audit"`` (the
fragment names the schema the tables live in; default ``hub_audit``). The driver is psycopg 3
with psycopg_pool: native asyncio, typed (mypy strict needs no stubs), COPY for bulk loads, and a
pool that replaces broken connections by itself.

Tables (created on first use, in one transaction under the chain's advisory lock)::

    entries(seq PK, prev, hash, at, user_id, agency, purpose, case_number, line)
    entry_scope(agency, seq)           PK (agency, seq): the agencies whose auditor may see it
    entry_records(record_id, owner, seq)  PK (record_id, seq, owner): records in the answer
    chain_base(seq, hash, checkpoint)  where the stored chain starts after a purge (one row)
    checkpoints(id, seq, hash, jws)    signed checkpoints of the head, for partners

``line`` is the stored line byte for byte (``hub.audit.entry``), so ``scan`` gives back exactly
what the file and Redis logs store and ``hub audit verify`` checks it the same way; the other
columns are copies of the entry's own fields, for indexes. ``at`` is kept as the entry's ISO text
(UTC, microseconds, one format), so comparisons are the scan path's string comparisons.
``entry_scope`` holds ``hub.audit.query.scope_agencies``: an auditor's query joins it on its ORI.
Record ids are an index table rather than a GIN index over JSON: the query also needs each
record's owner (a filter matches only the reader's part of the entry).

Durability: ``append`` returns after COMMIT, with ``synchronous_commit = on`` set on every
connection (a server default of ``off`` would acknowledge before the WAL is flushed).

One chain across many writers (several hub workers): each batch takes
``pg_advisory_xact_lock`` on the schema's lock id, reads the head, inserts and commits; the
primary key on ``seq`` refuses a fork whatever happens. A head that went backwards (rows deleted
behind the writer's back, other than by ``purge``, which moves ``chain_base``) makes the log
refuse every later append until restarted.

Fail closed: a connection error, a timeout (``timeout``, default 2 s) or a refused transaction
raises ``AuditUnavailable``; the pool reconnects in the background, and appends succeed again
as soon as the server is back.
"""

from __future__ import annotations

import asyncio
import logging
import re
import zlib
from collections.abc import AsyncIterable, AsyncIterator, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import parse_qs, urlsplit

import msgspec
import psycopg
from psycopg import sql
from psycopg_pool import AsyncConnectionPool, PoolTimeout

from hub.audit.entry import GENESIS, AuditEntry, RawEntry, line_facts, seal
from hub.audit.log import BatchingLog, Head
from hub.audit.query import AuditQuery, iso_utc, scope_agencies
from hub.errors import AuditUnavailable

log = logging.getLogger(__name__)

DEFAULT_SCHEMA = "hub_audit"
SCHEMES = ("postgresql://", "postgres://")
_SCHEMA_NAME = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")
_PAGE = 1000
_COPY_BATCH = 5000
MAX_CHECKPOINTS = 10_000

_DDL = """
CREATE SCHEMA IF NOT EXISTS {s};
CREATE TABLE IF NOT EXISTS {s}.entries (
    seq bigint PRIMARY KEY,
    prev text NOT NULL,
    hash text NOT NULL,
    at text NOT NULL,
    user_id text NOT NULL,
    agency text NOT NULL,
    purpose text,
    case_number text,
    line bytea NOT NULL
);
CREATE INDEX IF NOT EXISTS entries_user_at ON {s}.entries (user_id, at);
CREATE INDEX IF NOT EXISTS entries_agency_at ON {s}.entries (agency, at);
CREATE INDEX IF NOT EXISTS entries_at ON {s}.entries (at);
CREATE INDEX IF NOT EXISTS entries_purpose_at ON {s}.entries (purpose, at);
CREATE INDEX IF NOT EXISTS entries_case ON {s}.entries (case_number) WHERE case_number IS NOT NULL;
CREATE TABLE IF NOT EXISTS {s}.entry_scope (
    agency text NOT NULL,
    seq bigint NOT NULL,
    PRIMARY KEY (agency, seq)
);
CREATE INDEX IF NOT EXISTS entry_scope_seq ON {s}.entry_scope (seq);
CREATE TABLE IF NOT EXISTS {s}.entry_records (
    record_id text NOT NULL,
    owner text NOT NULL,
    seq bigint NOT NULL,
    PRIMARY KEY (record_id, seq, owner)
);
CREATE INDEX IF NOT EXISTS entry_records_seq ON {s}.entry_records (seq);
CREATE TABLE IF NOT EXISTS {s}.chain_base (
    one boolean PRIMARY KEY DEFAULT true CHECK (one),
    seq bigint NOT NULL,
    hash text NOT NULL,
    checkpoint text
);
CREATE TABLE IF NOT EXISTS {s}.checkpoints (
    id bigserial PRIMARY KEY,
    seq bigint NOT NULL,
    hash text NOT NULL,
    jws text NOT NULL
);
"""

_body_decoder = msgspec.json.Decoder(AuditEntry)


@dataclass(frozen=True, slots=True)
class Base:
    """Where the stored chain starts: entries begin at ``seq + 1`` with ``prev == hash``.
    ``checkpoint`` is the signed checkpoint the purge wrote at that boundary (a JWS)."""

    seq: int
    hash: str
    checkpoint: str | None = None


@dataclass(frozen=True, slots=True)
class PurgeResult:
    removed: int
    base: Base | None  # the new boundary; None when nothing was old enough


class ChainBroken(ValueError):
    """What ``import_lines`` was given does not continue the stored chain."""


@dataclass(frozen=True, slots=True)
class _Row:
    seq: int
    prev: str
    hash: str
    line: bytes
    entry: AuditEntry


def _row(seq: int, prev: str, entry_hash: str, line: bytes, body: bytes | None = None) -> _Row:
    # A stored line decodes as its body: the chain fields are unknown to AuditEntry, ignored.
    entry = _body_decoder.decode(line if body is None else body)
    return _Row(seq, prev, entry_hash, line, entry)


class PostgresAuditLog(BatchingLog):
    """A hash-chained audit log in PostgreSQL; see the module docstring for its guarantees."""

    def __init__(
        self,
        conninfo: str,
        *,
        schema: str = DEFAULT_SCHEMA,
        timeout: float = 2.0,
        max_batch: int = 256,
        max_pending: int = 20_000,
        pool_size: int = 4,
        poll_interval: float = 0.5,
    ) -> None:
        super().__init__(max_batch=max_batch, max_pending=max_pending)
        if not _SCHEMA_NAME.match(schema):
            raise ValueError(f"audit schema {schema!r}: lower-case letters, digits and '_' only")
        self.schema = schema
        self._s = sql.Identifier(schema)
        self._timeout = timeout
        self._poll_interval = poll_interval
        # One advisory lock per schema: two chains in one database do not wait on each other.
        self._lock_id = zlib.crc32(f"hub.audit:{schema}".encode())
        self._pool = AsyncConnectionPool(
            conninfo,
            min_size=1,
            max_size=pool_size,
            open=False,
            timeout=timeout,
            kwargs={"connect_timeout": max(1, round(timeout)), "autocommit": True},
            configure=_configure,
            check=AsyncConnectionPool.check_connection,
            # Give up a failed reconnection at once: the next append starts a new attempt, so
            # appends fail fast while the server is away and succeed as soon as it is back.
            reconnect_timeout=0,
            name=f"hub-audit-{schema}",
        )
        self._opened = False
        self._ready = False
        self._high_seq = 0
        self._regressed = False

    @classmethod
    def from_url(
        cls, url: str, *, schema: str = DEFAULT_SCHEMA, timeout: float = 2.0
    ) -> PostgresAuditLog:
        """The log at a libpq URL; its ``connect_timeout`` parameter, when given, is also how
        long an append or a read may take before ``AuditUnavailable``."""
        given = parse_qs(urlsplit(url).query).get("connect_timeout")
        if given:
            try:
                timeout = float(given[-1])
            except ValueError:
                raise ValueError("connect_timeout in the audit log URL must be seconds") from None
            if timeout <= 0:
                raise ValueError("connect_timeout in the audit log URL must be positive")
        return cls(url, schema=schema, timeout=timeout)

    async def open(self) -> None:
        """Start the pool (without waiting for a connection: a server that is away is reported
        by the first append, not here) and create the tables when it is reachable."""
        if not self._opened:
            self._opened = True
            await self._pool.open(wait=False)

    async def close(self) -> None:
        await self._drain()
        if self._opened:
            await self._pool.close()

    async def __aenter__(self) -> PostgresAuditLog:
        await self.open()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    def _q(self, text: str) -> sql.Composed:
        return sql.SQL(text).format(s=self._s)

    async def _conn_ready(self, conn: psycopg.AsyncConnection[Any]) -> None:
        if self._ready:
            return
        async with conn.transaction():
            await conn.execute("SELECT pg_advisory_xact_lock(%s)", (self._lock_id,))
            await conn.execute(self._q(_DDL))
        self._ready = True

    async def _run(self, what: str, work: Any) -> Any:
        """Run ``work(conn)`` on a pooled connection within the timeout; every failure of the
        server or the network is ``AuditUnavailable``."""
        await self.open()
        try:
            async with asyncio.timeout(self._timeout), self._pool.connection() as conn:
                await self._conn_ready(conn)
                return await work(conn)
        except AuditUnavailable:
            raise
        except (psycopg.Error, PoolTimeout, OSError, TimeoutError) as exc:
            log.error("audit database %s failed: %s", what, type(exc).__name__)
            raise AuditUnavailable(f"the audit log could not be {what}") from exc

    # -- writing --

    async def _write_batch(self, bodies: Sequence[bytes]) -> list[str]:
        if self._regressed:
            raise AuditUnavailable("the audit table lost entries; run `hub audit verify`")

        async def work(conn: psycopg.AsyncConnection[Any]) -> list[str]:
            async with conn.transaction():
                await conn.execute("SELECT pg_advisory_xact_lock(%s)", (self._lock_id,))
                head = await self._read_head(conn)
                self._check_regression(head)
                seq, prev = head.seq, head.hash
                rows: list[_Row] = []
                for body in bodies:
                    seq += 1
                    line, entry_hash = seal(body, seq, prev)
                    rows.append(_row(seq, prev, entry_hash, line, body))
                    prev = entry_hash
                await self._insert(conn, rows)
            self._high_seq = max(self._high_seq, seq)
            return [r.hash for r in rows]

        result: list[str] = await self._run("written", work)
        return result

    async def _insert(self, conn: psycopg.AsyncConnection[Any], rows: Sequence[_Row]) -> None:
        if len(rows) > 32:
            await self._copy(conn, rows)
            return
        async with conn.cursor() as cur:
            await cur.executemany(
                self._q(
                    "INSERT INTO {s}.entries (seq, prev, hash, at, user_id, agency, purpose, "
                    "case_number, line) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)"
                ),
                [_entry_values(r) for r in rows],
            )
            scope = [(a, r.seq) for r in rows for a in sorted(scope_agencies(r.entry))]
            await cur.executemany(
                self._q("INSERT INTO {s}.entry_scope (agency, seq) VALUES (%s, %s)"), scope
            )
            records = _record_values(rows)
            if records:
                await cur.executemany(
                    self._q(
                        "INSERT INTO {s}.entry_records (record_id, owner, seq) VALUES (%s, %s, %s)"
                    ),
                    records,
                )

    async def _copy(self, conn: psycopg.AsyncConnection[Any], rows: Sequence[_Row]) -> None:
        async with conn.cursor() as cur:
            async with cur.copy(
                self._q(
                    "COPY {s}.entries (seq, prev, hash, at, user_id, agency, purpose, "
                    "case_number, line) FROM STDIN"
                )
            ) as copy:
                for r in rows:
                    await copy.write_row(_entry_values(r))
            async with cur.copy(self._q("COPY {s}.entry_scope (agency, seq) FROM STDIN")) as copy:
                for r in rows:
                    for agency in sorted(scope_agencies(r.entry)):
                        await copy.write_row((agency, r.seq))
            async with cur.copy(
                self._q("COPY {s}.entry_records (record_id, owner, seq) FROM STDIN")
            ) as copy:
                for values in _record_values(rows):
                    await copy.write_row(values)

    async def _read_head(self, conn: psycopg.AsyncConnection[Any]) -> Head:
        cur = await conn.execute(
            self._q("SELECT seq, hash FROM {s}.entries ORDER BY seq DESC LIMIT 1")
        )
        last = await cur.fetchone()
        if last is not None:
            return Head(int(last[0]), str(last[1]))
        base = await self._read_base(conn)
        return Head(base.seq, base.hash) if base is not None else Head(0, GENESIS)

    async def _read_base(self, conn: psycopg.AsyncConnection[Any]) -> Base | None:
        cur = await conn.execute(self._q("SELECT seq, hash, checkpoint FROM {s}.chain_base"))
        row = await cur.fetchone()
        return Base(int(row[0]), str(row[1]), row[2]) if row is not None else None

    def _check_regression(self, head: Head) -> None:
        if head.seq < self._high_seq:
            self._regressed = True
            log.error(
                "audit table %s went back from seq %d to seq %d; refusing to append",
                self.schema, self._high_seq, head.seq,
            )  # fmt: skip
            raise AuditUnavailable("the audit table lost entries; run `hub audit verify`")

    async def head(self) -> tuple[int, str]:
        """(seq, hash) of the last stored entry; the base after a purge of all; (0, GENESIS)."""

        async def work(conn: psycopg.AsyncConnection[Any]) -> tuple[int, str]:
            h = await self._read_head(conn)
            return h.seq, h.hash

        result: tuple[int, str] = await self._run("read", work)
        return result

    async def base(self) -> Base | None:
        """Where the stored chain starts when it does not start at seq 1 (after a purge, or an
        import that began mid-chain); None otherwise."""

        async def work(conn: psycopg.AsyncConnection[Any]) -> Base | None:
            return await self._read_base(conn)

        result: Base | None = await self._run("read", work)
        return result

    async def import_lines(self, lines: AsyncIterable[RawEntry]) -> tuple[int, int]:
        """Copy stored lines of another log (oldest first) verbatim, so this log continues the
        same chain: (lines copied, lines already here). Lines this log already holds must be the
        same; the rest must chain on from its head. ``ChainBroken`` otherwise (nothing of the
        batch in flight is kept; what was copied before stays and continues the chain)."""
        await self.open()
        head = Head(*await self.head())
        base = await self.base()
        purged = base.seq if base is not None else 0
        copied = present = 0
        expect_seq, expect_prev = 1, GENESIS
        batch: list[_Row] = []
        held: dict[int, str] = {}  # lines this log should already hold: seq -> hash

        async def compare() -> None:
            async def work(conn: psycopg.AsyncConnection[Any]) -> dict[int, str]:
                cur = await conn.execute(
                    self._q("SELECT seq, hash FROM {s}.entries WHERE seq = ANY(%s)"), (list(held),)
                )
                return {int(seq): str(h) for seq, h in await cur.fetchall()}

            stored: dict[int, str] = await self._run_long("read", work)
            for seq, entry_hash in sorted(held.items()):
                if stored.get(seq) != entry_hash:
                    raise ChainBroken(
                        f"entry seq {seq} here differs from the one copied: another chain"
                    )
            held.clear()

        async def flush() -> None:
            async def work(conn: psycopg.AsyncConnection[Any]) -> None:
                async with conn.transaction():
                    await conn.execute("SELECT pg_advisory_xact_lock(%s)", (self._lock_id,))
                    now = await self._read_head(conn)
                    if (now.seq, now.hash) != (batch[0].seq - 1, batch[0].prev):
                        raise ChainBroken("the audit table changed while copying; copy again")
                    await self._insert(conn, batch)

            # A bulk load may take longer than an append's timeout.
            await self._run_long("written", work)
            batch.clear()

        async for raw in lines:
            facts = line_facts(raw.line)
            if facts.seq is None or facts.prev is None or facts.stored_hash is None:
                raise ChainBroken(f"{raw.position} is not an audit entry")
            if not facts.hash_ok or facts.seq != expect_seq or facts.prev != expect_prev:
                raise ChainBroken(f"the chain breaks at {raw.position}; run `hub audit verify`")
            expect_seq, expect_prev = facts.seq + 1, facts.stored_hash
            if facts.seq < head.seq:
                present += 1
                if facts.seq > purged:  # a purged entry cannot be compared; its successors are
                    held[facts.seq] = facts.stored_hash
                    if len(held) >= _COPY_BATCH:
                        await compare()
                continue
            if facts.seq == head.seq:
                if facts.stored_hash != head.hash:
                    raise ChainBroken(
                        f"entry seq {facts.seq} here differs from {raw.position}: another chain"
                    )
                present += 1
                continue
            if not batch and facts.seq != head.seq + 1 + copied:
                raise ChainBroken(f"{raw.position} does not continue the chain here")
            batch.append(_row(facts.seq, facts.prev, facts.stored_hash, raw.line))
            copied += 1
            if len(batch) >= _COPY_BATCH:
                await flush()
        if held:
            await compare()
        if batch:
            await flush()
        self._high_seq = max(self._high_seq, head.seq + copied)
        return copied, present

    async def _run_long(self, what: str, work: Any) -> Any:
        saved, self._timeout = self._timeout, max(self._timeout, 300.0)
        try:
            return await self._run(what, work)
        finally:
            self._timeout = saved

    async def purge(self, before: datetime, sign: Any) -> PurgeResult:
        """Remove the entries before the first one written at or after ``before`` (never one
        younger), in one transaction with the new ``chain_base``: the last removed entry's seq
        and hash, with ``sign(seq, hash)``'s checkpoint (a JWS) over it. ``verify`` then starts
        there. The retention minimum is the caller's check (``hub audit purge``)."""
        cutoff = iso_utc(before)

        async def work(conn: psycopg.AsyncConnection[Any]) -> PurgeResult:
            async with conn.transaction():
                await conn.execute("SELECT pg_advisory_xact_lock(%s)", (self._lock_id,))
                cur = await conn.execute(
                    self._q("SELECT min(seq) FROM {s}.entries WHERE at >= %s"), (cutoff,)
                )
                first_kept = (await cur.fetchone() or (None,))[0]
                if first_kept is None:
                    cur = await conn.execute(self._q("SELECT max(seq) FROM {s}.entries"))
                    last = (await cur.fetchone() or (None,))[0]
                    if last is None:
                        return PurgeResult(0, None)
                    boundary = int(last)
                else:
                    boundary = int(first_kept) - 1
                cur = await conn.execute(
                    self._q("SELECT hash FROM {s}.entries WHERE seq = %s"), (boundary,)
                )
                found = await cur.fetchone()
                if found is None:
                    return PurgeResult(0, None)  # at or before the current base: nothing to do
                boundary_hash = str(found[0])
                jws = str(sign(boundary, boundary_hash))
                removed = 0
                for table in ("entry_scope", "entry_records", "entries"):
                    cur = await conn.execute(
                        sql.SQL("DELETE FROM {s}.{t} WHERE seq <= %s").format(
                            s=self._s, t=sql.Identifier(table)
                        ),
                        (boundary,),
                    )
                    if table == "entries":
                        removed = cur.rowcount
                await conn.execute(
                    self._q(
                        "INSERT INTO {s}.chain_base (one, seq, hash, checkpoint) "
                        "VALUES (true, %s, %s, %s) ON CONFLICT (one) DO UPDATE SET "
                        "seq = EXCLUDED.seq, hash = EXCLUDED.hash, checkpoint = EXCLUDED.checkpoint"
                    ),
                    (boundary, boundary_hash, jws),
                )
                await self._save_checkpoint(conn, boundary, boundary_hash, jws)
                return PurgeResult(removed, Base(boundary, boundary_hash, jws))

        result: PurgeResult = await self._run_long("purged", work)
        return result

    # -- checkpoints (hub.audit.checkpoint signs them; the table keeps them for partners) --

    async def _save_checkpoint(
        self, conn: psycopg.AsyncConnection[Any], seq: int, entry_hash: str, jws: str
    ) -> None:
        await conn.execute(
            self._q("INSERT INTO {s}.checkpoints (seq, hash, jws) VALUES (%s, %s, %s)"),
            (seq, entry_hash, jws),
        )
        # Bounded: the oldest go once there are more than MAX_CHECKPOINTS.
        await conn.execute(
            self._q(
                "DELETE FROM {s}.checkpoints WHERE id <= (SELECT max(id) FROM {s}.checkpoints) - %s"
            ),
            (MAX_CHECKPOINTS,),
        )

    async def save_checkpoint(self, seq: int, entry_hash: str, jws: str) -> None:
        async def work(conn: psycopg.AsyncConnection[Any]) -> None:
            async with conn.transaction():
                await self._save_checkpoint(conn, seq, entry_hash, jws)

        await self._run("written", work)

    async def checkpoints(self, n: int) -> list[str]:
        """The newest ``n`` checkpoints (JWS), newest first."""

        async def work(conn: psycopg.AsyncConnection[Any]) -> list[str]:
            cur = await conn.execute(
                self._q("SELECT jws FROM {s}.checkpoints ORDER BY id DESC LIMIT %s"), (n,)
            )
            return [str(row[0]) for row in await cur.fetchall()]

        result: list[str] = await self._run("read", work)
        return result

    # -- reading --

    async def scan(
        self, *, since: datetime | None = None, until: datetime | None = None
    ) -> AsyncIterator[RawEntry]:
        conditions = ["seq > %(after)s"]
        params: dict[str, Any] = {"after": -1, "page": _PAGE}
        if since is not None:
            conditions.append("at >= %(since)s")
            params["since"] = iso_utc(since)
        if until is not None:
            conditions.append("at < %(until)s")
            params["until"] = iso_utc(until)
        query = self._where(
            "SELECT seq, line FROM {s}.entries WHERE ", conditions, " ORDER BY seq LIMIT %(page)s"
        )
        while True:
            page = await self._fetch(query, params)
            for seq, line in page:
                yield RawEntry(f"row seq {seq}", bytes(line))
            if len(page) < _PAGE:
                return
            params["after"] = int(page[-1][0])

    def _where(self, head: str, conditions: Sequence[str], tail: str) -> sql.Composed:
        """``head`` + the conditions joined by AND + ``tail``: constant SQL text only, the
        values always parameters."""
        where = sql.SQL(" AND ").join(sql.SQL(c).format(s=self._s) for c in conditions)
        return sql.Composed([self._q(head), where, sql.SQL(tail)])

    async def _fetch(self, query: sql.Composed, params: Any) -> list[tuple[Any, ...]]:
        async def work(conn: psycopg.AsyncConnection[Any]) -> list[tuple[Any, ...]]:
            cur = await conn.execute(query, params)
            return await cur.fetchall()

        result: list[tuple[Any, ...]] = await self._run("read", work)
        return result

    async def tail(self, n: int, *, follow: bool = False) -> AsyncIterator[RawEntry]:
        recent = await self._fetch(
            self._q("SELECT seq, line FROM {s}.entries ORDER BY seq DESC LIMIT %s"), (max(n, 1),)
        )
        last = int(recent[0][0]) if recent else -1
        if n > 0:
            for seq, line in reversed(recent):
                yield RawEntry(f"row seq {seq}", bytes(line))
        newer = self._q("SELECT seq, line FROM {s}.entries WHERE seq > %s ORDER BY seq LIMIT %s")
        while follow:
            page = await self._fetch(newer, (last, _PAGE))
            for seq, line in page:
                yield RawEntry(f"row seq {seq}", bytes(line))
                last = int(seq)
            if not page:
                await asyncio.sleep(self._poll_interval)

    async def select_events(self, reader_agency: str, query: AuditQuery, limit: int) -> list[bytes]:
        """``hub.audit.query.query_events``'s filters as SQL over the indexes (the scan's
        semantics: scope by ``entry_scope``; ``record_id`` and ``agency`` match only records in
        the reader's part of the entry), newest first."""
        conditions = [
            "EXISTS (SELECT 1 FROM {s}.entry_scope c WHERE c.agency = %(reader)s AND c.seq = e.seq)"
        ]
        params: dict[str, Any] = {"reader": reader_agency, "limit": limit}
        if query.user is not None:
            conditions.append("e.user_id = %(user)s")
            params["user"] = query.user
        if query.purpose is not None:
            conditions.append("e.purpose = %(purpose)s")
            params["purpose"] = query.purpose
        if query.case_number is not None:
            conditions.append("e.case_number = %(case)s")
            params["case"] = query.case_number
        if query.since is not None:
            conditions.append("e.at >= %(since)s")
            params["since"] = iso_utc(query.since)
        if query.until is not None:
            conditions.append("e.at < %(until)s")
            params["until"] = iso_utc(query.until)
        # A record is in the reader's part of an entry when the entry is the reader's own (its
        # subject works for the reader's agency) or the reader owns it (hub.audit.query._trim).
        if query.record_id is not None:
            # The entries holding the record first (an array: the planner then reads them by
            # primary key, where a semi-join on the OR below made it scan the table: 600 ms at
            # 1M entries against under 1 ms), then the reader's-part check on those few.
            conditions.append(
                "e.seq = ANY(ARRAY(SELECT r.seq FROM {s}.entry_records r "
                "WHERE r.record_id = %(record)s))"
            )
            conditions.append(
                "EXISTS (SELECT 1 FROM {s}.entry_records r WHERE r.seq = e.seq "
                "AND r.record_id = %(record)s AND (e.agency = %(reader)s OR r.owner = %(reader)s))"
            )
            params["record"] = query.record_id
        if query.agency is not None:
            conditions.append(
                "(e.agency = %(agency)s OR EXISTS (SELECT 1 FROM {s}.entry_records r "
                "WHERE r.seq = e.seq AND r.owner = %(agency)s "
                "AND (e.agency = %(reader)s OR r.owner = %(reader)s)))"
            )
            params["agency"] = query.agency
        statement = self._where(
            "SELECT e.line FROM {s}.entries e WHERE ",
            conditions,
            " ORDER BY e.seq DESC LIMIT %(limit)s",
        )

        async def work(conn: psycopg.AsyncConnection[Any]) -> list[bytes]:
            cur = await conn.execute(statement, params)
            return [bytes(row[0]) for row in await cur.fetchall()]

        result: list[bytes] = await self._run("read", work)
        return result


async def _configure(conn: psycopg.AsyncConnection[Any]) -> None:
    # Durable on commit, whatever the server's default.
    await conn.execute("SET synchronous_commit = on")


def _entry_values(r: _Row) -> tuple[Any, ...]:
    e = r.entry
    return (r.seq, r.prev, r.hash, e.at, e.user, e.agency, e.purpose, e.case_number, r.line)


def _record_values(rows: Iterable[_Row]) -> list[tuple[str, str, int]]:
    out: list[tuple[str, str, int]] = []
    for r in rows:
        # One row per record id and owner in an entry (the key; a hub id names its owner, but
        # the index must answer exactly as the scan does whatever an entry holds).
        for record_id, owner in sorted({(rec.id, rec.owner) for rec in r.entry.records}):
            out.append((record_id, owner, r.seq))
    return out
