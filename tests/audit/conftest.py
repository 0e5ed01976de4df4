"""Audit test fixtures: entries, contexts, and a stream key of the test's own on the shared
Redis (the Redis fixtures themselves are ``tests.redis_server``'s)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import pytest
import redis.asyncio as aioredis

from hub.audit.entry import AuditEntry, RecordAccess, SourceCall
from hub.context import RequestContext, Subject
from tests.audit.postgres import pg_database, pg_proxy, pg_schema, pg_url  # noqa: F401


def make_entry(
    n: int = 0,
    *,
    user: str = "u1",
    agency: str = "CA0990000",
    records: tuple[tuple[str, str], ...] = (),
    purpose: str | None = "C",
    at: str | None = None,
) -> AuditEntry:
    return AuditEntry(
        at=at or f"2024-01-01T00:00:{n % 60:02d}.000000+00:00",
        trace_id=f"{n:032x}",
        operation="search",
        outcome="OK",
        user=user,
        agency=agency,
        roles=("analyst",),
        purpose=purpose,
        criteria={"text": f"Reyes {n}", "plate": "7ABC123"},
        sources=(
            SourceCall(
                source="marin-rms", agency="CA0990000", status="OK", count=1, latency_ms=1.5
            ),
        ),
        records=tuple(RecordAccess(id=i, owner=o) for i, o in records),
    )


def make_context(
    user: str = "u1",
    agency: str = "CA0990000",
    purpose: str | None = "C",
    roles: frozenset[str] = frozenset({"analyst"}),
) -> RequestContext:
    return RequestContext(
        subject=Subject(
            user_id=user, name="Dana Officer", ori=agency, state=agency[:2], roles=roles
        ),
        purpose=purpose,
        case_number="2024-000123",
        client_address="127.0.0.1",
        request_id=uuid.uuid4().hex,
    )


@pytest.fixture
async def stream_key(redis_client: aioredis.Redis) -> AsyncIterator[str]:
    key = f"test:audit:{uuid.uuid4().hex}"
    yield key
    await redis_client.delete(key)
