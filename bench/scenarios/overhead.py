"""overhead: the same searches through the hub and through a minimal baseline client, at
concurrency 1, 16 and 64; hub throughput / baseline throughput.

The vendors answer at once (L = 0), so nothing but CPU limits either side: this is the hub's
cost per search at its most exposed. Both sides search the same texts in the same order.
"""

from __future__ import annotations

import itertools

from bench.baseline import BaselineClient
from bench.context import BenchContext
from bench.hubs import SEARCH_QUERY, HubVariant, hub_settings, serve_hub
from bench.lean import serve_lean_hub
from bench.measure import interleaved_throughput, ratio
from bench.report import Column, ScenarioResult, Table, Target
from bench.vendors import VendorProcess, WorldPlan

NAME = "overhead"
TITLE = "hub throughput / baseline client throughput at concurrency 1, 16, 64 (target >= 0.5)"
SOURCES = 4
TARGET = 0.5


async def run(ctx: BenchContext) -> ScenarioResult:
    levels = ctx.pick((1, 16, 64), (1, 16, 64), tiny=(1, 4))
    rounds = ctx.pick(1, 5, tiny=1)
    duration_s = ctx.pick(0.4, 3.0, tiny=0.2)
    result = ScenarioResult(
        NAME,
        TITLE,
        settings={
            "sources": SOURCES,
            "concurrency": levels,
            "rounds": rounds,
            "round_s": duration_s,
        },
    )
    table = Table(
        f"{SOURCES} Northwind sources, vendors answer at once; rps = searches per second",
        [
            Column("concurrency", "int"),
            Column("hub", "rps"),
            Column("baseline", "rps"),
            Column("hub/baseline", "ratio"),
            Column("hub p50", "ms"),
            Column("hub p99", "ms"),
            Column("baseline p99", "ms"),
            Column("no-fsync", "rps"),
            Column("no-fsync/baseline", "ratio"),
            Column("lean", "rps"),
            Column("lean/baseline", "ratio"),
        ],
    )
    result.tables.append(table)
    plan = WorldPlan(shape="clones", size=2000, systems=SOURCES)
    async with await VendorProcess.start(plan) as vendors:
        sources = vendors.info.source_configs(timeout_ms=10_000)
        texts = vendors.info.texts[:32]
        full, unflushed = HubVariant("hub"), HubVariant("hub-nofsync", fsync="never")
        agencies = vendors.info.agencies()
        settings = hub_settings(ctx.scratch("overhead"), sources, agencies, full)
        nofsync_settings = hub_settings(
            ctx.scratch("overhead-nofsync"), sources, agencies, unflushed
        )
        async with (
            serve_hub(settings, full, ctx.session) as hub,
            serve_hub(nofsync_settings, unflushed, ctx.session) as nofsync,
            serve_lean_hub(sources, ctx.scratch("overhead-lean"), ctx.session) as lean,
        ):
            baseline = BaselineClient(sources, ctx.session)
            hub_texts = itertools.cycle(texts)
            nofsync_texts = itertools.cycle(texts)
            baseline_texts = itertools.cycle(texts)
            lean_texts = itertools.cycle(texts)

            async def via_hub() -> None:
                variables = {"text": next(hub_texts), "kinds": ["PERSON"], "limit": 50}
                await hub.post(SEARCH_QUERY, variables)

            async def via_nofsync() -> None:
                variables = {"text": next(nofsync_texts), "kinds": ["PERSON"], "limit": 50}
                await nofsync.post(SEARCH_QUERY, variables)

            async def via_baseline() -> None:
                await baseline.search(next(baseline_texts), 50)

            async def via_lean() -> None:
                await lean.search(next(lean_texts), 50)

            for concurrency in levels:
                ctx.progress(f"overhead: concurrency {concurrency}")
                found = await interleaved_throughput(
                    {
                        "hub": via_hub,
                        "baseline": via_baseline,
                        "nofsync": via_nofsync,
                        "lean": via_lean,
                    },
                    concurrency,
                    rounds,
                    duration_s,
                )
                hub_t, base_t, nofsync_t = found["hub"], found["baseline"], found["nofsync"]
                lean_t = found["lean"]
                value = ratio(hub_t.rounds.median, base_t.rounds.median)
                table.add(
                    concurrency,
                    hub_t.rounds.median,
                    base_t.rounds.median,
                    value,
                    hub_t.latencies.median * 1000,
                    hub_t.latencies.p99 * 1000,
                    base_t.latencies.p99 * 1000,
                    nofsync_t.rounds.median,
                    ratio(nofsync_t.rounds.median, base_t.rounds.median),
                    lean_t.rounds.median,
                    ratio(lean_t.rounds.median, base_t.rounds.median),
                )
                result.targets.append(
                    Target(f"hub/baseline at concurrency {concurrency}", value, TARGET, ">=")
                )
    result.notes.append(
        "the hub is the full hub (policies and audit on); the baseline makes the adapter's very "
        "requests, decodes, merges and re-encodes the JSON; medians of "
        f"{rounds} interleaved rounds of {duration_s:g} s; the load client shares the hub's "
        "process and core, the vendors run in another process; no-fsync = the same hub with "
        "its audit file written but not flushed (fsync never): how much of the gap is the "
        "disk's flush (the targets are the full hub's); lean = the least any hub could be "
        "(bench.lean): an HTTP server making the baseline's calls and writing one durable "
        "audit entry per search, nothing else: lean/baseline is the highest ratio a hub that "
        "keeps a durable trail can reach on this machine"
    )
    return result
