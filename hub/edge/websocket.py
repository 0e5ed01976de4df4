"""GraphQL over WebSocket at ``/graphql``: the graphql-transport-ws protocol (graphql-ws's), with
the edge of ``hub.edge.pipeline`` applied to each connection and each operation.

The protocol is strawberry's (``BaseGraphQLTransportWSHandler``: the connection_init timeout,
ping/pong, one operation per id, complete, clean shutdown); what is the hub's is here:

- **Handshake**: a browser's ``Origin`` must be the hub's own (a page elsewhere could otherwise
  drive a socket a user opened); the subprotocol must be ``graphql-transport-ws`` (4406).
- **Every message** (``_Socket``): text (4400), at most ``limits.ws_max_message_bytes`` (1009),
  UTF-8 JSON nested at most ``MAX_JSON_DEPTH``, an object whose members have the protocol's
  types (4400, saying what is wrong). A connection silent for ``ws_idle_timeout_s`` with no
  operation running is closed (4408).
- **connection_init** carries what a browser cannot put in a WebSocket's headers, under the
  headers' names: ``{"Authorization": "Bearer <token>", "X-Purpose": "C",
  "X-Case-Number": "..."}``. The token is verified, the agency and roles must be known to the
  policy and the purpose a valid code, or the connection is closed with 4403 (who) or 4400 (a
  purpose that names none), the code of ``hub.errors`` in the reason. Partner hubs call over
  HTTP. A refused connection_init is audited, as a refused POST is.
- **Each subscribe** is one operation, as one POST is: the token verified again (a connection
  may outlive it: 4403), the rate limit, at most ``ws_max_operations`` running, persisted
  queries; then one audit entry. A query or mutation is answered like a POST: its entry
  durable first, then one ``next``. A subscription streams: the audit log is shown to be
  writable before anything is asked (``audit_writable``); what each payload releases is in an
  entry of its own, in the operation's trace, before the payload leaves
  (``Operation.checkpoint``); the operation's entry, whole (every record, the sources, withheld
  fields, outcome), is written before the last payload (``HubContext.before_last_payload``).
  If an entry cannot be written, the payload it was for is an AUDIT_UNAVAILABLE error instead,
  and nothing more is sent. A refusal is an ``error`` message with its code.

Logs and metrics as for HTTP: ``request_id`` and ``trace_id`` on an operation's lines, no
query text, variables or token; one request counted per operation.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import os
import time
import uuid
from collections.abc import AsyncGenerator, Awaitable, Callable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any, cast

from graphql import (
    DocumentNode,
    GraphQLError,
    OperationDefinitionNode,
    OperationType,
    get_operation_ast,
)
from starlette.websockets import WebSocket, WebSocketDisconnect, WebSocketState
from strawberry.http.async_base_view import AsyncWebSocketAdapter
from strawberry.http.exceptions import NonTextMessageReceived, WebSocketDisconnected
from strawberry.http.websocket_origin import is_same_origin
from strawberry.subscriptions import GRAPHQL_TRANSPORT_WS_PROTOCOL
from strawberry.subscriptions.protocols.graphql_transport_ws.handlers import (
    BaseGraphQLTransportWSHandler,
    Operation,
)
from strawberry.subscriptions.protocols.graphql_transport_ws.types import Message
from strawberry.types.execution import ExecutionResult, PreExecutionError

from hub.access.catalogue import ROLES
from hub.access.purposes import purpose_of
from hub.audit import FileAuditLog, RedisAuditLog
from hub.context import RequestContext, Subject
from hub.edge.body import parse_body
from hub.edge.logging import bind_request, bind_trace
from hub.edge.metrics import HubMetrics
from hub.edge.pipeline import HubGraphQL
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
from hub.trust.federation import PARTNER_ROLE, current_request
from hub.trust.identity import ANONYMOUS
from resolvers.context import HubContext
from resolvers.document import parse_document, root_fields
from resolvers.schema import AmbiguousOperation

log = logging.getLogger(__name__)

PROTOCOL = GRAPHQL_TRANSPORT_WS_PROTOCOL
MAX_ID = 128  # characters of an operation id
MAX_HEADER_VALUE = 64  # as hub.edge.pipeline: a longer purpose or case number is cut here
_MESSAGES = frozenset({"connection_init", "ping", "pong", "subscribe", "complete"})


class CloseConnection(Exception):
    """The connection ends with ``code``; ``reason`` says why (a close frame's reason is at
    most 123 bytes: it is cut to fit)."""

    def __init__(self, code: int, reason: str) -> None:
        super().__init__(reason)
        self.code = code
        self.reason = _fit_reason(reason)


def _fit_reason(reason: str) -> str:
    data = reason.encode()
    return reason if len(data) <= 123 else data[:120].decode(errors="ignore") + "..."


def _refusal_close(error: HubError) -> CloseConnection:
    """Who may not connect: 4403; anything else wrong with connection_init: 4400."""
    forbidden = isinstance(error, AuthenticationError | AccessDenied | UnknownAgency | UnknownRole)
    return CloseConnection(4403 if forbidden else 4400, f"{error.code}: {error.message}")


def frame_problem(message: Mapping[str, Any]) -> str | None:
    """What is wrong with a message of the protocol (already a JSON object), or None."""
    kind = message.get("type")
    if not isinstance(kind, str):
        return "a message is an object with a string 'type'"
    if kind not in _MESSAGES:
        return "unknown message type: connection_init, ping, pong, subscribe or complete"
    payload = message.get("payload")
    if kind in ("subscribe", "complete"):
        op_id = message.get("id")
        if not isinstance(op_id, str) or not 1 <= len(op_id) <= MAX_ID:
            return f"a {kind} message has an 'id' of 1 to {MAX_ID} characters"
    if kind != "subscribe":
        if payload is not None and not isinstance(payload, dict):
            return f"the payload of {kind} must be an object"
        return None
    if not isinstance(payload, dict):
        return 'a subscribe message has a payload: {"query": "...", "variables": {...}}'
    for key, kind_name, types in (
        ("query", "a string", str),
        ("operationName", "a string", str),
        ("variables", "an object", dict),
        ("extensions", "an object", dict),
    ):
        if payload.get(key) is not None and not isinstance(payload[key], types):
            return f"subscribe: the payload's {key!r} must be {kind_name} or null"
    return None


class _Socket(AsyncWebSocketAdapter):
    """strawberry's WebSocket adapter for Starlette, bounded (module docstring)."""

    def __init__(self, view: HubGraphQL, ws: WebSocket, *, max_bytes: int, idle_s: float) -> None:
        super().__init__(cast(Any, view))
        self.ws = ws
        self.max_bytes = max_bytes
        self.idle_s = idle_s
        self.busy: Callable[[], bool] = lambda: False

    async def iter_json(
        self, *, ignore_parsing_errors: bool = False
    ) -> AsyncGenerator[object, None]:
        while self.ws.application_state != WebSocketState.DISCONNECTED:
            try:
                async with asyncio.timeout(self.idle_s):
                    message = await self.ws.receive()
            except TimeoutError:
                if self.busy():
                    continue
                await self.close(4408, "idle: no message and no operation; reconnect")
                return
            if message["type"] == "websocket.disconnect":
                return
            text = message.get("text")
            if text is None:
                raise NonTextMessageReceived
            # A str from the server's framing: at most 4 bytes a character in UTF-8.
            data = text.encode("utf-8", "surrogatepass")
            if len(data) > self.max_bytes:
                await self.close(1009, f"message over {self.max_bytes} bytes")
                return
            try:
                frame = parse_body(data)
            except HubError as exc:
                # parse_body's words are for a POST's body; a list is a batch there.
                reason = exc.message.replace("request body", "message")
                if reason.startswith("batched"):
                    reason = "a message is a JSON object, not an array"
                await self.close(4400, reason)
                return
            problem = frame_problem(frame)
            if problem is not None:
                await self.close(4400, problem)
                return
            yield frame

    async def send_json(self, message: Mapping[str, object]) -> None:
        try:
            await self.ws.send_json(message)
        except (WebSocketDisconnect, RuntimeError, OSError) as exc:
            # Gone (or closed by us): the handler ends the connection's operations.
            raise WebSocketDisconnected from exc

    async def close(self, code: int, reason: str) -> None:
        if self.ws.application_state == WebSocketState.CONNECTED:
            with contextlib.suppress(WebSocketDisconnect, RuntimeError, OSError):
                await self.ws.close(code=code, reason=_fit_reason(reason))


class _Connection:
    """Who is connected (once connection_init is admitted), and what each operation shares."""

    def __init__(self, runtime: Runtime, ws: WebSocket, metrics: HubMetrics | None) -> None:
        self.runtime = runtime
        self.metrics = metrics
        self.client_address = ws.client.host if ws.client else None
        self.token = ""
        self.subject: Subject = ANONYMOUS
        self.purpose: str | None = None
        self.case_number: str | None = None

    def request(self) -> RequestContext:
        """A fresh request context: one per operation, as one per POST."""
        return RequestContext(
            subject=self.subject,
            purpose=self.purpose,
            case_number=self.case_number,
            client_address=self.client_address,
            request_id=str(uuid.uuid4()),
            received_at=datetime.now(UTC),
        )

    async def admit(self, payload: Mapping[str, Any]) -> None:
        """connection_init's payload: CloseConnection unless it names someone the hub knows,
        with a valid purpose if any."""
        values = {str(k).lower(): v for k, v in payload.items()}
        for name in ("authorization", "x-purpose", "x-case-number"):
            if values.get(name) is not None and not isinstance(values[name], str):
                raise CloseConnection(4400, f"connection_init: {name} must be a string")
        purpose, case_number = values.get("x-purpose"), values.get("x-case-number")
        self.purpose = purpose[:MAX_HEADER_VALUE] if purpose else None
        self.case_number = case_number[:MAX_HEADER_VALUE] if case_number else None
        scheme, _, token = str(values.get("authorization") or "").partition(" ")
        try:
            if scheme.lower() != "bearer" or not token.strip():
                raise AuthenticationError(
                    'send {"Authorization": "Bearer <token>"} in connection_init'
                )
            subject = await self.runtime.verifier.verify(token.strip())
            self.subject = subject
            known(self.runtime, subject)
            if PARTNER_ROLE in subject.roles:
                raise AccessDenied("partner hubs call this hub over HTTP, not over a WebSocket")
            purpose_of(self.purpose)
        except HubError as exc:
            await self.audit_refusal(self.request(), exc.code)
            self.counted(time.perf_counter(), "REFUSED", exc.code, exc.http_status)
            self.subject = ANONYMOUS
            raise _refusal_close(exc) from exc
        self.token = token.strip()

    async def still_valid(self, ctx: RequestContext) -> None:
        """The token may have expired since connection_init: CloseConnection then."""
        try:
            await self.runtime.verifier.verify(self.token)
        except AuthenticationError as exc:
            await self.audit_refusal(ctx, exc.code)
            raise CloseConnection(4403, f"{exc.code}: {exc.message}; reconnect") from exc

    async def audit_refusal(
        self, ctx: RequestContext, code: str, name: str | None = None, digest: str | None = None
    ) -> None:
        """One REFUSED entry; a refusal releases no data, so it goes out even unaudited."""
        trail = self.runtime.trail
        if trail is None:
            return
        try:
            async with trail.operation(
                ctx, name=name or "anonymous", document_hash=digest, activate=False
            ) as op:
                op.annotate(policy_version=self.runtime.services.gate.version)
                op.set_outcome("REFUSED", code)
        except AuditUnavailable as exc:
            log.error("audit trail unavailable; a %s refusal went unaudited: %s", code,
                      exc.message)  # fmt: skip

    def counted(self, started: float, outcome: str, code: str | None, status: int) -> None:
        if self.metrics is not None:
            self.metrics.request_done(outcome, code, status, time.perf_counter() - started)


def known(runtime: Runtime, subject: Subject) -> None:
    """UnknownAgency / UnknownRole, as the HTTP edge (``hub.edge.pipeline``): someone the
    policy does not know is never answered as if they were someone."""
    if not runtime.services.gate.knows_agency(subject.ori):
        raise UnknownAgency(
            f"agency {subject.ori} does not take part in this hub: no access for its users"
        )
    if not subject.roles & ROLES.keys():
        raise UnknownRole("none of the token's roles is one this hub knows: " + ", ".join(ROLES))


async def audit_writable(audit_log: object) -> None:
    """AuditUnavailable unless the audit log can take an entry now, without writing one: a
    stream's entry is written at its end, after hits have left, so the log is shown writable
    before the first. A log with ``ready()`` says so itself; the file log: open, not damaged,
    room on its disk; the Redis stream and PostgreSQL: not closed or regressed, the server
    answering. A log of another kind cannot be shown writable: nothing streams (fail closed)."""
    ready = getattr(audit_log, "ready", None)
    if callable(ready):
        try:
            await ready()
        except Exception as exc:
            raise AuditUnavailable("the audit log is not ready") from exc
        return
    if getattr(audit_log, "_closed", False):
        raise AuditUnavailable("the audit log is closed")
    if getattr(audit_log, "_broken", False) or getattr(audit_log, "_regressed", False):
        raise AuditUnavailable("the audit log is damaged")
    timeout = float(getattr(audit_log, "_timeout", 2.0))
    opener = getattr(audit_log, "open", None)
    if callable(opener):
        # The file log locks and finds its head, PostgreSQL starts its pool, on the first
        # append; now instead.
        try:
            await opener()
        except Exception as exc:
            raise AuditUnavailable("the audit log cannot be opened") from exc
    if isinstance(audit_log, FileAuditLog):
        directory = audit_log.directory

        def room() -> bool:
            disk = os.statvfs(directory)
            return os.access(directory, os.W_OK) and disk.f_bavail * disk.f_frsize > 1 << 20

        try:
            writable = await asyncio.to_thread(room)
        except OSError as exc:
            raise AuditUnavailable("the audit log's directory is not there") from exc
        if not writable:
            raise AuditUnavailable("the audit log's disk is full or read-only")
        return
    try:
        async with asyncio.timeout(timeout):
            if isinstance(audit_log, RedisAuditLog):
                await audit_log.client.ping()
                return
            pool = getattr(audit_log, "_pool", None)  # PostgresAuditLog (psycopg's pool)
            if pool is not None:
                async with pool.connection() as conn:
                    await conn.execute("SELECT 1")
                return
    except Exception as exc:
        raise AuditUnavailable("the audit log's server does not answer") from exc
    raise AuditUnavailable("this audit log cannot be shown writable before a stream")


class HubWSHandler(BaseGraphQLTransportWSHandler[_Connection, None]):
    """strawberry's graphql-transport-ws handler; the hub's admission, limits and audit."""

    def __init__(
        self, view: HubGraphQL, socket: _Socket, connection: _Connection, limits: Any
    ) -> None:
        super().__init__(
            view=cast(Any, view),
            websocket=socket,
            context=connection,
            root_value=None,
            schema=view.schema,
            connection_init_wait_timeout=timedelta(seconds=limits.ws_init_timeout_s),
            max_subscriptions_per_connection=limits.ws_max_operations,
        )
        self.connection = connection
        self.socket = socket
        socket.busy = lambda: bool(self.operations)

    async def handle_message(self, message: Message) -> None:
        try:
            await super().handle_message(message)
        except CloseConnection as exc:
            await self.socket.close(exc.code, exc.reason)

    async def handle_connection_init(self, message: Any) -> None:
        if self.connection_timed_out:
            return
        if self.connection_init_timeout_task:
            self.connection_init_timeout_task.cancel()
        if self.connection_init_received:
            await self.socket.close(4429, "Too many initialisation requests")
            return
        self.connection_init_received = True
        await self.connection.admit(message.get("payload") or {})
        await self.send_message({"type": "connection_ack"})
        self.connection_acknowledged = True

    async def handle_subscribe(self, message: Any) -> None:
        if not self.connection_acknowledged:
            await self.socket.close(4401, "Unauthorized: send connection_init first")
            return
        op_id = message["id"]
        if op_id in self.operations:
            await self.socket.close(4409, f"Subscriber for {op_id} already exists")
            return
        payload = message["payload"]
        operation: Operation[_Connection, None] = Operation(
            self, op_id, payload.get("query") or "", payload.get("variables"),
            payload.get("operationName"),
        )  # fmt: skip
        if len(self.operations) >= (self.max_subscriptions_per_connection or 0):
            error = RateLimited(
                f"at most {self.max_subscriptions_per_connection} operations run at once on "
                "one connection; wait for one to complete"
            )
            self.operations[op_id] = operation
            await operation.send_initial_errors([_coded(error)])
            return
        operation.task = asyncio.create_task(self._run(operation, payload))
        operation.task.add_done_callback(self._task_done)
        self.operations[op_id] = operation

    async def _run(self, operation: Operation[_Connection, None], payload: dict[str, Any]) -> None:
        try:
            await _OperationRun(self, operation, payload).run()
            await operation.send_operation_message({"id": operation.id, "type": "complete"})
        except WebSocketDisconnected:
            self.operations.pop(operation.id, None)
        except CloseConnection as exc:
            self.operations.pop(operation.id, None)
            await self.socket.close(exc.code, exc.reason)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.error("a WebSocket operation failed unexpectedly (%s)", type(exc).__name__,
                      exc_info=exc)  # fmt: skip
            with contextlib.suppress(Exception):
                await operation.send_initial_errors(
                    [GraphQLError("Unexpected error.", extensions={"code": "INTERNAL"})]
                )
            self.operations.pop(operation.id, None)


def _coded(error: HubError, **extensions: Any) -> GraphQLError:
    return GraphQLError(error.message, extensions={"code": error.code, **extensions})


class _Refused(Exception):
    """An operation the edge refuses: its error, and what its GraphQL error carries besides."""

    def __init__(self, error: HubError, **extensions: Any) -> None:
        super().__init__(error.message)
        self.error = error
        self.extensions = extensions


class _OperationRun:
    """One subscribe message: the edge's checks, then one audited operation."""

    def __init__(
        self,
        handler: HubWSHandler,
        operation: Operation[_Connection, None],
        payload: dict[str, Any],
    ) -> None:
        self.handler = handler
        self.connection = handler.connection
        self.runtime = handler.connection.runtime
        self.operation = operation
        self.payload = payload
        self.started = time.perf_counter()
        self.ctx = self.connection.request()
        self.name: str | None = payload.get("operationName")
        self.digest: str | None = None

    async def run(self) -> None:
        bind_request(self.ctx.request_id)
        current_request.set(self.ctx)
        try:
            document = await self._admit()
        except _Refused as refusal:
            exc = refusal.error
            await self.connection.audit_refusal(self.ctx, exc.code, self.name, self.digest)
            await self.operation.send_initial_errors([_coded(exc, **refusal.extensions)])
            self.connection.counted(self.started, "REFUSED", exc.code, exc.http_status)
            return
        if self._is_subscription(document):
            await self._stream(document)
        else:
            await self._execute(document)

    async def _admit(self) -> str:
        await self.connection.still_valid(self.ctx)
        subject = self.ctx.subject
        decision = await self.runtime.limiter.hit(
            {"user": f"{subject.ori}/{subject.user_id}", "agency": subject.ori}
        )
        if not decision.allowed:
            if self.connection.metrics is not None:
                self.connection.metrics.rate_limit_refused(decision.limited_by)
            raise _Refused(
                RateLimited(f"too many requests for this {decision.limited_by}; retry later"),
                retryAfter=decision.retry_after_header,
            )
        try:
            document = await self.runtime.persisted.resolve(
                self.payload.get("query"), self.payload.get("extensions"), scope=subject.ori
            )
        except RequestError as exc:
            raise _Refused(exc) from exc
        if document is None:
            raise _Refused(RequestError("no GraphQL query found in the subscribe message"))
        self.digest = hashlib.sha256(document.encode()).hexdigest()
        return document

    def _operation(self, document: str) -> tuple[DocumentNode, OperationDefinitionNode] | None:
        max_tokens = getattr(self.handler.view.schema, "max_tokens", None)
        options = {} if max_tokens is None else {"max_tokens": max_tokens}
        try:
            parsed = parse_document(document, **options)
        except GraphQLError:
            return None  # the schema reports it, as for any request
        found = get_operation_ast(parsed, self.name)
        return None if found is None else (parsed, found)

    def _is_subscription(self, document: str) -> bool:
        found = self._operation(document)
        return found is not None and found[1].operation is OperationType.SUBSCRIPTION

    def _audited_name(self, document: str) -> str:
        """The operation's name in its audit entries, as the shaper gives it at the end
        (``resolvers.extensions.shaper``): a stream's payload entries are written before."""
        found = self._operation(document)
        if found is None:
            return self.name or "anonymous"
        parsed, operation = found
        if operation.name is not None:
            return operation.name.value
        return "+".join(sorted(root_fields(parsed, self.name))) or "anonymous"

    def _context(self, recorder: Any) -> HubContext:
        if recorder is not None and self.connection.metrics is not None:
            recorder = self.connection.metrics.recorder(recorder)
        return HubContext(self.runtime.services, self.ctx, recorder)

    async def _execute(self, document: str) -> None:
        """A query or mutation: as a POST, its entry durable before its one result leaves."""
        schema = self.handler.view.schema
        variables = self.payload.get("variables")
        trail = self.runtime.trail
        result: ExecutionResult
        if trail is None:
            result = await schema.execute(document, variables, self._context(None), None, self.name)
            await self._send(result)
            self.connection.counted(self.started, "UNAUDITED", None, 200)
            return
        try:
            async with trail.operation(
                self.ctx, name=self.name or "anonymous", document_hash=self.digest
            ) as op:
                bind_trace(op.trace_id)
                op.annotate(policy_version=self.runtime.services.gate.version)
                try:
                    result = await schema.execute(
                        document, variables, self._context(op), None, self.name
                    )
                except AmbiguousOperation as exc:
                    error = RequestError(exc.as_http_error_reason())
                    result = PreExecutionError(data=None, errors=[_coded(error)])
                    op.set_outcome("REFUSED", error.code)
        except AuditUnavailable as exc:
            await self._audit_unavailable(exc)
            return
        await self._send(result)
        entry = op.entry
        self.connection.counted(
            self.started, entry.outcome if entry else "ERROR", entry.error_code if entry else None,
            200,
        )  # fmt: skip

    async def _stream(self, document: str) -> None:
        """A subscription: each result as it comes. What a payload releases is in the audit log
        before it leaves (``Operation.checkpoint``: an entry of its own in the operation's
        trace); the operation's entry, whole as any operation's, is written before the last
        payload."""
        trail = self.runtime.trail
        try:
            if trail is None:
                # Audit off (benchmarks of what audit costs): nothing streams unaudited.
                raise AuditUnavailable("the audit trail is off")
            await audit_writable(self.runtime.services.audit_log)
        except AuditUnavailable as exc:
            await self._audit_unavailable(exc)
            return
        op = trail.operation(self.ctx, name=self._audited_name(document), document_hash=self.digest)
        await op.__aenter__()
        bind_trace(op.trace_id)
        op.annotate(policy_version=self.runtime.services.gate.version)
        context = self._context(op)
        sealed = False

        async def seal() -> None:
            nonlocal sealed
            sealed = True
            context.recorder = None  # nothing is heard after the entry is written
            await op.__aexit__(None, None, None)

        async def released() -> None:
            if not sealed:
                op.annotate(criteria=context.criteria or None)
                await op.checkpoint()

        context.before_last_payload = seal
        failure: BaseException | None = None
        try:
            if not await self._send_stream(document, context, released):
                op.set_outcome("ERROR", AuditUnavailable.code)
        except BaseException as exc:
            failure = exc
            raise
        finally:
            if not sealed:
                try:
                    await op.__aexit__(
                        type(failure) if failure else None, failure, failure.__traceback__
                        if failure else None,
                    )  # fmt: skip
                except AuditUnavailable as exc:
                    log.error("audit trail unavailable; a stream ended unaudited: %s",
                              exc.message)  # fmt: skip
        entry = op.entry
        self.connection.counted(
            self.started, entry.outcome if entry else "ERROR",
            entry.error_code if entry else "AUDIT_UNAVAILABLE", 200,
        )  # fmt: skip

    async def _send_stream(
        self, document: str, context: HubContext, released: Callable[[], Awaitable[None]]
    ) -> bool:
        """The subscription's results, each once ``released`` has audited what it releases;
        False when that failed (the payload withheld, AUDIT_UNAVAILABLE sent instead)."""
        schema = self.handler.view.schema
        source = await schema.subscribe(
            document, self.payload.get("variables"), context, None, self.name
        )
        async with contextlib.aclosing(source):
            first = True
            async for result in source:
                if first and (isinstance(result, PreExecutionError) or result.data is None):
                    # Refused or failed before any data: an error message, then nothing more.
                    await self.operation.send_initial_errors(result.errors or [])
                    return True
                first = False
                try:
                    await released()
                except AuditUnavailable as exc:
                    log.error("audit trail unavailable; a stream's payload withheld: %s",
                              exc.message)  # fmt: skip
                    error = AuditUnavailable(
                        "the audit trail cannot be written, so no more data is released"
                    )
                    await self.operation.send_initial_errors([_coded(error)])
                    return False
                await self._send(result)
        return True

    async def _send(self, result: ExecutionResult) -> None:
        if isinstance(result, PreExecutionError):
            await self.operation.send_initial_errors(result.errors or [])
        else:
            await self.operation.send_next(result)

    async def _audit_unavailable(self, exc: AuditUnavailable) -> None:
        log.error("audit trail unavailable; nothing sent: %s", exc.message)
        error = AuditUnavailable("the audit trail cannot be written, so no data is released")
        await self.operation.send_initial_errors([_coded(error)])
        self.connection.counted(self.started, "ERROR", error.code, error.http_status)


def origin_allowed(ws: WebSocket) -> bool:
    """No ``Origin``: not a browser, no ambient credentials to abuse. A browser's: the hub's
    own only (strawberry's same-origin rule)."""
    origin = ws.headers.get("origin")
    if origin is None:
        return True
    if ws.headers.get("sec-fetch-site") == "same-origin":
        return True
    return is_same_origin(origin, ws.headers.get("host"))


async def serve_websocket(view: HubGraphQL, ws: WebSocket) -> None:
    """One WebSocket connection to ``/graphql``, from the handshake to its close."""
    runtime: Runtime | None = getattr(ws.app.state, "hub", None)
    if runtime is None or not origin_allowed(ws):
        # Refused before the handshake completes: the client sees HTTP 403.
        if runtime is not None:
            log.warning("refused a WebSocket from another origin")
        await ws.close(code=1008)
        return
    if PROTOCOL not in ws.scope.get("subprotocols", ()):
        await ws.accept()
        await ws.close(code=4406, reason=f"Subprotocol not acceptable: use {PROTOCOL}")
        return
    await ws.accept(subprotocol=PROTOCOL)
    limits = runtime.settings.limits
    metrics = getattr(ws.app.state, "metrics", None)
    socket = _Socket(
        view, ws, max_bytes=limits.ws_max_message_bytes, idle_s=limits.ws_idle_timeout_s
    )
    connection = _Connection(runtime, ws, metrics if isinstance(metrics, HubMetrics) else None)
    await HubWSHandler(view, socket, connection, limits).handle()
