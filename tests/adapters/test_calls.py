"""Many calls for one request: batches in order, and calls run together whose first failure is
raised as itself (its cause kept) with the others cancelled."""

from __future__ import annotations

import asyncio

import pytest

from hub.adapters.calls import batches, follow_pages, run_together
from hub.errors import SourceUnavailable


def test_batches_keep_the_order_and_the_kind_of_sequence() -> None:
    assert list(batches([1, 2, 3, 4, 5], 2)) == [[1, 2], [3, 4], [5]]
    assert list(batches(("a", "b"), 5)) == [("a", "b")]
    assert list(batches([], 3)) == []


async def test_answers_come_in_the_order_of_the_jobs() -> None:
    async def after(delay: float, value: int) -> int:
        await asyncio.sleep(delay)
        return value

    assert await run_together([after(0.03, 1), after(0.0, 2), after(0.01, 3)]) == [1, 2, 3]
    assert await run_together([after(0.0, 7)]) == [7]
    assert await run_together([]) == []


async def test_the_first_failure_is_raised_as_itself_and_the_others_are_cancelled() -> None:
    cancelled = asyncio.Event()

    async def fails() -> int:
        await asyncio.sleep(0.01)
        try:
            raise OSError("connection reset")
        except OSError as exc:
            raise SourceUnavailable("marin-rms", "vendor unreachable") from exc

    async def slow() -> int:
        try:
            await asyncio.sleep(10)
        except asyncio.CancelledError:
            cancelled.set()
            raise
        return 1

    with pytest.raises(SourceUnavailable) as raised:
        await run_together([slow(), fails()])
    assert isinstance(raised.value.__cause__, OSError)  # the vendor failure, not a group
    assert cancelled.is_set()


class _Pages:
    """A paged answer of ``count`` pages; what was asked and taken, in the order it happened."""

    def __init__(self, count: int, *, fail_at: int | None = None, delay: float = 0.0) -> None:
        self.count, self.fail_at, self.delay = count, fail_at, delay
        self.events: list[str] = []
        self.cancelled: list[int] = []

    async def ask(self, page: int) -> int:
        self.events.append(f"ask {page}")  # the request leaves at the call's first step
        try:
            await asyncio.sleep(self.delay)
        except asyncio.CancelledError:
            self.cancelled.append(page)
            raise
        if page == self.fail_at:
            raise SourceUnavailable("marin-rms", f"page {page} failed")
        return page

    def more(self, answer: int, page: int) -> bool:
        assert answer == page
        return page < self.count

    def take(self, answer: int) -> None:
        self.events.append(f"take {answer}")


async def test_pages_are_asked_in_order_each_before_the_previous_is_taken() -> None:
    pages = _Pages(3)
    await follow_pages(pages.ask, pages.more, pages.take)
    # Exactly the pages wanted, in order; page n + 1 left before page n was mapped.
    assert pages.events == ["ask 1", "ask 2", "take 1", "ask 3", "take 2", "take 3"]
    one = _Pages(1)
    await follow_pages(one.ask, one.more, one.take)
    assert one.events == ["ask 1", "take 1"]


async def test_a_failing_page_is_raised_as_itself() -> None:
    pages = _Pages(4, fail_at=3)
    with pytest.raises(SourceUnavailable, match="page 3"):
        await follow_pages(pages.ask, pages.more, pages.take)
    assert pages.events == ["ask 1", "ask 2", "take 1", "ask 3", "take 2"]


async def test_when_taking_a_page_fails_the_page_still_out_is_cancelled(
    caplog: pytest.LogCaptureFixture,
) -> None:
    pages = _Pages(3, fail_at=2, delay=0.05)

    def take(answer: int) -> None:
        raise ValueError(f"page {answer} is not Northwind's")

    with pytest.raises(ValueError, match="page 1"):
        await follow_pages(pages.ask, pages.more, take)
    await asyncio.sleep(0.1)
    assert pages.cancelled == [2]
    # Its outcome was read: nothing logged as an exception never retrieved.
    assert "never retrieved" not in caplog.text


async def test_cancelling_the_caller_cancels_the_page_out() -> None:
    pages = _Pages(3, delay=0.2)
    task = asyncio.create_task(follow_pages(pages.ask, pages.more, pages.take))
    await asyncio.sleep(0.3)  # page 1 is in and taken; page 2 is out
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert pages.cancelled == [2]
    assert pages.events == ["ask 1", "ask 2", "take 1"]
