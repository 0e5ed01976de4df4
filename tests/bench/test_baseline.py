"""The baseline client makes the very vendor calls the hub makes."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import aiohttp
import pytest

from bench.baseline import BaselineClient
from bench.hubs import SEARCH_QUERY, HubVariant, hub_settings, serve_hub
from bench.vendors import VendorProcess, WorldPlan
from hub.model import Agency
from hub.settings import SourceConfig


async def _calls(session: aiohttp.ClientSession, source: SourceConfig) -> list[tuple[Any, ...]]:
    admin = {"X-Sim-Admin": source.api_key.reveal()}
    async with session.get(f"{source.url}/_sim/requests", headers=admin) as resp:
        log = await resp.json()
    async with session.delete(f"{source.url}/_sim/requests", headers=admin):
        pass
    return [(e["method"], e["path"], e["query"], e["status"]) for e in log]


@pytest.mark.parametrize(("text", "limit"), [("Reyes", 50), ("Smith", 3)])
async def test_same_requests_as_the_hub(tmp_path: Path, text: str, limit: int) -> None:
    plan = WorldPlan(shape="clones", size=2000, systems=3)
    async with (
        await VendorProcess.start(plan) as vendors,
        aiohttp.ClientSession() as session,
    ):
        sources = vendors.info.source_configs()
        variant = HubVariant("hub", policies=False, audit=False)
        settings = hub_settings(tmp_path, sources, vendors.info.agencies(), variant)
        async with serve_hub(settings, variant, session) as hub:
            for source in sources:
                await _calls(session, source)
            await hub.query(SEARCH_QUERY, {"text": text, "kinds": ["PERSON"], "limit": limit})
            by_hub = [await _calls(session, s) for s in sources]
            await BaselineClient(sources, session).search(text, limit)
            by_baseline = [await _calls(session, s) for s in sources]
    assert by_hub == by_baseline
    assert all(len(calls) >= 1 for calls in by_hub)
    assert all(call[1] == "/api/v2/persons" and call[3] == 200 for c in by_hub for call in c)


async def test_speaks_northwind_only() -> None:
    keystone = SourceConfig(
        name="k", kind="keystone-rms", agency=Agency(ori="CA0990000", name="x", state="CA"),
        url="http://127.0.0.1:9",
    )  # fmt: skip
    async with aiohttp.ClientSession() as session:
        with pytest.raises(ValueError, match="Northwind only"):
            BaselineClient([keystone], session)
