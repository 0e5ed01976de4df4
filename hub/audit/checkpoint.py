"""Signed checkpoints of the chain head: tamper evidence that leaves the machine.

A chain alone cannot show that its end was cut off (``hub.audit.chain``). A checkpoint is the
head, ``(seq, hash, time)``, signed with the hub's key (the same P-256 key and ES256 JWS as its
partner assertions, published at ``/.well-known/hub-jwks.json``). Partners keep the checkpoints
they fetch (``GET /audit/checkpoints``); ``hub audit verify --checkpoint`` later shows whether the
log still holds what a checkpoint saw: a log whose head is behind a checkpoint was truncated, and
one whose entry at the checkpoint's seq hashes differently was rewritten.

The format (a compact JWS, RFC 7515; header ``{"alg": "ES256", "kid": ..., "typ":
"hub-audit-checkpoint+jwt"}``)::

    {"iss": "west-hub", "sub": "audit-checkpoint", "iat": 1767225600, "seq": 1234,
     "hash": "<sha256 hex of entry seq 1234, hub.audit.entry>"}

No CJI: a count of operations and a hash. What a count still says (how busy the hub is) is why
the endpoint answers partner hubs only, and why the hub writes them on a coarse period.

A purge (``PostgresAuditLog.purge``) writes one at its boundary and keeps it as the log's base;
``verify_with_checkpoints`` then verifies from that base onward, the base's signature included.
"""

from __future__ import annotations

import asyncio
import logging
import os
import re
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import jwt
from cryptography.hazmat.primitives.asymmetric import ec

from hub.audit.chain import ChainVerifier, Fault, FaultKind, VerifyReport
from hub.audit.log import AuditLog
from hub.audit.query import tail

log = logging.getLogger(__name__)

SUBJECT = "audit-checkpoint"
TYPE = "hub-audit-checkpoint+jwt"
MAX_KEPT = 10_000  # checkpoints a store keeps (bounded)
_HASH = re.compile(r"^[0-9a-f]{64}$")


class CheckpointInvalid(ValueError):
    """Not a checkpoint of this hub: a bad signature, another key, or not the format above."""


@dataclass(frozen=True, slots=True)
class Checkpoint:
    issuer: str
    seq: int
    hash: str
    issued_at: int  # Unix seconds
    jws: str


class CheckpointSigner:
    """Signs checkpoints as hub ``issuer`` with its ES256 key (``kid`` names the key)."""

    def __init__(self, key: ec.EllipticCurvePrivateKey, kid: str, issuer: str) -> None:
        self._key = key
        self.kid = kid
        self.issuer = issuer

    @property
    def public_key(self) -> ec.EllipticCurvePublicKey:
        return self._key.public_key()

    def sign(self, seq: int, entry_hash: str, *, now: float | None = None) -> str:
        if seq < 0 or not _HASH.match(entry_hash):
            raise ValueError("a checkpoint needs a seq and an entry hash")
        claims = {
            "iss": self.issuer,
            "sub": SUBJECT,
            "iat": int(time.time() if now is None else now),
            "seq": seq,
            "hash": entry_hash,
        }
        return jwt.encode(
            claims, self._key, algorithm="ES256", headers={"kid": self.kid, "typ": TYPE}
        )


def read_checkpoint(jws: str, key: Any, *, issuer: str | None = None) -> Checkpoint:
    """The checkpoint ``jws`` says, once its signature checks out against ``key`` (a public key
    or a PyJWK); ``CheckpointInvalid`` otherwise."""
    try:
        claims = jwt.decode(
            jws.strip(),
            key,
            algorithms=["ES256"],
            issuer=issuer,
            options={"require": ["iss", "sub", "iat", "seq", "hash"], "verify_aud": False},
        )
    except jwt.InvalidTokenError as exc:
        raise CheckpointInvalid(f"not a valid checkpoint: {exc}") from exc
    seq, entry_hash, issued = claims.get("seq"), claims.get("hash"), claims.get("iat")
    if (
        claims.get("sub") != SUBJECT
        or not isinstance(seq, int)
        or seq < 0
        or not isinstance(entry_hash, str)
        or not _HASH.match(entry_hash)
        or not isinstance(issued, int)
    ):
        raise CheckpointInvalid("not an audit checkpoint (sub, seq, hash or iat)")
    return Checkpoint(str(claims["iss"]), seq, entry_hash, issued, jws.strip())


def checkpoint_kid(jws: str) -> str | None:
    """The ``kid`` a checkpoint names (unverified: to pick the key to verify it with)."""
    try:
        kid = jwt.get_unverified_header(jws.strip()).get("kid")
    except jwt.InvalidTokenError:
        return None
    return kid if isinstance(kid, str) else None


# -- where checkpoints are kept --


class CheckpointStore(Protocol):
    async def save(self, checkpoint: Checkpoint) -> None: ...

    async def latest(self, n: int) -> list[str]:
        """The newest ``n`` checkpoints (JWS), newest first."""
        ...


class CheckpointFile:
    """Checkpoints one JWS a line in a file (for the file and Redis logs); at most
    ``MAX_KEPT``, the oldest dropped by an atomic rewrite."""

    def __init__(self, path: Path, *, keep: int = MAX_KEPT) -> None:
        self.path = path
        self._keep = keep

    async def save(self, checkpoint: Checkpoint) -> None:
        await asyncio.to_thread(self._save, checkpoint.jws)

    def _save(self, jws: str) -> None:
        self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        try:
            os.write(fd, jws.encode() + b"\n")
            os.fsync(fd)
        finally:
            os.close(fd)
        lines = self._lines()
        if len(lines) > 2 * self._keep:
            spare = self.path.with_name(self.path.name + ".new")
            spare.write_text("".join(f"{line}\n" for line in lines[-self._keep :]))
            spare.chmod(0o600)
            spare.replace(self.path)

    def _lines(self) -> list[str]:
        try:
            return [line for line in self.path.read_text().splitlines() if line.strip()]
        except FileNotFoundError:
            return []

    async def latest(self, n: int) -> list[str]:
        lines = await asyncio.to_thread(self._lines)
        return list(reversed(lines[-n:])) if n > 0 else []


class _TableStore:
    """Checkpoints in the PostgreSQL log's own table (shared by every worker)."""

    def __init__(self, audit_log: Any) -> None:
        self._log = audit_log

    async def save(self, checkpoint: Checkpoint) -> None:
        await self._log.save_checkpoint(checkpoint.seq, checkpoint.hash, checkpoint.jws)

    async def latest(self, n: int) -> list[str]:
        result: list[str] = await self._log.checkpoints(n)
        return result


def checkpoint_store(audit_log: AuditLog, fallback: Path) -> CheckpointStore:
    """Where ``audit_log``'s checkpoints are kept: its own table if it has one, else the file
    ``fallback``."""
    if hasattr(audit_log, "save_checkpoint") and hasattr(audit_log, "checkpoints"):
        return _TableStore(audit_log)
    return CheckpointFile(fallback)


# -- writing them --


async def log_head(audit_log: AuditLog) -> tuple[int, str] | None:
    """The log's last entry (seq, hash); None when it is empty."""
    head = getattr(audit_log, "head", None)
    if callable(head):  # PostgresAuditLog.head() knows its base after a purge of everything
        seq, entry_hash = await head()
        return (int(seq), str(entry_hash)) if seq > 0 else None
    last = None
    async for entry in tail(audit_log, 1):
        last = (entry.seq, entry.hash)
    return last


async def write_checkpoint(
    audit_log: AuditLog, signer: CheckpointSigner, store: CheckpointStore
) -> Checkpoint | None:
    """Sign the log's head and keep it; None for an empty log."""
    head = await log_head(audit_log)
    if head is None:
        return None
    jws = signer.sign(*head)
    checkpoint = read_checkpoint(jws, signer.public_key)
    await store.save(checkpoint)
    return checkpoint


async def write_periodically(
    audit_log: AuditLog, signer: CheckpointSigner, store: CheckpointStore, interval_s: float
) -> None:
    """Every ``interval_s``, a checkpoint of the head if it moved. Runs until cancelled; a
    failure is logged and retried next period (the audit itself fails closed elsewhere)."""
    last: tuple[int, str] | None = None
    while True:
        await asyncio.sleep(interval_s)
        try:
            head = await log_head(audit_log)
            if head is not None and head != last:
                jws = signer.sign(*head)
                await store.save(read_checkpoint(jws, signer.public_key))
                last = head
        except Exception as exc:  # the writer must outlive a bad period
            log.warning("audit checkpoint not written: %s", type(exc).__name__)


# -- verifying against them --


class _FromBase(ChainVerifier):
    """A chain verifier whose first entry follows ``base`` (seq, hash) instead of GENESIS."""

    def __init__(self, head: tuple[int, str] | None, base: tuple[int, str] | None) -> None:
        super().__init__(head)
        if base is not None:
            self._seq = base[0] + 1
            self._prev = base[1]


@dataclass(frozen=True, slots=True)
class CheckedReport:
    report: VerifyReport
    notes: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        return self.report.ok

    def describe(self) -> str:
        return "; ".join((self.report.describe(), *self.notes))


def _failed(fault: Fault, base: tuple[int, str]) -> VerifyReport:
    return VerifyReport(ok=False, entries=0, head_seq=base[0], head_hash=base[1], fault=fault)


async def verify_with_checkpoints(
    audit_log: AuditLog,
    checkpoints: Sequence[Checkpoint] = (),
    *,
    key: Any = None,
    head: tuple[int, str] | None = None,
) -> CheckedReport:
    """Verify the chain, from the log's signed base if it was purged (``key`` checks the base's
    signature), against the newest of ``checkpoints`` (or a ``head`` recorded elsewhere): a log
    that ends before it, or whose entry at its seq hashes differently, fails."""
    notes: list[str] = []
    start: tuple[int, str] | None = None
    base = await _log_base(audit_log)
    if base is not None:
        start = (base.seq, base.hash)
        fault = _check_base(base, key)
        if fault is not None:
            return CheckedReport(_failed(fault, start))
        notes.append(f"verified from the signed purge checkpoint at seq {base.seq}")
    targets = [(c.seq, c.hash) for c in checkpoints]
    if head is not None:
        targets.append(head)
    target = max(targets, default=None)
    if target is not None and start is not None and target[0] <= start[0]:
        if target[0] == start[0] and target[1] != start[1]:
            fault = Fault(
                FaultKind.CHANGED,
                "purge checkpoint",
                target[0],
                f"the purge boundary seq {target[0]} differs from the checkpoint",
            )
            return CheckedReport(_failed(fault, start))
        notes.append(f"checkpoint seq {target[0]} predates the purge boundary")
        target = None
    verifier = _FromBase(target, start)
    async for raw in audit_log.scan():
        verifier.feed(raw)
    report = verifier.finish()
    if target is not None and report.ok:
        notes.append(f"holds checkpoint seq {target[0]}")
    return CheckedReport(report, tuple(notes))


async def _log_base(audit_log: AuditLog) -> Any:
    base = getattr(audit_log, "base", None)
    return await base() if callable(base) else None


def _check_base(base: Any, key: Any) -> Fault | None:
    where = "purge checkpoint"
    if not base.checkpoint:
        return Fault(
            FaultKind.REMOVED,
            where,
            1,
            f"the log starts after seq {base.seq} without a signed checkpoint",
        )
    if key is None:
        return Fault(
            FaultKind.REMOVED,
            where,
            1,
            "the log was purged; give the hub's key to check its purge checkpoint",
        )
    try:
        signed = read_checkpoint(base.checkpoint, key)
    except CheckpointInvalid as exc:
        return Fault(FaultKind.CHANGED, where, base.seq, str(exc))
    if (signed.seq, signed.hash) != (base.seq, base.hash):
        return Fault(
            FaultKind.CHANGED,
            where,
            base.seq,
            "the log's start does not match its signed purge checkpoint",
        )
    return None
