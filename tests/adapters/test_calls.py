"""Many calls for one request: batches in order, and calls run together whose first failure is
raised as itself (its cause kept) with the others cancelled."""

from __future__ import annotations

import asyncio

import pytest

from hub.adapters.calls import batches, run_together
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
