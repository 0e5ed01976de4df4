"""Rate limits: GCRA arithmetic in memory, counts shared by workers in real Redis, and the
per-process fallback while Redis is away."""

from __future__ import annotations

import asyncio
import time

import pytest
import redis.asyncio as aioredis

from hub.shared.ratelimit import (
    Limit,
    MemoryRateLimiter,
    RateDecision,
    RedisRateLimiter,
    make_rate_limiter,
)
from hub.shared.redis_link import RedisLink
from tests.redis_server import (
    RedisServer,
    started_link,
)

LIMITS = {"user": Limit(5, 10.0), "agency": Limit(8, 10.0)}


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def user(name: str, agency: str = "CA0990000") -> dict[str, str]:
    return {"user": f"{agency}/{name}", "agency": agency}


# -- the arithmetic ---------------------------------------------------------------------------


async def test_a_burst_of_the_limit_then_one_per_interval() -> None:
    clock = FakeClock()
    limiter = MemoryRateLimiter({"user": Limit(5, 10.0)}, clock=clock)
    keys = {"user": "u1"}
    assert [(await limiter.hit(keys)).allowed for _ in range(6)] == [True] * 5 + [False]
    refused = await limiter.hit(keys)
    assert refused.limited_by == "user"
    assert refused.retry_after_s == pytest.approx(2.0)
    assert refused.retry_after_header == "2"
    clock.now += 1.9
    assert not (await limiter.hit(keys)).allowed
    clock.now += 0.1
    assert (await limiter.hit(keys)).allowed
    assert not (await limiter.hit(keys)).allowed
    clock.now += 10.0  # fully refilled: a whole burst again
    assert [(await limiter.hit(keys)).allowed for _ in range(6)] == [True] * 5 + [False]


async def test_retry_after_header_is_whole_seconds_rounded_up() -> None:
    assert RateDecision(False, 0.2).retry_after_header == "1"
    assert RateDecision(False, 2.01).retry_after_header == "3"


async def test_a_refusal_charges_no_bucket() -> None:
    clock = FakeClock()
    limiter = MemoryRateLimiter({"user": Limit(100, 10.0), "agency": Limit(3, 10.0)}, clock=clock)
    for name in ("u1", "u2", "u3"):
        assert (await limiter.hit(user(name))).allowed
    for _ in range(50):
        decision = await limiter.hit(user("u4"))
        assert (decision.allowed, decision.limited_by) == (False, "agency")
    # u4 lost nothing of its own budget while the agency refused.
    other = await limiter.hit({"user": "CA0990000/u4", "agency": "OR0990200"})
    assert other.allowed


async def test_unlimited_names_and_cost() -> None:
    limiter = MemoryRateLimiter({"user": Limit(4, 10.0)}, clock=FakeClock())
    assert (await limiter.hit({"client": "x"})).allowed  # no limit configured for "client"
    assert (await limiter.hit({"user": "u"}, cost=3)).allowed
    assert not (await limiter.hit({"user": "u"}, cost=2)).allowed
    assert (await limiter.hit({"user": "u"}, cost=1)).allowed


async def test_memory_limiter_forgets_full_buckets_first() -> None:
    clock = FakeClock()
    limits = {"user": Limit(2, 10.0), "agency": Limit(10, 1.0)}
    limiter = MemoryRateLimiter(limits, max_keys=3, clock=clock)
    await limiter.hit({"user": "busy"})  # the oldest bucket, and it will still owe time
    await limiter.hit({"user": "busy"})
    await limiter.hit({"agency": "quiet-1"})
    await limiter.hit({"agency": "quiet-2"})
    clock.now += 1.0  # the quiet buckets are full again; busy owes 9 s
    await limiter.hit({"agency": "new"})  # over max_keys: the full ones go, not the oldest
    assert not (await limiter.hit({"user": "busy"})).allowed


def test_limits_must_make_sense() -> None:
    with pytest.raises(ValueError, match="at least one request"):
        Limit(0, 1.0)
    with pytest.raises(ValueError, match="positive window"):
        Limit(1, 0)


# -- shared in Redis --------------------------------------------------------------------------


async def test_two_workers_share_the_counts(
    redis_links: tuple[RedisLink, RedisLink], redis_prefix: str
) -> None:
    a = RedisRateLimiter(redis_links[0], LIMITS, prefix=redis_prefix)
    b = RedisRateLimiter(redis_links[1], LIMITS, prefix=redis_prefix)
    results = [(await (a if i % 2 else b).hit(user("u1"))).allowed for i in range(5)]
    assert results == [True] * 5
    refused = await a.hit(user("u1"))
    assert not refused.allowed
    assert refused.limited_by == "user"
    assert 1.5 < refused.retry_after_s <= 2.0
    assert refused.retry_after_header == "2"
    assert not (await b.hit(user("u1"))).allowed
    # The agency's budget (8) is shared by its users across workers.
    assert all([(await b.hit(user("u2"))).allowed for _ in range(3)])
    decision = await a.hit(user("u3"))
    assert (decision.allowed, decision.limited_by) == (False, "agency")


async def test_the_script_is_atomic_under_concurrency(
    redis_links: tuple[RedisLink, RedisLink], redis_prefix: str
) -> None:
    # An hour's window: no token comes back while the burst runs, however slow the machine.
    limits = {"agency": Limit(20, 3600.0)}
    a = RedisRateLimiter(redis_links[0], limits, prefix=redis_prefix)
    b = RedisRateLimiter(redis_links[1], limits, prefix=redis_prefix)
    decisions = await asyncio.gather(
        *((a if i % 2 else b).hit({"agency": "CA0990000"}) for i in range(60))
    )
    assert sum(d.allowed for d in decisions) == 20


async def test_allowed_again_after_retry_after(link_prefix: tuple[RedisLink, str]) -> None:
    link, prefix = link_prefix
    limiter = RedisRateLimiter(link, {"user": Limit(2, 0.4)}, prefix=prefix)
    assert (await limiter.hit({"user": "u"})).allowed
    assert (await limiter.hit({"user": "u"})).allowed
    refused = await limiter.hit({"user": "u"})
    assert not refused.allowed
    assert 0.1 < refused.retry_after_s <= 0.2
    await asyncio.sleep(refused.retry_after_s + 0.02)
    assert (await limiter.hit({"user": "u"})).allowed


async def test_refused_buckets_are_not_written(
    link_prefix: tuple[RedisLink, str], redis_client: aioredis.Redis
) -> None:
    link, prefix = link_prefix
    limiter = RedisRateLimiter(link, {"user": Limit(100, 10.0), "agency": Limit(1, 10.0)},
                               prefix=prefix)  # fmt: skip
    assert (await limiter.hit(user("u1"))).allowed
    assert not (await limiter.hit(user("u2"))).allowed
    assert await redis_client.exists(f"{prefix}:user:CA0990000/u1") == 1
    assert await redis_client.exists(f"{prefix}:user:CA0990000/u2") == 0
    # Keys expire once the bucket is full again: nothing piles up.
    assert 0 < await redis_client.pttl(f"{prefix}:agency:CA0990000") <= 10_000


@pytest.fixture
def link_prefix(redis_link: RedisLink, redis_prefix: str) -> tuple[RedisLink, str]:
    return redis_link, redis_prefix


# -- without Redis ----------------------------------------------------------------------------


async def test_no_redis_means_per_process_limits() -> None:
    limiter = make_rate_limiter(RedisLink(None), LIMITS)
    assert isinstance(limiter, MemoryRateLimiter)
    assert [(await limiter.hit(user("u1"))).allowed for _ in range(6)] == [True] * 5 + [False]


async def test_a_dead_redis_falls_back_to_memory_and_comes_back(redis_server: RedisServer) -> None:
    link = await started_link(redis_server.url)
    try:
        limiter = make_rate_limiter(link, {"user": Limit(3, 10.0)})
        assert isinstance(limiter, RedisRateLimiter)
        assert (await limiter.hit({"user": "u"})).allowed
        redis_server.kill()

        started = time.monotonic()
        # Still limited, per process now: a fresh budget of 3, then refusals.
        decisions = [(await limiter.hit({"user": "u"})).allowed for _ in range(4)]
        assert decisions == [True, True, True, False]
        assert time.monotonic() - started < 0.5
        assert limiter.degraded

        redis_server.start()  # comes back empty (no persistence)
        assert await link.wait_up(5.0)
        assert not limiter.degraded
        assert [(await limiter.hit({"user": "u"})).allowed for _ in range(4)] == [
            True, True, True, False,
        ]  # fmt: skip
        assert await link.run(lambda c: c.exists("hub:rl:user:u")) == 1
    finally:
        await link.close()


async def test_very_high_limits_work_in_redis(link_prefix: tuple[RedisLink, str]) -> None:
    # 10 million a minute: the interval between tokens rounds to 0 ms, which Redis refuses
    # as an expiry unless the script keeps it at 1 ms or more.
    link, prefix = link_prefix
    limiter = RedisRateLimiter(link, {"user": Limit(10_000_000, 60.0)}, prefix=prefix)
    decisions = [await limiter.hit({"user": "u"}) for _ in range(3)]
    assert all(d.allowed for d in decisions)
