"""What the policy answers: per record, per source, and, for people, an explanation."""

from __future__ import annotations

import enum
from dataclasses import dataclass


class Visibility(enum.StrEnum):
    """What a reader gets of one record.

    FULL: the record, with the fields policy allows (the others read null). POINTER: only that the
    record exists, its kind, its owning agency and how to reach it. INVISIBLE: nothing; the record
    is absent, not counted, and nothing hints that it exists.
    """

    FULL = "FULL"
    POINTER = "POINTER"
    INVISIBLE = "INVISIBLE"


@dataclass(frozen=True, slots=True)
class RecordDecision:
    visibility: Visibility
    # GraphQL field names of the record's type that read null: every field of the type that
    # is not readable (when the record is not FULL, every field).
    denied_fields: frozenset[str]
    # Ids of the rules that decided (policy files, `agreement.<id>`, or a built-in id such as
    # `owner.no-agreement`), for the audit log and `hub policy explain`.
    rules: tuple[str, ...]
    # The allow-list: the fields a rule grants this reader (FULL only; empty otherwise). Only
    # these are ever copied into a response.
    readable_fields: frozenset[str] = frozenset()
    # The fields a search may match this record on when it is a POINTER: the owner's consent
    # to its pointer index (`find`), less any field a deny rule withholds from this reader and
    # any free text. Empty otherwise. A FULL record is matched on its readable fields.
    findable_fields: frozenset[str] = frozenset()

    @property
    def searchable_fields(self) -> frozenset[str]:
        """The fields a search may match this record on, for this reader."""
        if self.visibility is Visibility.FULL:
            return self.readable_fields
        return self.findable_fields


@dataclass(frozen=True, slots=True)
class SourceDecision:
    allowed: bool
    # None when allowed; "DENIED" when policy forbids this subject to ask this source at all
    # (e.g. a state's in-state-only ALPR law), "SKIPPED" when nothing the source could return
    # may be shown to this subject for this purpose (or the query asks for no kind it holds).
    status: str | None
    reason: str  # ORIs, kinds and rule ids only: never criminal-justice information


@dataclass(frozen=True, slots=True)
class Verdict:
    """One layer's answer for one role and one object."""

    layer: str  # "hub" or "owner"
    allowed: bool
    rule: str  # the deciding rule's id, or the built-in default when no rule matched
    text: str  # the rule as written ("" for a built-in default)
    origin: str  # "hub-rules.csv:17", "agreements.yaml MVSO-CCPD-2024", "" for a default


@dataclass(frozen=True, slots=True)
class RoleTrace:
    role: str
    action: str  # "see" (the record exists) or "read"
    object: str
    hub: Verdict
    owner: Verdict

    @property
    def allowed(self) -> bool:
        return self.hub.allowed and self.owner.allowed


@dataclass(frozen=True, slots=True)
class Explanation:
    """Why a subject may or may not read one object of one owner's record."""

    subject: str  # "user (ORI, state; roles)"
    purpose: str | None
    owner: str  # "ORI (state)"
    tags: frozenset[str]
    object: str  # "Person" (the record) or "Person.ssn"
    record: RecordDecision  # the decision on the whole record
    allowed: bool  # FULL for a type; readable for a field
    traces: tuple[RoleTrace, ...]  # per role, per layer: the rule that decided
    note: str = ""  # e.g. why no role was considered

    @property
    def rules(self) -> tuple[str, ...]:
        """The ids of the rules that made this object's decision."""
        if self.record.visibility is not Visibility.FULL:
            return self.record.rules  # no field of a record that is not shown is read
        out: dict[str, None] = {}
        for trace in self.traces:
            if trace.object != self.object or trace.action != "read":
                continue
            if trace.allowed == self.allowed:
                verdicts = (trace.hub, trace.owner)
                out.update((v.rule, None) for v in verdicts if self.allowed or not v.allowed)
        return tuple(out)

    def text(self) -> str:
        if "." in self.object:
            verdict = "ALLOWED" if self.allowed else "DENIED"
        else:
            verdict = self.record.visibility.value
        tags = ", ".join(sorted(self.tags)) or "none"
        lines = [
            f"decision: {self.object} -> {verdict}",
            f"  subject: {self.subject}; purpose {self.purpose or '(none)'}",
            f"  record:  owner {self.owner}; legal tags: {tags}",
            f"  record visibility: {self.record.visibility.value} "
            f"(rules: {', '.join(self.record.rules) or '-'})",
            f"  decided by: {', '.join(self.rules) or '-'}",
        ]
        if self.note:
            lines.append(f"  note: {self.note}")
        for trace in self.traces:
            lines.append(
                f"  role {trace.role}, {trace.action} {trace.object}: "
                f"{'allow' if trace.allowed else 'deny'}"
            )
            for v in (trace.hub, trace.owner):
                where = f" [{v.origin}]" if v.origin else ""
                lines.append(
                    f"    {v.layer:<5} layer: {'allow' if v.allowed else 'deny':<5} {v.rule}{where}"
                )
                if v.text:
                    lines.append(f"                 {v.text}")
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.text()
