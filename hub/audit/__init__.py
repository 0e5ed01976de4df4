"""The audit trail: each operation's trace, written durably and hash-chained before the response.

What the app uses (everything is injected; nothing is global)::

    from hub.audit import AuditTrail, build_tracer_provider, open_audit_log

    # lifespan
    provider = build_tracer_provider(ops_exporter=None)          # or an OTLP exporter, redacted
    log = open_audit_log(settings.audit_dir)                       # None → ./var/audit/audit.jsonl
    #   or open_audit_log("redis://host:6379/0#hub:audit") for several hub processes
    trail = AuditTrail(log, provider, policy_version=gate.version)
    ...
    await log.close(); provider.shutdown()

    # per request, around parse + execute; respond only after the block
    async with trail.operation(ctx, name="search", document_hash=h, criteria=variables) as op:
        op.annotate(name=parsed_operation_name)                  # when known later
        # sources: time a call yourself...
        with op.source("marin-rms", "CA0990000") as call:
            call.set_result("OK", count)
        # ...or report the fan-out's statuses (SourceStatus with monotonic started/ended ns)
        op.source_called(status)
        op.record_returned(record.id, owner_ori, "FULL")          # or records_returned(pairs)
        op.withheld("Person.ssn", rules=("owner-rule",), count=n)
        op.set_outcome("PARTIAL", "FORBIDDEN_FIELD")               # optional; derived otherwise
    # raises AuditUnavailable if the entry is not durable → send no data

``Operation`` satisfies ``resolvers.context.OperationRecorder`` (``source_called``,
``record_returned``), so it can be handed to the resolvers as the recorder.

Refusals are audited by raising inside the block (``PurposeRequired`` → outcome REFUSED, code
PURPOSE_REQUIRED; the exception propagates after the entry is written).

Modules:

- ``attributes``  span attribute names (one module) and ``CJI``, the ones redaction strips.
- ``tracing``     ``build_tracer_provider``, ``AuditSpanProcessor`` (root + source spans → one
                  ``AuditEntry``, synchronously, never via a batch queue), ``RedactingSpanExporter``
                  and ``ops_span_processor`` for operations export, ``load_otlp_exporter``.
- ``trail``       ``AuditTrail.operation`` → ``Operation`` (the API above).
- ``entry``       ``AuditEntry``/``SealedEntry`` and the line format and hash.
- ``log``         the ``AuditLog`` protocol (``append`` → hash once durable, ``scan``, ``tail``,
                  ``close``) and group commit.
- ``file_log``    ``FileAuditLog``: one JSON-lines file, fdatasync before acknowledging (``fsync=
                  "always"``, default) or not (``"never"``), one writer (flock), restart-safe.
- ``redis_log``   ``RedisAuditLog``: a Redis stream, one chain across processes by
                  compare-and-append in Lua.
- ``chain``       ``verify_file`` / ``verify_log`` / ``verify_entries`` → ``VerifyReport`` naming
                  the first entry CHANGED, REMOVED, INSERTED or REORDERED.
- ``query``       ``query_events`` (``auditEvents``: filters, scoped to the reader's agency),
                  ``tail`` and ``summarize`` (``hub audit tail``).
- ``postgres_log`` ``PostgresAuditLog``: tables in PostgreSQL (psycopg 3), the same chain,
                  durable on commit, indexed for ``query_events`` (``IndexedLog``: filters pushed
                  down to SQL), ``import_lines`` (``hub audit copy``) and ``purge`` to a signed
                  base. Imported only by ``open_audit_log`` for a ``postgresql://`` location.
- ``checkpoint``  signed checkpoints of the head (ES256 JWS): ``CheckpointSigner``, the stores,
                  the periodic writer, ``verify_with_checkpoints`` (truncation; purged logs).
- ``location``    ``open_audit_log``: a path, a ``redis://…#key`` or ``postgresql://…#schema`` URL.

What an append costs (``measure_append``) is measured outside the package, in
``bench.append_cost``.
"""

from hub.audit.chain import Fault, FaultKind, VerifyReport, verify_entries, verify_file, verify_log
from hub.audit.entry import AuditEntry, RawEntry, RecordAccess, SealedEntry, SourceCall, Withholding
from hub.audit.file_log import FileAuditLog, FsyncPolicy
from hub.audit.location import open_audit_log
from hub.audit.log import AuditLog
from hub.audit.query import AuditQuery, query_events, summarize, tail
from hub.audit.redis_log import RedisAuditLog
from hub.audit.tracing import (
    AuditSpanProcessor,
    RedactingSpanExporter,
    build_tracer_provider,
    load_otlp_exporter,
    ops_span_processor,
)
from hub.audit.trail import AuditTrail, Operation, SourceCallSpan

__all__ = [
    "AuditEntry",
    "AuditLog",
    "AuditQuery",
    "AuditSpanProcessor",
    "AuditTrail",
    "Fault",
    "FaultKind",
    "FileAuditLog",
    "FsyncPolicy",
    "Operation",
    "RawEntry",
    "RecordAccess",
    "RedactingSpanExporter",
    "RedisAuditLog",
    "SealedEntry",
    "SourceCall",
    "SourceCallSpan",
    "VerifyReport",
    "Withholding",
    "build_tracer_provider",
    "load_otlp_exporter",
    "open_audit_log",
    "ops_span_processor",
    "query_events",
    "summarize",
    "tail",
    "verify_entries",
    "verify_file",
    "verify_log",
]
