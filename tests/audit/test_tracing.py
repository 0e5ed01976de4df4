"""The audit processor gathers whole operations; the operations export carries no CJI."""

from __future__ import annotations

import importlib.util
from datetime import date
from pathlib import Path

import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.sdk.trace.sampling import ALWAYS_OFF
from opentelemetry.trace import Status, StatusCode

from hub.audit import attributes as attr
from hub.audit.entry import decode_entry
from hub.audit.file_log import FileAuditLog
from hub.audit.tracing import build_tracer_provider, load_otlp_exporter
from hub.audit.trail import AuditTrail
from hub.errors import ConfigError
from hub.model import EntityKind, make_id
from tests.audit.conftest import make_context

NAME = "Jordan Avery Reyes"
PLATE = "7ABC123"
DOB = "1988-04-12"
CASE = "2024-000123"


def test_attribute_names_are_unique_and_cji_is_classified() -> None:
    names = [
        v
        for k, v in vars(attr).items()
        if k.isupper()
        and isinstance(v, str)
        and (v.startswith("hub.") or v == "client.address")
        and k not in ("SPAN_OPERATION", "SPAN_SOURCE")
    ]
    assert len(names) == len(set(names))
    assert set(names) <= attr.ALL
    assert attr.CJI <= attr.ALL
    assert {attr.CRITERIA, attr.RECORDS, attr.CASE_NUMBER} <= attr.CJI


async def test_ops_export_carries_no_cji_while_the_audit_entry_keeps_it(tmp_path: Path) -> None:
    exporter = InMemorySpanExporter()
    provider = build_tracer_provider(ops_exporter=exporter)
    log = FileAuditLog(tmp_path)
    trail = AuditTrail(log, provider)
    record_id = make_id("marin-alpr", EntityKind.PLATE_READ, f"{PLATE}-2024-05-01")
    criteria = {"text": NAME, "plate": PLATE, "dateOfBirth": date(1988, 4, 12)}
    async with trail.operation(make_context(), name="search", criteria=criteria) as op:
        # Other instrumentation nests under the operation and records data of its own, as
        # strawberry's OpenTelemetry extension does with the query document and arguments.
        tracer = provider.get_tracer("strawberry")
        with tracer.start_as_current_span("GraphQL Query") as span:
            span.set_attribute("query", f'{{ search(text: "{NAME}") {{ hits {{ id }} }} }}')
            span.set_attribute("graphql.param.plate", PLATE)
            span.set_attribute("http.response.status_code", 200)
            span.record_exception(ValueError(f"no match for {NAME} {PLATE}"))
            span.set_status(Status(StatusCode.ERROR, f"{PLATE} not found"))
        with op.source("marin-alpr", "CA0990000") as call:
            call.set_result("OK", 1)
        op.record_returned(record_id, "CA0990000")
    await log.close()
    provider.force_flush()
    spans = exporter.get_finished_spans()
    dump = "".join(span.to_json() for span in spans)
    for secret in (NAME, "Reyes", PLATE, DOB, CASE, record_id):
        assert secret not in dump
    by_name = {span.name: span for span in spans}
    assert set(by_name) == {attr.SPAN_OPERATION, attr.SPAN_SOURCE, "GraphQL Query"}
    # Still useful for operations: statuses, counts, latency, outcome, HTTP status, error type.
    source = by_name[attr.SPAN_SOURCE].attributes or {}
    assert source[attr.SOURCE_STATUS] == "OK"
    assert source[attr.SOURCE_COUNT] == 1
    assert attr.SOURCE_LATENCY_MS in source
    operation = by_name[attr.SPAN_OPERATION].attributes or {}
    assert operation[attr.OUTCOME] == "OK"
    assert operation[attr.RECORD_COUNT] == 1
    assert operation[attr.SUBJECT_AGENCY] == "CA0990000"
    foreign = by_name["GraphQL Query"]
    assert dict(foreign.attributes or {}) == {"http.response.status_code": 200}
    assert [(e.attributes or {}).get("exception.type") for e in foreign.events] == ["ValueError"]
    assert all(
        set(e.attributes or {}) <= {"exception.type", "exception.escaped"} for e in foreign.events
    )
    assert foreign.status.status_code == StatusCode.ERROR
    assert foreign.status.description is None
    # The audit entry has everything.
    line = log.path.read_bytes()
    for secret in (NAME, PLATE, DOB, CASE, record_id):
        assert secret.encode() in line
    provider.shutdown()


async def test_ops_sampling_leaves_the_audit_whole(tmp_path: Path) -> None:
    exporter = InMemorySpanExporter()
    provider = build_tracer_provider(ops_exporter=exporter, ops_sample_ratio=0.0)
    async with FileAuditLog(tmp_path) as log:
        trail = AuditTrail(log, provider)
        for _ in range(20):
            async with trail.operation(make_context(), name="search") as op:
                op.source_result("marin-rms", "CA0990000", "OK", count=2, latency_ms=3.0)
    provider.force_flush()
    assert exporter.get_finished_spans() == ()
    lines = log.path.read_bytes().splitlines()
    assert len(lines) == 20
    assert all(decode_entry(line).sources[0].count == 2 for line in lines)
    provider.shutdown()


def test_a_bad_sample_ratio_is_a_config_error() -> None:
    with pytest.raises(ConfigError):
        build_tracer_provider(ops_exporter=InMemorySpanExporter(), ops_sample_ratio=1.5)


async def test_two_trails_on_one_provider_each_write_only_their_own(tmp_path: Path) -> None:
    provider = build_tracer_provider()
    async with FileAuditLog(tmp_path / "a") as log_a, FileAuditLog(tmp_path / "b") as log_b:
        trail_a, trail_b = AuditTrail(log_a, provider), AuditTrail(log_b, provider)
        async with trail_a.operation(make_context(user="alice"), name="search") as op_a:
            op_a.source_result("marin-rms", "CA0990000", "OK")
            async with trail_b.operation(make_context(user="bob"), name="person"):
                pass
    a = [decode_entry(line) for line in log_a.path.read_bytes().splitlines()]
    b = [decode_entry(line) for line in log_b.path.read_bytes().splitlines()]
    assert [(e.user, len(e.sources)) for e in a] == [("alice", 1)]
    assert [(e.user, len(e.sources)) for e in b] == [("bob", 0)]
    assert trail_a.processor.take(int(a[0].trace_id, 16)) is None  # nothing left behind


async def test_a_provider_that_does_not_record_is_refused(tmp_path: Path) -> None:
    provider = TracerProvider(sampler=ALWAYS_OFF, shutdown_on_exit=False)
    async with FileAuditLog(tmp_path) as log:
        trail = AuditTrail(log, provider)
        with pytest.raises(ConfigError, match="does not record"):
            async with trail.operation(make_context(), name="search"):
                pass
    assert not log.path.exists() or log.path.read_bytes() == b""


def test_otlp_export_without_its_package_is_a_config_error() -> None:
    try:
        installed = importlib.util.find_spec("opentelemetry.exporter.otlp.proto.http") is not None
    except ModuleNotFoundError:
        installed = False
    if installed:
        pytest.skip("the OTLP exporter is installed")
    with pytest.raises(ConfigError, match="opentelemetry-exporter-otlp-proto-http"):
        load_otlp_exporter("http://127.0.0.1:4318/v1/traces")
