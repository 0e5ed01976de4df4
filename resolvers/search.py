"""Search, once for both of its forms: ``Query.search`` (every source, one answer) and
``Subscription.searchStream`` (one payload per source as it answers, then the statuses).

Both follow one policy, here: the arguments' bounds; a hit must match, and is ranked, on the
fields this subject may search alone (``HubContext.searchable``), an incident also on the names
of the people it involves that the subject may read (``HubContext.involved_names``); a record
the owner shares only as a pointer is a hit only where its owner lets it be searched;
``limit`` bounds the hits across sources; a source's ``count`` is its hits shown, never what it
returned. What differs is only when hits leave: ``search`` ranks every source's hits together,
``search_stream`` ranks each source's hits as that source answers and stops at ``limit``.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Iterable, Sequence
from dataclasses import dataclass, field

import strawberry

from hub import model
from hub.adapters.base import Adapter, SearchRequest
from hub.adapters.fanout import Outcome, SourceAnswer, SourceStatus
from hub.errors import AuditUnavailable, QueryRejected
from hub.shared.cache import search_key
from resolvers import present as p
from resolvers import types as t
from resolvers.context import HubContext, Shown, source_of

MAX_TEXT = 200
DEFAULT_LIMIT = 50


def bounded_limit(limit: int, ceiling: int) -> int:
    if limit < 1 or limit > ceiling:
        raise QueryRejected(f"limit must be between 1 and {ceiling}")
    return limit


@dataclass
class SearchPlan:
    """A search's arguments as checked, the sources to ask, and every source's status so far."""

    text: str
    wanted: frozenset[model.EntityKind]
    limit: int
    request: SearchRequest
    chosen: list[Adapter]
    statuses: dict[str, SourceStatus]
    # hits shown per source, and in all
    shown: dict[str, int] = field(default_factory=dict)
    total: int = 0


def plan_search(
    ctx: HubContext,
    field_name: str,
    text: str,
    kinds: Sequence[t.EntityKind] | None,
    agencies: Sequence[str] | None,
    limit: int | None,
) -> SearchPlan:
    """The arguments checked (QueryRejected), stated for the audit trail before anything is
    called, and the sources that hold what is asked; the others SKIPPED."""
    text = text.strip()
    if not text or len(text) > MAX_TEXT:
        raise QueryRejected(f"search text must be 1 to {MAX_TEXT} characters")
    limit = bounded_limit(
        DEFAULT_LIMIT if limit is None else limit, ctx.services.settings.limits.max_search_limit
    )
    asked = list(agencies) if agencies else None
    wanted = frozenset(model.EntityKind(k.value) for k in kinds or model.EntityKind)
    ctx.asked(field_name, text=text, kinds=sorted(wanted), agencies=asked, limit=limit)
    request = SearchRequest(kinds=wanted, text=text, limit=limit, context=ctx.request)
    chosen = []
    statuses: dict[str, SourceStatus] = {}
    for adapter in ctx.services.adapters:
        if asked is not None and adapter.config.agency.ori not in asked:
            statuses[adapter.name] = ctx.skip(adapter, Outcome.SKIPPED, "agency not asked")
        elif not adapter.answers(request):
            statuses[adapter.name] = ctx.skip(
                adapter, Outcome.SKIPPED, "holds none of the kinds asked"
            )
        else:
            chosen.append(adapter)
    return SearchPlan(text, wanted, limit, request, chosen, statuses)


async def ranked(ctx: HubContext, text: str, answers: Iterable[SourceAnswer]) -> list[model.Record]:
    """The answers' records that match ``text``, best first.

    A hit must match, and is ranked, on the fields this subject may search alone: what a
    vendor matched elsewhere (a withheld name, a narrative) must change nothing the subject
    sees, not the hits, not their order, not the counts."""
    candidates: list[tuple[model.Record, frozenset[str]]] = []
    for answer in answers:
        ctx.prime(answer.records)
        for record in answer.records:
            fields = ctx.searchable(record)
            if fields is not None:
                candidates.append((record, fields))
    people = await ctx.involved_names(
        [r for r, f in candidates if isinstance(r, model.Incident) and "involvedPersons" in f]
    )
    scored: list[tuple[float, int, model.Record]] = []
    words_of = p.Words()
    for record, fields in candidates:
        also = people.get(record.id, ())
        rank = p.rank(record, fields, text, also, words_of)
        if rank is not None:
            scored.append((rank, len(scored), record))
    scored.sort(key=lambda x: (-x[0], x[1]))
    return [record for _, _, record in scored]


def show_hits(
    ctx: HubContext, plan: SearchPlan, records: Iterable[model.Record], at: list[str | int]
) -> list[Shown]:
    """Records as hits for this subject, until the plan's limit across sources; counted per
    source. ``at``: the path of the hit list in the response."""
    hits: list[Shown] = []
    for record in records:
        if plan.total >= plan.limit:
            break
        shown = ctx.show(record, path=[*at, len(hits)], hit=True)
        if shown is None:
            continue
        hits.append(shown)
        plan.total += 1
        name = source_of(record)
        plan.shown[name] = plan.shown.get(name, 0) + 1
    return hits


def source_status(plan: SearchPlan, s: SourceStatus) -> t.SourceStatus:
    """A source's status as the subject sees it: OK or NO_HIT by the hits shown to it."""
    count = plan.shown.get(s.source, 0)
    outcome = s.status
    if outcome in (Outcome.OK, Outcome.NO_HIT):
        outcome = Outcome.OK if count else Outcome.NO_HIT
    return t.SourceStatus(
        source=s.source,
        agency=s.agency,
        status=t.SourceOutcome(outcome.value),
        count=count,
        latency_ms=s.latency_ms,
        message=s.message,
        cached=s.cached,
    )


def statuses(ctx: HubContext, plan: SearchPlan) -> list[t.SourceStatus]:
    """One per configured source, in the configured order, as far as known."""
    return [
        source_status(plan, plan.statuses[a.name])
        for a in ctx.services.adapters
        if a.name in plan.statuses
    ]


async def search(
    ctx: HubContext,
    path: list[str | int],
    text: str,
    kinds: Sequence[t.EntityKind] | None,
    agencies: Sequence[str] | None,
    limit: int | None,
) -> t.SearchResult:
    """``Query.search``: every source asked in parallel, every hit ranked together."""
    plan = plan_search(ctx, "search", text, kinds, agencies, limit)
    answers, refused = await ctx.ask(
        plan.chosen, plan.wanted, lambda a: a.search(plan.request), search_key(plan.request)
    )
    for status in refused:
        plan.statuses[status.source] = status
    for answer in answers:
        plan.statuses[answer.adapter.name] = answer.status
    hits = show_hits(ctx, plan, await ranked(ctx, plan.text, answers), [*path, "hits"])
    return t.SearchResult(hits=hits, sources=statuses(ctx, plan))


@strawberry.type(
    description="One step of a streaming search (`searchStream`): a source's hits as it "
    "answers, or, last, `done` and every source's status."
)
class SearchStreamPayload:
    source: t.SourceStatus | None = strawberry.field(
        description="The source that just answered (its count: its hits in this payload). "
        "Null on the last payload."
    )
    hits: list[t.SearchHit] = strawberry.field(
        description="That source's hits you may see, best first, while the limit across "
        "sources lasts. Empty on the last payload."
    )
    sources: list[t.SourceStatus] = strawberry.field(
        description="Every source's status as known so far; on the last payload one per "
        "configured source, as `search` reports them."
    )
    done: bool = strawberry.field(description="True on the last payload only.")


async def search_stream(
    ctx: HubContext,
    path: list[str | int],
    text: str,
    kinds: Sequence[t.EntityKind] | None,
    agencies: Sequence[str] | None,
    limit: int | None,
) -> AsyncGenerator[SearchStreamPayload, None]:
    """``Subscription.searchStream``: one payload per source as it answers (sources asked
    in parallel, each bounded by its timeout), then the last with every status. The
    operation's audit entry is written before the last payload (``before_last_payload``)."""
    seal = ctx.before_last_payload
    if seal is None:
        # Only an edge that writes the entry before the last payload may stream (fail closed).
        raise AuditUnavailable("a streaming search needs an audited stream: use the WebSocket")
    plan = plan_search(ctx, "searchStream", text, kinds, agencies, limit)
    at: list[str | int] = [*path, "hits"]
    answers = ctx.ask_as_completed(
        plan.chosen, plan.wanted, lambda a: a.search(plan.request), search_key(plan.request)
    )
    try:
        async for item in answers:
            if isinstance(item, SourceStatus):
                plan.statuses[item.source] = item  # not asked: in the statuses only
                continue
            plan.statuses[item.adapter.name] = item.status
            hits = show_hits(ctx, plan, await ranked(ctx, plan.text, [item]), at)
            yield SearchStreamPayload(
                source=source_status(plan, item.status),
                hits=hits,
                sources=statuses(ctx, plan),
                done=False,
            )
    finally:
        await answers.aclose()
    await seal()
    yield SearchStreamPayload(source=None, hits=[], sources=statuses(ctx, plan), done=True)
