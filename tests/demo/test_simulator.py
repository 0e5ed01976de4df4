"""The fault machinery every simulator shares (hub/demo/simulator.py), on a real server."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator

import aiohttp
import pytest

from hub.demo.northwind import NorthwindSimulator
from hub.demo.simulator import FaultKind, Simulator
from tests.adapters.conformance import small_world

SYSTEM = "marin-rms"


@pytest.fixture
async def sim() -> AsyncIterator[Simulator]:
    world = small_world()
    spec = world.system(SYSTEM)
    simulator = NorthwindSimulator(
        system_name=SYSTEM, agency=world.agency(spec.agency), records=world.records[SYSTEM],
        api_key=spec.api_key,
    )  # fmt: skip
    await simulator.start()
    yield simulator
    await simulator.stop()


async def _get(sim: Simulator) -> tuple[float, bytes]:
    started = time.monotonic()
    async with (
        aiohttp.ClientSession() as session,
        session.get(
            f"{sim.url}/api/v2/persons", params={"q": "Reyes"}, headers={"X-Api-Key": sim.api_key}
        ) as resp,
    ):
        body = await resp.read()
        assert resp.status == 200
    return time.monotonic() - started, body


async def test_a_latency_fault_delays_the_answer_once(sim: Simulator) -> None:
    _, plain = await _get(sim)
    sim.add_fault(FaultKind.LATENCY, delay_ms=150)
    elapsed, delayed = await _get(sim)
    assert delayed == plain
    # once, not between every few bytes of the body (a 1 kB answer is not 10 s late)
    assert 0.15 <= elapsed < 1.0


async def test_a_drip_fault_spreads_the_body_out(sim: Simulator) -> None:
    _, plain = await _get(sim)
    sim.add_fault(FaultKind.DRIP, delay_ms=2)
    elapsed, dripped = await _get(sim)
    assert dripped == plain
    assert elapsed >= 2 / 1000 * (len(plain) // 16)


async def test_faults_and_requests_over_the_admin_api(sim: Simulator) -> None:
    admin = {"X-Sim-Admin": sim.api_key}
    async with aiohttp.ClientSession() as session:
        async with session.post(f"{sim.url}/_sim/faults", json={"kind": "error500"},
                                headers=admin) as resp:  # fmt: skip
            assert resp.status == 201
        async with session.get(f"{sim.url}/api/v2/persons", params={"q": "x"},
                               headers={"X-Api-Key": sim.api_key}) as resp:  # fmt: skip
            assert resp.status == 500
        async with session.get(f"{sim.url}/_sim/requests", headers=admin) as resp:
            log = await resp.json()
        assert [e["fault"] for e in log] == ["error500"]
        async with session.get(f"{sim.url}/_sim/requests") as resp:
            assert resp.status == 401  # the admin API needs the key
