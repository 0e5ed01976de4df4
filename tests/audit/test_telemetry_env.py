"""The standard ``OTEL_*`` environment configures the operations export (where, which traces,
under what service name) and never the audit: a sampler that drops everything, or
``OTEL_SDK_DISABLED``, still leaves every operation audited."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.sdk.trace.export import ConsoleSpanExporter
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from hub.audit import attributes as attr
from hub.audit.entry import decode_entry
from hub.audit.file_log import FileAuditLog
from hub.audit.tracing import (
    build_tracer_provider,
    ops_exporter_from_environment,
    ops_sampler_from_environment,
    service_resource,
)
from hub.audit.trail import AuditTrail
from hub.errors import ConfigError
from tests.audit.conftest import make_context

OTEL = (
    "OTEL_SDK_DISABLED", "OTEL_SERVICE_NAME", "OTEL_RESOURCE_ATTRIBUTES", "OTEL_TRACES_SAMPLER",
    "OTEL_TRACES_SAMPLER_ARG", "OTEL_TRACES_EXPORTER", "OTEL_EXPORTER_OTLP_ENDPOINT",
    "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "OTEL_EXPORTER_OTLP_HEADERS",
    "OTEL_EXPORTER_OTLP_TRACES_HEADERS", "OTEL_EXPORTER_OTLP_PROTOCOL",
    "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL",
)  # fmt: skip
NAME = "Quillfeather"


@pytest.fixture(autouse=True)
def _no_otel_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in OTEL:
        monkeypatch.delenv(name, raising=False)


async def _operations(tmp_path: Path, provider: Any, parents: list[Context | None]) -> list[str]:
    """One audited search per parent; the trace ids, once every entry is written."""
    log = FileAuditLog(tmp_path)
    trail = AuditTrail(log, provider)
    traces = []
    for parent in parents:
        async with trail.operation(
            make_context(), name="search", criteria={"text": NAME}, parent=parent
        ) as op:
            op.source_result("marin-rms", "CA0990000", "OK", count=1)
        traces.append(op.trace_id)
    await log.close()
    entries = [decode_entry(line) for line in (tmp_path / "audit.jsonl").read_bytes().splitlines()]
    assert [e.trace_id for e in entries] == traces  # every operation audited, whatever sampled
    assert all(e.criteria == {"text": NAME} for e in entries)
    return traces


def _remote(trace_id: int, sampled: bool) -> Context:
    flags = trace.TraceFlags(trace.TraceFlags.SAMPLED if sampled else trace.TraceFlags.DEFAULT)
    parent = trace.SpanContext(trace_id, 0x1234, is_remote=True, trace_flags=flags)
    return trace.set_span_in_context(trace.NonRecordingSpan(parent), Context())


def _exported(exporter: InMemorySpanExporter, provider: Any) -> set[str]:
    provider.force_flush()
    return {format(s.context.trace_id, "032x") for s in exporter.get_finished_spans()}


async def test_a_sampler_that_drops_everything_drops_only_the_export(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OTEL_TRACES_SAMPLER", "always_off")
    exporter = InMemorySpanExporter()
    provider = build_tracer_provider(ops_exporter=exporter)
    await _operations(tmp_path, provider, [None, None])
    assert _exported(exporter, provider) == set()
    provider.shutdown()


async def test_parent_based_sampling_follows_the_callers_flag(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OTEL_TRACES_SAMPLER", "parentbased_traceidratio")
    monkeypatch.setenv("OTEL_TRACES_SAMPLER_ARG", "0")
    exporter = InMemorySpanExporter()
    provider = build_tracer_provider(ops_exporter=exporter)
    sampled, unsampled = 0xA1 << 64, 0xB2 << 64
    traces = await _operations(
        tmp_path, provider, [None, _remote(sampled, True), _remote(unsampled, False)]
    )
    assert _exported(exporter, provider) == {traces[1]} == {format(sampled, "032x")}
    # the whole trace: the operation and its source span
    spans = exporter.get_finished_spans()
    assert sorted(s.name for s in spans) == sorted([attr.SPAN_OPERATION, attr.SPAN_SOURCE])
    operation = next(s for s in spans if s.name == attr.SPAN_OPERATION)
    assert operation.parent is not None
    assert operation.parent.span_id == 0x1234
    provider.shutdown()


async def test_without_the_variable_the_hubs_ratio_samples(tmp_path: Path) -> None:
    exporter = InMemorySpanExporter()
    provider = build_tracer_provider(ops_exporter=exporter, ops_sample_ratio=0.0)
    await _operations(tmp_path, provider, [None])
    assert _exported(exporter, provider) == set()
    provider.shutdown()


async def test_sdk_disabled_turns_export_off_and_never_the_audit(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OTEL_SDK_DISABLED", "true")
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:9")
    assert ops_exporter_from_environment("http://127.0.0.1:9/v1/traces") is None
    exporter = InMemorySpanExporter()
    provider = build_tracer_provider(ops_exporter=exporter)
    await _operations(tmp_path, provider, [None])  # audited all the same
    assert _exported(exporter, provider) == set()
    provider.shutdown()


def test_the_service_is_named_by_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    assert service_resource().attributes["service.name"] == "hub"
    monkeypatch.setenv("OTEL_RESOURCE_ATTRIBUTES", "service.name=hub-a,deployment.environment=x")
    assert service_resource().attributes["service.name"] == "hub-a"
    monkeypatch.setenv("OTEL_SERVICE_NAME", "hub-west")
    resource = service_resource()
    assert resource.attributes["service.name"] == "hub-west"
    assert resource.attributes["deployment.environment"] == "x"


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"OTEL_TRACES_SAMPLER": "sometimes"}, "OTEL_TRACES_SAMPLER='sometimes' is not one of"),
        ({"OTEL_TRACES_SAMPLER": "traceidratio", "OTEL_TRACES_SAMPLER_ARG": "half"},
         "OTEL_TRACES_SAMPLER_ARG must be a number from 0 to 1"),
        ({"OTEL_TRACES_SAMPLER": "traceidratio", "OTEL_TRACES_SAMPLER_ARG": "2"},
         "OTEL_TRACES_SAMPLER_ARG must be a number from 0 to 1"),
    ],
)  # fmt: skip
def test_a_sampler_the_sdk_would_not_read_is_a_config_error(
    env: dict[str, str], message: str
) -> None:
    with pytest.raises(ConfigError, match=message):
        ops_sampler_from_environment(env)


def test_which_exporter_the_environment_names() -> None:
    assert ops_exporter_from_environment(None, {}) is None  # nothing configured: no export
    assert (
        ops_exporter_from_environment("http://x/v1/traces", {"OTEL_TRACES_EXPORTER": "none"})
        is None
    )
    assert isinstance(
        ops_exporter_from_environment(None, {"OTEL_TRACES_EXPORTER": "console"}),
        ConsoleSpanExporter,
    )
    with pytest.raises(ConfigError, match="otlp \\(OTLP/HTTP\\), console or none"):
        ops_exporter_from_environment(None, {"OTEL_TRACES_EXPORTER": "zipkin"})
    with pytest.raises(ConfigError, match="http/protobuf"):
        ops_exporter_from_environment(
            None,
            {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4317", "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc"},
        )


# -- OTLP/HTTP to a collector on loopback -------------------------------------------------------


class _Collector(BaseHTTPRequestHandler):
    received: list[tuple[str, dict[str, str], bytes]] = []

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        self.received.append((self.path, {k.lower(): v for k, v in self.headers.items()}, body))
        self.send_response(200)
        self.send_header("Content-Type", "application/x-protobuf")
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        return None


@pytest.fixture
def collector() -> Iterator[tuple[str, list[tuple[str, dict[str, str], bytes]]]]:
    received: list[tuple[str, dict[str, str], bytes]] = []
    handler = type("Collector", (_Collector,), {"received": received})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", received
    finally:
        server.shutdown()
        server.server_close()


@pytest.mark.parametrize(
    "hub_endpoint", [False, True], ids=["OTEL_EXPORTER_OTLP_ENDPOINT", "HUB_OTLP_ENDPOINT first"]
)
async def test_otlp_export_goes_where_the_environment_says(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    collector: tuple[str, list[tuple[str, dict[str, str], bytes]]],
    hub_endpoint: bool,
) -> None:
    pytest.importorskip("opentelemetry.exporter.otlp.proto.http")
    url, received = collector
    monkeypatch.setenv("OTEL_SERVICE_NAME", "hub-west")
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_HEADERS", "x-collector-tenant=hub-ops")
    if hub_endpoint:
        monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:9")  # not this one
        exporter = ops_exporter_from_environment(f"{url}/custom/traces")
    else:
        monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", url)
        exporter = ops_exporter_from_environment(None)
    assert exporter is not None
    provider = build_tracer_provider(ops_exporter=exporter)
    await _operations(tmp_path, provider, [None])
    provider.force_flush()
    provider.shutdown()
    ((path, headers, body),) = received
    assert path == ("/custom/traces" if hub_endpoint else "/v1/traces")
    assert headers["x-collector-tenant"] == "hub-ops"
    assert b"hub-west" in body
    assert attr.SPAN_OPERATION.encode() in body
    assert NAME.encode() not in body  # redacted before the exporter saw it
