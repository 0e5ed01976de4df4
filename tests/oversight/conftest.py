"""A demo audit history written once per module through the real file log (the generator's
own chain), and the facts the review reads from the shipped policy."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest
import pytest_asyncio

from hub.audit import FileAuditLog, SealedEntry
from hub.audit.entry import decode_entry
from hub.demo.history import History, write_history
from hub.model import SourceKind
from hub.oversight import ReviewFacts
from resolvers.catalogue import load_policy

END = datetime(2026, 11, 2, tzinfo=UTC)
DEMO_KINDS = {
    "marin-rms": SourceKind.RMS, "marin-alpr": SourceKind.ALPR, "cascade-rms": SourceKind.RMS,
    "cascade-cad": SourceKind.CAD, "harbor-rms": SourceKind.RMS, "harbor-cad": SourceKind.CAD,
    "sierra-alpr": SourceKind.ALPR,
}  # fmt: skip


@dataclass
class Trail:
    directory: Path
    history: History

    def entries(self) -> dict[int, SealedEntry]:
        lines = (self.directory / "audit.jsonl").read_bytes().splitlines()
        return {e.seq: e for e in map(decode_entry, lines)}


async def make_trail(directory: Path, *, misuse: bool) -> Trail:
    async with FileAuditLog(directory, fsync="never") as log:
        history = await write_history(log, end=END, misuse=misuse)
    return Trail(directory, history)


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def seeded(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Trail]:
    yield await make_trail(tmp_path_factory.mktemp("seeded"), misuse=True)


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def clean(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Trail]:
    yield await make_trail(tmp_path_factory.mktemp("clean"), misuse=False)


@pytest.fixture(scope="module")
def facts() -> ReviewFacts:
    return ReviewFacts.of(load_policy(None).data, DEMO_KINDS)
