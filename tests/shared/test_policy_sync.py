"""Policy reload across workers: real access policies over real policy files, real Redis; a
change arrives by pub/sub, by polling after a missed message, and by the local file check."""

from __future__ import annotations

import asyncio
import os
import shutil
import time
from collections.abc import Callable
from pathlib import Path

import pytest
import redis.asyncio as aioredis

from hub.access.policy import AccessPolicy, default_policy_dir
from hub.errors import ConfigError
from hub.shared.policy_sync import PolicyWatcher
from hub.shared.redis_link import RedisLink
from resolvers.catalogue import CATALOGUE
from tests.redis_server import (
    RedisServer,
    shared_url,
    started_link,
)

AGREEMENT = """
  - id: HFPD-SSP-2026
    title: Harbor Falls PD shares persons with Sierra State Patrol
    owner: OR0990200
    requesters: [NV0990000]
    purposes: [C]
    share:
      PERSON: "*"
"""
SLOW = 60.0  # a period long enough that it never fires during a test


@pytest.fixture
def policy_dir(tmp_path: Path) -> Path:
    target = tmp_path / "policies"
    shutil.copytree(default_policy_dir(), target)
    return target


def change_policy(directory: Path) -> str:
    """Add an agreement; the new version, as an operator's own load of the files sees it."""
    path = directory / "agreements.yaml"
    before = path.stat().st_mtime_ns
    path.write_text(path.read_text(encoding="utf-8") + AGREEMENT, encoding="utf-8")
    # Coarse filesystem timestamps: make the change visible to the policy's fingerprint.
    os.utime(path, ns=(before + 2_000_000_000, before + 2_000_000_000))
    return AccessPolicy.load(directory, CATALOGUE).version


async def eventually(check: Callable[[], bool], within_s: float) -> float:
    started = time.monotonic()
    while not check():
        if time.monotonic() - started > within_s:
            raise AssertionError(f"not within {within_s} s")
        await asyncio.sleep(0.02)
    return time.monotonic() - started


class Worker:
    """One hub worker as far as policy goes: its link, its policy, its watcher."""

    def __init__(self, link: RedisLink, policy: AccessPolicy, watcher: PolicyWatcher) -> None:
        self.link, self.policy, self.watcher = link, policy, watcher

    @classmethod
    async def start(cls, url: str | None, directory: Path, prefix: str, **timing: float) -> Worker:
        link = await started_link(url)
        policy = AccessPolicy.load(directory, CATALOGUE)
        watcher = PolicyWatcher(
            link, policy.reload_if_changed, lambda: policy.version, prefix=prefix, **timing
        )
        await watcher.start()
        return cls(link, policy, watcher)

    async def stop(self) -> None:
        await self.watcher.close()
        await self.link.close()


async def subscribers(raw: aioredis.Redis, channel: str) -> int:
    counts = await raw.pubsub_numsub(channel)
    return int(counts[0][1])


async def test_an_announcement_reaches_every_worker_by_pubsub(
    policy_dir: Path, redis_prefix: str, redis_client: aioredis.Redis
) -> None:
    url = shared_url()
    workers = [
        await Worker.start(url, policy_dir, redis_prefix, poll_s=SLOW, local_check_s=SLOW)
        for _ in range(2)
    ]
    operator = PolicyWatcher(
        await started_link(url), lambda: False, lambda: "", prefix=redis_prefix
    )
    try:
        await eventually(lambda: True, 0)
        channel = workers[0].watcher.channel
        for _ in range(100):
            if await subscribers(redis_client, channel) == 2:
                break
            await asyncio.sleep(0.02)
        new_version = change_policy(policy_dir)
        assert await operator.announce(new_version)
        # No polling and no file check within the test: only the message can have done it.
        took = await eventually(lambda: all(w.policy.version == new_version for w in workers), 2.0)
        assert took < 1.0
        assert [w.watcher.reloads for w in workers] == [1, 1]
        assert await redis_client.get(workers[0].watcher.key) == new_version.encode()
    finally:
        for worker in workers:
            await worker.stop()
        await operator.link.close()


async def test_polling_catches_a_message_that_was_missed(
    policy_dir: Path, redis_prefix: str, redis_client: aioredis.Redis
) -> None:
    worker = await Worker.start(
        shared_url(), policy_dir, redis_prefix, poll_s=0.2, local_check_s=SLOW
    )
    try:
        new_version = change_policy(policy_dir)
        # The version key changes but no message is published (as if it was lost).
        await redis_client.set(worker.watcher.key, new_version)
        await eventually(lambda: worker.policy.version == new_version, 2.0)
    finally:
        await worker.stop()


async def test_a_worker_that_lost_redis_catches_up_when_it_returns(
    policy_dir: Path, redis_server: RedisServer
) -> None:
    worker = await Worker.start(redis_server.url, policy_dir, "p", poll_s=0.2, local_check_s=SLOW)
    try:
        redis_server.kill()
        await eventually(lambda: worker.link.degraded, 2.0)
        new_version = change_policy(policy_dir)
        redis_server.start()
        # Announced as soon as Redis is back: most likely before the worker has resubscribed.
        operator = await started_link(redis_server.url)
        await PolicyWatcher(operator, lambda: False, lambda: "", prefix="p").announce(new_version)
        await operator.close()
        await eventually(lambda: worker.policy.version == new_version, 3.0)
    finally:
        await worker.stop()


async def test_without_redis_the_local_check_reloads(policy_dir: Path) -> None:
    worker = await Worker.start(None, policy_dir, "p", poll_s=SLOW, local_check_s=0.1)
    try:
        new_version = change_policy(policy_dir)
        await eventually(lambda: worker.policy.version == new_version, 2.0)
        assert await worker.watcher.announce() is False
    finally:
        await worker.stop()


async def test_a_change_one_worker_finds_on_disk_is_announced_to_the_others(
    policy_dir: Path, redis_prefix: str, redis_client: aioredis.Redis
) -> None:
    url = shared_url()
    finder = await Worker.start(url, policy_dir, redis_prefix, poll_s=SLOW, local_check_s=0.1)
    other = await Worker.start(url, policy_dir, redis_prefix, poll_s=SLOW, local_check_s=SLOW)
    try:
        for _ in range(100):
            if await subscribers(redis_client, finder.watcher.channel) == 2:
                break
            await asyncio.sleep(0.02)
        new_version = change_policy(policy_dir)
        await eventually(lambda: other.policy.version == new_version, 2.0)
        assert await redis_client.get(finder.watcher.key) == new_version.encode()
    finally:
        await finder.stop()
        await other.stop()


async def test_a_failing_reload_does_not_stop_the_watcher() -> None:
    calls: list[int] = []

    def reload() -> bool:
        calls.append(1)
        if len(calls) == 1:
            raise ConfigError("hub-rules.csv:3: unknown role")
        return False

    watcher = PolicyWatcher(RedisLink(None), reload, lambda: "v1", local_check_s=0.05)
    await watcher.start()
    try:
        await eventually(lambda: len(calls) >= 3, 2.0)
    finally:
        await watcher.close()


async def test_an_async_reload_is_awaited() -> None:
    done = asyncio.Event()

    async def reload() -> bool:
        done.set()
        return True

    watcher = PolicyWatcher(RedisLink(None), reload, lambda: "v1", local_check_s=0.05)
    await watcher.start()
    try:
        async with asyncio.timeout(2.0):
            await done.wait()
        await eventually(lambda: watcher.reloads >= 1, 1.0)
    finally:
        await watcher.close()
