"""The Redis stream log against real Redis: the shared one at REDIS_URL (a fresh key per test)
and servers the tests start, stop and kill themselves."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import msgspec
import pytest
import redis.asyncio as aioredis

from hub.audit.chain import FaultKind, verify_log
from hub.audit.entry import decode_entry
from hub.audit.redis_log import RedisAuditLog
from hub.errors import AuditUnavailable
from tests.audit.conftest import make_entry
from tests.redis_server import RedisServer


async def stream(client: aioredis.Redis, key: str) -> list[tuple[str, bytes]]:
    """(stream id, stored line) of each stream entry."""
    reply: Any = await client.xrange(key)
    return [(stream_id.decode(), fields[b"e"]) for stream_id, fields in reply]


async def stream_lines(client: aioredis.Redis, key: str) -> list[bytes]:
    return [line for _, line in await stream(client, key)]


async def stream_ids(client: aioredis.Redis, key: str) -> list[str]:
    return [stream_id for stream_id, _ in await stream(client, key)]


async def rebuild(client: aioredis.Redis, key: str, lines: list[bytes]) -> None:
    """What an attacker with write access does: rewrite the stream."""
    await client.delete(key)
    for line in lines:
        obj = msgspec.json.decode(line) if line.startswith(b"{") else {}
        await client.xadd(
            key, {"seq": str(obj.get("seq", 0)), "hash": obj.get("hash", ""), "e": line}
        )


@pytest.fixture
async def filled(redis_client: aioredis.Redis, stream_key: str) -> RedisAuditLog:
    log = RedisAuditLog(redis_client, key=stream_key)
    for n in range(1, 11):
        await log.append(make_entry(n))
    return log


async def test_appends_form_a_chain_that_verifies(filled: RedisAuditLog) -> None:
    report = await verify_log(filled)
    assert report.ok
    assert report.head_seq == 10
    tail = [decode_entry(r.line).seq async for r in filled.tail(3)]
    assert tail == [8, 9, 10]


async def test_a_second_writer_continues_the_same_chain(
    filled: RedisAuditLog, redis_url: str, stream_key: str
) -> None:
    other = RedisAuditLog.from_url(redis_url, key=stream_key)
    await other.append(make_entry(11))
    await filled.append(make_entry(12))  # its idea of the head is stale: it must re-chain
    await other.close()
    report = await verify_log(filled)
    assert report.ok
    assert report.head_seq == 12


async def test_writers_in_parallel_keep_one_chain(
    redis_url: str, stream_key: str, redis_client: aioredis.Redis
) -> None:
    writers = [RedisAuditLog.from_url(redis_url, key=stream_key) for _ in range(3)]
    results = await asyncio.gather(*(w.append(make_entry(n)) for n in range(600) for w in writers))
    for w in writers:
        await w.close()
    assert len(set(results)) == 1800
    log = RedisAuditLog(redis_client, key=stream_key)
    report = await verify_log(log)
    assert report.ok
    assert report.head_seq == 1800
    assert {
        decode_entry(line).hash for line in await stream_lines(redis_client, stream_key)
    } == set(results)


async def test_2000_concurrent_appends_make_2000_entries(
    redis_client: aioredis.Redis, stream_key: str
) -> None:
    log = RedisAuditLog(redis_client, key=stream_key)
    hashes = await asyncio.gather(*(log.append(make_entry(n)) for n in range(2000)))
    assert await redis_client.xlen(stream_key) == 2000
    assert len(set(hashes)) == 2000
    report = await verify_log(log)
    assert report.ok
    assert report.head_seq == 2000


async def test_a_changed_entry_is_named(
    filled: RedisAuditLog, redis_client: aioredis.Redis, stream_key: str
) -> None:
    lines = await stream_lines(redis_client, stream_key)
    lines[3] = lines[3].replace(b'"user":"u1"', b'"user":"u9"')
    await rebuild(redis_client, stream_key, lines)
    fault = (await verify_log(filled)).fault
    assert fault is not None
    assert (fault.kind, fault.seq) == (FaultKind.CHANGED, 4)
    assert fault.position.startswith("stream id ")


async def test_a_removed_entry_is_named(
    filled: RedisAuditLog, redis_client: aioredis.Redis, stream_key: str
) -> None:
    ids = await stream_ids(redis_client, stream_key)
    await redis_client.xdel(stream_key, ids[4])
    fault = (await verify_log(filled)).fault
    assert fault is not None
    assert (fault.kind, fault.seq) == (FaultKind.REMOVED, 5)
    assert fault.position == f"stream id {ids[5]}"


async def test_an_inserted_entry_is_named(
    filled: RedisAuditLog, redis_client: aioredis.Redis, stream_key: str
) -> None:
    lines = await stream_lines(redis_client, stream_key)
    fake = lines[2].replace(b'"user":"u1"', b'"user":"mallory"')
    lines.insert(6, fake)
    await rebuild(redis_client, stream_key, lines)
    ids = await stream_ids(redis_client, stream_key)
    fault = (await verify_log(filled)).fault
    assert fault is not None
    assert fault.kind == FaultKind.INSERTED
    assert fault.position == f"stream id {ids[6]}"


async def test_reordered_entries_are_named(
    filled: RedisAuditLog, redis_client: aioredis.Redis, stream_key: str
) -> None:
    lines = await stream_lines(redis_client, stream_key)
    lines[5], lines[6] = lines[6], lines[5]
    await rebuild(redis_client, stream_key, lines)
    fault = (await verify_log(filled)).fault
    assert fault is not None
    assert (fault.kind, fault.seq) == (FaultKind.REORDERED, 7)


async def test_a_stream_that_lost_entries_is_refused(
    filled: RedisAuditLog, redis_client: aioredis.Redis, stream_key: str
) -> None:
    ids = await stream_ids(redis_client, stream_key)
    await redis_client.xdel(stream_key, ids[-1], ids[-2])  # the head goes back to seq 8
    with pytest.raises(AuditUnavailable, match="lost entries"):
        await filled.append(make_entry(11))
    # Refused from now on, not just once: the chain must not quietly fork.
    await redis_client.xadd(stream_key, {"seq": "10", "hash": "x", "e": b"{}"})
    with pytest.raises(AuditUnavailable):
        await filled.append(make_entry(12))


async def test_the_writer_survives_a_connection_loss_once_redis_is_back(
    redis_servers: Callable[..., RedisServer],
) -> None:
    server = redis_servers(persistent=True)
    log = RedisAuditLog.from_url(server.url, key="audit", timeout=1.0)
    await log.append(make_entry(1))
    server.kill()
    with pytest.raises(AuditUnavailable):
        await log.append(make_entry(2))
    server.start()  # same port, same data directory
    await log.append(make_entry(3))
    report = await verify_log(log)
    await log.close()
    assert report.ok
    assert report.head_seq == 2


async def test_killed_mid_run_every_append_is_stored_or_refused(
    redis_servers: Callable[..., RedisServer],
) -> None:
    """Requests racing a kill -9 of Redis: each append either returned (and its entry survives,
    since Redis fsyncs its AOF before acknowledging) or raised AuditUnavailable."""
    server = redis_servers(persistent=True)
    log = RedisAuditLog.from_url(server.url, key="audit", timeout=1.0)
    stored: list[str] = []
    refused = 0
    under_way = asyncio.Event()

    async def request(n: int) -> None:
        nonlocal refused
        try:
            stored.append(await log.append(make_entry(n)))
        except AuditUnavailable:
            refused += 1
        if len(stored) >= 300:
            under_way.set()

    async def load() -> None:
        for wave in range(40):
            await asyncio.gather(*(request(wave * 50 + i) for i in range(50)))

    runner = asyncio.create_task(load())
    await asyncio.wait_for(under_way.wait(), 30)
    server.kill()
    await asyncio.wait_for(runner, 60)
    await log.close()
    assert refused > 0
    assert len(stored) + refused == 2000

    server.start()
    reader = RedisAuditLog.from_url(server.url, key="audit")
    report = await verify_log(reader)
    lines = [raw.line async for raw in reader.scan()]
    await reader.close()
    assert report.ok
    on_disk = {decode_entry(line).hash for line in lines}
    assert set(stored) <= on_disk  # nothing acknowledged was lost
    # Entries whose acknowledgement was lost in the kill may exist too: over-reporting, never
    # under-reporting.
    assert len(on_disk) >= len(stored)


async def test_a_redis_that_restarts_empty_is_refused(
    redis_servers: Callable[..., RedisServer],
) -> None:
    server = redis_servers(persistent=False)  # --save "" --appendonly no
    log = RedisAuditLog.from_url(server.url, key="audit", timeout=1.0)
    for n in range(5):
        await log.append(make_entry(n))
    server.kill()
    with pytest.raises(AuditUnavailable):
        await log.append(make_entry(5))
    server.start()  # empty: the five entries are gone
    with pytest.raises(AuditUnavailable, match="lost entries"):
        await log.append(make_entry(6))
    await log.close()


async def test_reading_with_a_client_that_decodes_responses(
    redis_url: str, stream_key: str
) -> None:
    client = aioredis.Redis.from_url(redis_url, decode_responses=True)
    log = RedisAuditLog(client, key=stream_key)
    await log.append(make_entry(1))
    await log.append(make_entry(2))
    assert (await verify_log(log)).ok
    await client.aclose()
