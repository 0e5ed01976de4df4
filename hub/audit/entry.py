"""The audit entry: one per operation, hash-chained to the one before.

On disk (a JSON-lines file) and in Redis (a stream field) an entry is one line of JSON::

    {"seq":7,"prev":"<hash of entry 6>","hash":"<this entry's hash>", ...entry fields, sorted}

``hash = sha256(b"<seq>\\n<prev>\\n" + canonical JSON of the entry fields)`` in hex, where the
canonical JSON is msgspec's encoding with keys sorted (no whitespace, UTF-8). Anyone can re-check
a line with nothing but a JSON parser and sha256: drop ``seq``, ``prev`` and ``hash``, encode the
rest with sorted keys, hash. The first entry's ``prev`` is ``GENESIS``.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from typing import Any, NamedTuple, TypeVar

import msgspec

GENESIS = "0" * 64
CHAIN_FIELDS = ("seq", "prev", "hash")


class SourceCall(msgspec.Struct, frozen=True, kw_only=True):
    """One source the operation called (or decided not to call: DENIED, SKIPPED)."""

    source: str
    agency: str
    status: str
    count: int = 0
    latency_ms: float | None = None
    error_code: str | None = None
    span_id: str = ""


class RecordAccess(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    """A record that left the hub in the response: its hub id, owning agency's ORI, and how much
    of it was shown (FULL or POINTER) when the caller says."""

    id: str
    owner: str
    visibility: str | None = None


class Withholding(msgspec.Struct, frozen=True, kw_only=True):
    """A field denied to the reader, the rules that denied it, and on how many records."""

    field: str  # Type.field, e.g. "Person.ssn"
    rules: tuple[str, ...] = ()
    count: int = 0


class AuditEntry(msgspec.Struct, frozen=True, kw_only=True):
    """Who asked what, why, where it went, what came back, what was withheld, how it ended."""

    at: str  # ISO-8601 UTC, microseconds: when the operation ended
    trace_id: str
    operation: str
    outcome: str
    user: str
    agency: str
    roles: tuple[str, ...] = ()
    state: str | None = None
    via_user: str | None = None
    via_agency: str | None = None
    hub_chain: tuple[str, ...] = ()
    purpose: str | None = None
    case_number: str | None = None
    document_hash: str | None = None
    criteria: dict[str, Any] | None = None
    sources: tuple[SourceCall, ...] = ()
    records: tuple[RecordAccess, ...] = ()
    withheld: tuple[Withholding, ...] = ()
    policy_version: str | None = None
    error_code: str | None = None
    client_address: str | None = None
    request_id: str | None = None
    duration_ms: float = 0.0
    # 0: an operation's own entry. 1, 2, ...: the entry of a stream's n-th payload, written
    # before the payload left, in the operation's trace (its records are in the operation's
    # entry too). Counting operations counts the entries of part 0 (``whole_operations``).
    part: int = 0


class SealedEntry(AuditEntry, frozen=True, kw_only=True):
    """An entry as stored: with its place in the chain."""

    seq: int
    prev: str
    hash: str

    def unsealed(self) -> AuditEntry:
        fields = {name: getattr(self, name) for name in AuditEntry.__struct_fields__}
        return AuditEntry(**fields)


_E = TypeVar("_E", bound=AuditEntry)


def whole_operations(entries: Iterable[_E]) -> list[_E]:
    """One entry per operation, in their order: what counts operations (reviews, reports)
    reads these. A stream's payload entries (``part`` > 0) are left out where the operation's
    own entry is among ``entries``: it holds their records too. Where it is not (the hub
    stopped mid-stream, or the operation ended after the entries read), the payload entries of
    that operation stand for it, merged into the first: every record they released, once."""
    chosen = list(entries)
    whole = {(e.trace_id, e.user, e.agency) for e in chosen if e.part == 0}
    out: list[_E] = []
    merged: dict[tuple[str, str, str], int] = {}
    for e in chosen:
        key = (e.trace_id, e.user, e.agency)
        if e.part == 0:
            out.append(e)
        elif key not in whole:
            at = merged.get(key)
            if at is None:
                merged[key] = len(out)
                out.append(e)
            else:
                out[at] = msgspec.structs.replace(out[at], records=out[at].records + e.records)
    return out


class RawEntry(NamedTuple):
    """A stored line and where it was found ("line 12", "stream id 1700000000000-0")."""

    position: str
    line: bytes


_encoder = msgspec.json.Encoder(order="sorted")
_sealed_decoder = msgspec.json.Decoder(SealedEntry)


def canonical_body(entry: AuditEntry) -> bytes:
    """The bytes an entry's hash covers, without the chain fields."""
    return _encoder.encode(entry)


def chain_hash(seq: int, prev: str, body: bytes) -> str:
    digest = hashlib.sha256(b"%d\n%s\n" % (seq, prev.encode("ascii")))
    digest.update(body)
    return digest.hexdigest()


def seal(body: bytes, seq: int, prev: str) -> tuple[bytes, str]:
    """The stored line (no newline) for a canonical body at ``seq`` after ``prev``, and its hash."""
    entry_hash = chain_hash(seq, prev, body)
    head = b'{"seq":%d,"prev":"%s","hash":"%s"' % (seq, prev.encode(), entry_hash.encode())
    # A body is a non-empty JSON object (AuditEntry always has fields), so it starts "{" and
    # the chain fields go in front of its first key.
    return head + b"," + body[1:], entry_hash


class LineFacts(NamedTuple):
    """What the chain check needs from one stored line."""

    seq: int | None  # None when the line is not an entry at all
    prev: str | None
    stored_hash: str | None
    hash_ok: bool


def line_facts(line: bytes) -> LineFacts:
    """Parse a stored line and recompute its hash; never raises."""
    try:
        obj = msgspec.json.decode(line)
    except msgspec.DecodeError:
        return LineFacts(None, None, None, False)
    if not isinstance(obj, dict):
        return LineFacts(None, None, None, False)
    seq, prev, stored = obj.pop("seq", None), obj.pop("prev", None), obj.pop("hash", None)
    if not (isinstance(seq, int) and isinstance(prev, str) and isinstance(stored, str)):
        return LineFacts(None, None, None, False)
    if not prev.isascii():
        return LineFacts(seq, prev, stored, False)
    return LineFacts(seq, prev, stored, chain_hash(seq, prev, _encoder.encode(obj)) == stored)


def decode_entry(line: bytes) -> SealedEntry:
    """A stored line as a typed entry (no hash check: that is ``hub.audit.chain``'s job)."""
    return _sealed_decoder.decode(line)
