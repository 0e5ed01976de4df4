"""The operation API: exactly one durable entry per operation, whatever happens inside it."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path

import pytest
from opentelemetry import trace

from hub.audit import attributes as attr
from hub.audit.chain import verify_file
from hub.audit.entry import SealedEntry, decode_entry
from hub.audit.file_log import FileAuditLog
from hub.audit.tracing import build_tracer_provider
from hub.audit.trail import AuditTrail
from hub.context import Subject
from hub.errors import (
    AccessDenied,
    AuditUnavailable,
    PurposeRequired,
    SourceTimeout,
    SourceUnavailable,
)
from tests.audit.conftest import make_context


@pytest.fixture
async def trail(tmp_path: Path) -> AsyncIterator[AuditTrail]:
    provider = build_tracer_provider()
    log = FileAuditLog(tmp_path)
    yield AuditTrail(log, provider, policy_version="policy-7")
    await log.close()
    provider.shutdown()


def entries(trail: AuditTrail) -> list[SealedEntry]:
    assert isinstance(trail.log, FileAuditLog)
    if not trail.log.path.exists():
        return []
    return [decode_entry(line) for line in trail.log.path.read_bytes().splitlines()]


async def test_an_operation_is_one_entry_with_everything(trail: AuditTrail) -> None:
    hub_account = Subject(
        user_id="svc-partner",
        name="Partner hub",
        ori="WA0990100",
        state="WA",
        roles=frozenset({"hub"}),
    )
    ctx = replace(
        make_context(roles=frozenset({"analyst", "sworn"})),
        via=hub_account,
        hub_chain=("hub.wa.example", "hub.ca.example"),
    )
    async with trail.operation(
        ctx,
        name="query",
        document_hash="sha256:abc",
        criteria={"text": "Reyes", "kinds": {"PERSON", "VEHICLE"}},
    ) as op:
        op.annotate(name="search")
        with op.source("marin-rms", "CA0990000") as call:
            await asyncio.sleep(0.01)
            call.set_result("OK", 2)
        op.source_result("cascade-cad", "WA0990100", "DENIED")
        op.records_returned([("id-1", "CA0990000"), ("id-2", "CA0990000")])
        op.record_returned("id-3", "OR0990200")
        op.withheld("Person.ssn", rules=("owner-ssn",), count=2)
        op.withheld("Person.ssn", rules=("hub-ssn",), count=1)
        op.withheld("Incident.narrative", rules=("sealed",))
    (entry,) = entries(trail)
    assert op.entry_hash == entry.hash
    assert op.entry == entry.unsealed()
    assert (entry.seq, entry.trace_id) == (1, op.trace_id)
    assert datetime.fromisoformat(entry.at).tzinfo is not None
    assert (entry.operation, entry.document_hash) == ("search", "sha256:abc")
    assert (entry.user, entry.agency, entry.state, entry.roles) == (
        "u1",
        "CA0990000",
        "CA",
        ("analyst", "sworn"),
    )
    assert (entry.via_user, entry.via_agency, entry.hub_chain) == (
        "svc-partner",
        "WA0990100",
        ("hub.wa.example", "hub.ca.example"),
    )
    assert (entry.purpose, entry.case_number) == ("C", "2024-000123")
    assert entry.criteria == {"text": "Reyes", "kinds": ["PERSON", "VEHICLE"]}
    assert [(s.source, s.agency, s.status, s.count) for s in entry.sources] == [
        ("marin-rms", "CA0990000", "OK", 2),
        ("cascade-cad", "WA0990100", "DENIED", 0),
    ]
    assert entry.sources[0].latency_ms is not None
    assert entry.sources[0].latency_ms >= 10
    assert [(r.id, r.owner) for r in entry.records] == [
        ("id-1", "CA0990000"),
        ("id-2", "CA0990000"),
        ("id-3", "OR0990200"),
    ]
    assert [(w.field, w.rules, w.count) for w in entry.withheld] == [
        ("Person.ssn", ("hub-ssn", "owner-ssn"), 3),
        ("Incident.narrative", ("sealed",), 1),
    ]
    assert (entry.policy_version, entry.outcome, entry.error_code) == ("policy-7", "PARTIAL", None)
    assert (entry.client_address, entry.request_id) == ("127.0.0.1", ctx.request_id)
    assert entry.duration_ms >= 10


async def test_sources_called_in_parallel_are_all_in_the_entry(trail: AuditTrail) -> None:
    async def call(op_: object, name: str, delay: float) -> None:
        assert op_ is op
        with op.source(name, "CA0990000") as source:
            await asyncio.sleep(delay)
            source.set_result("OK", 1)

    async with trail.operation(make_context(), name="search") as op:
        await asyncio.gather(*(call(op, f"source-{i}", 0.01 * (4 - i)) for i in range(4)))
    (entry,) = entries(trail)
    assert sorted(s.source for s in entry.sources) == [f"source-{i}" for i in range(4)]
    assert entry.outcome == "OK"


async def test_source_failures_are_recorded_by_status_and_code(trail: AuditTrail) -> None:
    async with trail.operation(make_context(), name="search") as op:
        for name, error in (
            ("slow", SourceTimeout("slow", "timed out")),
            ("down", SourceUnavailable("down", "HTTP 503")),
            ("buggy", KeyError("x")),
            ("timer", TimeoutError()),
        ):
            with pytest.raises(type(error)), op.source(name, "CA0990000"):
                raise error
        with op.source("empty", "CA0990000"):
            pass
    (entry,) = entries(trail)
    assert [(s.source, s.status, s.error_code) for s in entry.sources] == [
        ("slow", "TIMEOUT", "SOURCE_TIMEOUT"),
        ("down", "ERROR", "SOURCE_UNAVAILABLE"),
        ("buggy", "ERROR", "INTERNAL"),
        ("timer", "TIMEOUT", None),
        ("empty", "NO_HIT", None),
    ]
    assert entry.outcome == attr.OUTCOME_PARTIAL


@pytest.mark.parametrize(
    ("error", "outcome", "code"),
    [
        (PurposeRequired("send X-Purpose"), "REFUSED", "PURPOSE_REQUIRED"),
        (AccessDenied("no"), "REFUSED", "FORBIDDEN"),
        (RuntimeError("bug"), "ERROR", "INTERNAL"),
    ],
)
async def test_a_failed_operation_is_audited_and_its_error_propagates(
    trail: AuditTrail, error: Exception, outcome: str, code: str
) -> None:
    op = trail.operation(make_context(purpose=None), name="search")

    async def request() -> None:
        async with op:
            op.set_outcome("OK")  # an exception overrides what was set before it
            raise error

    with pytest.raises(type(error)):
        await request()
    (entry,) = entries(trail)
    assert (entry.outcome, entry.error_code, entry.purpose) == (outcome, code, None)
    assert op.entry_hash == entry.hash


async def test_an_explicit_outcome_is_kept(trail: AuditTrail) -> None:
    async with trail.operation(make_context(), name="search") as op:
        op.set_outcome(attr.OUTCOME_PARTIAL, "FORBIDDEN_FIELD")
    (entry,) = entries(trail)
    assert (entry.outcome, entry.error_code) == ("PARTIAL", "FORBIDDEN_FIELD")


async def test_a_cancelled_request_is_audited(trail: AuditTrail) -> None:
    started = asyncio.Event()

    async def request() -> None:
        async with trail.operation(make_context(), name="search") as op:
            with op.source("marin-rms", "CA0990000"):
                started.set()
                await asyncio.sleep(10)

    task = asyncio.create_task(request())
    await started.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    (entry,) = entries(trail)
    assert entry.outcome == "CANCELLED"
    assert [s.status for s in entry.sources] == ["CANCELLED"]


async def test_no_durable_entry_means_audit_unavailable(tmp_path: Path) -> None:
    log = FileAuditLog(tmp_path)
    await log.close()  # a log that can no longer write
    trail = AuditTrail(log, build_tracer_provider())
    with pytest.raises(AuditUnavailable):
        async with trail.operation(make_context(), name="search") as op:
            op.record_returned("id-1", "CA0990000")
    assert op.entry is None
    # Even a refusal becomes AUDIT_UNAVAILABLE: nothing may claim it was audited.
    with pytest.raises(AuditUnavailable) as raised:
        async with trail.operation(make_context(purpose=None), name="search"):
            raise PurposeRequired("send X-Purpose")
    assert isinstance(raised.value.__cause__, PurposeRequired)


async def test_the_operation_span_is_current_inside_the_block_only(trail: AuditTrail) -> None:
    outside = trace.get_current_span()
    async with trail.operation(make_context(), name="search") as op:
        current = trace.get_current_span().get_span_context()
        assert format(current.trace_id, "032x") == op.trace_id
    assert trace.get_current_span() is outside
    async with trail.operation(make_context(), name="search", activate=False) as op2:
        assert trace.get_current_span() is outside
    a, b = entries(trail)
    assert a.trace_id != b.trace_id == op2.trace_id


async def test_an_operation_is_entered_once(trail: AuditTrail) -> None:
    op = trail.operation(make_context(), name="search")
    async with op:
        pass
    with pytest.raises(RuntimeError):
        async with op:
            pass
    assert len(entries(trail)) == 1
    with pytest.raises(RuntimeError):
        op.source_result("late", "CA0990000", "OK")


async def test_a_thousand_records_go_into_one_entry(trail: AuditTrail) -> None:
    records = [(f"record-{i:04d}", "CA0990000" if i % 2 else "WA0990100") for i in range(1000)]
    async with trail.operation(make_context(), name="plateReads") as op:
        op.records_returned(records)
    (entry,) = entries(trail)
    assert [(r.id, r.owner) for r in entry.records] == records


async def test_2000_concurrent_operations_make_2000_entries_in_one_chain(trail: AuditTrail) -> None:
    async def request(n: int) -> str:
        async with trail.operation(make_context(user=f"user-{n}"), name="search") as op:
            with op.source("marin-rms", "CA0990000") as call:
                await asyncio.sleep(0)
                call.set_result("OK", 1)
            op.record_returned(f"record-{n}", "CA0990000")
        assert op.entry_hash is not None
        return op.entry_hash

    hashes = await asyncio.gather(*(request(n) for n in range(2000)))
    written = entries(trail)
    assert len(written) == 2000
    assert {e.hash for e in written} == set(hashes)
    assert len({e.trace_id for e in written}) == 2000
    assert sorted(e.user for e in written) == sorted(f"user-{n}" for n in range(2000))
    assert all(len(e.sources) == 1 and e.records[0].id == f"record-{e.user[5:]}" for e in written)
    assert trail.processor.late_spans == 0
    assert isinstance(trail.log, FileAuditLog)
    assert verify_file(trail.log.path).ok


@dataclass
class FanOutStatus:
    """The shape of the fan-out's per-source status (``hub.adapters.fanout.SourceStatus``)."""

    source: str
    agency: str
    status: str
    count: int = 0
    latency_ms: float | None = None
    message: str | None = None
    started_ns: int = 0
    ended_ns: int = 0


async def test_fan_out_statuses_and_visibility_are_recorded(trail: AuditTrail) -> None:
    async with trail.operation(make_context(), name="search") as op:
        started = time.monotonic_ns()
        await asyncio.sleep(0.02)
        op.source_called(
            FanOutStatus(
                "marin-rms", "CA0990000", "OK", 2, started_ns=started, ended_ns=time.monotonic_ns()
            )
        )
        op.source_called(FanOutStatus("cascade-cad", "WA0990100", "TIMEOUT", latency_ms=1500.0))
        op.record_returned("id-1", "CA0990000", "FULL")
        op.record_returned("id-2", "WA0990100", "POINTER")
        op.record_returned("id-3", "WA0990100")
    (entry,) = entries(trail)
    assert [(s.source, s.status, s.count) for s in entry.sources] == [
        ("marin-rms", "OK", 2),
        ("cascade-cad", "TIMEOUT", 0),
    ]
    assert entry.sources[0].latency_ms is not None
    assert 20 <= entry.sources[0].latency_ms < 1000
    assert entry.sources[1].latency_ms == 1500.0
    assert [(r.id, r.visibility) for r in entry.records] == [
        ("id-1", "FULL"),
        ("id-2", "POINTER"),
        ("id-3", None),
    ]
    assert entry.outcome == "PARTIAL"


async def test_operations_sharing_a_callers_trace_each_get_their_own_entry(
    trail: AuditTrail,
) -> None:
    # A partner hub's batched loaders call this hub several times at once, all within one of
    # its operations: every call joins that trace, and none borrows another's source spans.
    caller = "4bf92f3577b34da6a3ce929d0e0e4736"

    async def one(i: int) -> None:
        async with trail.operation(make_context(), name=f"call-{i}",
                                   parent_trace_id=caller) as op:  # fmt: skip
            with op.source(f"source-{i}", "CA0990000") as source:
                await asyncio.sleep(0.01 * (3 - i))
                source.set_result("OK", i)

    await asyncio.gather(*(one(i) for i in range(3)))
    written = entries(trail)
    assert {e.trace_id for e in written} == {caller}
    assert sorted((e.operation, [s.source for s in e.sources]) for e in written) == [
        (f"call-{i}", [f"source-{i}"]) for i in range(3)
    ]


@pytest.mark.parametrize("bad", ["", "xyz", "0" * 32, "A" * 33])
async def test_an_unusable_parent_trace_id_starts_a_fresh_trace(
    trail: AuditTrail, bad: str
) -> None:
    async with trail.operation(make_context(), name="x", parent_trace_id=bad):
        pass
    (entry,) = entries(trail)
    assert len(entry.trace_id) == 32
    assert entry.trace_id != bad


# -- checkpoints (a stream's payloads) --------------------------------------------------------


async def test_a_checkpoint_writes_the_new_records_now_in_the_operations_trace(
    trail: AuditTrail,
) -> None:
    async with trail.operation(
        make_context(), name="Stream", document_hash="h1", criteria={"text": "Reyes"}
    ) as op:
        assert await op.checkpoint() == 0  # nothing returned yet: nothing written
        assert entries(trail) == []
        op.records_returned([("id-1", "CA0990000"), ("id-2", "WA0990100")])
        assert await op.checkpoint() == 2
        (first,) = entries(trail)  # durable before the block ends
        assert await op.checkpoint() == 0
        op.record_returned("id-3", "CA0990000", "POINTER")
        assert await op.checkpoint() == 1
        op.source_result("marin-rms", "CA0990000", "OK", count=3)
        op.withheld("Person.ssn", rules=("owner-ssn",))
        op.record_returned("id-4", "CA0990000")  # shown, never checkpointed
    first, second, own = entries(trail)
    assert [r.id for r in first.records] == ["id-1", "id-2"]
    assert [(r.id, r.visibility) for r in second.records] == [("id-3", "POINTER")]
    # the operation's own entry is whole, as any operation's
    assert [r.id for r in own.records] == ["id-1", "id-2", "id-3", "id-4"]
    assert (first.part, second.part, own.part) == (1, 2, 0)
    for part in (first, second):
        assert part.trace_id == own.trace_id == op.trace_id
        assert (part.operation, part.outcome, part.document_hash) == ("Stream", "OK", "h1")
        assert (part.user, part.agency, part.purpose) == (own.user, own.agency, own.purpose)
        assert part.criteria == own.criteria == {"text": "Reyes"}
        assert part.policy_version == "policy-7"
        assert (part.sources, part.withheld) == ((), ())
    assert own.outcome == "PARTIAL"  # a field withheld
    assert [s.source for s in own.sources] == ["marin-rms"]
    assert verify_file(trail.log.path).ok


async def test_a_checkpoint_that_cannot_be_written_is_audit_unavailable(tmp_path: Path) -> None:
    log = FileAuditLog(tmp_path)
    trail = AuditTrail(log, build_tracer_provider())
    async with trail.operation(make_context(), name="Stream") as op:
        op.record_returned("id-1", "CA0990000")
        await log.close()
        with pytest.raises(AuditUnavailable):
            await op.checkpoint()
        with pytest.raises(AuditUnavailable):
            await op.__aexit__(None, None, None)
    with pytest.raises(RuntimeError, match="inside the operation's block"):
        await op.checkpoint()
