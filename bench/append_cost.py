"""What an audit log append costs: µs per entry for a log (``hub.audit``), one at a time and under
concurrency."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass

from hub.audit.entry import AuditEntry, RecordAccess, SourceCall
from hub.audit.log import AuditLog


@dataclass(frozen=True, slots=True)
class AppendCost:
    appends: int
    concurrency: int
    seconds: float

    @property
    def us_per_append(self) -> float:
        return self.seconds / self.appends * 1e6


def sample_entry(records: int = 10) -> AuditEntry:
    """A typical search's entry: four sources, ``records`` records returned."""
    return AuditEntry(
        at="2024-01-01T00:00:00.000000+00:00",
        trace_id="0" * 32,
        operation="search",
        outcome="OK",
        user="bench",
        agency="CA0990000",
        roles=("analyst",),
        purpose="C",
        criteria={"text": "Reyes", "limit": 50},
        sources=tuple(
            SourceCall(
                source=f"source-{i}", agency="CA0990000", status="OK", count=3, latency_ms=12.5
            )
            for i in range(4)
        ),
        records=tuple(
            RecordAccess(id=f"record-{i:06d}", owner="CA0990000") for i in range(records)
        ),
        duration_ms=20.0,
    )


async def measure_append(
    log: AuditLog, appends: int = 1000, *, concurrency: int = 1, records: int = 10
) -> AppendCost:
    """Append ``appends`` sample entries, ``concurrency`` at a time, and time it."""
    entry = sample_entry(records)
    remaining = appends

    async def worker() -> None:
        nonlocal remaining
        while remaining > 0:
            remaining -= 1
            await log.append(entry)

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(max(1, concurrency))))
    return AppendCost(appends, concurrency, time.perf_counter() - started)
