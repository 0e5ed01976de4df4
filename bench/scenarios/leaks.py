"""leaks: the outsider fuzzer (``bench.outsider``) against the hub serving the demo world that
``hub serve`` runs: random subjects ask for values only withheld fields or invisible records hold,
by every access path, and each answer must be identical to the answer for a twin value that
exists nowhere (issue 10 §5). Cases run, cases discarded and leaks found, by path.

Not a timing figure: the target is 0 leaks (10,000 cases; 1,000 with ``--quick``). The cases are
drawn from a fixed seed, so a run is reproducible and a leak it reports can be asked again.
"""

from __future__ import annotations

import dataclasses
import uuid
from pathlib import Path as FilePath

from bench.context import BenchContext
from bench.hubs import (
    UNLIMITED,
    HubVariant,
    bench_redis_url,
    drop_redis_prefix,
    redis_unreachable,
    serve_hub,
)
from bench.outsider import PATHS, HubTarget, Outcome, Outsider, Tally, sweep
from bench.report import Column, ScenarioResult, Table, Target
from hub.settings import Settings, load_settings

NAME = "leaks"
TITLE = "outsider fuzzer: a secret and its nonexistent twin answered alike (target 0 leaks)"
SEED = 10
CONCURRENCY = 16
EXAMPLES = 8  # leaks described in the notes, at most


def outsider_settings(base_dir: FilePath, redis_url: str | None = None) -> Settings:
    """The demo hub as ``hub serve`` runs it, but with no rate limit (thousands of questions a
    minute from a few users), no source cache (the twin world must reach the vendors) and no
    fsync per audit entry (the trail is written all the same). With ``redis_url``, live results
    too (the watch paths), under a prefix of this run's own."""
    env = {"HUB_VAR_DIR": str(base_dir / "var")}
    if redis_url is not None:
        env["REDIS_URL"] = redis_url
    settings = load_settings(None, env=env)
    resilience = dataclasses.replace(
        settings.resilience,
        cache_ttl_s=0.0,
        user_per_minute=UNLIMITED,
        agency_per_minute=UNLIMITED,
        redis_prefix=f"hub-bench-leaks-{uuid.uuid4().hex[:12]}",
    )
    return dataclasses.replace(settings, resilience=resilience, audit_fsync="never")


async def run(ctx: BenchContext) -> ScenarioResult:
    count = ctx.pick(1_000, 10_000, tiny=40)
    redis_url = bench_redis_url()
    redis_missing = await redis_unreachable(redis_url)
    settings = outsider_settings(ctx.scratch("leaks"), None if redis_missing else redis_url)
    demo = settings.demo
    result = ScenarioResult(
        NAME,
        TITLE,
        settings={
            "cases": count,
            "seed": SEED,
            "concurrency": CONCURRENCY,
            "world": f"demo region {demo.region}, size {demo.size}, seed {demo.seed}",
        },
    )

    def progress(tally: Tally) -> None:
        ctx.progress(f"leaks: {tally.cases:,} cases, {tally.leak_count:,} leaks")

    try:
        async with serve_hub(settings, HubVariant("leaks"), ctx.session) as hub:
            outsider = Outsider(HubTarget(hub.url, ctx.session, hub.runtime))
            ctx.progress(f"leaks: {count:,} cases, {CONCURRENCY} at a time")
            tally = await sweep(
                outsider, count, seed=SEED, concurrency=CONCURRENCY, progress=progress
            )
    finally:
        if not redis_missing:
            await drop_redis_prefix(redis_url, settings.resilience.redis_prefix)
    result.tables.extend(tables(tally))
    result.targets.append(Target("leaks found", float(tally.leak_count), 0, "<=", required=True))
    result.notes.append(
        f"{tally.cases:,} cases run: {tally.compared:,} compared (secret vs twin, or world vs "
        f"twin world), {sum(tally.discarded.values()):,} discarded (they prove nothing), "
        f"{tally.leak_count:,} leaks"
    )
    if redis_missing:
        result.notes.append(f"no Redis ({redis_missing}): the watch paths' cases are discarded")
    for outcome in examples(tally)[:EXAMPLES]:
        result.notes.append(f"LEAK {outcome.describe()}")
    return result


def examples(tally: Tally) -> list[Outcome]:
    """The first leak of each access path, then the first of each other kind of value."""
    first: dict[str, Outcome] = {}
    for (path, _), outcome in tally.examples.items():
        first.setdefault(path, outcome)
    rest = [o for o in tally.examples.values() if o not in first.values()]
    return [*first.values(), *rest]


def tables(tally: Tally) -> list[Table]:
    """Cases by access path; discards by reason; leaks by kind of value (when there are)."""
    by_path = Table(
        "cases by access path (compared: both answers read and compared)",
        [
            Column("access path"),
            Column("cases", "int"),
            Column("compared", "int"),
            Column("discarded", "int"),
            Column("leaks", "int"),
        ],
    )
    for path in PATHS:
        name = path.value
        compared, discarded = tally.run[name], tally.discarded[name]
        by_path.add(name, compared + discarded, compared, discarded, tally.leaks[name])
    by_path.add("all", tally.cases, tally.compared, sum(tally.discarded.values()), tally.leak_count)
    out = [by_path]
    if tally.reasons:
        why = Table("cases discarded, by reason", [Column("reason"), Column("cases", "int")])
        for reason, n in tally.reasons.most_common():
            why.add(reason, n)
        out.append(why)
    if tally.channels:
        what = Table("leaks by kind of value", [Column("value"), Column("leaks", "int")])
        for channel, n in tally.channels.most_common():
            what.add(channel, n)
        out.append(what)
    return out
