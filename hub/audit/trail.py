"""The audit trail as the app uses it: one ``operation`` per request, written before responding.

::

    trail = AuditTrail(log, tracer_provider)
    async with trail.operation(ctx, name="search", document_hash=h, criteria={...}) as op:
        with op.source("marin-rms", "CA0990000") as call:     # one child span per source
            records = await adapter.search(request)
            call.set_result("OK", len(records))
        op.records_returned((r.id, r.provenance.agency.ori) for r in visible)
        op.withheld("Person.ssn", rules=("owner-ssn",), count=3)
        op.set_outcome(attributes.OUTCOME_PARTIAL)             # optional; derived otherwise
    # here the entry is durable; only now may the response be sent

Leaving the ``async with`` ends the operation span; ``AuditSpanProcessor`` turns the trace into
one entry and ``__aexit__`` awaits ``log.append``. Exactly one entry per ``operation()``, whether
the block returns, raises (a refusal such as ``PurposeRequired`` is audited with outcome REFUSED
and re-raised) or is cancelled. If the entry cannot be written the block raises
``AuditUnavailable``, replacing any other outcome: the caller must then send no data.
"""

from __future__ import annotations

import asyncio
import random
import re
import time
from collections.abc import Iterable, Mapping
from contextvars import Token
from types import TracebackType
from typing import Any, Final, Protocol, Self

import msgspec
from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.util.types import AttributeValue

from hub.audit import attributes as attr
from hub.audit.entry import AuditEntry, RecordAccess
from hub.audit.log import AuditLog
from hub.audit.tracing import AuditSpanProcessor, build_tracer_provider
from hub.context import RequestContext
from hub.errors import AccessDenied, AuditUnavailable, ConfigError, HubError, RequestError

_FAILED_SOURCE: Final = frozenset({"TIMEOUT", "ERROR", attr.SOURCE_CANCELLED})
_json = msgspec.json.Encoder()


class SourceReport(Protocol):
    """A source call's outcome as the fan-out reports it."""

    @property
    def source(self) -> str: ...
    @property
    def agency(self) -> str: ...
    @property
    def status(self) -> str: ...
    @property
    def count(self) -> int: ...
    @property
    def latency_ms(self) -> float | None: ...
    @property
    def started_ns(self) -> int: ...  # time.monotonic_ns(); 0 when unknown
    @property
    def ended_ns(self) -> int: ...


class AuditTrail:
    """Opens audited operations. Owns an ``AuditSpanProcessor`` on ``tracer_provider``."""

    def __init__(
        self,
        log: AuditLog,
        tracer_provider: TracerProvider | None = None,
        *,
        policy_version: str | None = None,
    ) -> None:
        self.log = log
        self.tracer_provider = tracer_provider or build_tracer_provider()
        self.policy_version = policy_version
        self.processor = AuditSpanProcessor()
        self.tracer_provider.add_span_processor(self.processor)
        self._tracer = self.tracer_provider.get_tracer("hub.audit")

    def operation(
        self,
        ctx: RequestContext,
        *,
        name: str,
        document_hash: str | None = None,
        criteria: Mapping[str, Any] | None = None,
        activate: bool = True,
        parent_trace_id: str | None = None,
        parent: Context | None = None,
    ) -> Operation:
        """An audited operation for ``ctx``. ``criteria``: what was asked for (JSON-able values;
        sets, dates and enums are fine). ``activate`` makes the operation span the current span
        while the block runs, so other instrumentation nests under it. ``parent_trace_id`` joins
        a caller's trace; ``parent``, the caller's span in it (a context holding it, as
        ``hub.trust.federation.caller_span`` makes), is the operation span's parent then."""
        return Operation(
            self,
            ctx,
            name=name,
            document_hash=document_hash,
            criteria=criteria,
            activate=activate,
            parent_trace_id=parent_trace_id,
            parent=parent,
        )


class Operation:
    """One audited operation; use as ``async with``. Methods are cheap and do no I/O."""

    def __init__(
        self,
        trail: AuditTrail,
        ctx: RequestContext,
        *,
        name: str,
        document_hash: str | None,
        criteria: Mapping[str, Any] | None,
        activate: bool,
        parent_trace_id: str | None = None,
        parent: Context | None = None,
    ) -> None:
        self._trail = trail
        self._ctx = ctx
        self._parent = parent if parent is not None else _remote_parent(parent_trace_id)
        self._activate = activate
        self._attributes: dict[str, AttributeValue] = _subject_attributes(ctx)
        self._attributes[attr.AUDIT_KIND] = attr.KIND_OPERATION
        self._span: trace.Span | None = None
        self.annotate(
            name=name,
            document_hash=document_hash,
            criteria=criteria,
            policy_version=trail.policy_version,
        )
        self._records: list[RecordAccess] = []
        self._checkpointed = 0  # records already in a checkpoint's entry
        self._parts = 0  # checkpoint entries written
        self._withheld: dict[str, tuple[set[str], int]] = {}
        self._outcome: str | None = None
        self._error_code: str | None = None
        self._source_failed = False
        self._span_context: Context | None = None
        self._token: Token[Context] | None = None
        self._done = False
        self.entry: AuditEntry | None = None  # after the block: what was written
        self.entry_hash: str | None = None

    # -- describing the operation --

    @property
    def trace_id(self) -> str:
        if self._span is None:
            raise RuntimeError("the operation has not started")
        return format(self._span.get_span_context().trace_id, "032x")

    def annotate(
        self,
        *,
        name: str | None = None,
        document_hash: str | None = None,
        criteria: Mapping[str, Any] | None = None,
        policy_version: str | None = None,
    ) -> None:
        """Set what is learnt after the operation opened (e.g. the name once the document is
        parsed). Values given replace earlier ones; None leaves them."""
        values: dict[str, AttributeValue | None] = {
            attr.OPERATION_NAME: name,
            attr.DOCUMENT_HASH: document_hash,
            attr.CRITERIA: _criteria_json(criteria) if criteria is not None else None,
            attr.POLICY_VERSION: policy_version,
        }
        for key, value in values.items():
            if value is not None:
                self._attributes[key] = value
                if self._span is not None:
                    self._span.set_attribute(key, value)

    def source(self, name: str, agency: str) -> SourceCallSpan:
        """A child span timing one source call: ``with op.source(...) as call:``."""
        return SourceCallSpan(self, name, agency)

    def source_result(
        self,
        name: str,
        agency: str,
        status: str,
        *,
        count: int = 0,
        latency_ms: float | None = None,
        error_code: str | None = None,
        started_ns: int = 0,
        ended_ns: int = 0,
    ) -> None:
        """Record a source's outcome after the fact (e.g. from the fan-out's statuses, or a
        source not called: DENIED, SKIPPED) as a child span. ``started_ns``/``ended_ns``
        (``time.monotonic_ns()`` values) place the span where the call really happened."""
        start = end = None
        if started_ns and ended_ns:
            # Spans carry wall-clock ns; the fan-out measures on the monotonic clock.
            offset = time.time_ns() - time.monotonic_ns()
            start, end = started_ns + offset, ended_ns + offset
            if latency_ms is None:
                latency_ms = round((ended_ns - started_ns) / 1e6, 3)
        # Everything is known: one span with all its attributes at once (set later, each
        # attribute is checked twice, and this runs once per source of every search).
        attributes: dict[str, AttributeValue] = {
            attr.AUDIT_KIND: attr.KIND_SOURCE,
            attr.SOURCE_NAME: name,
            attr.SOURCE_AGENCY: agency,
            attr.SOURCE_STATUS: str(status),
            attr.SOURCE_COUNT: count,
        }
        if latency_ms is not None:
            attributes[attr.SOURCE_LATENCY_MS] = latency_ms
        if error_code is not None:
            attributes[attr.SOURCE_ERROR_CODE] = error_code
        span = self._start_child(name, agency, start, attributes)
        span.end(end)
        if status in _FAILED_SOURCE:
            self._source_failed = True

    def source_called(self, status: SourceReport) -> None:
        """``source_result`` from a fan-out status object (``hub.adapters.fanout.SourceStatus``)."""
        self.source_result(
            status.source,
            status.agency,
            status.status,
            count=status.count,
            latency_ms=status.latency_ms,
            started_ns=status.started_ns,
            ended_ns=status.ended_ns,
        )

    def record_returned(self, hub_id: str, owner: str, visibility: str | None = None) -> None:
        """A record that leaves the hub in the response: hub id, owning ORI, FULL or POINTER."""
        self._records.append(RecordAccess(id=hub_id, owner=owner, visibility=visibility))

    def records_returned(self, records: Iterable[tuple[str, str]]) -> None:
        """Many records at once: (hub id, owning ORI) pairs."""
        self._records.extend(
            RecordAccess(id=record_id, owner=owner) for record_id, owner in records
        )

    def withheld(self, field: str, rules: Iterable[str] = (), count: int = 1) -> None:
        """A field (``Type.field``) denied on ``count`` records, by ``rules``; calls add up."""
        known_rules, known_count = self._withheld.get(field, (set(), 0))
        known_rules.update(rules)
        self._withheld[field] = (known_rules, known_count + count)

    def set_outcome(self, outcome: str, error_code: str | None = None) -> None:
        """Overrides the derived outcome (OK, or PARTIAL when a source failed or a field was
        withheld). An exception leaving the block takes precedence over this."""
        self._outcome = outcome
        self._error_code = error_code

    async def checkpoint(self) -> int:
        """Write now, durably, an entry of the records returned since the last checkpoint (none
        returned: nothing is written).

        A stream calls it before each payload leaves, so that what a payload releases is in the
        audit log first, as a response's records are. The entry is this operation's ``part``
        1, 2, ...: in its trace (the same trace id), with its subject, name, document and
        criteria, outcome OK and the new records only. The operation's own entry, written when
        it ends, is whole as any operation's: every record, the sources, the withheld fields,
        the outcome. Raises ``AuditUnavailable`` when the entry cannot be written: the payload
        must not leave. Returns how many records the entry holds."""
        if self._span is None or self._done:
            raise RuntimeError("a checkpoint is written inside the operation's block")
        fresh = self._records[self._checkpointed :]
        if not fresh:
            return 0
        part = Operation(
            self._trail, self._ctx, name="", document_hash=None, criteria=None, activate=False,
            parent=self._span_context,
        )  # fmt: skip
        self._parts += 1
        part._attributes = {**self._attributes, attr.PART: self._parts}
        async with part:
            part._records.extend(fresh)
            part.set_outcome(attr.OUTCOME_OK)
        self._checkpointed += len(fresh)
        return len(fresh)

    # -- the block --

    async def __aenter__(self) -> Self:
        if self._span is not None:
            raise RuntimeError("an Operation is entered once")
        # A fresh context: every operation is its own trace, whatever is current, unless it
        # continues a caller's (a partner hub's call: the same trace id in both audit logs).
        span = self._trail._tracer.start_span(
            attr.SPAN_OPERATION,
            context=self._parent,
            kind=trace.SpanKind.SERVER,
            attributes=self._attributes,
        )
        if not span.is_recording():
            span.end()
            raise ConfigError(
                "the tracer provider does not record audit spans (sampler or "
                "OTEL_SDK_DISABLED); use hub.audit.build_tracer_provider"
            )
        trace_id = span.get_span_context().trace_id
        span.set_attribute(attr.TRACE_ID, format(trace_id, "032x"))
        self._trail.processor.open(span.get_span_context().span_id)
        self._span = span
        self._span_context = trace.set_span_in_context(span, Context())
        if self._activate:
            self._token = otel_context.attach(trace.set_span_in_context(span))
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        span = self._span
        if span is None or self._done:
            return
        self._done = True
        if self._token is not None:
            otel_context.detach(self._token)
        outcome, error_code = self._final_outcome(exc)
        ended: dict[str, AttributeValue] = {attr.OUTCOME: outcome}
        if error_code is not None:
            ended[attr.ERROR_CODE] = error_code
        if self._records:
            ended[attr.RECORDS] = _json.encode(self._records).decode()
        ended[attr.RECORD_COUNT] = len(self._records)
        if self._withheld:
            ended[attr.WITHHELD_FIELDS] = list(self._withheld)
            ended[attr.WITHHELD_RULES] = [
                attr.RULE_SEPARATOR.join(sorted(rules)) for rules, _ in self._withheld.values()
            ]
            ended[attr.WITHHELD_COUNTS] = [count for _, count in self._withheld.values()]
        span.set_attributes(ended)
        span.end()
        entry = self._trail.processor.take(span.get_span_context().span_id)
        if entry is None:
            raise AuditUnavailable("the audit entry could not be assembled") from exc
        try:
            self.entry_hash = await self._trail.log.append(entry)
        except AuditUnavailable as failure:
            raise failure from exc
        except Exception as failure:
            raise AuditUnavailable("the audit log could not be written") from failure
        self.entry = entry

    def _final_outcome(self, exc: BaseException | None) -> tuple[str, str | None]:
        if exc is None:
            if self._outcome is not None:
                return self._outcome, self._error_code
            partial = self._source_failed or bool(self._withheld)
            return (attr.OUTCOME_PARTIAL if partial else attr.OUTCOME_OK), None
        if isinstance(exc, asyncio.CancelledError):
            return attr.OUTCOME_CANCELLED, None
        if isinstance(exc, RequestError | AccessDenied):
            return attr.OUTCOME_REFUSED, exc.code
        if isinstance(exc, HubError):
            return attr.OUTCOME_ERROR, exc.code
        return attr.OUTCOME_ERROR, HubError.code

    # -- source spans --

    def _start_child(
        self,
        name: str,
        agency: str,
        start_time: int | None = None,
        attributes: dict[str, AttributeValue] | None = None,
    ) -> trace.Span:
        if self._span_context is None or self._done:
            raise RuntimeError("sources are recorded inside the operation's block")
        return self._trail._tracer.start_span(
            attr.SPAN_SOURCE,
            context=self._span_context,
            kind=trace.SpanKind.CLIENT,
            attributes=attributes
            or {
                attr.AUDIT_KIND: attr.KIND_SOURCE,
                attr.SOURCE_NAME: name,
                attr.SOURCE_AGENCY: agency,
            },
            start_time=start_time,
        )

    def _end_child(
        self,
        span: trace.Span,
        status: str,
        count: int,
        latency_ms: float | None,
        error_code: str | None,
        end_time: int | None = None,
    ) -> None:
        ended: dict[str, AttributeValue] = {attr.SOURCE_STATUS: status, attr.SOURCE_COUNT: count}
        if latency_ms is not None:
            ended[attr.SOURCE_LATENCY_MS] = latency_ms
        if error_code is not None:
            ended[attr.SOURCE_ERROR_CODE] = error_code
        span.set_attributes(ended)
        span.end(end_time)
        if status in _FAILED_SOURCE:
            self._source_failed = True


class SourceCallSpan:
    """Times one source call. Without ``set_result`` a clean exit records OK (or NO_HIT when the
    count is 0); an exception records the source error's status and code and propagates."""

    def __init__(self, op: Operation, name: str, agency: str) -> None:
        self._op = op
        self._name = name
        self._agency = agency
        self._status: str | None = None
        self._count = 0
        self._span: trace.Span | None = None
        self._started = 0.0

    def set_result(self, status: str, count: int = 0) -> None:
        self._status = status
        self._count = count

    def __enter__(self) -> Self:
        self._span = self._op._start_child(self._name, self._agency)
        self._started = time.perf_counter()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        assert self._span is not None
        latency_ms = round((time.perf_counter() - self._started) * 1000, 3)
        error_code: str | None = None
        if exc is None:
            status = self._status or ("OK" if self._count else "NO_HIT")
        elif isinstance(exc, asyncio.CancelledError):
            status = attr.SOURCE_CANCELLED
        elif isinstance(exc, TimeoutError):
            status = "TIMEOUT"
        elif isinstance(exc, HubError):
            status, error_code = str(getattr(exc, "status", "ERROR")), exc.code
        else:
            status, error_code = "ERROR", HubError.code
        self._op._end_child(self._span, status, self._count, latency_ms, error_code)


_TRACE_ID = re.compile(r"^[0-9a-f]{32}$")


def _remote_parent(trace_id: str | None) -> Context:
    """A context whose current span is the caller's (W3C trace context's remote parent), so
    the operation joins the caller's trace; an empty context when there is none or it is not
    a valid trace id (32 hex digits, not all zero)."""
    if trace_id is None or not _TRACE_ID.match(trace_id) or int(trace_id, 16) == 0:
        return Context()
    parent = trace.SpanContext(
        trace_id=int(trace_id, 16),
        span_id=random.getrandbits(64) or 1,
        is_remote=True,
        trace_flags=trace.TraceFlags(trace.TraceFlags.SAMPLED),
    )
    return trace.set_span_in_context(trace.NonRecordingSpan(parent), Context())


def _subject_attributes(ctx: RequestContext) -> dict[str, AttributeValue]:
    subject = ctx.subject
    values: dict[str, AttributeValue | None] = {
        attr.SUBJECT_USER: subject.user_id,
        attr.SUBJECT_AGENCY: subject.ori,
        attr.SUBJECT_STATE: subject.state,
        attr.SUBJECT_ROLES: sorted(subject.roles),
        attr.VIA_USER: ctx.via.user_id if ctx.via is not None else None,
        attr.VIA_AGENCY: ctx.via.ori if ctx.via is not None else None,
        attr.HUB_CHAIN: list(ctx.hub_chain) if ctx.hub_chain else None,
        attr.PURPOSE: ctx.purpose,
        attr.CASE_NUMBER: ctx.case_number,
        attr.CLIENT_ADDRESS: ctx.client_address,
        attr.REQUEST_ID: ctx.request_id or None,
    }
    return {k: v for k, v in values.items() if v is not None}


def _criteria_json(criteria: Mapping[str, Any]) -> str:
    return msgspec.json.encode(dict(criteria), order="sorted", enc_hook=str).decode()
