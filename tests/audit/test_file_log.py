from __future__ import annotations

import asyncio
import errno
import os
from pathlib import Path

import msgspec
import pytest

import hub.audit.file_log as file_log
from hub.audit.chain import verify_file
from hub.audit.entry import GENESIS, decode_entry
from hub.audit.file_log import FileAuditLog
from hub.errors import AuditUnavailable
from tests.audit.conftest import make_entry


def lines_of(path: Path) -> list[bytes]:
    return path.read_bytes().splitlines()


async def test_default_directory_is_var_audit_under_the_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    async with FileAuditLog() as log:
        await log.append(make_entry(1))
    assert log.path == tmp_path / "var" / "audit" / "audit.jsonl"
    assert len(lines_of(log.path)) == 1
    assert (log.path.stat().st_mode & 0o777) == 0o600
    assert (log.path.parent.stat().st_mode & 0o777) == 0o700


async def test_an_entry_is_on_disk_and_synced_when_append_returns(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    synced_sizes: list[int] = []
    real_sync = file_log._datasync

    def recording_sync(fd: int) -> None:
        real_sync(fd)
        synced_sizes.append(os.fstat(fd).st_size)

    monkeypatch.setattr(file_log, "_datasync", recording_sync)
    async with FileAuditLog(tmp_path) as log:
        for n in range(1, 4):
            entry_hash = await log.append(make_entry(n))
            # Read back through a separate file handle: the line is there, whole...
            on_disk = lines_of(log.path)
            assert len(on_disk) == n
            assert decode_entry(on_disk[-1]).hash == entry_hash
            # ...and a sync covering it happened before append returned.
            assert synced_sizes
            assert synced_sizes[-1] >= log.path.stat().st_size
    assert len(synced_sizes) == 3


async def test_fsync_never_writes_without_syncing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[int] = []
    monkeypatch.setattr(file_log, "_datasync", calls.append)
    async with FileAuditLog(tmp_path, fsync="never") as log:
        await log.append(make_entry(1))
        assert len(lines_of(log.path)) == 1
    assert calls == []


def test_an_unknown_fsync_policy_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="fsync policy"):
        FileAuditLog(tmp_path, fsync="sometimes")  # type: ignore[arg-type]


async def test_a_restart_continues_the_chain(tmp_path: Path) -> None:
    async with FileAuditLog(tmp_path) as first:
        hashes = [await first.append(make_entry(n)) for n in range(5)]
    async with FileAuditLog(tmp_path) as second:
        assert second.head == (5, hashes[-1])
        await second.append(make_entry(6))
    report = verify_file(tmp_path)
    assert report.ok
    assert report.head_seq == 6
    assert decode_entry(lines_of(second.path)[5]).prev == hashes[-1]


async def test_a_torn_last_line_is_set_aside_and_the_chain_continues(tmp_path: Path) -> None:
    async with FileAuditLog(tmp_path) as log:
        last = [await log.append(make_entry(n)) for n in range(3)][-1]
    with log.path.open("ab") as f:
        f.write(b'{"seq":4,"prev":"' + last.encode() + b'","hash":"abc","agen')  # cut short
    async with FileAuditLog(tmp_path) as log:
        assert log.head == (3, last)
        await log.append(make_entry(4))
    assert verify_file(tmp_path).ok
    torn = await asyncio.to_thread(lambda: list(tmp_path.glob("audit.jsonl.torn-*")))
    assert len(torn) == 1
    assert torn[0].read_bytes().endswith(b'"agen')


async def test_a_log_that_is_only_a_torn_line_starts_over(tmp_path: Path) -> None:
    (tmp_path / "audit.jsonl").write_bytes(b'{"seq":1,"pr')
    async with FileAuditLog(tmp_path) as log:
        assert log.head == (0, GENESIS)
        await log.append(make_entry(1))
    assert verify_file(tmp_path).ok


async def test_an_unreadable_last_entry_refuses_to_open(tmp_path: Path) -> None:
    (tmp_path / "audit.jsonl").write_bytes(b"not an entry\n")
    log = FileAuditLog(tmp_path)
    with pytest.raises(AuditUnavailable, match="verify"):
        await log.open()
    with pytest.raises(AuditUnavailable):
        await log.append(make_entry(1))
    await log.close()


async def test_a_second_writer_is_refused(tmp_path: Path) -> None:
    async with FileAuditLog(tmp_path) as first:
        await first.append(make_entry(1))
        second = FileAuditLog(tmp_path)
        with pytest.raises(AuditUnavailable, match="in use"):
            await second.append(make_entry(2))
        await second.close()
        await first.append(make_entry(3))
    assert verify_file(tmp_path).head_seq == 2


async def test_a_failed_sync_is_unaudited_and_cut_back(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_sync = file_log._datasync
    fail = {"next": False}

    def flaky_sync(fd: int) -> None:
        if fail["next"]:
            fail["next"] = False
            raise OSError(errno.EIO, "I/O error")
        real_sync(fd)

    monkeypatch.setattr(file_log, "_datasync", flaky_sync)
    async with FileAuditLog(tmp_path) as log:
        await log.append(make_entry(1))
        fail["next"] = True
        with pytest.raises(AuditUnavailable):
            await log.append(make_entry(2))
        assert len(lines_of(log.path)) == 1  # the unacknowledged line was cut back
        await log.append(make_entry(3))
    report = verify_file(tmp_path)
    assert report.ok
    assert report.head_seq == 2


async def test_appends_after_close_are_refused(tmp_path: Path) -> None:
    log = FileAuditLog(tmp_path)
    await log.append(make_entry(1))
    await log.close()
    with pytest.raises(AuditUnavailable, match="closed"):
        await log.append(make_entry(2))


async def test_2000_concurrent_appends_make_2000_entries_in_one_chain(tmp_path: Path) -> None:
    async with FileAuditLog(tmp_path) as log:
        hashes = await asyncio.gather(*(log.append(make_entry(n)) for n in range(2000)))
    lines = lines_of(log.path)
    assert len(lines) == 2000
    assert len(set(hashes)) == 2000
    assert [decode_entry(line).hash for line in lines] == list(hashes)  # each caller got its own
    assert sorted(decode_entry(line).trace_id for line in lines) == sorted(
        f"{n:032x}" for n in range(2000)
    )
    report = verify_file(tmp_path)
    assert report.ok
    assert report.head_seq == 2000


async def test_overload_is_refused_not_queued_without_bound(tmp_path: Path) -> None:
    async with FileAuditLog(tmp_path, max_pending=10) as log:
        results = await asyncio.gather(
            *(log.append(make_entry(n)) for n in range(50)), return_exceptions=True
        )
    refused = [r for r in results if isinstance(r, AuditUnavailable)]
    written = [r for r in results if isinstance(r, str)]
    assert refused
    assert written
    assert len(refused) + len(written) == 50
    assert len(lines_of(log.path)) == len(written)
    assert verify_file(tmp_path).ok


async def test_a_cancelled_caller_does_not_tear_the_write(tmp_path: Path) -> None:
    async with FileAuditLog(tmp_path) as log:
        tasks = [asyncio.create_task(log.append(make_entry(n))) for n in range(200)]
        await asyncio.sleep(0)
        for task in tasks[::3]:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    # Entries handed over before the cancel are written whole; the chain stays one chain.
    report = verify_file(tmp_path)
    assert report.ok
    assert 1 <= report.head_seq <= 200


async def test_tail_returns_the_last_entries_then_follows(tmp_path: Path) -> None:
    async with FileAuditLog(tmp_path, poll_interval=0.01) as log:
        for n in range(10):
            await log.append(make_entry(n))
        last3 = [decode_entry(r.line).seq async for r in log.tail(3)]
        assert last3 == [8, 9, 10]

        seen: list[int] = []
        caught_up = asyncio.Event()

        async def follow() -> None:
            async for r in log.tail(2, follow=True):
                seen.append(decode_entry(r.line).seq)
                if len(seen) == 2:
                    caught_up.set()
                if len(seen) == 4:
                    return

        follower = asyncio.create_task(follow())
        await asyncio.wait_for(caught_up.wait(), 5)
        await log.append(make_entry(11))
        await log.append(make_entry(12))
        await asyncio.wait_for(follower, 5)
    assert seen == [9, 10, 11, 12]


async def test_scan_reads_entries_longer_than_a_read_chunk(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(file_log, "_READ_CHUNK", 64)
    monkeypatch.setattr(file_log, "_BLOCK", 32)
    async with FileAuditLog(tmp_path) as log:
        for n in range(5):
            await log.append(make_entry(n))
        seqs = [msgspec.json.decode(r.line)["seq"] async for r in log.scan()]
        tail = [msgspec.json.decode(r.line)["seq"] async for r in log.tail(2)]
    assert seqs == [1, 2, 3, 4, 5]
    assert tail == [4, 5]
    async with FileAuditLog(tmp_path) as log:  # recovery reads the last line block by block
        assert log.head[0] == 5
