"""The shared Redis link: off, up, down fast, and back again (on real Redis servers)."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
import redis.asyncio as aioredis
from redis.exceptions import ConnectionError as RedisConnectionError

from hub.secret import Secret
from hub.shared.redis_link import RedisLink, RedisUnavailable
from tests.ports import free_port
from tests.redis_server import RedisServer, shared_url, started_link


async def ping(client: aioredis.Redis) -> bool:
    return bool(await client.ping())


async def test_no_redis_configured_is_off_and_never_degraded() -> None:
    link = RedisLink(None)
    await link.start()
    assert not link.configured
    assert not link.up
    assert not link.degraded
    assert link.health().state == "off"
    with pytest.raises(RedisUnavailable):
        await link.run(ping)
    assert await link.wait_up(0.01) is False
    await link.close()


async def test_up_against_the_shared_redis() -> None:
    link = await started_link(shared_url())
    try:
        assert link.up
        assert not link.degraded
        assert await link.run(ping) is True
        health = link.health()
        assert health.state == "up"
        assert health.as_dict()["last_error"] is None
    finally:
        await link.close()


async def test_the_url_is_never_printed() -> None:
    link = RedisLink(Secret("redis://:hunter2@127.0.0.1:1/0"))
    assert "hunter2" not in repr(link.health())
    assert "hunter2" not in str(link.health().as_dict())
    await link.close()


async def test_a_restart_between_calls_is_absorbed(redis_server: RedisServer) -> None:
    # Every pooled connection dies with the server; the one retry reconnects.
    link = await started_link(redis_server.url)
    try:
        redis_server.restart()
        assert await link.run(ping) is True
        assert link.up
    finally:
        await link.close()


async def test_killed_redis_degrades_fast_and_recovers(redis_server: RedisServer) -> None:
    link = await started_link(redis_server.url)
    hook_saw_up: list[bool] = []

    async def hook(client: aioredis.Redis) -> None:
        hook_saw_up.append(link.up)
        await client.ping()

    link.add_recovery_hook(hook)
    try:
        assert link.up
        redis_server.kill()

        started = time.monotonic()
        with pytest.raises(RedisUnavailable):
            await link.run(ping)
        assert time.monotonic() - started < 0.5
        assert link.degraded
        assert link.health().state == "down"
        assert link.health().last_error is not None

        # Down: calls fail without touching the network.
        started = time.monotonic()
        for _ in range(100):
            with pytest.raises(RedisUnavailable):
                await link.run(ping)
        assert time.monotonic() - started < 0.05

        redis_server.start()
        assert await link.wait_up(5.0)
        assert await link.run(ping) is True
        assert link.health().state == "up"
        # The recovery hook ran once, before the link said it was up.
        assert hook_saw_up == [False]
    finally:
        await link.close()


async def test_unreachable_at_start_does_not_block_and_comes_up_later(tmp_path: Path) -> None:
    port = free_port()
    started = time.monotonic()
    link = await started_link(f"redis://127.0.0.1:{port}/0")
    try:
        assert time.monotonic() - started < 0.5
        assert link.degraded
        server = RedisServer(tmp_path, port).start()
        try:
            assert await link.wait_up(5.0)
            assert await link.run(ping) is True
        finally:
            server.kill()
    finally:
        await link.close()


async def test_a_hung_redis_costs_one_timeout_then_nothing(redis_server: RedisServer) -> None:
    link = await started_link(redis_server.url, timeout_s=0.3)
    try:
        redis_server.pause()
        started = time.monotonic()
        with pytest.raises(RedisUnavailable):
            await link.run(ping)
        waited = time.monotonic() - started
        assert 0.2 < waited < 0.8
        started = time.monotonic()
        with pytest.raises(RedisUnavailable):
            await link.run(ping)
        assert time.monotonic() - started < 0.01
        redis_server.resume()
        assert await link.wait_up(5.0)
        assert await link.run(ping) is True
    finally:
        await link.close()


async def test_a_failing_recovery_hook_keeps_the_link_down(redis_server: RedisServer) -> None:
    link = await started_link(redis_server.url)
    attempts: list[int] = []

    async def hook(client: aioredis.Redis) -> None:
        attempts.append(1)
        if len(attempts) == 1:
            raise RedisConnectionError("replay interrupted")

    link.add_recovery_hook(hook)
    try:
        redis_server.kill()
        with pytest.raises(RedisUnavailable):
            await link.run(ping)
        redis_server.start()
        assert await link.wait_up(5.0)
        assert len(attempts) == 2
    finally:
        await link.close()


async def test_script_errors_fail_the_call_but_not_the_link() -> None:
    link = await started_link(shared_url())

    async def broken(client: aioredis.Redis) -> object:
        return await client.eval("return redis.call('NOSUCHCOMMAND')", 0)

    try:
        with pytest.raises(RedisUnavailable):
            await link.run(broken)
        assert link.up
    finally:
        await link.close()
