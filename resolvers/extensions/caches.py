"""Parse and validation, once per query text (``resolvers.document`` holds the caches)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from graphql import GraphQLError
from strawberry.extensions import SchemaExtension

from resolvers.document import parse_document, validation_errors


class CachedParse(SchemaExtension):
    """Parsed documents, remembered per query text (strawberry's ParserCache, except that a
    document that does not parse is left to strawberry, which reports the syntax error as a
    GraphQL error instead of letting it escape the request)."""

    def on_parse(self) -> Iterator[None]:
        ec = self.execution_context
        if ec.query:
            with contextlib.suppress(GraphQLError):
                ec.graphql_document = parse_document(ec.query, **ec.parse_options)
        yield


class CachedValidation(SchemaExtension):
    """Validation results, remembered per (schema, query text, rules). strawberry's
    ValidationCache keys on the parsed document, which graphql-core hashes whole on every
    lookup; the text is the same key, cheaper. Runs after the extensions that add rules."""

    def on_validate(self) -> Iterator[None]:
        ec = self.execution_context
        if ec.query and ec.graphql_document is not None and ec.pre_execution_errors is None:
            ec.pre_execution_errors = validation_errors(
                ec.schema, ec.query, ec.graphql_document, ec.validation_rules
            )
        yield
