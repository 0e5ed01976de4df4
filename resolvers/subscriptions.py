"""The root Subscription (streaming search), and the shaper of streamed results.

A subscription runs only over the WebSocket (``hub.edge.websocket``), whose edge gives each
operation its own ``HubContext`` and audit entry and sets ``HubContext.before_last_payload``.

``StreamShaper`` is the ``ResponseShaper`` of every operation, plus what a stream needs:
strawberry runs the operation hooks around the whole stream, so what the shaper does once per
response (stable codes, FORBIDDEN_FIELD once per Type.field, telling the audit trail) is done
here for each streamed result before it is sent; and a refusal the extensions before it decided
(PurposeCheck, CostLimit: ``ec.result``), which strawberry does not honour for a subscription,
stops the subscription before its resolver runs.
"""

from __future__ import annotations

import contextlib
from collections import Counter
from collections.abc import AsyncGenerator, Awaitable, Callable, Iterator
from typing import Any

import strawberry
from graphql import GraphQLError
from strawberry import Info
from strawberry.types import ExecutionResult
from strawberry.types.graphql import OperationType

from hub.access.purposes import require_purpose
from resolvers import types as t
from resolvers.context import HubContext
from resolvers.document import selected_fields_of
from resolvers.extensions.shaper import ResponseShaper, coded_error
from resolvers.search import SearchStreamPayload, search_stream


@strawberry.type
class Subscription:
    @strawberry.subscription(
        description="`search`, streamed over the WebSocket (graphql-transport-ws): one payload "
        "per source as it answers, with its hits and status, so a slow source holds back no "
        "other; the last payload (`done`) carries every source's status. The same policy, "
        "limit and counts as `search`. Needs X-Purpose (in connection_init)."
    )
    async def search_stream(
        self,
        info: Info[HubContext, None],
        text: str,
        kinds: list[t.EntityKind] | None = strawberry.UNSET,
        agencies: list[str] | None = strawberry.UNSET,
        limit: int | None = 50,
    ) -> AsyncGenerator[SearchStreamPayload, None]:
        ctx = info.context
        # PurposeCheck decided already (StreamShaper stops a refused subscription); once more
        # here, so that no path reaches the sources without a purpose.
        ctx.purpose = require_purpose(ctx.request.purpose)
        stream = search_stream(
            ctx, info.path.as_list(), text, kinds or None, agencies or None, limit
        )
        async with contextlib.aclosing(stream):
            async for payload in stream:
                yield payload


class StreamShaper(ResponseShaper):
    """``ResponseShaper``, result by result for a stream (module docstring)."""

    def __init__(self, *, suggestions: bool = True) -> None:
        super().__init__(suggestions=suggestions)
        self._streamed = False
        self._reported: Counter[str] = Counter()
        self._codes: list[str] = []
        self._had_data = False

    def on_execute(self) -> Iterator[None]:
        ec = self.execution_context
        if _is_subscription(ec):
            refusal = ec.result
            if refusal is not None and refusal.errors:
                # strawberry would subscribe anyway: raised here, it is the only result.
                raise refusal.errors[0]
            ctx: HubContext = ec.context
            edge_seal = ctx.before_last_payload
            if edge_seal is not None:
                ctx.before_last_payload = self._sealing(ctx, edge_seal)
        yield

    def on_operation(self) -> Iterator[None]:
        once = super().on_operation()
        next(once)
        yield
        if self._streamed:
            # Every result went out already, shaped; an entry not yet written hears of it now.
            self._tell_audit(self.execution_context.context)
            return
        for _ in once:
            pass

    def on_stream_result(self, result: Any) -> Iterator[None]:
        self._streamed = True
        if isinstance(result, ExecutionResult):
            ctx: HubContext = self.execution_context.context
            errors = [self._shape(e, suggestions=self.suggestions) for e in result.errors or []]
            errors += self._newly_withheld(ctx)
            self._codes += [str((e.extensions or {}).get("code")) for e in errors]
            self._had_data = self._had_data or result.data is not None
            result.errors = errors or None
        yield

    def _asked(self) -> frozenset[str]:
        ec = self.execution_context
        document = ec.graphql_document
        return selected_fields_of(ec.schema, ec.query, document) if document else frozenset()

    def _newly_withheld(self, ctx: HubContext) -> list[GraphQLError]:
        """FORBIDDEN_FIELD for what was withheld since the last result (of what was asked)."""
        asked = self._asked()
        errors = []
        for key, count in sorted((Counter(ctx.withheld) - self._reported).items()):
            if key not in asked:
                continue
            error = coded_error(
                f"{key} withheld by policy from {count} record(s)",
                "FORBIDDEN_FIELD",
                field=key,
                withheld=count,
            )
            if key in ctx.withheld_paths:
                error.path = ctx.withheld_paths[key]
            errors.append(error)
        self._reported = Counter(ctx.withheld)
        # Where each field is first withheld in the next result, not in this one.
        ctx.withheld_paths.clear()
        return errors

    def _tell_audit(self, ctx: HubContext) -> None:
        if ctx.recorder is None:
            return
        asked = self._asked()
        for key in [k for k in ctx.withheld if k not in asked]:
            del ctx.withheld[key]
        errors = [coded_error("", code) for code in self._codes]
        self._record(ctx, errors, not self._had_data)

    def _sealing(
        self, ctx: HubContext, edge_seal: Callable[[], Awaitable[None]]
    ) -> Callable[[], Awaitable[None]]:
        async def seal() -> None:
            self._tell_audit(ctx)
            await edge_seal()

        return seal


def _is_subscription(ec: Any) -> bool:
    try:
        return bool(ec.operation_type is OperationType.SUBSCRIPTION)
    except RuntimeError:  # no operation (a document that did not parse)
        return False
