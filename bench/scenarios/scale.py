"""scale: how latency and memory grow with the world (10k -> 1M records) and the sources (4 -> 64).

The hub holds no records, so its memory should not follow the world's; its latency follows the
number of matches the vendors return (more people share a surname in a larger world) and the
number of sources it merges. Each row is divided by the first row of its table.

Every world (or every source count) is up at once, one hub in front of each, and the samples
interleave across them, so the growth ratios do not depend on when each row happened to run.
"""

from __future__ import annotations

import contextlib
import functools
import math
from collections.abc import AsyncIterator
from typing import Any

from bench.context import BenchContext
from bench.hubs import SEARCH_QUERY, HubVariant, RunningHub, hub_settings, serve_hub
from bench.measure import interleaved_latency, ratio, rss_bytes
from bench.report import Column, ScenarioResult, Table
from bench.vendors import VendorProcess, WorldPlan
from hub.model import Agency
from hub.settings import SourceConfig

NAME = "scale"
TITLE = "latency and memory as the world grows (10k -> 1M records) and the sources (4 -> 64)"
TEXT = "Reyes"
MB = 1024 * 1024
CLONE_WORLD = 10_000


@contextlib.asynccontextmanager
async def _hub(
    ctx: BenchContext,
    label: str,
    sources: tuple[SourceConfig, ...],
    agencies: dict[str, Agency],
    variables: dict[str, Any],
) -> AsyncIterator[tuple[RunningHub, int, float]]:
    """(the hub, hits of the search, MB this process grew by starting it and asking once)."""
    before = rss_bytes()
    variant = HubVariant(label)
    settings = hub_settings(ctx.scratch(f"scale-{label}"), sources, agencies, variant)
    async with serve_hub(settings, variant, ctx.session) as hub:
        answer = await hub.query(SEARCH_QUERY, variables)
        yield hub, len(answer["data"]["search"]["hits"]), (rss_bytes() - before) / MB


async def _by_size(ctx: BenchContext, table: Table, sizes: tuple[int, ...], samples: int) -> None:
    variables: dict[str, Any] = {"text": TEXT}
    rows: list[tuple[int, RunningHub, int, float, float, float]] = []
    async with contextlib.AsyncExitStack() as stack:
        for size in sizes:
            ctx.progress(f"scale: demo world of {size:,} records")
            vendors = await stack.enter_async_context(
                await VendorProcess.start(WorldPlan(shape="demo", size=size))
            )
            info = vendors.info
            hub, hits, hub_mb = await stack.enter_async_context(
                _hub(
                    ctx,
                    f"size-{size}",
                    info.source_configs(timeout_ms=10_000),
                    info.agencies(),
                    variables,
                )
            )
            rows.append((info.records, hub, hits, hub_mb, await vendors.rss() / MB, info.build_s))
        ctx.progress(f"scale: {samples} samples across {len(sizes)} worlds")
        stats = await interleaved_latency(
            {str(r[0]): functools.partial(r[1].post, SEARCH_QUERY, variables) for r in rows},
            samples,
        )
    first = (math.nan, math.nan)
    for records, _, hits, hub_mb, vendor_mb, build_s in rows:
        stat = stats[str(records)]
        if math.isnan(first[0]):
            first = (stat.median, vendor_mb)
        table.add(
            records,
            stat.median * 1000,
            stat.p99 * 1000,
            ratio(stat.median, first[0]),
            hits,
            hub_mb,
            vendor_mb,
            ratio(vendor_mb, first[1]),
            build_s,
        )


async def _by_sources(
    ctx: BenchContext, table: Table, counts: tuple[int, ...], samples: int, world: int
) -> None:
    plan = WorldPlan(shape="clones", size=world, systems=max(counts))
    ctx.progress(f"scale: {plan.systems} vendor systems")
    variables: dict[str, Any] = {"text": TEXT, "kinds": ["PERSON"]}
    async with contextlib.AsyncExitStack() as stack:
        vendors = await stack.enter_async_context(await VendorProcess.start(plan))
        sources = vendors.info.source_configs(timeout_ms=10_000)
        rows: list[tuple[int, RunningHub, int, float]] = []
        for n in counts:
            hub, hits, hub_mb = await stack.enter_async_context(
                _hub(ctx, f"sources-{n}", sources[:n], vendors.info.agencies(), variables)
            )
            rows.append((n, hub, hits, hub_mb))
        ctx.progress(f"scale: {samples} samples across {len(counts)} source counts")
        stats = await interleaved_latency(
            {str(r[0]): functools.partial(r[1].post, SEARCH_QUERY, variables) for r in rows},
            samples,
        )
    first = math.nan
    for n, _, hits, hub_mb in rows:
        stat = stats[str(n)]
        if math.isnan(first):
            first = stat.median
        table.add(
            n,
            stat.median * 1000,
            stat.p99 * 1000,
            ratio(stat.median, first),
            hits,
            hub_mb,
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
        Column("hub +RSS", "MB"),
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
        "samples interleaved across the rows of each table; hub +RSS: what the benchmark "
        "process grew by when that hub started and answered once (it holds no records); "
        f"vendors RSS: the simulated vendors' process; after the run this process held "
        f"{rss_bytes() / MB:,.0f} MB (hubs, load client, interpreter)"
    )
    return result
