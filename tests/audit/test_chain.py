"""The four tamperings, on a real audit file and (property-based) on any chain and position."""

from __future__ import annotations

from pathlib import Path

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hub.audit.chain import FaultKind, verify_entries, verify_file
from hub.audit.entry import GENESIS, RawEntry, canonical_body, chain_hash, seal
from hub.audit.file_log import FileAuditLog
from tests.audit.conftest import make_entry


def build_chain(n: int) -> list[bytes]:
    lines, prev = [], GENESIS
    for seq in range(1, n + 1):
        line, prev = seal(canonical_body(make_entry(seq)), seq, prev)
        lines.append(line)
    return lines


def raw(lines: list[bytes]) -> list[RawEntry]:
    return [RawEntry(f"line {i}", line) for i, line in enumerate(lines, start=1)]


def changed(line: bytes, *, rehash: bool) -> bytes:
    obj = msgspec.json.decode(line)
    obj["user"] = "someone-else"
    if rehash:
        seq, prev = obj.pop("seq"), obj.pop("prev")
        obj.pop("hash")
        body = msgspec.json.encode(obj, order="sorted")
        return seal(body, seq, prev)[0]
    return msgspec.json.encode(obj)


def forged(seq: int, prev: str, *, valid_hash: bool = True) -> bytes:
    line, entry_hash = seal(canonical_body(make_entry(9999, user="mallory")), seq, prev)
    return line if valid_hash else line.replace(entry_hash.encode(), b"f" * 64)


# -- a real file --


@pytest.fixture
async def audit_file(tmp_path: Path) -> Path:
    async with FileAuditLog(tmp_path) as log:
        for n in range(1, 11):
            await log.append(make_entry(n))
    return log.path


def rewrite(path: Path, lines: list[bytes]) -> None:
    path.write_bytes(b"".join(line + b"\n" for line in lines))


def read(path: Path) -> list[bytes]:
    return path.read_bytes().splitlines()


def test_a_clean_file_verifies(audit_file: Path) -> None:
    report = verify_file(audit_file.parent)
    assert report.ok
    assert report.fault is None
    assert (report.entries, report.head_seq) == (10, 10)
    assert "chain intact" in report.describe()


def test_an_empty_log_verifies(tmp_path: Path) -> None:
    (tmp_path / "audit.jsonl").write_bytes(b"")
    assert verify_file(tmp_path).ok


def test_a_changed_entry_is_named(audit_file: Path) -> None:
    lines = read(audit_file)
    lines[3] = lines[3].replace(b'"user":"u1"', b'"user":"u9"')
    rewrite(audit_file, lines)
    report = verify_file(audit_file)
    assert report.fault is not None
    assert (report.fault.kind, report.fault.seq, report.fault.position) == (
        FaultKind.CHANGED,
        4,
        "line 4",
    )
    assert report.head_seq == 3


def test_a_changed_and_rehashed_entry_is_named(audit_file: Path) -> None:
    lines = read(audit_file)
    lines[3] = changed(lines[3], rehash=True)
    rewrite(audit_file, lines)
    fault = verify_file(audit_file).fault
    assert fault is not None
    assert (fault.kind, fault.seq, fault.position) == (FaultKind.CHANGED, 4, "line 4")


def test_a_removed_entry_is_named(audit_file: Path) -> None:
    lines = read(audit_file)
    del lines[4]
    rewrite(audit_file, lines)
    fault = verify_file(audit_file).fault
    assert fault is not None
    assert (fault.kind, fault.seq, fault.position) == (FaultKind.REMOVED, 5, "line 5")
    assert "seq 5 missing before entry seq 6" in fault.detail


def test_an_inserted_entry_is_named(audit_file: Path) -> None:
    lines = read(audit_file)
    lines.insert(6, forged(7, "a" * 64))
    rewrite(audit_file, lines)
    fault = verify_file(audit_file).fault
    assert fault is not None
    assert (fault.kind, fault.position) == (FaultKind.INSERTED, "line 7")


def test_a_forgery_that_copies_a_real_entrys_link_is_the_one_named(audit_file: Path) -> None:
    lines = read(audit_file)
    real_prev = msgspec.json.decode(lines[6])["prev"]
    lines.insert(6, forged(7, real_prev))  # seq 7, linked to seq 6, valid hash
    rewrite(audit_file, lines)
    fault = verify_file(audit_file).fault
    assert fault is not None
    assert (fault.kind, fault.seq, fault.position) == (FaultKind.INSERTED, 7, "line 7")


def test_reordered_entries_are_named(audit_file: Path) -> None:
    lines = read(audit_file)
    lines[2], lines[7] = lines[7], lines[2]
    rewrite(audit_file, lines)
    fault = verify_file(audit_file).fault
    assert fault is not None
    assert (fault.kind, fault.seq, fault.position) == (FaultKind.REORDERED, 8, "line 3")


def test_a_line_that_is_not_an_entry_is_reported(audit_file: Path) -> None:
    lines = read(audit_file)
    lines[5] = b"{garbage"
    rewrite(audit_file, lines)
    fault = verify_file(audit_file).fault
    assert fault is not None
    assert (fault.kind, fault.position) == (FaultKind.CHANGED, "line 6")


def test_a_recorded_head_catches_a_cut_tail(audit_file: Path) -> None:
    head = (verify_file(audit_file).head_seq, verify_file(audit_file).head_hash)
    rewrite(audit_file, read(audit_file)[:-2])
    assert verify_file(audit_file).ok  # the chain alone cannot see a cut tail
    fault = verify_file(audit_file, head=head).fault
    assert fault is not None
    assert (fault.kind, fault.seq) == (FaultKind.REMOVED, 9)


def test_a_recorded_head_catches_a_rehashed_last_entry(audit_file: Path) -> None:
    report = verify_file(audit_file)
    lines = read(audit_file)
    lines[-1] = changed(lines[-1], rehash=True)
    rewrite(audit_file, lines)
    assert verify_file(audit_file).ok
    fault = verify_file(audit_file, head=(report.head_seq, report.head_hash)).fault
    assert fault is not None
    assert (fault.kind, fault.seq) == (FaultKind.CHANGED, 10)


# -- any chain, any position --

sizes = st.integers(min_value=3, max_value=25)


@settings(max_examples=60)
@given(data=st.data(), n=sizes, rehash=st.booleans())
def test_any_change_is_named(data: st.DataObject, n: int, rehash: bool) -> None:
    lines = build_chain(n)
    # A re-hashed change to the last entry is invisible without a recorded head.
    k = data.draw(st.integers(0, n - 2 if rehash else n - 1))
    lines[k] = changed(lines[k], rehash=rehash)
    fault = verify_entries(raw(lines)).fault
    assert fault is not None
    assert (fault.kind, fault.seq, fault.position) == (FaultKind.CHANGED, k + 1, f"line {k + 1}")


@settings(max_examples=60)
@given(data=st.data(), n=sizes)
def test_any_removal_is_named(data: st.DataObject, n: int) -> None:
    lines = build_chain(n)
    k = data.draw(st.integers(0, n - 2))  # not the last: a cut tail needs a recorded head
    count = data.draw(st.integers(1, n - 1 - k))
    del lines[k : k + count]
    fault = verify_entries(raw(lines)).fault
    assert fault is not None
    assert (fault.kind, fault.seq, fault.position) == (FaultKind.REMOVED, k + 1, f"line {k + 1}")


@settings(max_examples=80)
@given(
    data=st.data(),
    n=sizes,
    shape=st.sampled_from(["random", "bad-hash", "copied-link", "replayed"]),
)
def test_any_insertion_is_named(data: st.DataObject, n: int, shape: str) -> None:
    lines = build_chain(n)
    # Before an existing entry (a forgery after the last one is just a well-formed append). A
    # forgery copying the link of the last entry cannot be told from it: two ends, no successor.
    k = data.draw(st.integers(0, n - 2 if shape == "copied-link" else n - 1))
    seq_here = k + 1
    prev_here = msgspec.json.decode(lines[k])["prev"]
    if shape == "random":
        line = forged(
            data.draw(st.integers(1, 10_000)),
            data.draw(st.text("0123456789abcdef", min_size=64, max_size=64)),
        )
    elif shape == "bad-hash":
        line = forged(seq_here, prev_here, valid_hash=False)
    elif shape == "copied-link":
        line = forged(seq_here, prev_here)
    else:
        line = lines[data.draw(st.integers(0, n - 1))]
    lines.insert(k, line)
    fault = verify_entries(raw(lines)).fault
    assert fault is not None
    # A replay put just before its original is the same bytes twice: either may be named.
    allowed = {f"line {k + 1}", f"line {k + 2}"} if line == lines[k + 1] else {f"line {k + 1}"}
    assert fault.kind == FaultKind.INSERTED
    assert fault.position in allowed


@settings(max_examples=80)
@given(data=st.data(), n=sizes, move=st.booleans())
def test_any_reordering_is_named(data: st.DataObject, n: int, move: bool) -> None:
    lines = build_chain(n)
    i = data.draw(st.integers(0, n - 1))
    j = data.draw(st.integers(0, n - 1).filter(lambda x: x != i))
    if move:
        lines.insert(j, lines.pop(i))
        # The first position that holds the wrong entry.
        first = min(i, j)
        expected_seq = (i + 2) if i < j else (i + 1)
    else:
        lines[i], lines[j] = lines[j], lines[i]
        first = min(i, j)
        expected_seq = max(i, j) + 1
    fault = verify_entries(raw(lines)).fault
    assert fault is not None
    assert (fault.kind, fault.seq, fault.position) == (
        FaultKind.REORDERED,
        expected_seq,
        f"line {first + 1}",
    )


def test_hashes_are_sha256_hex() -> None:
    line = build_chain(1)[0]
    stored = msgspec.json.decode(line)["hash"]
    assert len(stored) == 64
    assert int(stored, 16) >= 0
    assert stored == chain_hash(1, GENESIS, canonical_body(make_entry(1)))
