"""OpenTelemetry for the audit trail: a tracer provider, the audit span processor, and the
redacting path for operations export.

Two consumers of the same spans, with opposite needs:

- **Audit** (``AuditSpanProcessor``): every operation, nothing dropped, all the CJI. When an
  operation's root span ends, the processor gathers that trace's audit spans (the root and one
  child per source) into one ``AuditEntry`` right there, on the ending thread, and hands it to the
  operation, which writes it durably before the response leaves (``hub.audit.trail``). It is not
  an exporter behind a batch queue: a batch processor drops spans when its queue is full.
- **Operations** (``ops_span_processor``): sampled, batched, droppable, and stripped of CJI by
  ``RedactingSpanExporter`` before any exporter (OTLP or other) sees a span.

The provider is built here and injected (``create_app`` owns it and shuts it down); nothing sets
the global provider.
"""

from __future__ import annotations

import importlib
import logging
import threading
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

import msgspec
from opentelemetry.context import Context
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import (
    Event,
    ReadableSpan,
    Span,
    SpanLimits,
    SpanProcessor,
    TracerProvider,
)
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult
from opentelemetry.sdk.trace.sampling import ALWAYS_ON
from opentelemetry.trace import Link, Status
from opentelemetry.util.types import AttributeValue

from hub.audit import attributes as attr
from hub.audit.entry import AuditEntry, RecordAccess, SourceCall, Withholding
from hub.errors import ConfigError

log = logging.getLogger(__name__)
_records_decoder = msgspec.json.Decoder(tuple[RecordAccess, ...])

# Attributes of other instrumentation (HTTP server/client, GraphQL) that carry no CJI. Anything
# else from them is dropped: strawberry's OpenTelemetry extension, for one, records the query
# document and resolver arguments, i.e. the criteria.
OPS_FOREIGN_ALLOWED: frozenset[str] = frozenset(
    {
        "http.request.method",
        "http.response.status_code",
        "http.route",
        "server.port",
        "error.type",
        "component",
        "graphql.operation.type",
    }
)
# Exception events keep their type; the message and stack trace may quote data.
_EVENT_ALLOWED = frozenset({"exception.type", "exception.escaped"})


def build_tracer_provider(
    *,
    service_name: str = "hub",
    resource: Resource | None = None,
    ops_exporter: SpanExporter | None = None,
    ops_sample_ratio: float = 1.0,
    ops_allowed: Iterable[str] = (),
) -> TracerProvider:
    """A provider fit for auditing: samples everything (audit must see every operation) and
    never truncates attributes (a record id list cut short is an audit entry missing records).
    With ``ops_exporter``, a redacted, sampled copy of the spans goes there too."""
    provider = TracerProvider(
        sampler=ALWAYS_ON,
        resource=resource or Resource.create({"service.name": service_name}),
        shutdown_on_exit=False,
        span_limits=SpanLimits(
            max_span_attributes=128,
            max_attribute_length=SpanLimits.UNSET,
            max_span_attribute_length=SpanLimits.UNSET,
        ),
    )
    if ops_exporter is not None:
        provider.add_span_processor(
            ops_span_processor(ops_exporter, sample_ratio=ops_sample_ratio, allowed=ops_allowed)
        )
    return provider


class AuditSpanProcessor(SpanProcessor):
    """Gathers each audited operation's spans into one ``AuditEntry`` when its root span ends.

    Gathered by the operation span's id (source spans are its children), so operations that
    share a trace (a partner hub's calls within one of its caller's operations) never mix.
    Only operations announced with ``open`` are gathered (two trails on one provider, or spans
    of other instrumentation, never mix in); ``take`` hands the entry over and forgets it.
    Memory is bounded by the operations in flight.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._open: dict[int, list[ReadableSpan]] = {}
        self._done: dict[int, AuditEntry | None] = {}
        self.late_spans = 0  # source spans that ended after their operation: not in any entry

    def open(self, operation_span_id: int) -> None:
        with self._lock:
            self._open[operation_span_id] = []

    def take(self, operation_span_id: int) -> AuditEntry | None:
        """The entry of an ended operation; None if it could not be built or never ended."""
        with self._lock:
            self._open.pop(operation_span_id, None)
            return self._done.pop(operation_span_id, None)

    def on_start(self, span: Span, parent_context: Context | None = None) -> None:
        return None

    def on_end(self, span: ReadableSpan) -> None:
        attributes = span.attributes or {}
        kind = attributes.get(attr.AUDIT_KIND)
        if kind is None or span.context is None:
            return
        if kind == attr.KIND_SOURCE:
            key = span.parent.span_id if span.parent is not None else 0
        else:
            key = span.context.span_id
        with self._lock:
            children = self._open.get(key)
            if children is None:
                if kind == attr.KIND_SOURCE:
                    self.late_spans += 1
                return
            if kind == attr.KIND_SOURCE:
                children.append(span)
                return
            del self._open[key]
        try:
            entry: AuditEntry | None = entry_from_spans(span, children)
        except Exception:
            # Never raise out of span.end(); the operation sees None and fails closed.
            log.exception("could not build the audit entry of trace %032x", span.context.trace_id)
            entry = None
        with self._lock:
            self._done[key] = entry

    def shutdown(self) -> None:
        return None

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return True


def entry_from_spans(root: ReadableSpan, children: Sequence[ReadableSpan]) -> AuditEntry:
    """One audit entry from an operation span and its source spans."""
    a = root.attributes or {}
    assert root.context is not None
    start, end = root.start_time or 0, root.end_time or 0
    criteria_json = _str(a.get(attr.CRITERIA))
    records_json = _str(a.get(attr.RECORDS))
    rules = _strs(a.get(attr.WITHHELD_RULES))
    counts = _ints(a.get(attr.WITHHELD_COUNTS))
    return AuditEntry(
        at=datetime.fromtimestamp(end / 1e9, UTC).isoformat(timespec="microseconds"),
        trace_id=format(root.context.trace_id, "032x"),
        operation=_str(a.get(attr.OPERATION_NAME)) or "",
        outcome=_str(a.get(attr.OUTCOME)) or "",
        user=_str(a.get(attr.SUBJECT_USER)) or "",
        agency=_str(a.get(attr.SUBJECT_AGENCY)) or "",
        roles=_strs(a.get(attr.SUBJECT_ROLES)),
        state=_str(a.get(attr.SUBJECT_STATE)),
        via_user=_str(a.get(attr.VIA_USER)),
        via_agency=_str(a.get(attr.VIA_AGENCY)),
        hub_chain=_strs(a.get(attr.HUB_CHAIN)),
        purpose=_str(a.get(attr.PURPOSE)),
        case_number=_str(a.get(attr.CASE_NUMBER)),
        document_hash=_str(a.get(attr.DOCUMENT_HASH)),
        criteria=msgspec.json.decode(criteria_json) if criteria_json else None,
        sources=tuple(
            _source_call(span) for span in sorted(children, key=lambda s: s.start_time or 0)
        ),
        records=_records_decoder.decode(records_json) if records_json else (),
        withheld=tuple(
            Withholding(
                field=field,
                rules=tuple(r for r in rules[i].split(attr.RULE_SEPARATOR) if r),
                count=counts[i],
            )
            for i, field in enumerate(_strs(a.get(attr.WITHHELD_FIELDS)))
        ),
        policy_version=_str(a.get(attr.POLICY_VERSION)),
        error_code=_str(a.get(attr.ERROR_CODE)),
        client_address=_str(a.get(attr.CLIENT_ADDRESS)),
        request_id=_str(a.get(attr.REQUEST_ID)),
        duration_ms=round((end - start) / 1e6, 3),
    )


def _source_call(span: ReadableSpan) -> SourceCall:
    a = span.attributes or {}
    latency = a.get(attr.SOURCE_LATENCY_MS)
    if not isinstance(latency, int | float):
        latency = ((span.end_time or 0) - (span.start_time or 0)) / 1e6
    count = a.get(attr.SOURCE_COUNT)
    return SourceCall(
        source=_str(a.get(attr.SOURCE_NAME)) or "",
        agency=_str(a.get(attr.SOURCE_AGENCY)) or "",
        status=_str(a.get(attr.SOURCE_STATUS)) or "",
        count=count if isinstance(count, int) else 0,
        latency_ms=round(float(latency), 3),
        error_code=_str(a.get(attr.SOURCE_ERROR_CODE)),
        span_id=format(span.context.span_id, "016x") if span.context is not None else "",
    )


def _str(value: AttributeValue | None) -> str | None:
    return value if isinstance(value, str) else None


def _strs(value: AttributeValue | None) -> tuple[str, ...]:
    if isinstance(value, list | tuple):
        return tuple(str(v) for v in value)
    return ()


def _ints(value: AttributeValue | None) -> tuple[int, ...]:
    if isinstance(value, list | tuple):
        return tuple(v for v in value if isinstance(v, int))
    return ()


# -- operations export --


class RedactingSpanExporter(SpanExporter):
    """Wraps any exporter so that no CJI reaches it.

    Kept: hub attributes not in ``attributes.CJI``, the foreign attributes in
    ``OPS_FOREIGN_ALLOWED`` and ``allowed``; span names, timing, ids, kinds, resource, status
    code. Dropped: every other attribute, status descriptions, event attributes except the
    exception type, link attributes. Default deny: an attribute nobody classified is dropped.
    """

    def __init__(self, inner: SpanExporter, *, allowed: Iterable[str] = ()) -> None:
        self._inner = inner
        self._keep = (attr.ALL | OPS_FOREIGN_ALLOWED | frozenset(allowed)) - attr.CJI

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        return self._inner.export([redact_span(span, self._keep) for span in spans])

    def shutdown(self) -> None:
        self._inner.shutdown()

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return self._inner.force_flush(timeout_millis)


def redact_span(span: ReadableSpan, keep: frozenset[str]) -> ReadableSpan:
    return ReadableSpan(
        name=span.name,
        context=span.context,
        parent=span.parent,
        resource=span.resource,
        attributes=_kept(span.attributes, keep),
        events=[
            Event(e.name, _kept(e.attributes, _EVENT_ALLOWED), e.timestamp) for e in span.events
        ],
        links=[Link(link.context) for link in span.links],
        kind=span.kind,
        status=Status(span.status.status_code),
        start_time=span.start_time,
        end_time=span.end_time,
        instrumentation_scope=span.instrumentation_scope,
    )


def _kept(
    attributes: Mapping[str, AttributeValue] | None, keep: frozenset[str]
) -> dict[str, AttributeValue]:
    return {k: v for k, v in (attributes or {}).items() if k in keep}


class _TraceRatioFilter(SpanProcessor):
    """Passes whole traces, a fixed fraction of them chosen by trace id, to ``inner``."""

    def __init__(self, inner: SpanProcessor, ratio: float) -> None:
        if not 0.0 <= ratio <= 1.0:
            raise ConfigError("the operations sample ratio must be between 0 and 1")
        self._inner = inner
        self._bound = round(ratio * (1 << 64))

    def _chosen(self, span: ReadableSpan) -> bool:
        return span.context is not None and (span.context.trace_id & ((1 << 64) - 1)) < self._bound

    def on_start(self, span: Span, parent_context: Context | None = None) -> None:
        if self._chosen(span):
            self._inner.on_start(span, parent_context)

    def on_end(self, span: ReadableSpan) -> None:
        if self._chosen(span):
            self._inner.on_end(span)

    def shutdown(self) -> None:
        self._inner.shutdown()

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return self._inner.force_flush(timeout_millis)


def ops_span_processor(
    exporter: SpanExporter, *, sample_ratio: float = 1.0, allowed: Iterable[str] = ()
) -> SpanProcessor:
    """Batched (so it may drop under load: it is for operations, not audit), sampled by trace,
    and redacted before ``exporter`` sees anything."""
    batch = BatchSpanProcessor(RedactingSpanExporter(exporter, allowed=allowed))
    return _TraceRatioFilter(batch, sample_ratio)


def load_otlp_exporter(endpoint: str, *, headers: Mapping[str, str] | None = None) -> SpanExporter:
    """An OTLP/HTTP span exporter, if ``opentelemetry-exporter-otlp-proto-http`` is installed."""
    try:
        module = importlib.import_module("opentelemetry.exporter.otlp.proto.http.trace_exporter")
    except ImportError as exc:
        raise ConfigError(
            "OTLP export needs the package opentelemetry-exporter-otlp-proto-http"
        ) from exc
    exporter: Any = module.OTLPSpanExporter(endpoint=endpoint, headers=dict(headers or {}))
    if not isinstance(exporter, SpanExporter):
        raise ConfigError("the OTLP exporter is not a span exporter")
    return exporter
