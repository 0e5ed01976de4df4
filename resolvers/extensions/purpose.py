"""The purpose check: a data query states a valid purpose, or nothing executes."""

from __future__ import annotations

from collections.abc import Iterator

from graphql import ExecutionResult as GraphQLExecutionResult
from strawberry.extensions import SchemaExtension

from hub.access.purposes import require_purpose
from hub.errors import HubError
from resolvers.context import HubContext
from resolvers.document import root_fields
from resolvers.extensions.shaper import coded_error
from resolvers.roots import DATA_FIELDS


class PurposeCheck(SchemaExtension):
    """A data query states a valid purpose, or nothing executes and no vendor is called."""

    def on_execute(self) -> Iterator[None]:
        ec = self.execution_context
        ctx: HubContext = ec.context
        document = ec.graphql_document
        if (
            document is not None
            and ec.result is None
            and root_fields(document, ec.operation_name) & DATA_FIELDS
        ):
            try:
                ctx.purpose = require_purpose(ctx.request.purpose)
            except HubError as exc:
                ec.result = GraphQLExecutionResult(
                    data=None, errors=[coded_error(exc.message, exc.code)]
                )
        yield
