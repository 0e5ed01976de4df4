"""Many vendor calls for one request: ids and plates cut into the batches a vendor accepts,
calls run together, the first failure raised as itself (every exception leaving an adapter is a
``SourceError``, not a group of them: ``hub.adapters.base``), and a paged answer followed with
the next page asked for before this one is mapped (``follow_pages``)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Coroutine, Iterable, Iterator, Sequence
from typing import Any, TypeVar

T = TypeVar("T")
P = TypeVar("P")


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


async def follow_pages(
    ask: Callable[[int], Awaitable[P]],
    more: Callable[[P, int], bool],
    take: Callable[[P], None],
) -> None:
    """Pages 1, 2, ... of one answer, in order: ``ask(n)`` fetches page n, ``more(page, n)``
    says whether page n + 1 is wanted, ``take(page)`` handles a page (maps its records).

    Each page is taken once the next one has been asked for: the vendor prepares page n + 1
    while the hub maps page n, rather than waiting for it. The vendor is asked for exactly the
    pages that one page after another would ask for, in the same order. A failure (of a page,
    or of ``take``) is raised as it is, and the page still out is cancelled."""
    page = 1
    answer = await ask(page)
    following: asyncio.Future[P] | None = None
    try:
        while True:
            if more(answer, page):
                page += 1
                following = asyncio.ensure_future(ask(page))
                # One turn of the loop: the request leaves before this page is taken.
                await asyncio.sleep(0)
            take(answer)
            if following is None:
                return
            answer = await following
            following = None
    finally:
        if following is not None and not following.done():
            following.cancel()
            # Nobody awaits it any more: its outcome is read here, not reported as lost.
            following.add_done_callback(_read_outcome)


def _read_outcome(future: asyncio.Future[Any]) -> None:
    if not future.cancelled():
        future.exception()
