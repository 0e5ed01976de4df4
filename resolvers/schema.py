"""The schema: ``build_schema`` puts the root types and the request-wide extensions together.

The pieces, one concern per module: the root Query and Mutation (``resolvers.roots``), the
document's analysis and caches (``resolvers.document``), and the extensions, in the order they
run (``resolvers.extensions``): document limits (depth, aliases, tokens), the parse and
validation caches, introspection off outside demo/dev, the cost limit, the purpose check (a data
query without a valid purpose executes nothing and calls no vendor), and the response shaper
(``extensions.sources``, one FORBIDDEN_FIELD error per denied Type.field, stable error codes
with everything unexpected masked, and outside demo/dev no "Did you mean ...?" hints at the
schema).

Here, ``HubSchema``: one operation per request (a document of several without
``operationName`` is a request error, HTTP 400), and federation ``_entities`` representations
checked before strawberry resolves them (BAD_USER_INPUT per malformed entity).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any

import strawberry
import strawberry.federation
from graphql import GraphQLError, OperationDefinitionNode, get_operation_ast
from graphql import OperationType as GraphQLOperationType
from graphql.validation import NoSchemaIntrospectionCustomRule
from strawberry import Info
from strawberry.extensions import (
    AddValidationRules,
    MaxAliasesLimiter,
    MaxTokensLimiter,
    QueryDepthLimiter,
)
from strawberry.federation.schema import FederationAny
from strawberry.schema.exceptions import CannotGetOperationTypeError
from strawberry.tools import merge_types
from strawberry.types import ExecutionContext, ExecutionResult
from strawberry.types.graphql import OperationType
from strawberry.utils.inspect import get_func_args

from hub.errors import HubError, InvalidInput
from hub.settings import Settings
from resolvers import types as t
from resolvers.compiled import CompiledExecutor
from resolvers.document import parse_document
from resolvers.extensions.caches import CachedParse, CachedValidation
from resolvers.extensions.limits import CostLimit
from resolvers.extensions.purpose import PurposeCheck
from resolvers.live import LiveMutation, LiveQuery, LiveSubscription
from resolvers.oversight import OversightQuery
from resolvers.roots import Mutation, Query
from resolvers.subscriptions import StreamShaper, Subscription

log = logging.getLogger(__name__)


class AmbiguousOperation(CannotGetOperationTypeError):
    """A document of several operations and no ``operationName``: a request error (GraphQL over
    HTTP), answered 400 by strawberry's HTTP view, with nothing executed (``HubSchema.execute``;
    strawberry would run the first operation)."""

    def __init__(self, count: int) -> None:
        super().__init__(None)
        self.count = count

    def as_http_error_reason(self) -> str:
        return f"the document holds {self.count} operations: name the one to run in operationName"


class SubscriptionOverHTTP(CannotGetOperationTypeError):
    """A subscription sent as a POST: a request error (400), nothing executed. Subscriptions
    stream over the WebSocket, whose edge audits a stream (``hub.edge.websocket``)."""

    def __init__(self) -> None:
        super().__init__(None)

    def as_http_error_reason(self) -> str:
        return "a subscription runs over the WebSocket at /graphql (graphql-transport-ws)"


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
                document = parse_document(query, **options)
            except GraphQLError:
                document = None  # strawberry reports it, as for any request
            if document is not None:
                count = sum(isinstance(d, OperationDefinitionNode) for d in document.definitions)
                if count > 1:
                    raise AmbiguousOperation(count)
        if query:
            # execute runs no subscription: only the WebSocket's stream does.
            found = _operation(query, operation_name, self.max_tokens)
            if found is not None and found.operation is GraphQLOperationType.SUBSCRIPTION:
                raise SubscriptionOverHTTP
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


# One root per concern, merged: streaming search (resolvers.subscriptions); watches and alerts
# add theirs to the tuple.
SUBSCRIPTION = merge_types("Subscription", (Subscription, LiveSubscription))


def _operation(
    query: str, operation_name: str | None, max_tokens: int | None
) -> OperationDefinitionNode | None:
    options = {} if max_tokens is None else {"max_tokens": max_tokens}
    try:
        return get_operation_ast(parse_document(query, **options), operation_name)
    except GraphQLError:
        return None  # strawberry reports it, as for any request


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
        # ResponseShaper, result by result for a subscription's stream too.
        lambda: StreamShaper(suggestions=settings.introspection),
    ]
    # Federation v2.9: the composition tools partner gateways use reject strawberry's default 2.11.
    schema = HubSchema(
        query=merge_types("Query", (Query, OversightQuery, LiveQuery)),
        mutation=merge_types("Mutation", (Mutation, LiveMutation)),
        subscription=SUBSCRIPTION,
        types=[t.RecordPointer],
        extensions=extensions,
        federation_version="2.9",
        # Plain selections completed compiled (resolvers.compiled), unless the operator says no.
        execution_context_class=CompiledExecutor if settings.execution.compiled else None,
    )
    schema.max_tokens = limits.max_tokens
    return schema
