"""The response shaper: stable error codes, FORBIDDEN_FIELD once per Type.field, and
``extensions.sources``; the audit trail told what the operation was and how it ended."""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from typing import Any

from graphql import GraphQLError
from strawberry.extensions import SchemaExtension

from hub.errors import HubError
from resolvers.context import HubContext
from resolvers.document import root_fields, selected_fields_of
from resolvers.roots import DATA_FIELDS

log = logging.getLogger(__name__)


def coded_error(message: str, code: str, **extra: Any) -> GraphQLError:
    """A GraphQL error with its stable code (``extensions.code``) and any other extensions."""
    return GraphQLError(message, extensions={"code": code, **extra})


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
            error = coded_error(
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
        roots = sorted(root_fields(document, ec.operation_name)) if document else []
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
            root_fields(document, self.execution_context.operation_name) & DATA_FIELDS
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
