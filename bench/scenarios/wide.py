"""wide: one query returning 1,000 records x 20 fields, with policies and audit on and off.

Four hubs in front of the same vendors, sampled in turn: both on (what users run), policies only,
audit only, both off. Both-on / both-off is this issue's figure (target <= 1.3); policies alone
is the access issue's (target <= 1.25), audit alone the audit issue's 1,000-record cost.
"""

from __future__ import annotations

from typing import Any

from bench.baseline import BaselineClient
from bench.context import BenchContext
from bench.hubs import PERSON_FIELDS, PERSON_LEAF_FIELDS, HubVariant, RunningHub, serve_hubs
from bench.measure import interleaved_latency, ratio
from bench.report import Column, ScenarioResult, Table, Target
from bench.vendors import WIDE_SURNAME, VendorProcess, WorldPlan

NAME = "wide"
TITLE = "1,000 records x 20 fields: policies+audit on / both off (target <= 1.3)"
SOURCES = 4

WIDE_QUERY = (
    "query Wide($text: String!, $limit: Int) {"
    " search(text: $text, kinds: [PERSON], limit: $limit) {"
    f"  hits {{ __typename ... on Person {{ {PERSON_FIELDS} }}"
    "   ... on RecordPointer { kind owner { ori name } contact } }"
    "  sources { source status count } } }"
)

VARIANTS = [
    HubVariant("both on", policies=True, audit=True),
    HubVariant("policies on", policies=True, audit=False),
    HubVariant("audit on", policies=False, audit=True),
    HubVariant("both off", policies=False, audit=False),
]
# (figure, numerator, denominator, target, issue)
RATIOS: list[tuple[str, str, str, float | None]] = [
    ("policies+audit on / both off", "both on", "both off", 1.3),
    ("policies on / off (audit off)", "policies on", "both off", 1.25),
    ("audit on / off (policies off)", "audit on", "both off", None),
    ("audit on / off (policies on)", "both on", "policies on", None),
    ("both off / baseline client", "both off", "baseline", 1.5),  # issue 16
]


def _shape(answer: dict[str, Any]) -> tuple[int, int, int]:
    """(records shown in full, pointers, FORBIDDEN_FIELD errors) of one wide answer."""
    hits = answer["data"]["search"]["hits"]
    full = sum(1 for h in hits if h["__typename"] == "Person")
    errors = [e for e in answer.get("errors") or [] if e["extensions"]["code"] != "FORBIDDEN_FIELD"]
    if errors:
        raise RuntimeError(f"wide: the hub answered errors {errors[:3]}")
    withheld = len(answer.get("errors") or [])
    return full, len(hits) - full, withheld


async def run(ctx: BenchContext) -> ScenarioResult:
    records = ctx.pick(1000, 1000, tiny=40)
    samples = ctx.pick(3, 30, tiny=2)
    result = ScenarioResult(
        NAME,
        TITLE,
        settings={"records": records, "fields": PERSON_LEAF_FIELDS, "samples": samples},
    )
    runs = Table(
        f"one search returning {records:,} persons x {PERSON_LEAF_FIELDS} fields "
        f"from {SOURCES} sources",
        [
            Column("hub"),
            Column("p50", "ms"),
            Column("p99", "ms"),
            Column("full", "int"),
            Column("pointers", "int"),
            Column("withheld fields", "int"),
        ],
    )
    ratios = Table(
        "ratios of medians (and of p99s) measured side by side",
        [Column("figure"), Column("p50 ratio", "ratio"), Column("p99 ratio", "ratio")],
    )
    result.tables += [runs, ratios]
    plan = WorldPlan(shape="wide", systems=SOURCES, records=records)
    async with await VendorProcess.start(plan) as vendors:
        sources = vendors.info.source_configs(timeout_ms=30_000)
        async with serve_hubs(
            ctx.scratch("wide"), sources, vendors.info.agencies(), VARIANTS, ctx.session
        ) as hubs:
            variables = {"text": WIDE_SURNAME, "limit": records}
            shapes = {}
            for label, hub in hubs.items():
                shapes[label] = _shape(await hub.query(WIDE_QUERY, variables))
                total = sum(shapes[label][:2])
                if total != records:
                    raise RuntimeError(f"wide: hub {label!r} returned {total} records")
            baseline = BaselineClient(sources, ctx.session)

            def probe(hub: RunningHub) -> Any:
                return lambda: hub.post(WIDE_QUERY, variables)

            probes = {label: probe(hub) for label, hub in hubs.items()}
            probes["baseline"] = lambda: baseline.search(WIDE_SURNAME, records)
            ctx.progress(f"wide: {samples} samples of {len(probes)} variants")
            stats = await interleaved_latency(probes, samples, warmup=1, collect=True)
    for label, stat in stats.items():
        full, pointers, withheld = shapes.get(label, (records, 0, 0))
        runs.add(label, stat.median * 1000, stat.p99 * 1000, full, pointers, withheld)
    for figure, top, bottom, target in RATIOS:
        value = ratio(stats[top].median, stats[bottom].median)
        ratios.add(figure, value, ratio(stats[top].p99, stats[bottom].p99))
        if target is not None:
            result.targets.append(Target(figure, value, target, "<="))
    full, pointers, withheld = shapes["both on"]
    result.notes.append(
        f"subject: analyst of CA0990000, purpose C; the records belong to three agencies: with "
        f"policies on {full:,} are shown in full ({withheld} Type.field withheld from some) and "
        f"{pointers:,} as pointers; 'baseline' is the same vendor calls in plain aiohttp (pages "
        "followed, JSON merged); a full garbage collection precedes every sample, so each pays "
        f"for its own garbage; {samples} interleaved samples"
    )
    return result
