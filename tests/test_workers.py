"""Two hub worker processes behind one Redis, as a deployment runs them behind a load balancer:
the rate limit, the circuit breakers and policy changes are shared, one audit chain is kept.

The vendor simulators run in this test's process (so it can inject faults); each worker is a
real ``hub serve --config`` process pointed at them.
"""

from __future__ import annotations

import asyncio
import shutil
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from hub.access.policy import default_policy_dir
from hub.audit import open_audit_log, verify_log
from hub.demo.runner import RunningWorld, start_world
from hub.demo.simulator import FaultKind
from tests.adapters.conformance import small_world
from tests.hub_process import HubProcess, dev_token, world_tables
from tests.ports import free_port
from tests.redis_server import drop_prefix, shared_url

SEARCH = """query($text: String!) { search(text: $text, kinds: [PERSON]) {
  hits { __typename ... on Person { name { surname } provenance { agency { ori } } }
         ... on RecordPointer { owner { ori } } }
  sources { source status message } } }"""


def _config(world: RunningWorld, redis_url: str, prefix: str, policy_dir: Path) -> str:
    lines = [
        'mode = "dev"',
        f'redis_url = "{redis_url}"',
        f'redis_prefix = "{prefix}"',
        f'policy_dir = "{policy_dir}"',
        f'audit_log = "{redis_url}#{prefix}:audit"',
        "[rate_limits]\nuser_per_minute = 6\nagency_per_minute = 1000",
        "[breaker]\nfailures = 2\ncooldown_s = 60",
    ]
    lines += world_tables(world, timeout_ms=1500)
    return "\n".join(lines) + "\n"


@dataclass
class Deployment:
    world: RunningWorld
    workers: list[HubProcess]
    session: aiohttp.ClientSession
    var_dir: Path
    policy_dir: Path
    audit_location: str

    def token(self, user: str, agency: str, roles: tuple[str, ...]) -> str:
        return dev_token(self.var_dir, user, agency, roles)

    async def post(
        self, worker: int, query: str, variables: dict[str, Any], token: str
    ) -> tuple[int, dict[str, Any]]:
        headers = {"Authorization": f"Bearer {token}", "X-Purpose": "C"}
        async with self.session.post(
            f"{self.workers[worker].url}/graphql",
            json={"query": query, "variables": variables},
            headers=headers,
        ) as resp:
            return resp.status, await resp.json()


@pytest.fixture
async def deployment(tmp_path: Path) -> AsyncIterator[Deployment]:
    redis_url = shared_url()
    prefix = f"test-{uuid.uuid4().hex[:12]}"
    policy_dir = tmp_path / "policies"
    shutil.copytree(default_policy_dir(), policy_dir)
    var_dir = tmp_path / "var"
    world = await start_world(small_world())
    config = tmp_path / "hub.toml"
    config.write_text(_config(world, redis_url, prefix, policy_dir))
    workers: list[HubProcess] = []
    async with aiohttp.ClientSession() as session:
        try:
            for i in range(2):
                port = free_port()
                workers.append(
                    await HubProcess.start(
                        f"worker{i}",
                        ["--config", str(config), "--port", str(port)],
                        url=f"http://127.0.0.1:{port}",
                        cwd=tmp_path,
                        env={"HUB_VAR_DIR": str(var_dir)},
                        logs=tmp_path,
                    )
                )
            await asyncio.gather(*(w.ready(session) for w in workers))
            yield Deployment(world, workers, session, var_dir, policy_dir,
                             f"{redis_url}#{prefix}:audit")  # fmt: skip
        finally:
            await asyncio.gather(*(w.stop() for w in workers))
            await world.stop()
            await drop_prefix(redis_url, prefix)


async def test_workers_share_the_rate_limit_the_breakers_and_the_policy(
    deployment: Deployment,
) -> None:
    d = deployment
    # -- one user's budget (6 a minute) is spent across both workers -------------------
    token = d.token("burst", "CA0990000", ("analyst",))
    statuses = [(await d.post(i % 2, "{ sources { name } }", {}, token))[0] for i in range(8)]
    assert statuses[:6] == [200] * 6
    assert statuses[6:] == [429, 429]

    # -- a vendor failing through worker 0 is skipped fast by worker 1 -----------------
    harbor = d.world.simulators["harbor-rms"]
    harbor.add_fault(FaultKind.ERROR_500)
    analyst = d.token("analyst", "CA0990000", ("analyst",))
    for text in ("Alpha", "Bravo"):
        _, body = await d.post(0, SEARCH, {"text": text}, analyst)
        assert body.get("data"), body
        by_source = {s["source"]: s for s in body["data"]["search"]["sources"]}
        assert by_source["harbor-rms"]["status"] == "ERROR"
    asked = len(harbor.requests)
    _, body = await d.post(1, SEARCH, {"text": "Charlie"}, analyst)
    by_source = {s["source"]: s for s in body["data"]["search"]["sources"]}
    assert by_source["harbor-rms"]["status"] == "ERROR"
    assert "circuit open" in by_source["harbor-rms"]["message"]
    assert len(harbor.requests) == asked
    harbor.clear_faults()

    # -- a policy change reaches both workers within seconds ---------------------------
    async def harbor_people(worker: int) -> set[str]:
        # a fresh trooper each time: the poll must not run into the rate limit
        trooper = d.token(f"trooper-{uuid.uuid4().hex[:8]}", "NV0990000", ("detective",))
        _, body = await d.post(worker, SEARCH, {"text": "Reyes"}, trooper)
        return {
            h["__typename"]
            for h in body["data"]["search"]["hits"]
            if (h.get("owner") or h["provenance"]["agency"])["ori"] == "OR0990200"
        }

    assert await harbor_people(0) == {"RecordPointer"}
    assert await harbor_people(1) == {"RecordPointer"}
    agreements = d.policy_dir / "agreements.yaml"
    agreements.write_text(
        agreements.read_text()
        + """
  - id: HFPD-SSP-TEST
    title: Harbor Falls shares persons with Sierra State Patrol (test)
    owner: OR0990200
    requesters: [NV0990000]
    purposes: [C]
    share:
      PERSON: "*"
"""
    )
    deadline = asyncio.get_running_loop().time() + 15
    seen: list[set[str]] = []
    while asyncio.get_running_loop().time() < deadline:
        seen = [await harbor_people(0), await harbor_people(1)]
        if seen == [{"Person"}, {"Person"}]:
            break
        await asyncio.sleep(0.5)
    assert seen == [{"Person"}, {"Person"}]

    # -- and one audit chain across both workers ----------------------------------------
    log = open_audit_log(d.audit_location)
    try:
        report = await verify_log(log)
    finally:
        await log.close()
    assert report.ok, report.describe()
    assert report.entries >= 12
