"""Key files a hub makes for itself on first use (demo and dev keys, the cache key).

Several workers may start at once on one var directory: the file must appear whole or not at
all, or a worker reads half of another's key. It is written to a private temporary file and
hard-linked into place, which fails if the name exists, so exactly one content wins and every
worker reads that one.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Callable
from pathlib import Path


def read_or_create(path: Path, make: Callable[[], bytes]) -> bytes:
    """The content of ``path``; if there is none yet, ``make()``'s, written atomically (0600)."""
    if path.exists():
        return path.read_bytes()
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "wb") as out:  # mkstemp makes it 0600
            out.write(make())
            out.flush()
            os.fsync(out.fileno())
        with contextlib.suppress(FileExistsError):  # another worker won: read theirs
            os.link(temporary, path)
    finally:
        os.unlink(temporary)
    return path.read_bytes()
