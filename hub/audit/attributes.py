"""Span attribute names of audit traces: the one place they are spelled.

An audited operation is one trace: an operation span (``SPAN_OPERATION``) and one child span per
source called (``SPAN_SOURCE``). ``hub.audit.trail`` sets these attributes and
``hub.audit.tracing.AuditSpanProcessor`` reads them back into an audit entry, so both sides use
these constants and nothing else.

``CJI`` lists the attributes that may carry criminal-justice information (what was searched for,
which records came back, the case) or text we did not write. The operations exporter
(``hub.audit.tracing.RedactingSpanExporter``) strips them; the audit log keeps them.
"""

from __future__ import annotations

from typing import Final

SPAN_OPERATION: Final = "hub.operation"
SPAN_SOURCE: Final = "hub.source"

# Marks the spans the audit processor gathers: "operation" (the root) or "source" (a child).
# Other instrumentation (strawberry, aiohttp) may add spans to the same trace; they are not audit.
AUDIT_KIND: Final = "hub.audit.kind"
KIND_OPERATION: Final = "operation"
KIND_SOURCE: Final = "source"

# Who asks.
SUBJECT_USER: Final = "hub.subject.user_id"
SUBJECT_AGENCY: Final = "hub.subject.agency"  # the employing agency's ORI
SUBJECT_STATE: Final = "hub.subject.state"
SUBJECT_ROLES: Final = "hub.subject.roles"
# On whose behalf: the partner hub's account that called us for the subject, and the hubs crossed.
VIA_USER: Final = "hub.subject.via.user_id"
VIA_AGENCY: Final = "hub.subject.via.agency"
HUB_CHAIN: Final = "hub.subject.hub_chain"

# Why.
PURPOSE: Final = "hub.purpose"
CASE_NUMBER: Final = "hub.case_number"

# What.
OPERATION_NAME: Final = "hub.operation.name"
DOCUMENT_HASH: Final = "hub.operation.document_hash"
# The search criteria as canonical JSON (sorted keys): text, plate, filters, ids asked for.
CRITERIA: Final = "hub.search.criteria"

# Where it went (on each source span).
SOURCE_NAME: Final = "hub.source.name"
SOURCE_AGENCY: Final = "hub.source.agency"
SOURCE_STATUS: Final = "hub.source.status"  # SourceOutcome: OK NO_HIT TIMEOUT ERROR DENIED SKIPPED
SOURCE_COUNT: Final = "hub.source.count"
SOURCE_LATENCY_MS: Final = "hub.source.latency_ms"
SOURCE_ERROR_CODE: Final = "hub.source.error_code"  # a code from hub.errors, never vendor text

# What came back: a JSON array of {"id": hub id, "owner": ORI}, in the order returned. One
# string rather than two string arrays: the SDK checks an array attribute element by element,
# which costs ~1 ms for a 1,000-record answer; one string is checked once.
RECORDS: Final = "hub.records"
RECORD_COUNT: Final = "hub.records.count"
# A stream's payload entry (``Operation.checkpoint``): its number, 1, 2, ..., in the operation
# whose trace it shares. Absent on an operation's own entry.
PART: Final = "hub.operation.part"

# What was withheld: parallel lists; rules of one field are joined with RULE_SEPARATOR.
WITHHELD_FIELDS: Final = "hub.withheld.fields"  # Type.field, e.g. "Person.ssn"
WITHHELD_RULES: Final = "hub.withheld.rules"
WITHHELD_COUNTS: Final = "hub.withheld.counts"
RULE_SEPARATOR: Final = ","

POLICY_VERSION: Final = "hub.policy.version"

# How it ended.
OUTCOME: Final = "hub.outcome"  # one of the OUTCOME_* values below
ERROR_CODE: Final = "hub.error.code"  # the hub.errors code when the outcome is not OK

OUTCOME_OK: Final = "OK"  # data returned, every source answered
OUTCOME_PARTIAL: Final = "PARTIAL"  # data returned, some source failed or some field was denied
OUTCOME_REFUSED: Final = "REFUSED"  # a request error or access denial: no data
OUTCOME_ERROR: Final = "ERROR"  # the hub failed: no data
OUTCOME_CANCELLED: Final = "CANCELLED"  # the request was abandoned (client gone, shutdown)

# Source status recorded when a source call was cancelled before it answered.
SOURCE_CANCELLED: Final = "CANCELLED"

# Where from (OpenTelemetry semantic-convention names).
CLIENT_ADDRESS: Final = "client.address"
REQUEST_ID: Final = "hub.request_id"
TRACE_ID: Final = "hub.trace_id"  # 32 hex digits; also the entry's trace_id

ALL: Final[frozenset[str]] = frozenset(
    {
        AUDIT_KIND,
        SUBJECT_USER,
        SUBJECT_AGENCY,
        SUBJECT_STATE,
        SUBJECT_ROLES,
        VIA_USER,
        VIA_AGENCY,
        HUB_CHAIN,
        PURPOSE,
        CASE_NUMBER,
        OPERATION_NAME,
        DOCUMENT_HASH,
        CRITERIA,
        SOURCE_NAME,
        SOURCE_AGENCY,
        SOURCE_STATUS,
        SOURCE_COUNT,
        SOURCE_LATENCY_MS,
        SOURCE_ERROR_CODE,
        RECORDS,
        RECORD_COUNT,
        PART,
        WITHHELD_FIELDS,
        WITHHELD_RULES,
        WITHHELD_COUNTS,
        POLICY_VERSION,
        OUTCOME,
        ERROR_CODE,
        CLIENT_ADDRESS,
        REQUEST_ID,
        TRACE_ID,
    }
)

# Attributes that may carry CJI. Criteria hold names, plates, DOBs; a hub id decodes to the
# vendor's record id (an incident number, a plate read's plate), and the owners say which
# agencies hold records matching the criteria; a case number names an investigation. Withheld
# rules and fields are policy, not data, and stay; so does the record count.
CJI: Final[frozenset[str]] = frozenset(
    {
        CRITERIA,
        CASE_NUMBER,
        RECORDS,
    }
)
