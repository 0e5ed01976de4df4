"""Timing side by side: interleaved samples, medians, p99, and ratios of them.

Every figure a scenario reports compares variants measured in the same run, one sample of each
in turn (A B C, B C A, C A B, ...), so a slow minute on a noisy machine slows every variant
alike instead of whichever happened to run then.
"""

from __future__ import annotations

import asyncio
import gc
import math
import os
import resource
import statistics
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass

Probe = Callable[[], Awaitable[object]]


def rss_bytes(pid: int | None = None) -> int:
    """Resident memory of a process now (Linux ``/proc``); peak RSS of this one elsewhere."""
    try:
        with open(f"/proc/{pid or os.getpid()}/statm", encoding="ascii") as statm:
            return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except OSError:
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def percentile(values: Sequence[float], q: float) -> float:
    """The ``q``-th percentile (0-100), nearest rank: with few samples p99 is the maximum."""
    if not values:
        return math.nan
    ordered = sorted(values)
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return ordered[rank - 1]


@dataclass(frozen=True, slots=True)
class Stats:
    """Summary of one variant's samples (seconds, or requests per second for throughput)."""

    samples: tuple[float, ...]

    @property
    def median(self) -> float:
        return statistics.median(self.samples) if self.samples else math.nan

    @property
    def p99(self) -> float:
        return percentile(self.samples, 99)

    @property
    def count(self) -> int:
        return len(self.samples)


def ratio(numerator: float, denominator: float) -> float:
    if denominator == 0 or math.isnan(denominator) or math.isnan(numerator):
        return math.nan
    return numerator / denominator


async def interleaved_latency(
    probes: Mapping[str, Probe], samples: int, *, warmup: int = 2, collect: bool = False
) -> dict[str, Stats]:
    """Wall time of one call of each probe, ``samples`` times each, in rotating order.

    ``collect``: a full garbage collection before each call (not timed), so that a call that
    allocates a lot pays for its own collections, not for the previous call's garbage.
    """
    names = list(probes)
    for _ in range(warmup):
        for name in names:
            await probes[name]()
    times: dict[str, list[float]] = {name: [] for name in names}
    for i in range(samples):
        turn = names[i % len(names) :] + names[: i % len(names)]
        for name in turn:
            if collect:
                gc.collect()
            started = time.perf_counter()
            await probes[name]()
            times[name].append(time.perf_counter() - started)
    return {name: Stats(tuple(v)) for name, v in times.items()}


@dataclass(frozen=True, slots=True)
class Throughput:
    """Requests per second of each round, and the latency of every request in them."""

    rounds: Stats
    latencies: Stats


async def _burst(probe: Probe, concurrency: int, duration_s: float) -> tuple[int, list[float]]:
    """Keep ``concurrency`` calls in flight for ``duration_s``; completed calls and latencies."""
    deadline = time.perf_counter() + duration_s
    latencies: list[float] = []

    async def worker() -> None:
        while time.perf_counter() < deadline:
            started = time.perf_counter()
            await probe()
            latencies.append(time.perf_counter() - started)

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    elapsed = time.perf_counter() - started
    # Workers finish their last call after the deadline: divide by the time actually taken.
    return len(latencies), [elapsed, *latencies]


async def interleaved_throughput(
    probes: Mapping[str, Probe], concurrency: int, rounds: int, duration_s: float
) -> dict[str, Throughput]:
    """Requests per second at ``concurrency`` in flight, ``rounds`` rounds of each in turn."""
    names = list(probes)
    for name in names:  # warm connections and caches at this concurrency
        await _burst(probes[name], concurrency, min(duration_s, 0.2))
    per_round: dict[str, list[float]] = {name: [] for name in names}
    latencies: dict[str, list[float]] = {name: [] for name in names}
    for i in range(rounds):
        turn = names[i % len(names) :] + names[: i % len(names)]
        for name in turn:
            done, timing = await _burst(probes[name], concurrency, duration_s)
            elapsed, *lat = timing
            per_round[name].append(done / elapsed)
            latencies[name].extend(lat)
    return {
        name: Throughput(Stats(tuple(per_round[name])), Stats(tuple(latencies[name])))
        for name in names
    }
