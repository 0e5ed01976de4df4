"""One POST /graphql through the edge: admitted, executed in one audited operation, answered.

Edge, in order, before any GraphQL runs (``_Edge.admit``): content type and body size
(``hub.edge.body``; the body is read once), the bearer token (401 with a clear message), the
subject's agency and roles (403 UNKNOWN_AGENCY / UNKNOWN_ROLE: someone the policy does not know
is never answered as an empty result), the purpose header (400 INVALID_PURPOSE for a code that
names no purpose, whatever the query; codes are case-sensitive), a partner hub's requester
assertion (the requester passes the same checks, its asserted purpose too), the rate limit, then
the body: UTF-8, JSON nesting at most ``MAX_JSON_DEPTH``, parsed once, one operation (no
batches), persisted queries. strawberry receives that parsed request; it does not parse the body
again.

A refusal is an error of the tree (``hub.errors``), answered with that error's ``http_status``
and ``code`` (``error_response``). Every POST to /graphql leaves exactly one audit entry, a
refusal too (outcome REFUSED with its code). A refusal before the token is verified is audited
under ``hub.trust.identity.ANONYMOUS`` (user "anonymous", no agency): who sent it is not known,
and the entry says no more than that.
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
import time
import uuid
from datetime import UTC, datetime
from typing import Any

from cross_web import AsyncHTTPRequestAdapter, HTTPException, StarletteRequestAdapter
from opentelemetry.context import Context
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from strawberry.asgi import GraphQL
from strawberry.http import GraphQLRequestData

from hub.access.catalogue import ROLES
from hub.access.purposes import purpose_of
from hub.context import RequestContext, Subject
from hub.edge.body import encode_response, parse_body, read_body
from hub.edge.logging import bind_request, bind_trace
from hub.edge.metrics import metrics_of
from hub.edge.runtime import Runtime
from hub.errors import (
    AccessDenied,
    AuditUnavailable,
    AuthenticationError,
    HubError,
    RateLimited,
    RequestError,
    UnknownAgency,
    UnknownRole,
)
from hub.trust.federation import ASSERTION_HEADER, PARTNER_ROLE, caller_span, current_request
from hub.trust.identity import ANONYMOUS
from resolvers.context import HubContext

log = logging.getLogger(__name__)

MAX_HEADER_VALUE = 64


def _json_error(status: int, code: str, message: str, **headers: str) -> JSONResponse:
    return JSONResponse(
        {"data": None, "errors": [{"message": message, "extensions": {"code": code}}]},
        status_code=status,
        headers=headers or None,
    )


def error_response(error: HubError, **headers: str) -> JSONResponse:
    """``error`` as the edge answers it: its ``http_status``, its code and its message."""
    return _json_error(error.http_status, error.code, error.message, **headers)


class Refusal(Exception):
    """What the edge answers instead of running the request: an error of the tree, and the
    headers that go with it (``WWW-Authenticate``, ``Retry-After``)."""

    def __init__(self, error: HubError, **headers: str) -> None:
        super().__init__(error.message)
        self.error = error
        self.code = error.code
        self.headers = headers

    def response(self) -> JSONResponse:
        return error_response(self.error, **self.headers)


class _EdgeRequest(StarletteRequestAdapter):
    """strawberry's adapter of a Starlette request, keeping the request: its ``state`` holds
    what the edge parsed."""

    def __init__(self, request: Request) -> None:
        super().__init__(request)
        self.request = request


class HubGraphQL(GraphQL[HubContext, None]):
    request_adapter_class = _EdgeRequest

    def encode_json(self, data: object) -> bytes:
        """The response body: msgspec, not strawberry's json.dumps (``encode_response``)."""
        return encode_response(data)

    async def handle_request(self, request: Request) -> Response:
        try:
            response: Response = await self.run(request)
        except HTTPException as exc:
            # strawberry's refusal of the request (hub.errors: several operations, none named).
            return _json_error(exc.status_code, "BAD_REQUEST", exc.reason)
        return response

    async def parse_http_body(
        self, request: AsyncHTTPRequestAdapter
    ) -> GraphQLRequestData | list[GraphQLRequestData]:
        """The request as the edge parsed it (``request.state.graphql``): the body is read
        and parsed once, at the edge, never again here."""
        parsed = (
            getattr(request.request.state, "graphql", None)
            if isinstance(request, _EdgeRequest)
            else None
        )
        if not isinstance(parsed, GraphQLRequestData):
            raise HTTPException(400, "the request was not parsed at the edge")
        return parsed

    async def get_context(self, request: Any, response: Any) -> HubContext:
        runtime: Runtime = request.app.state.hub
        ctx: RequestContext = request.state.hub_request
        op = getattr(request.state, "audit_op", None)
        metrics = metrics_of(request)
        if op is not None and metrics is not None:
            op = metrics.recorder(op)  # counts each source call on its way to the audit
        return HubContext(runtime.services, ctx, op)


class _Edge:
    """One POST /graphql through the edge (the order is the module docstring's). ``ctx`` is
    who is known to ask, as far as checked: ``ANONYMOUS`` until the token verifies, the partner
    hub's requester once an assertion is admitted; a refusal is audited under it."""

    def __init__(self, runtime: Runtime, request: Request) -> None:
        self.runtime = runtime
        self.request = request
        self.started = time.perf_counter()
        self.metrics = metrics_of(request)
        purpose = request.headers.get("x-purpose")
        case_number = request.headers.get("x-case-number")
        self.ctx = RequestContext(
            subject=ANONYMOUS,
            purpose=purpose[:MAX_HEADER_VALUE] if purpose else None,
            case_number=case_number[:MAX_HEADER_VALUE] if case_number else None,
            client_address=request.client.host if request.client else None,
            request_id=str(uuid.uuid4()),
            received_at=datetime.now(UTC),
        )
        bind_request(self.ctx.request_id)
        self.inherited_trace: str | None = None
        self.caller_span: Context | None = None
        self.name: str | None = None
        self.digest: str | None = None

    async def admit(self) -> GraphQLRequestData:
        """The request to execute, or Refusal."""
        try:
            body = await read_body(self.request, self.runtime.settings.limits.max_body_bytes)
        except HubError as exc:
            raise Refusal(exc) from exc
        self.ctx = dataclasses.replace(self.ctx, subject=await self._authenticate())
        try:
            self._known(self.ctx.subject)
            purpose_of(self.ctx.purpose)
            await self._partner()
        except HubError as exc:
            raise Refusal(exc) from exc
        decision = await self.runtime.limiter.hit(
            {"user": f"{self.ctx.subject.ori}/{self.ctx.subject.user_id}",
             "agency": self.ctx.subject.ori}
        )  # fmt: skip
        if not decision.allowed:
            if self.metrics is not None:
                self.metrics.rate_limit_refused(decision.limited_by)
            raise Refusal(
                RateLimited(f"too many requests for this {decision.limited_by}; retry later"),
                **{"Retry-After": decision.retry_after_header},
            )
        try:
            payload = parse_body(body)
        except HubError as exc:
            raise Refusal(exc) from exc
        name, query = payload.get("operationName"), payload.get("query")
        self.name = name
        try:
            document = await self.runtime.persisted.resolve(
                query, payload.get("extensions"), scope=self.ctx.subject.ori
            )
        except RequestError as exc:
            # Apollo clients expect these as a GraphQL answer (200), then send the full document.
            raise Refusal(exc) from exc
        if document is None:
            raise Refusal(RequestError("no GraphQL query found in the request"))
        self.digest = hashlib.sha256(document.encode()).hexdigest()
        return GraphQLRequestData(
            query=document,
            variables=payload.get("variables"),
            operation_name=name,
            extensions=payload.get("extensions"),
        )

    async def _authenticate(self) -> Subject:
        header = self.request.headers.get("authorization", "")
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise Refusal(
                AuthenticationError("send Authorization: Bearer <token> (hub token prints one)"),
                **{"WWW-Authenticate": 'Bearer realm="hub"'},
            )
        try:
            return await self.runtime.verifier.verify(token.strip())
        except AuthenticationError as exc:
            raise Refusal(
                exc, **{"WWW-Authenticate": 'Bearer realm="hub", error="invalid_token"'}
            ) from exc

    def _known(self, subject: Subject) -> None:
        """UnknownAgency / UnknownRole for a subject the access policy does not know: it would
        otherwise be answered as if it were someone (an empty result, pointers to records)."""
        if not self.runtime.services.gate.knows_agency(subject.ori):
            raise UnknownAgency(
                f"agency {subject.ori} does not take part in this hub: no access for its users"
            )
        if not subject.roles & ROLES.keys():
            # Roles the hub does not use may ride along with a known one (identity providers
            # carry many); with none known there is nothing policy could grant.
            raise UnknownRole(
                "none of the token's roles is one this hub knows: " + ", ".join(ROLES)
            )

    async def _partner(self) -> None:
        """A partner hub's call runs as the user it asks for; its own account is only ``via``.
        The requester passes the same checks as a token's subject."""
        subject = self.ctx.subject
        assertion = self.request.headers.get(ASSERTION_HEADER)
        if assertion is None and PARTNER_ROLE not in subject.roles:
            return
        if assertion is None:
            raise AccessDenied(
                f"a partner hub must name the requester it asks for ({ASSERTION_HEADER})"
            )
        admitted = await self.runtime.partners.admit(
            subject, assertion, purpose=self.ctx.purpose, case_number=self.ctx.case_number
        )
        self.ctx = admitted.context(subject, self.ctx)
        self.inherited_trace = admitted.trace_id
        self.caller_span = caller_span(admitted.trace_id, self.request.headers)
        self._known(self.ctx.subject)
        purpose_of(self.ctx.purpose)

    def done(self, response: Response, outcome: str, code: str | None) -> Response:
        """``response``, counted (``hub.edge.metrics``)."""
        if self.metrics is not None:
            seconds = time.perf_counter() - self.started
            self.metrics.request_done(outcome, code, response.status_code, seconds)
        return response

    async def refuse(self, refusal: Refusal) -> Response:
        """The refusal's answer, once its audit entry is written (outcome REFUSED, its code)."""
        response = refusal.response()
        response.headers["X-Request-Id"] = self.ctx.request_id
        trail = self.runtime.trail
        if trail is None:
            return self.done(response, "REFUSED", refusal.code)
        try:
            async with trail.operation(
                self.ctx,
                name=self.name or "anonymous",
                document_hash=self.digest,
                parent_trace_id=self.inherited_trace,
                parent=self.caller_span,
            ) as op:
                op.annotate(policy_version=self.runtime.services.gate.version)
                op.set_outcome("REFUSED", refusal.code)
        except AuditUnavailable as exc:
            # A refusal releases no data: it is still answered, and the failure logged.
            log.error("audit trail unavailable; a %s refusal went unaudited: %s",
                      refusal.code, exc.message)  # fmt: skip
            return self.done(response, "REFUSED", refusal.code)
        bind_trace(op.trace_id)
        response.headers["X-Trace-Id"] = op.trace_id
        return self.done(response, "REFUSED", refusal.code)


async def run_graphql(graphql: HubGraphQL, runtime: Runtime, request: Request) -> Response:
    """One POST /graphql: the edge admits it or answers its refusal; an admitted request runs
    as one audited operation whose entry is durable before the response leaves."""
    edge = _Edge(runtime, request)
    try:
        data = await edge.admit()
    except Refusal as refusal:
        return await edge.refuse(refusal)
    ctx = edge.ctx
    request.state.graphql = data
    request.state.hub_request = ctx
    # For adapters whose calls carry no request (get_many): a partner hub needs the requester.
    current_request.set(ctx)
    trail = runtime.trail
    if trail is None:
        return edge.done(await graphql.handle_request(request), "UNAUDITED", None)
    # One audited operation per request; its entry is durable before the response leaves.
    try:
        # A partner's call joins its caller's trace: one trace id in both audit logs.
        async with trail.operation(
            ctx,
            name=edge.name or "anonymous",
            document_hash=edge.digest,
            parent_trace_id=edge.inherited_trace,
            parent=edge.caller_span,
        ) as op:
            bind_trace(op.trace_id)
            op.annotate(policy_version=runtime.services.gate.version)
            request.state.audit_op = op
            response = await graphql.handle_request(request)
            if response.status_code >= 400:
                op.set_outcome("REFUSED", "BAD_REQUEST")
    except AuditUnavailable as exc:
        log.error("audit trail unavailable; response withheld: %s", exc.message)
        unavailable = AuditUnavailable("the audit trail cannot be written, so no data is released")
        return edge.done(error_response(unavailable), "ERROR", unavailable.code)
    response.headers["X-Request-Id"] = ctx.request_id
    response.headers["X-Trace-Id"] = op.trace_id
    entry = op.entry
    return edge.done(
        response, entry.outcome if entry else "ERROR", entry.error_code if entry else None
    )
