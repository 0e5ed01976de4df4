"""The root Query, the request-wide extensions, and ``build_schema``.

Extensions, in order: document limits (depth, aliases, tokens), one operation per request (a
document of several without ``operationName`` is a request error, HTTP 400), introspection off
outside demo/dev, the purpose check (a data query without a valid purpose executes nothing and
calls no vendor), and the response shaper (``extensions.sources``, one FORBIDDEN_FIELD error per
denied Type.field, stable error codes with everything unexpected masked, and outside demo/dev no
"Did you mean ...?" hints at the schema). ``HubSchema`` checks federation ``_entities``
representations before strawberry resolves them (BAD_USER_INPUT per malformed entity).
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import logging
import re
from collections import OrderedDict
from collections.abc import Iterable, Iterator
from datetime import datetime
from typing import Any

import strawberry
import strawberry.federation
import strawberry.scalars
from graphql import (
    DocumentNode,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLError,
    InlineFragmentNode,
    OperationDefinitionNode,
    SelectionSetNode,
    TypeInfo,
    TypeInfoVisitor,
    Visitor,
    parse,
    visit,
)
from graphql import ExecutionResult as GraphQLExecutionResult
from graphql.validation import NoSchemaIntrospectionCustomRule
from strawberry import Info
from strawberry.extensions import (
    AddValidationRules,
    MaxAliasesLimiter,
    MaxTokensLimiter,
    QueryDepthLimiter,
    SchemaExtension,
)
from strawberry.federation.schema import FederationAny
from strawberry.schema.exceptions import CannotGetOperationTypeError
from strawberry.schema.schema import validate_document
from strawberry.types import ExecutionContext, ExecutionResult
from strawberry.types.graphql import OperationType
from strawberry.utils.inspect import get_func_args

from hub import model
from hub.access.purposes import require_purpose
from hub.adapters.base import SearchRequest
from hub.adapters.fanout import Outcome
from hub.audit import AuditQuery, SealedEntry, query_events
from hub.errors import (
    AccessDenied,
    AuditUnavailable,
    HubError,
    InvalidId,
    InvalidInput,
    QueryRejected,
)
from hub.settings import Settings
from hub.shared.cache import search_key
from resolvers import present as p
from resolvers import types as t
from resolvers.context import HubContext, Shown, source_of
from resolvers.cost import estimate_cost

log = logging.getLogger(__name__)

# Root fields that return criminal-justice data: they need a purpose, and they call vendors.
DATA_FIELDS = frozenset(
    {
        "search",
        "person",
        "vehicle",
        "incident",
        "plateReads",
        "auditEvents",
        "_entities",
        "recordNotice",
    }
)
MAX_TEXT = 200
# Distinct documents whose parse, validation and selected fields are kept (LRU).
DOCUMENT_CACHE = 512


def _hub(info: Info[HubContext, None]) -> HubContext:
    return info.context


def _bounded_limit(limit: int, ceiling: int) -> int:
    if limit < 1 or limit > ceiling:
        raise QueryRejected(f"limit must be between 1 and {ceiling}")
    return limit


async def _lookup(info: Info[HubContext, None], hub_id: str, kind: model.EntityKind) -> Any:
    _hub(info).asked(p.TYPE_NAME[kind][0].lower() + p.TYPE_NAME[kind][1:], id=hub_id)
    ref = model.parse_id(hub_id)
    if ref.kind is not kind:
        raise InvalidId(f"that id is not a {p.TYPE_NAME[kind]} id")
    shown = await _hub(info).record_by_id(hub_id, path=info.path.as_list())
    # A pointer cannot stand where a Person is expected: the owner shares no more.
    return shown if not isinstance(shown, t.RecordPointer) else None


@strawberry.type
class Query:
    @strawberry.field(
        description="Universal search across every source that shares with you, in parallel. "
        "`sources` says what each source answered; a failed source is reported, never empty."
    )
    async def search(
        self,
        info: Info[HubContext, None],
        text: str,
        kinds: list[t.EntityKind] | None = strawberry.UNSET,
        agencies: list[str] | None = strawberry.UNSET,
        limit: int | None = 50,
    ) -> t.SearchResult:
        ctx = _hub(info)
        text = text.strip()
        if not text or len(text) > MAX_TEXT:
            raise QueryRejected(f"search text must be 1 to {MAX_TEXT} characters")
        limit = _bounded_limit(
            50 if limit is None else limit, ctx.services.settings.limits.max_search_limit
        )
        agencies = agencies or None
        wanted = (
            frozenset(model.EntityKind(k.value) for k in kinds)
            if kinds
            else frozenset(model.EntityKind)
        )
        ctx.asked("search", text=text, kinds=sorted(wanted), agencies=agencies, limit=limit)
        request = SearchRequest(kinds=wanted, text=text, limit=limit, context=ctx.request)
        chosen = []
        statuses: dict[str, Any] = {}
        for adapter in ctx.services.adapters:
            if agencies is not None and adapter.config.agency.ori not in agencies:
                statuses[adapter.name] = ctx.skip(adapter, Outcome.SKIPPED, "agency not asked")
            elif not adapter.answers(request):
                statuses[adapter.name] = ctx.skip(
                    adapter, Outcome.SKIPPED, "holds none of the kinds asked"
                )
            else:
                chosen.append(adapter)
        answers, refused = await ctx.ask(
            chosen, wanted, lambda a: a.search(request), search_key(request)
        )
        for status in refused:
            statuses[status.source] = status
        # A hit must match, and is ranked, on the fields this subject may search alone: what a
        # vendor matched elsewhere (a withheld name, a narrative) must change nothing the
        # subject sees, not the hits, not their order, not the counts.
        candidates: list[tuple[model.Record, frozenset[str]]] = []
        for answer in answers:
            statuses[answer.adapter.name] = answer.status
            ctx.prime(answer.records)
            for record in answer.records:
                fields = ctx.searchable(record)
                if fields is not None:
                    candidates.append((record, fields))
        people = await ctx.involved_names(
            [r for r, f in candidates if isinstance(r, model.Incident) and "involvedPersons" in f]
        )
        ranked: list[tuple[float, int, model.Record]] = []
        for record, fields in candidates:
            also = people.get(record.id, ())
            if p.matches(record, fields, text, also):
                ranked.append((p.score(record, fields, text, also), len(ranked), record))
        ranked.sort(key=lambda x: (-x[0], x[1]))
        hits: list[Shown] = []
        per_source: dict[str, int] = {}
        at = [*info.path.as_list(), "hits"]
        for _, _, record in ranked:
            if len(hits) >= limit:
                break
            shown = ctx.show(record, path=[*at, len(hits)], hit=True)
            if shown is None:
                continue
            hits.append(shown)
            name = source_of(record)
            per_source[name] = per_source.get(name, 0) + 1
        sources = []
        for adapter in ctx.services.adapters:
            s = statuses[adapter.name]
            outcome = s.status
            count = per_source.get(adapter.name, 0)
            if outcome in (Outcome.OK, Outcome.NO_HIT):
                outcome = Outcome.OK if count else Outcome.NO_HIT
            sources.append(
                t.SourceStatus(
                    source=s.source,
                    agency=s.agency,
                    status=t.SourceOutcome(outcome.value),
                    count=count,
                    latency_ms=s.latency_ms,
                    message=s.message,
                    cached=s.cached,
                )
            )
        return t.SearchResult(hits=hits, sources=sources)

    @strawberry.field(description="One person by hub id; null when absent or not yours to see.")
    async def person(self, info: Info[HubContext, None], id: strawberry.ID) -> t.Person | None:
        found: t.Person | None = await _lookup(info, id, model.EntityKind.PERSON)
        return found

    @strawberry.field
    async def vehicle(self, info: Info[HubContext, None], id: strawberry.ID) -> t.Vehicle | None:
        found: t.Vehicle | None = await _lookup(info, id, model.EntityKind.VEHICLE)
        return found

    @strawberry.field
    async def incident(self, info: Info[HubContext, None], id: strawberry.ID) -> t.Incident | None:
        found: t.Incident | None = await _lookup(info, id, model.EntityKind.INCIDENT)
        return found

    @strawberry.field(description="Reads of one plate by every ALPR source, newest first.")
    async def plate_reads(
        self,
        info: Info[HubContext, None],
        plate: str,
        state: str | None = strawberry.UNSET,
        since: datetime | None = strawberry.UNSET,
        until: datetime | None = strawberry.UNSET,
        limit: int | None = 100,
    ) -> list[t.PlateRead]:
        ctx = _hub(info)
        number = model.normalise_plate(plate)
        if not 1 <= len(number) <= 10:
            raise QueryRejected("plate must be 1 to 10 letters or digits")
        limit = _bounded_limit(
            100 if limit is None else limit, ctx.services.settings.limits.max_search_limit
        )
        ctx.asked(
            "plateReads",
            plate=number,
            state=state or None,
            since=since or None,
            until=until or None,
            limit=limit,
        )
        request = SearchRequest(
            kinds=frozenset({model.EntityKind.PLATE_READ}),
            plates=(number,),
            plate_state=state.upper() if state else None,
            since=since or None,
            until=until or None,
            limit=limit,
            context=ctx.request,
        )
        adapters = [a for a in ctx.services.adapters if a.answers(request)]
        answers, _ = await ctx.ask(
            adapters, request.kinds, lambda a: a.search(request), search_key(request)
        )
        reads = [r for a in answers for r in a.records if isinstance(r, model.PlateRead)]
        reads.sort(key=lambda r: (r.read_at, r.id), reverse=True)
        out: list[t.PlateRead] = []
        for record in reads:
            if len(out) >= limit:
                break
            # Found by its plate: a read whose plate is withheld would confirm it.
            if not ctx.found_by(record, "plate"):
                continue
            shown = ctx.show(record, path=[*info.path.as_list(), len(out)])
            if isinstance(shown, t.PlateRead):
                out.append(shown)
        return out

    @strawberry.field(
        description="The audit trail, for auditors: events about your agency's users, records "
        "and sources, newest first. Reading the trail is itself audited."
    )
    async def audit_events(
        self,
        info: Info[HubContext, None],
        user: str | None = strawberry.UNSET,
        agency: str | None = strawberry.UNSET,
        record_id: strawberry.ID | None = strawberry.UNSET,
        since: datetime | None = strawberry.UNSET,
        until: datetime | None = strawberry.UNSET,
        purpose: str | None = strawberry.UNSET,
        limit: int | None = 100,
    ) -> list[t.AuditEvent]:
        ctx = _hub(info)
        subject = ctx.request.subject
        query = AuditQuery(
            user=user or None,
            agency=agency or None,
            record_id=record_id or None,
            since=since or None,
            until=until or None,
            purpose=purpose or None,
            limit=_bounded_limit(100 if limit is None else limit, 1000),
        )
        ctx.asked("auditEvents", **dataclasses.asdict(query))
        if "auditor" not in subject.roles:
            raise AccessDenied("the audit trail is for auditors")
        if ctx.services.audit_log is None:
            raise AuditUnavailable("the audit trail is not configured")
        entries = await query_events(ctx.services.audit_log, subject.ori, query)
        return [_audit_event(e) for e in entries]

    @strawberry.field(description="The configured sources (names and owners; no addresses).")
    def sources(self, info: Info[HubContext, None]) -> list[t.Source]:
        return [
            t.Source(
                name=a.name,
                agency=p.agency(a.config.agency),
                system=t.SourceSystem(
                    name=a.name, vendor=a.vendor, kind=t.SourceKind(a.source_kind.value)
                ),
                entity_kinds=[t.EntityKind(k.value) for k in sorted(a.entity_kinds)],
                timeout_ms=a.config.timeout_ms,
            )
            for a in _hub(info).services.adapters
        ]


def _audit_event(e: SealedEntry) -> t.AuditEvent:
    return t.AuditEvent(
        seq=e.seq,
        hash=e.hash,
        at=datetime.fromisoformat(e.at),
        trace_id=e.trace_id,
        operation=e.operation,
        outcome=e.outcome,
        error_code=e.error_code,
        user=e.user,
        agency=e.agency,
        roles=list(e.roles),
        via_user=e.via_user,
        via_agency=e.via_agency,
        hub_chain=list(e.hub_chain),
        purpose=e.purpose,
        case_number=e.case_number,
        criteria=strawberry.scalars.JSON(e.criteria) if e.criteria is not None else None,
        sources=[
            t.AuditSourceCall(
                source=s.source,
                agency=s.agency,
                status=s.status,
                count=s.count,
                latency_ms=s.latency_ms,
            )
            for s in e.sources
        ],
        records=[
            t.AuditRecordAccess(id=strawberry.ID(r.id), owner=r.owner, visibility=r.visibility)
            for r in e.records
        ],
        withheld=[
            t.AuditWithholding(field=w.field, rules=list(w.rules), count=w.count)
            for w in e.withheld
        ],
        policy_version=e.policy_version,
        client_address=e.client_address,
    )


NOTICE_ROLES = frozenset({"records", "supervisor"})


@strawberry.type
class Mutation:
    @strawberry.mutation(
        description="The owning agency's notice that a record was expunged or sealed: the hub "
        "drops every cached vendor answer holding it, at once, on every worker. For the owner's "
        "records clerks and supervisors."
    )
    async def record_notice(
        self, info: Info[HubContext, None], id: strawberry.ID, notice: t.RecordNotice
    ) -> t.NoticeResult:
        ctx = _hub(info)
        ctx.asked("recordNotice", id=id, notice=notice.value)
        ref = model.parse_id(id)
        adapter = ctx.services.by_name.get(ref.source)
        subject = ctx.request.subject
        if adapter is None:
            raise InvalidId("that id names no configured source")
        if adapter.config.agency.ori != subject.ori or not (subject.roles & NOTICE_ROLES):
            raise AccessDenied("only the owning agency's records staff may send a notice")
        if ctx.services.cache is None:
            return t.NoticeResult(id=id, notice=notice, evicted_entries=0, deferred=False)
        eviction = await ctx.services.cache.evict_record(id)
        return t.NoticeResult(
            id=id, notice=notice, evicted_entries=eviction.entries, deferred=eviction.deferred
        )


# -- the document: which root fields it asks for -------------------------------------------------


def _root_fields(document: DocumentNode, operation_name: str | None) -> set[str]:
    fragments = {
        d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)
    }
    operations = [d for d in document.definitions if isinstance(d, OperationDefinitionNode)]
    if operation_name is not None:
        operations = [o for o in operations if o.name and o.name.value == operation_name]
    names: set[str] = set()

    def walk(selection_set: SelectionSetNode, seen: frozenset[str]) -> Iterator[str]:
        for sel in selection_set.selections:
            if isinstance(sel, FieldNode):
                yield sel.name.value
            elif isinstance(sel, InlineFragmentNode):
                yield from walk(sel.selection_set, seen)
            elif isinstance(sel, FragmentSpreadNode):
                frag = fragments.get(sel.name.value)
                if frag is not None and sel.name.value not in seen:
                    yield from walk(frag.selection_set, seen | {sel.name.value})

    for op in operations[:1]:
        names.update(walk(op.selection_set, frozenset()))
    return names


_SELECTED: OrderedDict[str, frozenset[str]] = OrderedDict()


def selected_fields_of(schema: Any, query: str | None, document: DocumentNode) -> frozenset[str]:
    """``selected_fields``, remembered per query text (the parse cache makes the document)."""
    if query is None:
        return frozenset(selected_fields(schema, document))
    found = _SELECTED.get(query)
    if found is None:
        found = _SELECTED[query] = frozenset(selected_fields(schema, document))
        if len(_SELECTED) > DOCUMENT_CACHE:
            _SELECTED.popitem(last=False)
    else:
        _SELECTED.move_to_end(query)
    return found


def selected_fields(schema: Any, document: DocumentNode) -> set[str]:
    """Every Type.field the document selects (through fragments and unions too)."""
    type_info = TypeInfo(schema._schema)
    found: set[str] = set()

    class Collect(Visitor):
        def enter_field(self, node: FieldNode, *_: Any) -> None:
            parent = type_info.get_parent_type()
            if parent is not None:
                found.add(f"{parent.name}.{node.name.value}")

    visit(document, TypeInfoVisitor(type_info, Collect()))
    return found


def _error(message: str, code: str, **extra: Any) -> GraphQLError:
    return GraphQLError(message, extensions={"code": code, **extra})


_parse = functools.lru_cache(maxsize=DOCUMENT_CACHE)(parse)


class AmbiguousOperation(CannotGetOperationTypeError):
    """A document of several operations and no ``operationName``: a request error (GraphQL over
    HTTP), answered 400 by strawberry's HTTP view, with nothing executed (``HubSchema.execute``;
    strawberry would run the first operation)."""

    def __init__(self, count: int) -> None:
        super().__init__(None)
        self.count = count

    def as_http_error_reason(self) -> str:
        return f"the document holds {self.count} operations: name the one to run in operationName"


class CachedParse(SchemaExtension):
    """Parsed documents, remembered per query text (strawberry's ParserCache, except that a
    document that does not parse is left to strawberry, which reports the syntax error as a
    GraphQL error instead of letting it escape the request)."""

    def on_parse(self) -> Iterator[None]:
        ec = self.execution_context
        if ec.query:
            with contextlib.suppress(GraphQLError):
                ec.graphql_document = _parse(ec.query, **ec.parse_options)
        yield


_VALIDATED: OrderedDict[tuple[Any, str, tuple[Any, ...]], list[GraphQLError]] = OrderedDict()


class CachedValidation(SchemaExtension):
    """Validation results, remembered per (schema, query text, rules). strawberry's
    ValidationCache keys on the parsed document, which graphql-core hashes whole on every
    lookup; the text is the same key, cheaper. Runs after the extensions that add rules."""

    def on_validate(self) -> Iterator[None]:
        ec = self.execution_context
        if ec.query and ec.graphql_document is not None and ec.pre_execution_errors is None:
            key = (ec.schema, ec.query, tuple(ec.validation_rules))
            errors = _VALIDATED.get(key)
            if errors is None:
                errors = validate_document(ec.schema._schema, ec.graphql_document, key[2])
                _VALIDATED[key] = errors
                if len(_VALIDATED) > DOCUMENT_CACHE:
                    _VALIDATED.popitem(last=False)
            else:
                _VALIDATED.move_to_end(key)
            ec.pre_execution_errors = errors
        yield


class CostLimit(SchemaExtension):
    """A query whose estimated cost is over the limit executes nothing (``resolvers.cost``)."""

    def __init__(self, max_cost: int) -> None:
        self.max_cost = max_cost

    def on_execute(self) -> Iterator[None]:
        ec = self.execution_context
        if ec.graphql_document is not None and ec.result is None:
            cost = estimate_cost(ec.graphql_document, ec.operation_name, ec.variables)
            if cost > self.max_cost:
                ec.result = GraphQLExecutionResult(
                    data=None,
                    errors=[
                        _error(
                            f"estimated cost {cost} is over the limit of {self.max_cost}: "
                            "ask for fewer records, fields or relationships",
                            "QUERY_REJECTED",
                            cost=cost,
                        )
                    ],
                )
        yield


class PurposeCheck(SchemaExtension):
    """A data query states a valid purpose, or nothing executes and no vendor is called."""

    def on_execute(self) -> Iterator[None]:
        ec = self.execution_context
        ctx: HubContext = ec.context
        document = ec.graphql_document
        if (
            document is not None
            and ec.result is None
            and _root_fields(document, ec.operation_name) & DATA_FIELDS
        ):
            try:
                ctx.purpose = require_purpose(ctx.request.purpose)
            except HubError as exc:
                ec.result = GraphQLExecutionResult(
                    data=None, errors=[_error(exc.message, exc.code)]
                )
        yield


# graphql-core's hint at names the schema has ("Did you mean 'sources'?", "... the enum value
# 'PERSON'?"): the schema, told a guess at a time, to whoever can send a query.
_SUGGESTION = re.compile(r"\s*Did you mean [^?]*\?")


class ResponseShaper(SchemaExtension):
    """Stable error codes, FORBIDDEN_FIELD once per Type.field, and ``extensions.sources``.

    ``suggestions=False`` (production: no introspection) strips graphql-core's "Did you mean
    ...?" from every message: with introspection off, they would tell the schema anyway."""

    def __init__(self, *, suggestions: bool = True) -> None:
        self.suggestions = suggestions

    def on_operation(self) -> Iterator[None]:
        yield
        ec = self.execution_context
        result = ec.result
        if result is None:
            return
        ctx: HubContext = ec.context
        errors = [self._shape(e, suggestions=self.suggestions) for e in (result.errors or [])]
        # Only what the query asked for was withheld from it.
        document = ec.graphql_document
        asked = (
            selected_fields_of(self.execution_context.schema, ec.query, document)
            if document
            else frozenset()
        )
        for key in [k for k in ctx.withheld if k not in asked]:
            del ctx.withheld[key]
        for key, count in sorted(ctx.withheld.items()):
            error = _error(
                f"{key} withheld by policy from {count} record(s)",
                "FORBIDDEN_FIELD",
                field=key,
                withheld=count,
            )
            if key in ctx.withheld_paths:
                # where it was first withheld: gateways attach a subgraph's errors by path
                error.path = ctx.withheld_paths[key]
            errors.append(error)
        result.errors = errors or None
        self._record(ctx, errors, result.data is None)

    def _record(self, ctx: HubContext, errors: list[GraphQLError], no_data: bool) -> None:
        """Tell the audit trail what the operation was and how it ended."""
        recorder = ctx.recorder
        if recorder is None:
            return
        ec = self.execution_context
        document = ec.graphql_document
        roots = sorted(_root_fields(document, ec.operation_name)) if document else []
        recorder.annotate(
            name=ec.operation_name or "+".join(roots) or "anonymous",
            criteria=ctx.criteria or None,
        )
        for key, count in ctx.withheld.items():
            recorder.withheld(key, sorted(ctx.withheld_rules[key]), count)
        codes = [str((e.extensions or {}).get("code")) for e in errors]
        refusals = [c for c in codes if c not in ("FORBIDDEN_FIELD", "INTERNAL")]
        if no_data and refusals:
            recorder.set_outcome("REFUSED", refusals[0])
        elif "INTERNAL" in codes:
            recorder.set_outcome("ERROR", "INTERNAL")

    @staticmethod
    def _shape(error: GraphQLError, *, suggestions: bool = True) -> GraphQLError:
        original = error.original_error
        if isinstance(original, HubError):
            return GraphQLError(
                original.message,
                error.nodes,
                error.source,
                error.positions,
                error.path,
                extensions={"code": original.code},
            )
        if error.extensions and "code" in error.extensions:
            return error
        if isinstance(original, GraphQLError):
            # graphql-core's own, wrapping the reason: a variable value that does not coerce
            # ("Variable '$kinds' has invalid value ..."). The client's input, not a fault.
            return GraphQLError(
                error.message if suggestions else _SUGGESTION.sub("", error.message),
                error.nodes,
                error.source,
                error.positions,
                error.path,
                extensions={"code": "BAD_USER_INPUT"},
            )
        if original is None:
            # graphql-core's own: syntax and validation (incl. our depth/alias/token limits)
            message = error.message if suggestions else _SUGGESTION.sub("", error.message)
            limit = any(w in message for w in ("depth", "aliases", "tokens"))
            if message.startswith("Syntax Error"):
                code = "GRAPHQL_PARSE_FAILED"
            else:
                code = "QUERY_REJECTED" if limit else "GRAPHQL_VALIDATION_FAILED"
            return GraphQLError(
                message,
                error.nodes,
                error.source,
                error.positions,
                error.path,
                extensions={"code": code},
            )
        log.error("unexpected error in a resolver: %s", type(original).__name__, exc_info=original)
        return GraphQLError(
            "Unexpected error.",
            error.nodes,
            error.source,
            error.positions,
            error.path,
            extensions={"code": "INTERNAL"},
        )

    def get_results(self) -> dict[str, Any]:
        ctx: HubContext = self.execution_context.context
        document = self.execution_context.graphql_document
        asked_data = document is not None and bool(
            _root_fields(document, self.execution_context.operation_name) & DATA_FIELDS
        )
        if not asked_data and not ctx.touched_sources:
            return {}
        return {
            "sources": [
                {
                    "source": s.source,
                    "agency": s.agency,
                    "status": s.status.value,
                    "count": s.count,
                    "latencyMs": s.latency_ms,
                    "message": s.message,
                    "cached": s.cached,
                }
                for s in ctx.source_statuses()
            ],
            "purpose": ctx.purpose.code if ctx.purpose else None,
        }


class HubSchema(strawberry.federation.Schema):
    # The parse options CachedParse uses (MaxTokensLimiter's), so both share one cached parse.
    max_tokens: int | None = None

    async def execute(
        self,
        query: str | None,
        variable_values: dict[str, Any] | None = None,
        context_value: Any | None = None,
        root_value: Any | None = None,
        operation_name: str | None = None,
        allowed_operation_types: Iterable[OperationType] | None = None,
        operation_extensions: dict[str, Any] | None = None,
    ) -> ExecutionResult:
        """strawberry's, except that a document of several operations and no operationName
        raises AmbiguousOperation (HTTP 400) before anything runs. Only here is it known that
        the client named no operation: past this point strawberry names the first one."""
        if operation_name is None and query:
            options = {} if self.max_tokens is None else {"max_tokens": self.max_tokens}
            try:
                document = _parse(query, **options)
            except GraphQLError:
                document = None  # strawberry reports it, as for any request
            if document is not None:
                count = sum(isinstance(d, OperationDefinitionNode) for d in document.definitions)
                if count > 1:
                    raise AmbiguousOperation(count)
        return await super().execute(
            query,
            variable_values,
            context_value,
            root_value,
            operation_name,
            allowed_operation_types,
            operation_extensions,
        )

    def entities_resolver(
        self, info: Info, representations: list[FederationAny]
    ) -> list[FederationAny]:
        """Federation ``_entities``, each representation checked first: one that is not an
        object, names no entity type of this hub or does not carry exactly that type's key
        fields (as strings) is answered null with BAD_USER_INPUT for that entity alone, where
        strawberry's resolver would fail on it (INTERNAL) or fail the whole field."""
        results: list[FederationAny] = []
        for index, representation in enumerate(representations):
            problem = self._representation_problem(representation)
            if problem is None:
                results.extend(super().entities_resolver(info, [representation]))
            else:
                # graphql-core raises an exception found in a list: null there, error there.
                error = InvalidInput(f"representations[{index}]: {problem}")
                results.append(FederationAny(error))
        return results

    def _representation_problem(self, representation: object) -> str | None:
        if not isinstance(representation, dict):
            return "a representation is an object: __typename and the type's key fields"
        type_name = representation.get("__typename")
        if not isinstance(type_name, str) or not type_name:
            return "__typename is missing or not a string"
        found = self.schema_converter.type_map.get(type_name)
        origin = getattr(found.definition, "origin", None) if found is not None else None
        resolve = getattr(origin, "resolve_reference", None)
        if resolve is None:
            return f"{type_name[:64]!r} is not an entity type of this hub"
        keys = set(get_func_args(resolve)) - {"info"}
        given = set(representation) - {"__typename"}
        if given != keys:
            return f"a {type_name} representation carries exactly its key fields: " + ", ".join(
                sorted(keys)
            )
        for key in sorted(keys):
            value = representation[key]
            if not isinstance(value, str) or not value:
                return f"{type_name}.{key} must be a non-empty string"
        return None

    def process_errors(
        self, errors: list[GraphQLError], execution_context: ExecutionContext | None = None
    ) -> None:
        # strawberry's default logs each message and traceback; messages may echo CJI from a
        # query, so only the kind of error is logged (ResponseShaper logs unexpected ones).
        for error in errors:
            if error.original_error is not None and not isinstance(error.original_error, HubError):
                continue
            log.info("graphql error: %s", (error.extensions or {}).get("code", "validation"))


def build_schema(settings: Settings) -> strawberry.Schema:
    limits = settings.limits
    # The limit rules are classes made once: the validation cache keys on them, so rules made
    # per request would never hit it (parse + validate were 55% of a search's time).
    rules: list[Any] = [
        *QueryDepthLimiter(max_depth=limits.max_depth).validation_rules,
        *MaxAliasesLimiter(max_alias_count=limits.max_aliases).validation_rules,
    ]
    if not settings.introspection:
        rules.append(NoSchemaIntrospectionCustomRule)
    # Factories, not instances: strawberry makes fresh extensions for every request (the parse
    # and validation caches they use are shared, module-level LRUs).
    extensions: list[Any] = [
        lambda: MaxTokensLimiter(max_token_count=limits.max_tokens),
        CachedParse,
        lambda: AddValidationRules(rules),
        CachedValidation,
        lambda: CostLimit(limits.max_cost),
        PurposeCheck,
        lambda: ResponseShaper(suggestions=settings.introspection),
    ]
    # Federation v2.9: the composition tools partner gateways use reject strawberry's default 2.11.
    schema = HubSchema(
        query=Query,
        mutation=Mutation,
        types=[t.RecordPointer],
        extensions=extensions,
        federation_version="2.9",
    )
    schema.max_tokens = limits.max_tokens
    return schema
