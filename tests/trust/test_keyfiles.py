from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from hub.trust.keyfiles import read_or_create


def test_concurrent_creators_all_read_one_whole_key(tmp_path: Path) -> None:
    path = tmp_path / "var" / "key.pem"
    start = threading.Barrier(8)

    def worker(i: int) -> bytes:
        def make() -> bytes:
            time.sleep(0.02)  # slow enough that the others look while this one writes
            return f"-----KEY {i}-----\n".encode() * 50

        start.wait()
        return read_or_create(path, make)

    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(worker, range(8)))
    assert len(set(results)) == 1
    assert results[0] == path.read_bytes()
    assert results[0].count(b"-----KEY") == 50  # whole, not half written
    assert path.stat().st_mode & 0o077 == 0
    assert sorted(p.name for p in path.parent.iterdir()) == ["key.pem"]  # no temporaries left


def test_an_existing_key_is_read_not_remade(tmp_path: Path) -> None:
    path = tmp_path / "key"
    path.write_bytes(b"kept")
    assert read_or_create(path, lambda: b"new") == b"kept"
