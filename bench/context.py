"""What every scenario runs with: the mode, a scratch directory, the load client, progress."""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

import aiohttp

T = TypeVar("T")


@dataclass(slots=True)
class BenchContext:
    quick: bool
    # Scratch space for audit logs and the demo signing key; removed after the run.
    base_dir: Path
    session: aiohttp.ClientSession
    # Smoke tests shrink every scenario further than --quick (shape, not timing).
    tiny: bool = False
    verbose: bool = True
    _dirs: int = field(default=0, repr=False)

    def pick(self, quick: T, full: T, tiny: T | None = None) -> T:
        """The figure for this mode: ``tiny`` for smoke tests, ``quick``, or ``full``."""
        if self.tiny and tiny is not None:
            return tiny
        return quick if self.quick or self.tiny else full

    def scratch(self, name: str) -> Path:
        """A fresh directory for one group of hubs (own audit logs, own chain)."""
        self._dirs += 1
        path = self.base_dir / f"{self._dirs:02d}-{name}"
        path.mkdir(parents=True)
        return path

    def progress(self, message: str) -> None:
        if self.verbose:
            print(f"  .. {message}", file=sys.stderr, flush=True)
