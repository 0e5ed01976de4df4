"""scale: how latency and memory grow with the world (10k -> 1M records) and the sources (4 -> 64).

The hub holds no records, so its memory should not follow the world's; its latency follows the
number of matches the vendors return (more people share a surname in a larger world) and the
number of sources it merges. Each row is divided by the first row of its table.
"""

from __future__ import annotations

import math
from typing import Any

from hub.adapters.base import SourceConfig
from hub.bench.context import BenchContext
from hub.bench.hubs import SEARCH_QUERY, HubVariant, hub_settings, serve_hub
from hub.bench.measure import Stats, interleaved_latency, ratio, rss_bytes
from hub.bench.report import Column, ScenarioResult, Table
from hub.bench.vendors import VendorProcess, VendorsInfo, WorldPlan
from hub.model import Agency

NAME = "scale"
TITLE = "latency and memory as the world grows (10k -> 1M records) and the sources (4 -> 64)"
TEXT = "Reyes"
MB = 1024 * 1024
CLONE_WORLD = 10_000


async def _search(
    ctx: BenchContext,
    label: str,
    sources: tuple[SourceConfig, ...],
    agencies: dict[str, Agency],
    variables: dict[str, Any],
    samples: int,
) -> tuple[Stats, int, float]:
    """(latency of the search, hits, this process's RSS in MB after the samples)."""
    variant = HubVariant("hub")
    settings = hub_settings(ctx.scratch(f"scale-{label}"), sources, agencies, variant)
    async with serve_hub(settings, variant, ctx.session) as hub:
        answer = await hub.query(SEARCH_QUERY, variables)
        hits = len(answer["data"]["search"]["hits"])
        stats = await interleaved_latency(
            {"hub": lambda: hub.post(SEARCH_QUERY, variables)}, samples
        )
        return stats["hub"], hits, rss_bytes() / MB


async def _by_size(ctx: BenchContext, table: Table, sizes: tuple[int, ...], samples: int) -> None:
    first = (math.nan, math.nan, math.nan)
    for size in sizes:
        ctx.progress(f"scale: demo world of {size:,} records")
        async with await VendorProcess.start(WorldPlan(shape="demo", size=size)) as vendors:
            info: VendorsInfo = vendors.info
            stats, hits, hub_mb = await _search(
                ctx,
                f"size-{size}",
                info.source_configs(timeout_ms=10_000),
                info.agencies(),
                {"text": TEXT},
                samples,
            )
            vendor_mb = await vendors.rss() / MB
        if not table.rows:
            first = (stats.median, hub_mb, vendor_mb)
        table.add(
            info.records,
            stats.median * 1000,
            stats.p99 * 1000,
            ratio(stats.median, first[0]),
            hits,
            hub_mb,
            ratio(hub_mb, first[1]),
            vendor_mb,
            ratio(vendor_mb, first[2]),
            info.build_s,
        )


async def _by_sources(
    ctx: BenchContext, table: Table, counts: tuple[int, ...], samples: int, world: int
) -> None:
    plan = WorldPlan(shape="clones", size=world, systems=max(counts))
    ctx.progress(f"scale: {plan.systems} vendor systems")
    first = (math.nan, math.nan)
    async with await VendorProcess.start(plan) as vendors:
        sources = vendors.info.source_configs(timeout_ms=10_000)
        for n in counts:
            ctx.progress(f"scale: {n} sources")
            stats, hits, hub_mb = await _search(
                ctx,
                f"sources-{n}",
                sources[:n],
                vendors.info.agencies(),
                {"text": TEXT, "kinds": ["PERSON"]},
                samples,
            )
            if not table.rows:
                first = (stats.median, hub_mb)
            table.add(
                n,
                stats.median * 1000,
                stats.p99 * 1000,
                ratio(stats.median, first[0]),
                hits,
                hub_mb,
                ratio(hub_mb, first[1]),
            )


async def run(ctx: BenchContext) -> ScenarioResult:
    sizes = ctx.pick((10_000, 100_000), (10_000, 100_000, 1_000_000), tiny=(500, 1000))
    counts = ctx.pick((4, 16, 64), (4, 16, 64), tiny=(2, 4))
    samples = ctx.pick(5, 40, tiny=2)
    clone_world = ctx.pick(CLONE_WORLD, CLONE_WORLD, tiny=1000)
    result = ScenarioResult(
        NAME, TITLE, settings={"world_sizes": sizes, "sources": counts, "samples": samples}
    )
    latency = [
        Column("p50", "ms"),
        Column("p99", "ms"),
        Column("p50 ratio", "ratio"),
        Column("hits", "int"),
        Column("hub RSS", "MB"),
        Column("RSS ratio", "ratio"),
    ]
    by_size = Table(
        "world size: the demo world (7 systems); the worked example search over every kind",
        [
            Column("records", "int"),
            *latency,
            Column("vendors RSS", "MB"),
            Column("vendors ratio", "ratio"),
            Column("vendors start", "s"),
        ],
    )
    by_sources = Table(
        f"sources: Northwind RMSs of the {clone_world:,}-record world's Marin RMS; a person search",
        [Column("sources", "int"), *latency],
    )
    result.tables += [by_size, by_sources]
    await _by_size(ctx, by_size, sizes, samples)
    await _by_sources(ctx, by_sources, counts, samples, clone_world)
    result.notes.append(
        "hub RSS: the benchmark process (hub and load client) after the samples; vendors RSS: "
        "the simulated vendors' process; ratios are to the first row of each table"
    )
    return result
