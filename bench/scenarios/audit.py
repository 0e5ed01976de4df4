"""audit: a typical search with the audit trail on (file, fsync always; Redis stream) vs off.

The typical search is the README's worked example (an analyst of Marin Valley searches "Reyes",
purpose C) over the demo world's seven systems. Latency at concurrency 1 is the audit issue's
figure (target <= 1.15); throughput at concurrency 16 shows what group commit recovers.
"""

from __future__ import annotations

import uuid

import redis.asyncio as aioredis

from bench.context import BenchContext
from bench.hubs import (
    SEARCH_QUERY,
    HubVariant,
    bench_redis_url,
    redis_unreachable,
    serve_hubs,
)
from bench.measure import interleaved_latency, interleaved_throughput, ratio
from bench.report import Column, ScenarioResult, Table, Target
from bench.vendors import VendorProcess, WorldPlan

NAME = "audit"
TITLE = "typical search, audit on / off: file (fsync always) and Redis (target <= 1.15)"
TARGET = 1.15
CONCURRENCY = 16


async def _drop_stream(url: str, key: str) -> None:
    client = aioredis.Redis.from_url(url)
    try:
        await client.delete(key)
    finally:
        await client.aclose()


async def run(ctx: BenchContext) -> ScenarioResult:
    samples = ctx.pick(20, 300, tiny=3)
    rounds = ctx.pick(1, 4, tiny=1)
    duration_s = ctx.pick(0.5, 2.0, tiny=0.2)
    redis_url = bench_redis_url()
    stream = f"hub:bench:audit:{uuid.uuid4().hex[:12]}"
    result = ScenarioResult(
        NAME,
        TITLE,
        settings={
            "samples": samples,
            "concurrency": CONCURRENCY,
            "rounds": rounds,
            "round_s": duration_s,
        },
    )
    variants = [
        HubVariant("audit off", audit=False),
        HubVariant("file", audit=True),
    ]
    redis_missing = await redis_unreachable(redis_url)
    if redis_missing is None:
        variants.append(HubVariant("redis", audit=True, audit_log=f"{redis_url}#{stream}"))
    else:
        result.notes.append(f"Redis backend not measured: {redis_missing}")
    table = Table(
        "the README's worked example over the demo world (7 systems, policies on)",
        [
            Column("audit"),
            Column("p50", "ms"),
            Column("p99", "ms"),
            Column("p50 ratio", "ratio"),
            Column("p99 ratio", "ratio"),
            Column(f"c={CONCURRENCY}", "rps"),
            Column("rps ratio", "ratio"),
        ],
    )
    result.tables.append(table)
    plan = WorldPlan(shape="demo", size=2000)
    try:
        async with await VendorProcess.start(plan) as vendors:
            sources = vendors.info.source_configs()
            async with serve_hubs(
                ctx.scratch("audit"), sources, vendors.info.agencies(), variants, ctx.session
            ) as hubs:
                variables = {"text": vendors.info.texts[0]}
                for hub in hubs.values():
                    answer = await hub.query(SEARCH_QUERY, variables)
                    if not answer["data"]["search"]["hits"]:
                        raise RuntimeError("audit: the typical search found nothing")
                probes = {
                    label: (lambda h=hub: h.post(SEARCH_QUERY, variables))
                    for label, hub in hubs.items()
                }
                ctx.progress(f"audit: latency, {samples} samples of {len(probes)} variants")
                latency = await interleaved_latency(probes, samples)
                ctx.progress(f"audit: throughput at concurrency {CONCURRENCY}")
                throughput = await interleaved_throughput(probes, CONCURRENCY, rounds, duration_s)
    finally:
        if redis_missing is None:
            await _drop_stream(redis_url, stream)
    off, off_t = latency["audit off"], throughput["audit off"]
    for label in latency:
        lat, thr = latency[label], throughput[label]
        p50 = ratio(lat.median, off.median)
        table.add(
            label,
            lat.median * 1000,
            lat.p99 * 1000,
            p50,
            ratio(lat.p99, off.p99),
            thr.rounds.median,
            ratio(thr.rounds.median, off_t.rounds.median),
        )
        if label != "audit off":
            result.targets.append(Target(f"audit {label} / off, latency p50", p50, TARGET, "<="))
    result.notes.append(
        "ratios against the same hub with the audit trail off, sampled in turn; "
        "the audit cost for the 1,000-record query is in the wide scenario"
    )
    return result
