"""Circuit breakers: open after failures, shared by workers in real Redis, one half-open probe
across all of them, closed again on success; per process while Redis is away."""

from __future__ import annotations

import asyncio
import time

import pytest

from hub.shared.breaker import (
    BreakerSettings,
    BreakerState,
    CircuitBreaker,
    MemoryCircuitBreaker,
    RedisCircuitBreaker,
    make_circuit_breaker,
)
from hub.shared.redis_link import RedisLink
from tests.redis_server import (
    RedisServer,
    started_link,
)

SETTINGS = BreakerSettings(failures=3, cooldown_s=0.3, probe_timeout_s=0.3)
SOURCE = "marin-rms"


@pytest.fixture
def pair(
    redis_links: tuple[RedisLink, RedisLink], redis_prefix: str
) -> tuple[RedisCircuitBreaker, RedisCircuitBreaker]:
    """The breakers of two workers (two links to the same Redis)."""
    a, b = redis_links
    return (RedisCircuitBreaker(a, SETTINGS, prefix=redis_prefix),
            RedisCircuitBreaker(b, SETTINGS, prefix=redis_prefix))  # fmt: skip


@pytest.fixture(params=["memory", "redis"])
def breaker(
    request: pytest.FixtureRequest, pair: tuple[RedisCircuitBreaker, RedisCircuitBreaker]
) -> CircuitBreaker:
    return MemoryCircuitBreaker(SETTINGS) if request.param == "memory" else pair[0]


async def fail(breaker: CircuitBreaker, times: int, source: str = SOURCE) -> None:
    for _ in range(times):
        assert await breaker.before_call(source)
        await breaker.record(source, False)


# -- either implementation --------------------------------------------------------------------


async def test_opens_after_consecutive_failures_and_skips(breaker: CircuitBreaker) -> None:
    await fail(breaker, 2)
    assert await breaker.state(SOURCE) is BreakerState.CLOSED
    await fail(breaker, 1)
    assert await breaker.state(SOURCE) is BreakerState.OPEN
    started = time.monotonic()
    assert [await breaker.before_call(SOURCE) for _ in range(20)] == [False] * 20
    assert time.monotonic() - started < 0.2
    # Other sources are not affected.
    assert await breaker.before_call("other-rms")


async def test_a_success_resets_the_count(breaker: CircuitBreaker) -> None:
    await fail(breaker, 2)
    await breaker.record(SOURCE, True)
    await fail(breaker, 2)
    assert await breaker.state(SOURCE) is BreakerState.CLOSED


async def test_half_open_probe_then_closed(breaker: CircuitBreaker) -> None:
    await fail(breaker, 3)
    await asyncio.sleep(SETTINGS.cooldown_s + 0.05)
    assert await breaker.state(SOURCE) is BreakerState.HALF_OPEN
    assert await breaker.before_call(SOURCE)  # the probe
    assert not await breaker.before_call(SOURCE)  # everyone else waits for it
    await breaker.record(SOURCE, True)
    assert await breaker.state(SOURCE) is BreakerState.CLOSED
    assert all([await breaker.before_call(SOURCE) for _ in range(5)])


async def test_a_failed_probe_opens_again(breaker: CircuitBreaker) -> None:
    await fail(breaker, 3)
    await asyncio.sleep(SETTINGS.cooldown_s + 0.05)
    assert await breaker.before_call(SOURCE)
    await breaker.record(SOURCE, False)
    assert await breaker.state(SOURCE) is BreakerState.OPEN
    assert not await breaker.before_call(SOURCE)


async def test_a_probe_that_never_reports_is_given_to_someone_else(
    breaker: CircuitBreaker,
) -> None:
    await fail(breaker, 3)
    await asyncio.sleep(SETTINGS.cooldown_s + 0.05)
    assert await breaker.before_call(SOURCE)  # this prober dies without recording
    assert not await breaker.before_call(SOURCE)
    await asyncio.sleep(SETTINGS.probe_timeout_s + 0.05)
    assert await breaker.before_call(SOURCE)


async def test_many_sources_checked_at_once_agree_with_one_at_a_time(
    breaker: CircuitBreaker,
) -> None:
    # One open, one half-open (its probe claimed by the batch), one closed, one never seen.
    await fail(breaker, 3, "half-rms")
    await asyncio.sleep(SETTINGS.cooldown_s + 0.05)
    await fail(breaker, 3, "open-rms")
    verdicts = await breaker.before_calls(["open-rms", "half-rms", "closed-rms", "new-rms"])
    assert verdicts == [False, True, True, True]
    # The batch claimed the half-open source's probe, as before_call would have.
    assert not await breaker.before_call("half-rms")
    assert await breaker.before_calls(["half-rms", "half-rms"]) == [False, False]
    assert await breaker.before_calls([]) == []


# -- shared in Redis --------------------------------------------------------------------------


async def test_workers_share_the_breaker(
    pair: tuple[RedisCircuitBreaker, RedisCircuitBreaker],
) -> None:
    a, b = pair
    # Failures seen by different workers add up.
    await fail(a, 1)
    await fail(b, 1)
    await fail(a, 1)
    assert not await b.before_call(SOURCE)
    assert await b.state(SOURCE) is BreakerState.OPEN


async def test_exactly_one_worker_probes(
    pair: tuple[RedisCircuitBreaker, RedisCircuitBreaker],
) -> None:
    a, b = pair
    await fail(a, 3)
    await asyncio.sleep(SETTINGS.cooldown_s + 0.05)
    verdicts = await asyncio.gather(*((a if i % 2 else b).before_call(SOURCE) for i in range(20)))
    assert sum(verdicts) == 1
    await (a if verdicts.index(True) % 2 else b).record(SOURCE, True)
    assert await a.before_call(SOURCE)
    assert await b.before_call(SOURCE)


def test_settings_must_be_positive() -> None:
    with pytest.raises(ValueError, match="positive"):
        BreakerSettings(failures=0)


# -- without Redis ----------------------------------------------------------------------------


async def test_no_redis_means_per_process_breakers() -> None:
    breaker = make_circuit_breaker(RedisLink(None), SETTINGS)
    assert isinstance(breaker, MemoryCircuitBreaker)
    await fail(breaker, 3)
    assert not await breaker.before_call(SOURCE)


async def test_a_dead_redis_falls_back_to_memory_and_comes_back(redis_server: RedisServer) -> None:
    link = await started_link(redis_server.url)
    try:
        breaker = make_circuit_breaker(link, SETTINGS)
        assert isinstance(breaker, RedisCircuitBreaker)
        await fail(breaker, 2)
        redis_server.kill()

        started = time.monotonic()
        # The per-process breaker takes over (and starts from its own count).
        await fail(breaker, 3)
        assert not await breaker.before_call(SOURCE)
        assert await breaker.before_calls([SOURCE, "other-rms"]) == [False, True]
        assert time.monotonic() - started < 0.5
        assert breaker.degraded

        redis_server.start()  # empty: the shared breaker is closed
        assert await link.wait_up(5.0)
        assert not breaker.degraded
        assert await breaker.before_call(SOURCE)
        await fail(breaker, 3)
        assert await breaker.state(SOURCE) is BreakerState.OPEN
        assert await link.run(lambda c: c.exists(f"hub:cb:{SOURCE}:open")) == 1
    finally:
        await link.close()
