"""cache: the same search warm vs cold, with every source answering in 100 ms.

It measures the hub's source cache (``hub.cache``) once the fan-out uses it: ``SourceStatus``
then says whether an answer came from the cache (``cached``) and the settings carry the cache's
configuration. Until then the scenario says so and measures nothing.

Cold: the first search of a text by a hub whose cache is fresh (a new scratch directory, so a new
cache key: entries of earlier runs cannot be read). Warm: the same search again, at once.
"""

from __future__ import annotations

import dataclasses
import os
import time
from typing import Any

from hub.adapters.base import Secret
from hub.adapters.fanout import SourceStatus
from hub.bench.context import BenchContext
from hub.bench.hubs import SEARCH_QUERY, HubVariant, hub_settings, serve_hub
from hub.bench.measure import Stats, ratio
from hub.bench.report import Column, ScenarioResult, Table
from hub.bench.vendors import VendorProcess, WorldPlan
from hub.settings import Settings

NAME = "cache"
TITLE = "repeated search, warm Redis cache / cold, sources at L = 100 ms"
LATENCY_MS = 100
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/0"


def cache_setting() -> str | None:
    """The name of the Settings field that configures the source cache, if there is one."""
    names = [f.name for f in dataclasses.fields(Settings)]
    return next((n for n in names if n == "cache" or n.startswith("cache_")), None)


def unavailable_reason() -> str | None:
    """Why the scenario cannot run on this hub yet; None when it can."""
    if "cached" not in {f.name for f in dataclasses.fields(SourceStatus)}:
        return (
            "the hub has no source cache in its fan-out yet "
            "(hub.adapters.fanout.SourceStatus has no 'cached')"
        )
    if cache_setting() is None:
        return "the hub's settings have no cache configuration yet (no Settings.cache*)"
    return None


def _cached_sources(answer: dict[str, Any]) -> tuple[int, int]:
    """(sources that answered from the cache, sources that answered) in one response."""
    sources = (answer.get("extensions") or {}).get("sources") or []
    answered = [s for s in sources if s.get("status") in ("OK", "NO_HIT")]
    return sum(1 for s in answered if s.get("cached")), len(answered)


async def run(ctx: BenchContext) -> ScenarioResult:
    result = ScenarioResult(NAME, TITLE)
    reason = unavailable_reason()
    if reason is not None:
        result.unavailable = reason
        return result
    redis_url = os.environ.get("REDIS_URL", DEFAULT_REDIS_URL)
    plan = WorldPlan(shape="demo", size=2000, latency_ms=LATENCY_MS)
    table = Table(
        f"the demo world's systems answering in {LATENCY_MS} ms; Redis at REDIS_URL",
        [
            Column("search"),
            Column("p50", "ms"),
            Column("p99", "ms"),
            Column("ratio", "ratio"),
            Column("from cache", "text"),
        ],
    )
    result.tables.append(table)
    async with await VendorProcess.start(plan) as vendors:
        texts = vendors.info.texts[: ctx.pick(16, 64, tiny=2)]
        result.settings = {"searches": len(texts), "latency_ms": LATENCY_MS}
        settings: Settings = dataclasses.replace(
            hub_settings(
                ctx.scratch("cache"),
                vendors.info.source_configs(),
                vendors.info.agencies(),
                HubVariant("cache"),
            ),
            redis_url=Secret(redis_url),
        )
        cold: list[float] = []
        warm: list[float] = []
        hits = {"cold": [0, 0], "warm": [0, 0]}
        async with serve_hub(settings, HubVariant("cache"), ctx.session) as hub:
            for text in texts:
                for phase, times in (("cold", cold), ("warm", warm)):
                    started = time.perf_counter()
                    answer = await hub.query(SEARCH_QUERY, {"text": text})
                    times.append(time.perf_counter() - started)
                    from_cache, answered = _cached_sources(answer)
                    hits[phase][0] += from_cache
                    hits[phase][1] += answered
    cold_s, warm_s = Stats(tuple(cold)), Stats(tuple(warm))
    for phase, stats in (("cold", cold_s), ("warm", warm_s)):
        ratio_value = ratio(stats.median, cold_s.median)
        table.add(
            phase,
            stats.median * 1000,
            stats.p99 * 1000,
            ratio_value,
            f"{hits[phase][0]}/{hits[phase][1]} source answers",
        )
    result.notes.append(
        "a cold and a warm search of each text in turn; the client's parse of the answer is "
        "included on both sides"
    )
    return result
