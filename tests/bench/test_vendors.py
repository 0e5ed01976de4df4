"""The vendor process: the worlds it serves and the commands it obeys."""

from __future__ import annotations

import time

import aiohttp

from bench.baseline import BaselineClient
from bench.vendors import WIDE_SURNAME, VendorProcess, WorldPlan


async def test_wide_world_serves_exactly_the_records_asked() -> None:
    async with (
        await VendorProcess.start(WorldPlan(shape="wide", systems=4, records=40)) as vendors,
        aiohttp.ClientSession() as session,
    ):
        info = vendors.info
        assert info.records == 40
        assert info.texts == [WIDE_SURNAME]
        sources = info.source_configs()
        assert [s.kind for s in sources] == ["northwind-rms"] * 4
        # Owned in turn by the world's RMS agencies, so the policy has several owners to judge.
        assert len(info.agencies()) == 3
        answer = await BaselineClient(sources, session).search(WIDE_SURNAME, 1000)
        assert answer.count(b'"personId"') == 40
        assert await vendors.rss() > 1024 * 1024
    assert vendors.process.returncode == 0


async def test_latency_command_delays_every_answer() -> None:
    async with (
        await VendorProcess.start(WorldPlan(shape="clones", size=500, systems=2)) as vendors,
        aiohttp.ClientSession() as session,
    ):
        baseline = BaselineClient(vendors.info.source_configs(), session)
        await vendors.set_latency(80)
        started = time.perf_counter()
        await baseline.search("Reyes")
        # A lower bound only: the simulators sleep at least this long before answering.
        assert time.perf_counter() - started >= 0.08


async def test_demo_world_leads_with_the_worked_example() -> None:
    async with await VendorProcess.start(WorldPlan(shape="demo", size=500)) as vendors:
        assert vendors.info.texts[0] == "Reyes"
        assert {s["kind"] for s in vendors.info.sources} == {
            "northwind-rms",
            "keystone-rms",
            "beacon-cad",
            "sentinel-alpr",
        }
