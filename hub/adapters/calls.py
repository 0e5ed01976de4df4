"""Many vendor calls for one request: ids and plates cut into the batches a vendor accepts, and
calls run together, the first failure raised as itself (every exception leaving an adapter is a
``SourceError``, not a group of them: ``hub.adapters.base``)."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine, Iterable, Iterator, Sequence
from typing import Any, TypeVar

T = TypeVar("T")


def batches(items: Sequence[T], size: int) -> Iterator[Sequence[T]]:
    """``items`` in order, ``size`` at a time (slices: a list's are lists, a tuple's tuples)."""
    for start in range(0, len(items), size):
        yield items[start : start + size]


async def run_together(jobs: Iterable[Coroutine[Any, Any, T]]) -> list[T]:
    """Every job at once, answers in the order of ``jobs``. The first to fail cancels the others
    (and waits for them) and is raised as it is, its own cause kept."""
    coroutines = list(jobs)
    if len(coroutines) == 1:
        return [await coroutines[0]]
    failed: Exception | None = None
    try:
        async with asyncio.TaskGroup() as group:
            tasks = [group.create_task(c) for c in coroutines]
    except ExceptionGroup as group_failed:
        failed = group_failed.exceptions[0]
    if failed is not None:
        # Raised outside the handler, so the group does not become its context.
        raise failed
    return [task.result() for task in tasks]
