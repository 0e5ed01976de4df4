"""Hubs under test: policies off really is off, audit off really writes nothing."""

from __future__ import annotations

from pathlib import Path

import aiohttp

from bench.hubs import HubVariant, serve_hubs
from bench.scenarios.wide import WIDE_QUERY
from bench.vendors import WIDE_SURNAME, VendorProcess, WorldPlan


async def test_policy_and_audit_switches(tmp_path: Path) -> None:
    variants = [
        HubVariant("on", policies=True, audit=True),
        HubVariant("off", policies=False, audit=False),
    ]
    async with (
        await VendorProcess.start(WorldPlan(shape="wide", systems=3, records=30)) as vendors,
        aiohttp.ClientSession() as session,
        serve_hubs(
            tmp_path, vendors.info.source_configs(), vendors.info.agencies(), variants, session
        ) as hubs,
    ):
        variables = {"text": WIDE_SURNAME, "limit": 1000}
        on = await hubs["on"].query(WIDE_QUERY, variables)
        off = await hubs["off"].query(WIDE_QUERY, variables)
        assert hubs["off"].runtime.trail is None
        assert hubs["on"].runtime.trail is not None
    # One of the three owners shares only identification data with the subject's agency.
    assert {e["extensions"]["code"] for e in on["errors"]} == {"FORBIDDEN_FIELD"}
    assert "errors" not in off
    persons = off["data"]["search"]["hits"]
    assert len(persons) == 30
    assert all(p["__typename"] == "Person" and p["ssn"] for p in persons)
    assert len(on["data"]["search"]["hits"]) == 30
    assert (tmp_path / "audit-on").exists()
    assert not (tmp_path / "audit-off").exists()
