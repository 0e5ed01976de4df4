"""cache: a repeated search answered from the hub's source cache (warm) vs from the vendors (cold),
with every source answering in 100 ms.

Three searches of each text, in turn: by a hub with the cache off, then twice by a hub with the
cache on, whose first search finds the cache cold (a fresh key prefix in Redis, so nothing an
earlier run stored) and whose second finds it warm. ``extensions.sources[].cached`` proves which
answers came from the cache. The cache sits before the access decisions, so a warm search still
pays for policy, audit and GraphQL: the floor of a warm search is the hub itself.

The scenario says "not available" on a hub whose fan-out has no cache (no
``SourceStatus.cached`` or no ``cache_ttl_s`` setting).
"""

from __future__ import annotations

import dataclasses
import time

from bench.context import BenchContext
from bench.hubs import (
    SEARCH_QUERY,
    HubVariant,
    bench_redis_url,
    cached_answers,
    drop_redis_prefix,
    redis_unreachable,
    serve_hubs,
)
from bench.measure import Stats, ratio
from bench.report import Column, ScenarioResult, Table
from bench.vendors import VendorProcess, WorldPlan
from hub.adapters.fanout import SourceStatus
from hub.settings import Settings

NAME = "cache"
TITLE = "repeated search, warm Redis cache / cold, sources at L = 100 ms"
LATENCY_MS = 100


def unavailable_reason() -> str | None:
    """Why the scenario cannot run on this hub; None when it can."""
    if "cached" not in {f.name for f in dataclasses.fields(SourceStatus)}:
        return (
            "the hub has no source cache in its fan-out "
            "(hub.adapters.fanout.SourceStatus has no 'cached')"
        )
    if not hasattr(getattr(Settings(), "resilience", None), "cache_ttl_s"):
        return "the hub's settings have no cache configuration (resilience.cache_ttl_s)"
    return None


async def run(ctx: BenchContext) -> ScenarioResult:
    result = ScenarioResult(NAME, TITLE)
    reason = unavailable_reason()
    if reason is not None:
        result.unavailable = reason
        return result
    redis_url: str | None = bench_redis_url()
    missing = await redis_unreachable(bench_redis_url())
    if missing is not None:
        result.notes.append(f"{missing}: the cache ran in the hub's memory instead")
        redis_url = None
    table = Table(
        f"the demo world's 7 systems answering in {LATENCY_MS} ms; the worked example search "
        f"over every kind; cache in {'Redis' if redis_url else 'memory'}",
        [
            Column("search"),
            Column("p50", "ms"),
            Column("p99", "ms"),
            Column("p50 ratio", "ratio"),
            Column("p99 ratio", "ratio"),
            Column("answers from cache", "text"),
        ],
    )
    result.tables.append(table)
    variants = [
        HubVariant("off", cache=False),
        HubVariant("on", cache=True, redis_url=redis_url),
    ]
    phases = ("cache off", "cold", "warm")
    times: dict[str, list[float]] = {phase: [] for phase in phases}
    hits = {phase: [0, 0] for phase in phases}
    plan = WorldPlan(shape="demo", size=2000, latency_ms=LATENCY_MS)
    async with await VendorProcess.start(plan) as vendors:
        texts = vendors.info.texts[: ctx.pick(12, 64, tiny=2)]
        result.settings = {"searches": len(texts), "latency_ms": LATENCY_MS}
        async with serve_hubs(
            ctx.scratch("cache"),
            vendors.info.source_configs(),
            vendors.info.agencies(),
            variants,
            ctx.session,
        ) as hubs:
            ctx.progress(f"cache: {len(texts)} texts, off / cold / warm")
            prefix = hubs["on"].runtime.settings.resilience.redis_prefix
            for text in texts:
                for phase, hub in zip(phases, (hubs["off"], hubs["on"], hubs["on"]), strict=True):
                    started = time.perf_counter()
                    answer = await hub.query(SEARCH_QUERY, {"text": text})
                    times[phase].append(time.perf_counter() - started)
                    from_cache, answered = cached_answers(answer)
                    hits[phase][0] += from_cache
                    hits[phase][1] += answered
        if redis_url is not None:
            await drop_redis_prefix(redis_url, prefix)
    stats = {phase: Stats(tuple(v)) for phase, v in times.items()}
    cold = stats["cold"]
    for phase in phases:
        table.add(
            phase,
            stats[phase].median * 1000,
            stats[phase].p99 * 1000,
            ratio(stats[phase].median, cold.median),
            ratio(stats[phase].p99, cold.p99),
            f"{hits[phase][0]}/{hits[phase][1]}",
        )
    result.notes.append(
        "warm / cold is the figure; 'cache off' is the same search by a hub without the cache "
        "(cold / off: what a miss costs); the client parses every answer, on every row"
    )
    return result
