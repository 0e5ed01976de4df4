"""The lean hub answers what the baseline answers, and has its audit entry durable first."""

from __future__ import annotations

import json
from pathlib import Path

import aiohttp

from bench.baseline import BaselineClient
from bench.lean import serve_lean_hub
from bench.vendors import VendorProcess, WorldPlan
from hub.audit.entry import decode_entry
from hub.audit.file_log import FileAuditLog


async def test_answers_as_the_baseline_and_audits_each_search(tmp_path: Path) -> None:
    plan = WorldPlan(shape="clones", size=2000, systems=3)
    async with (
        await VendorProcess.start(plan) as vendors,
        aiohttp.ClientSession() as session,
    ):
        sources = vendors.info.source_configs()
        async with serve_lean_hub(sources, tmp_path, session) as lean:
            by_lean = await lean.search("Reyes", 7)
            cut = await lean.search("Reyes", 2)
            by_baseline = await BaselineClient(sources, session).search("Reyes", 7)
            # Each answer left after its entry was written: both are in the log now, while
            # the server still runs.
            entries = [decode_entry(raw.line) async for raw in FileAuditLog(tmp_path).scan()]
    hits = json.loads(by_lean)["hits"]
    assert by_lean == by_baseline
    assert len(hits) == len(sources)  # one Reyes in each cloned system
    assert len(json.loads(cut)["hits"]) == 2
    assert [e.criteria for e in entries] == [
        {"search": [{"text": "Reyes", "limit": 7}]},
        {"search": [{"text": "Reyes", "limit": 2}]},
    ]
    assert [len(e.records) for e in entries] == [len(sources), 2]
    assert {c.source for c in entries[0].sources} == {s.name for s in sources}
