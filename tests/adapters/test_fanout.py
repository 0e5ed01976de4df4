"""fan_out against real simulators: parallel, bounded by each source's timeout, every outcome
reported."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import aiohttp
import pytest

from hub.adapters.base import Adapter, SearchRequest
from hub.adapters.fanout import Outcome, SourceAnswer, fan_out
from hub.adapters.registry import AdapterRegistry
from hub.demo.runner import RunningWorld, start_world
from hub.demo.simulator import FaultKind
from hub.model import EntityKind
from tests.adapters.conformance import small_world

PEOPLE = SearchRequest(kinds=frozenset({EntityKind.PERSON}), text="Reyes")


@pytest.fixture
async def running() -> AsyncIterator[RunningWorld]:
    world = await start_world(small_world(), latency_ms=150, timeout_ms=1000)
    yield world
    await world.stop()


@pytest.fixture
async def adapters(running: RunningWorld) -> AsyncIterator[list[Adapter]]:
    registry = AdapterRegistry.from_entry_points()
    async with aiohttp.ClientSession() as session:
        yield [registry.get(s.kind)(s, session) for s in running.sources]


def _rms(adapters: list[Adapter]) -> list[Adapter]:
    return [a for a in adapters if EntityKind.PERSON in a.entity_kinds]


async def test_sources_are_asked_in_parallel(
    running: RunningWorld, adapters: list[Adapter]
) -> None:
    chosen = _rms(adapters)
    answers = await fan_out(chosen, lambda a: a.search(PEOPLE))
    assert [a.adapter.name for a in answers] == [a.name for a in chosen]
    logs = [running.simulators[a.name].requests for a in chosen]
    assert all(logs)
    # Structural proof: every source had been asked before any of them answered.
    last_start = max(log[0].started_ns for log in logs)
    first_end = min(log[0].finished_ns or 0 for log in logs)
    assert last_start < first_end


async def test_each_answer_is_told_as_it_arrives_not_after_the_slowest(
    running: RunningWorld, adapters: list[Adapter]
) -> None:
    chosen = _rms(adapters)
    slow = chosen[0]  # first in order, last to answer
    running.simulators[slow.name].add_fault(FaultKind.LATENCY, delay_ms=400)
    told: list[tuple[str, Outcome]] = []

    async def answered(answer: SourceAnswer) -> None:
        told.append((answer.adapter.name, answer.status.status))

    answers = await fan_out(chosen, lambda a: a.search(PEOPLE), answered)
    running.simulators[slow.name].clear_faults()
    # Every source told once, with the very status fan_out returns for it; the answers
    # themselves stay in the order of the sources.
    assert sorted(told) == sorted((a.adapter.name, a.status.status) for a in answers)
    assert [a.adapter.name for a in answers] == [a.name for a in chosen]
    # The fast ones were told while the slow one was still out.
    assert told[-1][0] == slow.name


async def test_each_fault_is_reported_and_others_still_answer(
    running: RunningWorld, adapters: list[Adapter]
) -> None:
    chosen = _rms(adapters)
    faults = [FaultKind.TIMEOUT, FaultKind.ERROR_500, FaultKind.MALFORMED, FaultKind.TRUNCATED]
    expected = [Outcome.TIMEOUT, Outcome.ERROR, Outcome.ERROR, Outcome.ERROR]
    for fault, outcome in zip(faults, expected, strict=True):
        broken = chosen[0]
        running.simulators[broken.name].clear_faults()
        running.simulators[broken.name].add_fault(fault, delay_ms=5000)
        answers = await fan_out(chosen, lambda a: a.search(PEOPLE))
        by_name = {a.adapter.name: a for a in answers}
        assert by_name[broken.name].status.status is outcome, fault
        assert by_name[broken.name].status.message
        assert by_name[broken.name].records == []
        for other in chosen[1:]:
            assert by_name[other.name].status.status in (Outcome.OK, Outcome.NO_HIT)
    running.simulators[chosen[0].name].clear_faults()


async def test_timeout_bounds_the_whole_fan_out(
    running: RunningWorld, adapters: list[Adapter]
) -> None:
    chosen = _rms(adapters)
    running.simulators[chosen[0].name].add_fault(FaultKind.TIMEOUT, delay_ms=30_000)
    loop = asyncio.get_running_loop()
    started = loop.time()
    answers = await fan_out(chosen, lambda a: a.search(PEOPLE))
    elapsed = loop.time() - started
    assert answers[0].status.status is Outcome.TIMEOUT
    assert elapsed < 2.5  # the source's timeout is 1 s, not the vendor's 30 s


async def test_cancelling_the_caller_cancels_every_source(
    running: RunningWorld, adapters: list[Adapter]
) -> None:
    chosen = _rms(adapters)
    for a in chosen:
        running.simulators[a.name].add_fault(FaultKind.LATENCY, delay_ms=800)
    task = asyncio.create_task(fan_out(chosen, lambda a: a.search(PEOPLE)))
    await asyncio.sleep(0.3)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


async def test_nothing_to_ask_is_nothing() -> None:
    assert await fan_out([], lambda a: a.search(PEOPLE)) == []
