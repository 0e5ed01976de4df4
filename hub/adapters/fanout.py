"""Ask many sources at once: per-source timeout, cancellation, and a status for every source.

A source that times out, fails or is refused by policy is reported, never silently empty: the
caller gets one ``SourceStatus`` per source it named, whatever happened to it.
"""

from __future__ import annotations

import asyncio
import enum
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

from hub.adapters.base import Adapter
from hub.errors import SourceError
from hub.model import Record

log = logging.getLogger(__name__)


class Outcome(enum.StrEnum):
    OK = "OK"
    NO_HIT = "NO_HIT"
    TIMEOUT = "TIMEOUT"
    ERROR = "ERROR"
    DENIED = "DENIED"
    SKIPPED = "SKIPPED"


# When one source is asked several times in one request, its reported status is the worst.
SEVERITY = {
    Outcome.SKIPPED: 0,
    Outcome.NO_HIT: 1,
    Outcome.OK: 2,
    Outcome.DENIED: 3,
    Outcome.ERROR: 4,
    Outcome.TIMEOUT: 5,
}


@dataclass(slots=True)
class SourceStatus:
    source: str
    agency: str
    status: Outcome
    count: int = 0
    latency_ms: float | None = None
    message: str | None = None
    # monotonic ns, for the audit span of this call
    started_ns: int = 0
    ended_ns: int = 0
    # answered from the hub's source cache, not by the vendor just now
    cached: bool = False


@dataclass(slots=True)
class SourceAnswer:
    adapter: Adapter
    status: SourceStatus
    records: list[Record]


Call = Callable[[Adapter], Awaitable[list[Record]]]
# Told of each answer in that source's own task, as soon as it is in.
Answered = Callable[[SourceAnswer], Awaitable[None]]


async def ask_source(
    adapter: Adapter, call: Call, answered: Answered | None = None
) -> SourceAnswer:
    """One source, bounded by its own timeout; every failure becomes a status. ``answered``
    is awaited with the answer as soon as it is in, in this source's task, while other sources
    may still be out (what is done per answer is then off the path of the slowest)."""
    status = SourceStatus(adapter.name, adapter.config.agency.ori, Outcome.OK)
    status.started_ns = time.monotonic_ns()
    records: list[Record] = []
    try:
        async with asyncio.timeout(adapter.config.timeout_ms / 1000):
            records = await call(adapter)
    except TimeoutError:
        status.status = Outcome.TIMEOUT
        status.message = f"no answer within {adapter.config.timeout_ms} ms"
    except SourceError as exc:
        status.status = Outcome(exc.status)
        status.message = exc.message
    except Exception as exc:
        # An adapter bug must not take the other sources down; its text may hold CJI.
        log.exception("adapter %s failed unexpectedly (%s)", adapter.name, type(exc).__name__)
        status.status = Outcome.ERROR
        status.message = "the adapter failed unexpectedly"
    status.ended_ns = time.monotonic_ns()
    status.latency_ms = round((status.ended_ns - status.started_ns) / 1e6, 3)
    if status.status is Outcome.OK:
        status.count = len(records)
        if not records:
            status.status = Outcome.NO_HIT
    answer = SourceAnswer(adapter, status, records)
    if answered is not None:
        await answered(answer)
    return answer


async def fan_out(
    adapters: Sequence[Adapter],
    call: Call,
    answered: Answered | None = None,
) -> list[SourceAnswer]:
    """Every source in parallel; answers in the order of ``adapters``. ``answered`` is awaited
    with each answer as it comes in (work per source done while the slower ones are still out,
    not after the slowest).

    Each call is bounded by its source's timeout, so this returns no later than the slowest
    timeout. If the caller is cancelled, every outstanding source call is cancelled with it.
    """
    if not adapters:
        return []
    return list(await asyncio.gather(*(ask_source(a, call, answered) for a in adapters)))
