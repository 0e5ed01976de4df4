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

The standard ``OTEL_*`` environment configures the operations side, never the audit side:

- where spans go (``ops_exporter_from_environment``): the hub's ``otlp_endpoint``
  (``HUB_OTLP_ENDPOINT``, a full URL) if set, else ``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`` /
  ``OTEL_EXPORTER_OTLP_ENDPOINT``; ``OTEL_EXPORTER_OTLP_[TRACES_]HEADERS``, ``…_TIMEOUT``,
  ``…_COMPRESSION`` and the certificate variables are read by the OTLP/HTTP exporter itself;
  ``OTEL_TRACES_EXPORTER=none`` turns export off, ``console`` prints (redacted) spans;
- which traces are exported: ``OTEL_TRACES_SAMPLER`` / ``OTEL_TRACES_SAMPLER_ARG`` when set
  (``parentbased_*`` follow an incoming ``traceparent``'s sampled flag), else
  ``otlp_sample_ratio`` by trace id; the audit provider itself always samples everything;
- ``OTEL_SERVICE_NAME`` and ``OTEL_RESOURCE_ATTRIBUTES`` name the resource (default
  ``service.name`` "hub");
- ``OTEL_SDK_DISABLED=true`` turns operations export off. It does not turn the audit off: the
  audit provider records whatever the variable says (an audit that stopped because of a
  telemetry switch would refuse every request).
"""

from __future__ import annotations

import importlib
import logging
import os
import threading
from collections import OrderedDict
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

import msgspec
from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.environment_variables import OTEL_TRACES_EXPORTER
from opentelemetry.sdk.environment_variables import (
    OTEL_EXPORTER_OTLP_ENDPOINT,
    OTEL_EXPORTER_OTLP_PROTOCOL,
    OTEL_EXPORTER_OTLP_TRACES_ENDPOINT,
    OTEL_EXPORTER_OTLP_TRACES_PROTOCOL,
    OTEL_SDK_DISABLED,
    OTEL_TRACES_SAMPLER,
    OTEL_TRACES_SAMPLER_ARG,
)
from opentelemetry.sdk.resources import SERVICE_NAME, Resource
from opentelemetry.sdk.trace import (
    Event,
    ReadableSpan,
    Span,
    SpanLimits,
    SpanProcessor,
    TracerProvider,
)
from opentelemetry.sdk.trace.export import (
    BatchSpanProcessor,
    ConsoleSpanExporter,
    SpanExporter,
    SpanExportResult,
)
from opentelemetry.sdk.trace.sampling import (
    ALWAYS_OFF,
    ALWAYS_ON,
    Decision,
    ParentBased,
    Sampler,
    TraceIdRatioBased,
)
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
    environ: Mapping[str, str] | None = None,
) -> TracerProvider:
    """A provider fit for auditing: samples everything (audit must see every operation) and
    never truncates attributes (a record id list cut short is an audit entry missing records).
    With ``ops_exporter``, a redacted, sampled copy of the spans goes there too (sampled by
    ``OTEL_TRACES_SAMPLER`` when set, else by ``ops_sample_ratio``; none with
    ``OTEL_SDK_DISABLED=true``)."""
    env = os.environ if environ is None else environ
    provider = _AuditTracerProvider(
        sampler=ALWAYS_ON,
        resource=resource or service_resource(service_name),
        shutdown_on_exit=False,
        span_limits=SpanLimits(
            max_span_attributes=128,
            max_attribute_length=SpanLimits.UNSET,
            max_span_attribute_length=SpanLimits.UNSET,
        ),
    )
    if ops_exporter is not None and not _true(env.get(OTEL_SDK_DISABLED)):
        provider.add_span_processor(
            ops_span_processor(
                ops_exporter,
                sample_ratio=ops_sample_ratio,
                allowed=ops_allowed,
                sampler=ops_sampler_from_environment(env),
            )
        )
    return provider


class _AuditTracerProvider(TracerProvider):
    """A ``TracerProvider`` that records whatever ``OTEL_SDK_DISABLED`` says: that variable
    switches telemetry off, and the audit trail is not telemetry."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        # The SDK reads OTEL_SDK_DISABLED into this attribute and hands out no-op tracers
        # while it is set (tests/audit/test_tracing.py holds the behaviour).
        self._disabled = False


def _true(value: str | None) -> bool:
    return (value or "").strip().lower() == "true"


def service_resource(default_name: str = "hub") -> Resource:
    """The resource the spans name: ``OTEL_SERVICE_NAME`` / ``OTEL_RESOURCE_ATTRIBUTES`` when
    they say, else ``service.name`` ``default_name``."""
    resource = Resource.create()
    name = resource.attributes.get(SERVICE_NAME)
    if not isinstance(name, str) or name.startswith("unknown_service"):
        resource = resource.merge(Resource({SERVICE_NAME: default_name}))
    return resource


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
        part=part if isinstance(part := a.get(attr.PART), int) else 0,
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


class _TraceSampling(SpanProcessor):
    """Passes whole traces, those ``sampler`` chooses, to ``inner``.

    A trace is decided once, when its first span here starts (the operation span: its parent is
    none, or the remote caller's, whose sampled flag ``parentbased_*`` samplers follow); its
    other spans follow that decision. Decisions are kept for the most recent traces only."""

    MAX_TRACES = 4096

    def __init__(self, inner: SpanProcessor, sampler: Sampler) -> None:
        self._inner = inner
        self._sampler = sampler
        self._lock = threading.Lock()
        self._decided: OrderedDict[int, bool] = OrderedDict()

    def _chosen(self, span: ReadableSpan) -> bool:
        context = span.context
        if context is None:
            return False
        with self._lock:
            known = self._decided.get(context.trace_id)
        if known is not None:
            return known
        parent = span.parent
        parent_context = (
            trace.set_span_in_context(trace.NonRecordingSpan(parent), Context())
            if parent is not None and parent.is_remote
            else None
        )
        decision = self._sampler.should_sample(
            parent_context, context.trace_id, span.name, span.kind
        ).decision
        chosen = decision is Decision.RECORD_AND_SAMPLE
        with self._lock:
            self._decided[context.trace_id] = chosen
            while len(self._decided) > self.MAX_TRACES:
                self._decided.popitem(last=False)
        return chosen

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


def ratio_sampler(ratio: float) -> Sampler:
    """A fixed fraction of traces, chosen by trace id."""
    if not 0.0 <= ratio <= 1.0:
        raise ConfigError("the operations sample ratio must be between 0 and 1")
    return TraceIdRatioBased(ratio)


def ops_sampler_from_environment(environ: Mapping[str, str] | None = None) -> Sampler | None:
    """The sampler ``OTEL_TRACES_SAMPLER`` (with ``OTEL_TRACES_SAMPLER_ARG``) names, as the
    OpenTelemetry SDK reads them; None when the variable is not set. A name or argument the SDK
    would not read is a ConfigError (the SDK would warn and sample everything)."""
    env = os.environ if environ is None else environ
    name = env.get(OTEL_TRACES_SAMPLER, "").strip().lower()
    if not name:
        return None
    if name in ("always_on", "always_off", "parentbased_always_on", "parentbased_always_off"):
        root: Sampler = ALWAYS_ON if name.endswith("always_on") else ALWAYS_OFF
    elif name in ("traceidratio", "parentbased_traceidratio"):
        raw = env.get(OTEL_TRACES_SAMPLER_ARG, "").strip() or "1.0"
        try:
            ratio = float(raw)
        except ValueError:
            ratio = -1.0
        if not 0.0 <= ratio <= 1.0:
            raise ConfigError(f"OTEL_TRACES_SAMPLER_ARG must be a number from 0 to 1, not {raw!r}")
        root = TraceIdRatioBased(ratio)
    else:
        raise ConfigError(
            f"OTEL_TRACES_SAMPLER={name!r} is not one of always_on, always_off, traceidratio, "
            "parentbased_always_on, parentbased_always_off, parentbased_traceidratio"
        )
    return ParentBased(root) if name.startswith("parentbased_") else root


def ops_span_processor(
    exporter: SpanExporter,
    *,
    sample_ratio: float = 1.0,
    allowed: Iterable[str] = (),
    sampler: Sampler | None = None,
) -> SpanProcessor:
    """Batched (so it may drop under load: it is for operations, not audit), sampled by trace
    (``sampler``, else ``sample_ratio`` of traces by trace id), and redacted before
    ``exporter`` sees anything."""
    chosen = sampler if sampler is not None else ratio_sampler(sample_ratio)
    batch = BatchSpanProcessor(RedactingSpanExporter(exporter, allowed=allowed))
    return _TraceSampling(batch, chosen)


def load_otlp_exporter(
    endpoint: str | None = None, *, headers: Mapping[str, str] | None = None
) -> SpanExporter:
    """An OTLP/HTTP span exporter, if ``opentelemetry-exporter-otlp-proto-http`` is installed.

    ``endpoint`` None: the exporter reads ``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`` or
    ``OTEL_EXPORTER_OTLP_ENDPOINT``; ``headers`` None: ``OTEL_EXPORTER_OTLP_[TRACES_]HEADERS``."""
    try:
        module = importlib.import_module("opentelemetry.exporter.otlp.proto.http.trace_exporter")
    except ImportError as exc:
        raise ConfigError(
            "OTLP export needs the package opentelemetry-exporter-otlp-proto-http"
        ) from exc
    exporter: Any = module.OTLPSpanExporter(
        endpoint=endpoint, headers=dict(headers) if headers is not None else None
    )
    if not isinstance(exporter, SpanExporter):
        raise ConfigError("the OTLP exporter is not a span exporter")
    return exporter


def ops_exporter_from_environment(
    endpoint: str | None, environ: Mapping[str, str] | None = None
) -> SpanExporter | None:
    """Where the operations telemetry goes: ``endpoint`` (the hub's ``otlp_endpoint``) if set,
    else what the standard ``OTEL_*`` variables say; None: nowhere."""
    env = os.environ if environ is None else environ
    if _true(env.get(OTEL_SDK_DISABLED)):
        return None
    kind = env.get(OTEL_TRACES_EXPORTER, "").strip().lower()
    if kind == "none":
        return None
    if kind == "console":
        return ConsoleSpanExporter()
    if kind not in ("", "otlp"):
        raise ConfigError(
            f"OTEL_TRACES_EXPORTER={kind!r}: the hub exports operations telemetry with otlp "
            "(OTLP/HTTP), console or none"
        )
    protocol = (
        env.get(OTEL_EXPORTER_OTLP_TRACES_PROTOCOL) or env.get(OTEL_EXPORTER_OTLP_PROTOCOL) or ""
    ).strip()
    if protocol not in ("", "http/protobuf"):
        raise ConfigError(
            f"OTLP protocol {protocol!r}: the hub's OTLP exporter speaks http/protobuf "
            "(OTEL_EXPORTER_OTLP_PROTOCOL)"
        )
    if endpoint:
        return load_otlp_exporter(endpoint)
    if (
        kind == "otlp"
        or env.get(OTEL_EXPORTER_OTLP_TRACES_ENDPOINT, "").strip()
        or env.get(OTEL_EXPORTER_OTLP_ENDPOINT, "").strip()
    ):
        return load_otlp_exporter(None)
    return None
