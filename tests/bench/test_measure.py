"""Interleaving, percentiles and throughput rounds (no timing assertions)."""

from __future__ import annotations

import math
from collections.abc import Awaitable, Callable

from bench.measure import (
    Stats,
    interleaved_latency,
    interleaved_throughput,
    percentile,
    ratio,
    rss_bytes,
)


def test_percentile_is_nearest_rank() -> None:
    values = [float(v) for v in range(1, 101)]
    assert percentile(values, 50) == 50.0
    assert percentile(values, 99) == 99.0
    # With few samples p99 is the maximum, never an interpolation beyond it.
    assert percentile([3.0, 1.0, 2.0], 99) == 3.0
    assert math.isnan(percentile([], 50))


def test_stats_and_ratio() -> None:
    stats = Stats((4.0, 1.0, 3.0, 2.0))
    assert stats.median == 2.5
    assert stats.p99 == 4.0
    assert stats.count == 4
    assert ratio(3.0, 2.0) == 1.5
    assert math.isnan(ratio(1.0, 0.0))
    assert math.isnan(ratio(math.nan, 1.0))


async def test_latency_samples_rotate_the_order() -> None:
    calls: list[str] = []

    def probe(name: str) -> Callable[[], Awaitable[None]]:
        async def call() -> None:
            calls.append(name)

        return call

    stats = await interleaved_latency(
        {"a": probe("a"), "b": probe("b"), "c": probe("c")}, 3, warmup=0, collect=True
    )
    assert calls == ["a", "b", "c", "b", "c", "a", "c", "a", "b"]
    assert {name: s.count for name, s in stats.items()} == {"a": 3, "b": 3, "c": 3}


async def test_throughput_rounds_count_completed_calls() -> None:
    done = {"a": 0, "b": 0}

    def probe(name: str) -> Callable[[], Awaitable[None]]:
        async def call() -> None:
            done[name] += 1

        return call

    found = await interleaved_throughput({"a": probe("a"), "b": probe("b")}, 4, 2, 0.02)
    for name, result in found.items():
        assert result.rounds.count == 2
        assert all(rps > 0 for rps in result.rounds.samples)
        # Every completed call of the timed rounds left its latency.
        assert result.latencies.count <= done[name]
        assert result.latencies.count > 0


def test_rss_is_measured() -> None:
    assert rss_bytes() > 1024 * 1024
