"""Signed checkpoints: the format, truncation and rewriting detected on the file and PostgreSQL
logs, the `hub audit checkpoint` / `verify --checkpoint` commands, and the periodic writer."""

from __future__ import annotations

import asyncio
import base64
import json
from pathlib import Path

import jwt
import pytest
from click.testing import CliRunner
from cryptography.hazmat.primitives.asymmetric import ec

from hub.audit.chain import FaultKind
from hub.audit.checkpoint import (
    TYPE,
    Checkpoint,
    CheckpointFile,
    CheckpointInvalid,
    CheckpointSigner,
    checkpoint_store,
    read_checkpoint,
    verify_with_checkpoints,
    write_checkpoint,
    write_periodically,
)
from hub.audit.file_log import FileAuditLog
from hub.audit.location import open_audit_log
from hub.audit.postgres_log import PostgresAuditLog
from hub.cli import main
from tests.audit.conftest import make_entry


def signer(issuer: str = "west-hub") -> CheckpointSigner:
    return CheckpointSigner(ec.generate_private_key(ec.SECP256R1()), "kid-1", issuer)


def test_the_format() -> None:
    s = signer()
    jws = s.sign(12, "ab" * 32, now=1_767_225_600)
    header = jwt.get_unverified_header(jws)
    assert header == {"alg": "ES256", "kid": "kid-1", "typ": TYPE}
    claims = jwt.decode(jws, s.public_key, algorithms=["ES256"])
    assert claims == {
        "iss": "west-hub",
        "sub": "audit-checkpoint",
        "iat": 1_767_225_600,
        "seq": 12,
        "hash": "ab" * 32,
    }
    checkpoint = read_checkpoint(jws, s.public_key, issuer="west-hub")
    assert (checkpoint.seq, checkpoint.hash, checkpoint.issued_at) == (12, "ab" * 32, 1_767_225_600)


def test_what_is_not_a_checkpoint_is_refused() -> None:
    s = signer()
    jws = s.sign(3, "cd" * 32)
    with pytest.raises(CheckpointInvalid):
        read_checkpoint(jws, signer().public_key)  # another hub's key
    with pytest.raises(CheckpointInvalid):
        read_checkpoint(jws, s.public_key, issuer="east-hub")
    head, body, sig = jws.split(".")
    claims = json.loads(base64.urlsafe_b64decode(body + "=="))
    claims["seq"] = 2
    forged = base64.urlsafe_b64encode(json.dumps(claims).encode()).decode().rstrip("=")
    with pytest.raises(CheckpointInvalid):
        read_checkpoint(f"{head}.{forged}.{sig}", s.public_key)
    # Signed by the right key but something else: a partner assertion is no checkpoint.
    key = ec.generate_private_key(ec.SECP256R1())
    other = jwt.encode({"iss": "west-hub", "sub": "analyst1", "iat": 1, "seq": 1, "hash": "x"},
                       key, algorithm="ES256")  # fmt: skip
    with pytest.raises(CheckpointInvalid):
        read_checkpoint(other, key.public_key())
    with pytest.raises(ValueError, match="seq"):
        s.sign(-1, "ab" * 32)


async def _filled_file_log(directory: Path, n: int) -> FileAuditLog:
    async with FileAuditLog(directory) as log:
        for i in range(1, n + 1):
            await log.append(make_entry(i))
    return log


async def test_truncating_a_file_log_is_detected(tmp_path: Path) -> None:
    s = signer()
    log = await _filled_file_log(tmp_path, 10)
    store = CheckpointFile(tmp_path / "checkpoints.jsonl")
    checkpoint = await write_checkpoint(log, s, store)
    assert checkpoint is not None
    assert checkpoint.seq == 10
    assert await store.latest(5) == [checkpoint.jws]
    ok = await verify_with_checkpoints(log, [checkpoint])
    assert ok.ok, ok.describe()
    # Cut the last three entries: the chain alone still verifies, the checkpoint does not.
    lines = log.path.read_bytes().splitlines(keepends=True)
    log.path.write_bytes(b"".join(lines[:7]))
    assert (await verify_with_checkpoints(log)).ok
    cut = await verify_with_checkpoints(log, [checkpoint])
    assert not cut.ok
    assert cut.report.fault is not None
    assert cut.report.fault.kind == FaultKind.REMOVED
    assert "seq 10 was recorded" in cut.describe()


async def test_a_rewritten_tail_is_detected(tmp_path: Path) -> None:
    s = signer()
    log = await _filled_file_log(tmp_path / "a", 6)
    checkpoint = await write_checkpoint(log, s, CheckpointFile(tmp_path / "c.jsonl"))
    assert checkpoint is not None
    # Replace the last two entries by others, re-hashed: a valid chain, but not the one signed.
    lines = log.path.read_bytes().splitlines(keepends=True)
    log.path.write_bytes(b"".join(lines[:4]))
    async with FileAuditLog(tmp_path / "a") as again:
        await again.append(make_entry(50))
        await again.append(make_entry(51))
    checked = await verify_with_checkpoints(again, [checkpoint])
    assert not checked.ok
    assert checked.report.fault is not None
    assert checked.report.fault.kind == FaultKind.CHANGED


async def test_truncating_the_postgres_log_is_detected(pg_url: str) -> None:
    s = signer()
    log = open_audit_log(pg_url)
    assert isinstance(log, PostgresAuditLog)
    async with log:
        for i in range(1, 9):
            await log.append(make_entry(i))
        store = checkpoint_store(log, Path("/nonexistent"))  # the log's own table
        checkpoint = await write_checkpoint(log, s, store)
        assert checkpoint is not None
        assert await store.latest(10) == [checkpoint.jws]
        await log.append(make_entry(9))
        assert (await verify_with_checkpoints(log, [checkpoint])).ok
        async with log._pool.connection() as conn:
            await conn.execute(f'DELETE FROM "{log.schema}".entries WHERE seq >= 6')
        checked = await verify_with_checkpoints(log, [checkpoint])
    assert not checked.ok
    assert checked.report.fault is not None
    assert checked.report.fault.kind == FaultKind.REMOVED


async def test_the_commands(tmp_path: Path) -> None:
    await _filled_file_log(tmp_path / "audit", 5)
    env = {"HUB_VAR_DIR": str(tmp_path / "var"), "HUB_AUDIT_LOG": str(tmp_path / "audit")}
    runner = CliRunner()

    def run(*args: str) -> tuple[int, str]:
        done = runner.invoke(main, ["audit", *args], env=env)
        return done.exit_code, done.output

    code, out = await asyncio.to_thread(run, "checkpoint")
    assert code == 0, out
    saved = tmp_path / "cp.jws"
    saved.write_text(out)
    assert (tmp_path / "var" / "audit-checkpoints.jsonl").read_text().strip() == out.strip()
    code, out = await asyncio.to_thread(run, "verify", "--checkpoint", str(saved))
    assert code == 0, out
    assert "holds checkpoint seq 5" in out
    lines = (tmp_path / "audit" / "audit.jsonl").read_bytes().splitlines(keepends=True)
    (tmp_path / "audit" / "audit.jsonl").write_bytes(b"".join(lines[:3]))
    code, out = await asyncio.to_thread(run, "verify", "--checkpoint", str(saved))
    assert code == 1
    assert "REMOVED" in out
    # Another hub's checkpoint, or a key that did not sign it, is refused outright.
    other = tmp_path / "other.jws"
    other.write_text(signer().sign(1, "ab" * 32))
    code, out = await asyncio.to_thread(run, "verify", "--checkpoint", str(other))
    assert code == 1
    assert "checkpoint refused" in out


async def test_an_empty_log_has_no_checkpoint(tmp_path: Path) -> None:
    async with FileAuditLog(tmp_path) as log:
        assert await write_checkpoint(log, signer(), CheckpointFile(tmp_path / "c")) is None


async def test_the_file_store_is_bounded(tmp_path: Path) -> None:
    s = signer()
    store = CheckpointFile(tmp_path / "c.jsonl", keep=3)
    for seq in range(1, 9):
        await store.save(read_checkpoint(s.sign(seq, "ab" * 32), s.public_key))
    kept = await store.latest(100)
    assert len(kept) <= 6
    assert [read_checkpoint(j, s.public_key).seq for j in kept][:3] == [8, 7, 6]


class _Watched(CheckpointFile):
    """A file store that tells when it has saved ``n`` checkpoints."""

    def __init__(self, path: Path) -> None:
        super().__init__(path)
        self.saved: list[int] = []
        self.changed = asyncio.Condition()

    async def save(self, checkpoint: Checkpoint) -> None:
        await super().save(checkpoint)
        async with self.changed:
            self.saved.append(checkpoint.seq)
            self.changed.notify_all()

    async def wait_for(self, n: int) -> None:
        async with self.changed:
            await asyncio.wait_for(self.changed.wait_for(lambda: len(self.saved) >= n), 10)


async def test_the_hub_writes_them_periodically_when_the_head_moves(tmp_path: Path) -> None:
    s = signer()
    store = _Watched(tmp_path / "c.jsonl")
    async with FileAuditLog(tmp_path / "a") as log:
        await log.append(make_entry(1))
        writer = asyncio.create_task(write_periodically(log, s, store, 0.01))
        try:
            await store.wait_for(1)
            await log.append(make_entry(2))
            await store.wait_for(2)
            await asyncio.sleep(0.1)  # idle periods: the head did not move, nothing written
        finally:
            writer.cancel()
            with pytest.raises(asyncio.CancelledError):
                await writer
    seqs = [read_checkpoint(j, s.public_key).seq for j in await store.latest(10)]
    assert seqs == [2, 1]
