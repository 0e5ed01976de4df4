"""The cost limit: a query whose estimated cost is over it executes nothing."""

from __future__ import annotations

from collections.abc import Iterator

from graphql import ExecutionResult as GraphQLExecutionResult
from strawberry.extensions import SchemaExtension

from resolvers.cost import estimate_cost
from resolvers.extensions.shaper import coded_error


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
                        coded_error(
                            f"estimated cost {cost} is over the limit of {self.max_cost}: "
                            "ask for fewer records, fields or relationships",
                            "QUERY_REJECTED",
                            cost=cost,
                        )
                    ],
                )
        yield
