"""The audit trail end to end: real HTTP, real simulators, the file and Redis backends."""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import os
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
import redis.asyncio as aioredis

from hub.audit import SealedEntry, open_audit_log, verify_log
from hub.audit.entry import decode_entry
from tests.adapters.conformance import small_world
from tests.conftest import (
    HubServer,
    demo_settings,
    running_hub,
    serve_hub,
    unthrottled,
)
from tests.edge.test_app import SEARCH
from tests.redis_server import REDIS_URL, RedisServer


async def entries_of(location: str) -> list[SealedEntry]:
    log = open_audit_log(location)
    try:
        return [decode_entry(raw.line) async for raw in log.scan()]
    finally:
        await log.close()


async def chain_ok(location: str) -> bool:
    log = open_audit_log(location)
    try:
        report = await verify_log(log)
    finally:
        await log.close()
    return report.ok


@pytest.fixture(params=["file", "redis"])
async def audited(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[HubServer]:
    settings = unthrottled(demo_settings(tmp_path))
    key = f"test:audit:{uuid.uuid4().hex}"
    if request.param == "redis":
        settings = dataclasses.replace(settings, audit_log=f"{REDIS_URL}#{key}")
    try:
        async for server in serve_hub(settings, world=small_world()):
            yield server
    finally:
        if request.param == "redis":
            client = aioredis.from_url(REDIS_URL)
            await client.delete(key)
            await client.aclose()


async def _post(
    hub: HubServer, query: str, *, case_number: str = "26-000042", **kw: Any
) -> tuple[int, dict[str, Any], dict[str, str]]:
    headers = {"Content-Type": "application/json", "Authorization": f"Bearer {hub.token(**kw)}",
               "X-Purpose": "C", "X-Case-Number": case_number}  # fmt: skip
    async with hub.session.post(
        f"{hub.url}/graphql", json={"query": query, "variables": {"text": "Reyes"}},
        headers=headers,
    ) as resp:  # fmt: skip
        return (
            resp.status,
            await resp.json(content_type=None),
            {k.lower(): v for k, v in resp.headers.items()},
        )


async def test_a_search_leaves_one_complete_entry(audited: HubServer) -> None:
    location = audited.settings.audit_location
    before = len(await entries_of(location))
    status, body, headers = await _post(audited, SEARCH, user="analyst7")
    assert status == 200
    entries = await entries_of(location)
    assert len(entries) == before + 1
    e = entries[-1]
    # who, why
    assert (e.user, e.agency, e.roles) == ("analyst7", "CA0990000", ("analyst",))
    assert (e.purpose, e.case_number) == ("C", "26-000042")
    assert e.client_address == "127.0.0.1"
    # what: the operation, its document and the criteria as resolved
    assert e.document_hash == hashlib.sha256(SEARCH.encode()).hexdigest()
    assert e.operation == "Search"
    assert e.criteria is not None
    assert e.criteria["search"][0]["text"] == "Reyes"
    # where it went: every source with its status
    calls = {s.source: s for s in e.sources}
    assert {"marin-rms", "cascade-rms", "harbor-rms"} <= set(calls)
    assert calls["marin-rms"].status == "OK"
    assert calls["marin-rms"].latency_ms is not None
    # what came back: every hit's id and owner
    hits = body["data"]["search"]["hits"]
    returned = {r.id: r.owner for r in e.records}
    for hit in hits:
        if hit["__typename"] != "RecordPointer":
            assert returned[hit["id"]] == hit["provenance"]["agency"]["ori"]
    pointers = [r for r in e.records if r.visibility == "POINTER"]
    assert len(pointers) == sum(1 for h in hits if h["__typename"] == "RecordPointer")
    # what was withheld, by which rules; and the policy that decided
    withheld = {w.field: w for w in e.withheld}
    reported = {x["extensions"]["field"] for x in body.get("errors", [])}
    assert set(withheld) == reported
    assert all(w.rules for w in e.withheld)
    assert e.policy_version == audited.runtime.services.gate.version
    assert e.outcome in ("OK", "PARTIAL")
    # the response names its audit entry
    assert headers["x-trace-id"] == e.trace_id
    assert headers["x-request-id"] == e.request_id
    assert await chain_ok(location)


async def test_refusals_are_audited(audited: HubServer) -> None:
    location = audited.settings.audit_location
    status, body = await audited.post(SEARCH, {"text": "Reyes"}, token=audited.token(),
                                       purpose=None)  # fmt: skip
    assert status == 200
    assert body["data"] is None
    e = (await entries_of(location))[-1]
    assert (e.outcome, e.error_code) == ("REFUSED", "PURPOSE_REQUIRED")
    assert e.sources == ()
    assert e.records == ()


async def test_thousands_of_concurrent_requests_one_entry_each(audited: HubServer) -> None:
    location = audited.settings.audit_location
    before = len(await entries_of(location))
    person = next(r for r in small_world().records["marin-rms"] if r.id and not r.tags)
    queries = [
        "{ sources { name } }",
        f'{{ person(id: "{person.id}") {{ id name {{ surname }} }} }}',
    ]
    token = audited.token()
    headers = {"Content-Type": "application/json", "Authorization": f"Bearer {token}",
               "X-Purpose": "C"}  # fmt: skip

    async def one(i: int) -> str:
        async with audited.session.post(
            f"{audited.url}/graphql", json={"query": queries[i % 2]}, headers=headers
        ) as resp:
            assert resp.status == 200
            body = await resp.json()
            assert "errors" not in body, body
            return resp.headers["X-Request-Id"]

    n = 2000
    request_ids = await asyncio.gather(*(one(i) for i in range(n)))
    entries = (await entries_of(location))[before:]
    assert len(entries) == n
    assert sorted(e.request_id or "" for e in entries) == sorted(request_ids)
    assert [e.seq for e in entries] == list(range(entries[0].seq, entries[0].seq + n))
    assert await chain_ok(location)


async def test_audit_events_for_auditors_only_and_scoped(tmp_path: Path) -> None:
    async with running_hub(demo_settings(tmp_path), world=small_world()) as hub:
        location = hub.settings.audit_location
        await _post(hub, SEARCH, user="analyst-ca", agency="CA0990000")
        await _post(hub, "{ sources { name } }", user="patrol-nv", agency="NV0990000",
                    roles=("patrol",))  # fmt: skip
        query = """query($user: String) { auditEvents(user: $user) {
            seq hash traceId user agency purpose caseNumber operation outcome criteria
            sources { source status count } records { id owner } withheld { field rules } } }"""
        # not an auditor: refused
        body = await hub.query(query, {"user": "analyst-ca"}, roles=("analyst",), purpose="A")
        assert body["errors"][0]["extensions"]["code"] == "FORBIDDEN"
        # Marin's auditor sees Marin's analyst's search, in full
        body = await hub.query(query, {"user": "analyst-ca"}, roles=("auditor",), purpose="A")
        (event,) = body["data"]["auditEvents"]
        assert event["agency"] == "CA0990000"
        assert event["criteria"]["search"][0]["text"] == "Reyes"
        assert event["caseNumber"] == "26-000042"
        assert event["records"]
        # Sierra's auditor: the Nevada user's event is theirs; of Marin's search, which asked
        # Sierra's ALPR too, they see only their own source and none of Marin's records
        body = await hub.query(query, {"user": None}, agency="NV0990000", roles=("auditor",),
                               purpose="A")  # fmt: skip
        events = {e["user"]: e for e in body["data"]["auditEvents"]}
        assert events["patrol-nv"]["agency"] == "NV0990000"
        marin_search = events["analyst-ca"]
        assert {s["source"] for s in marin_search["sources"]} == {"sierra-alpr"}
        assert marin_search["records"] == []
        assert marin_search["withheld"] == []
        # reading the trail is itself audited
        entries = await entries_of(location)
        reads = [e for e in entries if e.criteria and "auditEvents" in e.criteria]
        assert len(reads) == 3
        assert reads[0].outcome == "REFUSED"
        assert {e.agency for e in reads[1:]} == {"CA0990000", "NV0990000"}


async def test_audit_events_by_case_number(tmp_path: Path) -> None:
    """An auditor asks what was done under one case: only that case's questions, and still
    only those the auditor's agency may see (a question that reached none of its systems, under
    the same case number, stays out)."""
    async with running_hub(demo_settings(tmp_path), world=small_world()) as hub:
        await _post(hub, SEARCH, user="analyst-ca", agency="CA0990000", case_number="26-000101")
        await _post(hub, SEARCH, user="analyst-ca", agency="CA0990000", case_number="26-000102")
        # Nevada's search asks Marin's systems too; its list of sources asks none of them
        await _post(hub, SEARCH, user="patrol-nv", agency="NV0990000", roles=("patrol",),
                    case_number="26-000101")  # fmt: skip
        await _post(hub, "{ sources { name } }", user="patrol-nv", agency="NV0990000",
                    roles=("patrol",), case_number="26-000101")  # fmt: skip
        query = """query($case: String) { auditEvents(caseNumber: $case) {
            user caseNumber operation criteria } }"""

        async def events(agency: str, case: str | None) -> list[tuple[str, str, str]]:
            body = await hub.query(query, {"case": case}, agency=agency, roles=("auditor",),
                                   purpose="A")  # fmt: skip
            assert "errors" not in body, body
            return sorted(
                (e["user"], e["caseNumber"], next(iter(e["criteria"] or {"sources": 0})))
                for e in body["data"]["auditEvents"]
                if "auditEvents" not in (e["criteria"] or {})
            )

        assert await events("CA0990000", "26-000101") == [
            ("analyst-ca", "26-000101", "search"),
            ("patrol-nv", "26-000101", "search"),
        ]
        assert await events("CA0990000", "26-000102") == [("analyst-ca", "26-000102", "search")]
        assert await events("CA0990000", "26-999999") == []
        assert await events("NV0990000", "26-000101") == [
            ("analyst-ca", "26-000101", "search"),
            ("patrol-nv", "26-000101", "search"),
            ("patrol-nv", "26-000101", "sources"),
        ]
        assert len(await events("CA0990000", None)) == 3


# -- a Redis backend that goes away --------------------------------------------------------


async def test_redis_dying_mid_run_never_releases_unaudited_data(
    tmp_path: Path, redis_servers: Callable[..., RedisServer]
) -> None:
    server = redis_servers(persistent=True)  # every write fsynced: a kill keeps what it said
    location = f"{server.url}#hub:audit"
    settings = dataclasses.replace(unthrottled(demo_settings(tmp_path)), audit_log=location)
    async with running_hub(settings, world=small_world()) as hub:
        headers = {"Content-Type": "application/json", "Authorization": f"Bearer {hub.token()}",
                   "X-Purpose": "C"}  # fmt: skip
        outcomes: list[tuple[int, str | None, dict[str, Any]]] = []

        in_flight = asyncio.Semaphore(32)
        served_some = asyncio.Event()

        async def one() -> None:
            async with (
                in_flight,
                hub.session.post(
                    f"{hub.url}/graphql", json={"query": "{ sources { name } }"}, headers=headers
                ) as resp,
            ):
                body = await resp.json(content_type=None)
                outcomes.append((resp.status, resp.headers.get("X-Request-Id"), body))
                if sum(1 for o in outcomes if o[0] == 200) >= 100:
                    served_some.set()

        async def kill_mid_run() -> None:
            await served_some.wait()
            server.kill()

        await asyncio.gather(kill_mid_run(), *(one() for _ in range(600)))
        # after the kill, nothing more is released
        for _ in range(5):
            await one()
    # bring the same data back and account for every request
    await asyncio.to_thread(server.start)
    audited = {e.request_id for e in await entries_of(location)}
    served = [o for o in outcomes if o[0] == 200]
    refused = [o for o in outcomes if o[0] != 200]
    assert served, "the kill came before any request was served"
    assert refused, "the kill came after every request was served"
    for _, request_id, body in served:
        assert body["data"]["sources"]
        assert request_id in audited
    for status, _, body in refused:
        assert status == 503
        assert body["data"] is None
        assert body["errors"][0]["extensions"]["code"] == "AUDIT_UNAVAILABLE"
    assert await chain_ok(location)


async def test_healthz_is_unavailable_while_the_audit_log_cannot_take_an_entry(
    tmp_path: Path, redis_server: RedisServer
) -> None:
    """No entry, no data: while the audit log's server is away every data request is refused,
    so /healthz answers 503 and a balancer sends the requests to another hub."""
    location = f"{redis_server.url}#hub:audit"
    settings = dataclasses.replace(demo_settings(tmp_path), audit_log=location)
    async with running_hub(settings, world=small_world()) as hub:
        async with hub.session.get(f"{hub.url}/healthz") as resp:
            assert resp.status == 200
            assert (await resp.json())["status"] == "ok"
        redis_server.kill()
        async with hub.session.get(f"{hub.url}/healthz") as resp:
            assert resp.status == 503
            health = await resp.json()
        assert health["status"] == "unavailable"
        assert health["audit"] == "the audit log's server does not answer"
        status, body, _ = await _post(hub, SEARCH)
        assert (status, body["errors"][0]["extensions"]["code"]) == (503, "AUDIT_UNAVAILABLE")
        redis_server.restart()
        async with hub.session.get(f"{hub.url}/healthz") as resp:
            assert resp.status == 200
        status, body, _ = await _post(hub, SEARCH)
        assert status == 200, body


# -- the operator's commands ---------------------------------------------------------------


def _hub_cli(*args: str) -> subprocess.CompletedProcess[str]:
    exe = Path(sys.executable).parent / "hub"
    return subprocess.run([str(exe), *args], capture_output=True, text=True, timeout=60,
                          env={**os.environ, "HUB_VAR_DIR": "/nonexistent"})  # fmt: skip


async def test_cli_verify_passes_clean_and_names_a_changed_entry(tmp_path: Path) -> None:
    async with running_hub(demo_settings(tmp_path), world=small_world()) as hub:
        for _ in range(5):
            await _post(hub, SEARCH)
    log_dir = tmp_path / "var" / "audit"
    clean = _hub_cli("audit", "verify", "--log", str(log_dir))
    assert clean.returncode == 0, clean.stdout + clean.stderr
    assert "ok: 5 entries" in clean.stdout
    tail = _hub_cli("audit", "tail", "--log", str(log_dir), "-n", "2")
    assert tail.returncode == 0
    assert len(tail.stdout.splitlines()) == 2
    assert "Reyes" not in tail.stdout  # no criteria on an operator's terminal
    path = log_dir / "audit.jsonl"
    lines = path.read_text().splitlines()
    lines[2] = lines[2].replace('"analyst"', '"detective"', 1)
    path.write_text("\n".join(lines) + "\n")
    tampered = _hub_cli("audit", "verify", "--log", str(log_dir))
    assert tampered.returncode == 1
    assert "CHANGED" in tampered.stdout.upper()
    assert "seq 3" in tampered.stdout or "line 3" in tampered.stdout
