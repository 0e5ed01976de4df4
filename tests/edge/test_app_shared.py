"""What workers share through Redis, end to end over real HTTP: the source cache (decided again
for every reader), persisted queries, rate limits, circuit breakers, and degrading when Redis
goes away. The normal path uses the Redis at REDIS_URL; the failure cases a private one."""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from hub.demo.simulator import FaultKind
from hub.secret import Secret
from hub.settings import ResilienceSettings, Settings
from tests.adapters.conformance import small_world
from tests.conftest import HubServer, demo_settings, running_hub
from tests.edge.test_app import SEARCH
from tests.redis_server import RedisServer


def with_redis(settings: Settings, url: str, prefix: str, **resilience: Any) -> Settings:
    return dataclasses.replace(
        settings,
        redis_url=Secret(url),
        resilience=dataclasses.replace(ResilienceSettings(redis_prefix=prefix), **resilience),
    )


@pytest.fixture
async def redis_hub(tmp_path: Path, redis_url: str, redis_prefix: str) -> AsyncIterator[HubServer]:
    settings = with_redis(demo_settings(tmp_path), redis_url, redis_prefix, breaker_failures=2)
    async with running_hub(settings, world=small_world()) as hub:
        yield hub


def _statuses(body: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {s["source"]: s for s in body["data"]["search"]["sources"]}


CACHED_SEARCH = SEARCH.replace("latencyMs message", "latencyMs message cached")


async def test_repeated_search_is_answered_from_cache(redis_hub: HubServer) -> None:
    cold = await redis_hub.query(CACHED_SEARCH, {"text": "Reyes"})
    asked = len(redis_hub.simulator_requests("marin-rms"))
    assert asked >= 1
    assert _statuses(cold)["marin-rms"]["cached"] is False
    warm = await redis_hub.query(CACHED_SEARCH, {"text": "Reyes"})
    assert _statuses(warm)["marin-rms"]["cached"] is True
    assert len(redis_hub.simulator_requests("marin-rms")) == asked  # the vendor was not asked
    assert warm["data"]["search"]["hits"] == cold["data"]["search"]["hits"]
    assert redis_hub.runtime.link.health().as_dict()["state"] == "up"


async def test_what_one_user_saw_never_reaches_another_from_the_cache(
    redis_hub: HubServer,
) -> None:
    query = """{ search(text: "Reyes", kinds: [PERSON]) {
        hits { __typename ... on Person { ssn dateOfBirth provenance { agency { ori } } } }
        sources { source cached } } }"""
    marin = await redis_hub.query(query, agency="CA0990000", roles=("detective",))
    ssns = {h["ssn"] for h in marin["data"]["search"]["hits"] if h.get("ssn")}
    assert ssns, "the owner's detective sees SSNs"
    # A Marin patrol officer reads no SSN: from the same cached answers, decided again for him
    patrol = await redis_hub.query(query, agency="CA0990000", roles=("patrol",))
    rms = [s for s in patrol["data"]["search"]["sources"] if s["source"].endswith("-rms")]
    assert rms
    assert all(s["cached"] for s in rms)
    assert not any(ssn in str(patrol) for ssn in ssns)
    people = [h for h in patrol["data"]["search"]["hits"] if h["__typename"] == "Person"]
    assert "CA0990000" in {h["provenance"]["agency"]["ori"] for h in people}
    # Another agency never hits Marin's cached answers: a hit would tell Sierra that someone
    # searched the same thing moments ago. Its own first search goes to the vendors.
    sierra = await redis_hub.query(query, agency="NV0990000", roles=("patrol",))
    assert not any(s["cached"] for s in sierra["data"]["search"]["sources"])
    assert not any(ssn in str(sierra) for ssn in ssns)


async def test_a_sealing_notice_evicts_the_cached_record(redis_hub: HubServer) -> None:
    query = '{ search(text: "Reyes", kinds: [PERSON]) { hits { ... on Person { id } } ' \
            "sources { source cached } } }"  # fmt: skip
    first = await redis_hub.query(query)
    marin_id = next(
        h["id"] for h in first["data"]["search"]["hits"] if h and h["id"].startswith("bWFyaW4")
    )
    notice = """mutation($id: ID!) { recordNotice(id: $id, notice: SEALED) {
        evictedEntries deferred } }"""
    # only the owner's records staff may send it
    refused = await redis_hub.query(notice, {"id": marin_id}, agency="WA0990100",
                                    roles=("records",), purpose="A")  # fmt: skip
    assert refused["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    done = await redis_hub.query(notice, {"id": marin_id}, roles=("records",), purpose="A")
    assert done["data"]["recordNotice"]["evictedEntries"] >= 1
    assert done["data"]["recordNotice"]["deferred"] is False
    again = await redis_hub.query(query)
    cached = {s["source"]: s["cached"] for s in again["data"]["search"]["sources"]}
    assert cached["marin-rms"] is False  # asked the vendor again
    assert cached["cascade-rms"] is True  # the others' answers were untouched


async def test_a_vendor_pushes_a_notice_through_its_adapter(redis_hub: HubServer) -> None:
    query = '{ search(text: "Reyes", kinds: [PERSON]) { hits { ... on Person { id ' \
            "provenance { recordId system { name } } } } } }"  # fmt: skip
    body = await redis_hub.query(query)
    hit = next(h for h in body["data"]["search"]["hits"]
               if h and h["provenance"]["system"]["name"] == "cascade-rms")  # fmt: skip
    url = f"{redis_hub.url}/sources/cascade-rms/notices"
    notice = {"notices": [{"kind": "PERSON", "recordId": hit["provenance"]["recordId"],
                           "notice": "EXPUNGED"}]}  # fmt: skip
    async with redis_hub.session.post(url, json=notice, headers={"X-Notice-Key": "wrong"}) as r:
        assert r.status == 403
    headers = {"X-Notice-Key": "demo-key-cascade-rms"}
    async with redis_hub.session.post(url, json=notice, headers=headers) as r:
        assert r.status == 200
        assert (await r.json())["evicted"] >= 1
    async with redis_hub.session.post(url, data=b"garbage", headers=headers) as r:
        assert r.status == 400


async def test_automatic_persisted_queries(redis_hub: HubServer) -> None:
    query = "{ sources { name } }"
    digest = hashlib.sha256(query.encode()).hexdigest()
    ext = {"persistedQuery": {"version": 1, "sha256Hash": digest}}
    headers = {"Content-Type": "application/json",
               "Authorization": f"Bearer {redis_hub.token()}"}  # fmt: skip

    async def send(payload: dict[str, Any]) -> dict[str, Any]:
        async with redis_hub.session.post(
            f"{redis_hub.url}/graphql", json=payload, headers=headers
        ) as resp:
            body: dict[str, Any] = await resp.json()
            return body

    unknown = await send({"extensions": ext})
    assert unknown["errors"][0]["extensions"]["code"] == "PERSISTED_QUERY_NOT_FOUND"
    registered = await send({"query": query, "extensions": ext})
    assert registered["data"]["sources"]
    by_hash = await send({"extensions": ext})
    assert by_hash["data"] == registered["data"]
    # Documents are kept per agency: another agency's hash alone does not tell it that Marin
    # sent this document (a document may hold search criteria).
    async with redis_hub.session.post(
        f"{redis_hub.url}/graphql",
        json={"extensions": ext},
        headers={**headers, "Authorization": f"Bearer {redis_hub.token('NV0990000')}"},
    ) as resp:
        other = await resp.json()
    assert other["errors"][0]["extensions"]["code"] == "PERSISTED_QUERY_NOT_FOUND"
    bad = await send({"query": query, "extensions": {"persistedQuery": {
        "version": 1, "sha256Hash": "0" * 64}}})  # fmt: skip
    assert bad["errors"][0]["extensions"]["code"] == "PERSISTED_QUERY_HASH_MISMATCH"


async def test_safelist_mode_runs_only_registered_documents(tmp_path: Path) -> None:
    allowed = "{ sources { name } }"
    manifest = tmp_path / "manifest.json"
    manifest.write_text(
        '{"format": "apollo-persisted-query-manifest", "version": 1, "operations": '
        f'[{{"id": "{hashlib.sha256(allowed.encode()).hexdigest()}", "name": "Sources", '
        f'"type": "query", "body": "{allowed}"}}]}}'
    )
    settings = dataclasses.replace(
        demo_settings(tmp_path),
        resilience=ResilienceSettings(persisted_queries="safelist", safelist_path=manifest),
    )
    async with running_hub(settings, world=small_world()) as hub:
        ok = await hub.query(allowed, purpose=None)
        assert ok["data"]["sources"]
        _, refused = await hub.post(SEARCH, {"text": "Reyes"}, token=hub.token())
        assert refused["errors"][0]["extensions"]["code"] == "PERSISTED_QUERY_NOT_IN_LIST"
        assert sum(len(s.requests) for s in hub.runtime.world.simulators.values()) == 0  # type: ignore[union-attr]


async def test_rate_limit_answers_429_with_retry_after(
    tmp_path: Path, redis_url: str, redis_prefix: str
) -> None:
    settings = with_redis(demo_settings(tmp_path), redis_url, redis_prefix, user_per_minute=3)
    async with running_hub(settings, world=small_world()) as hub:
        statuses = []
        for _ in range(5):
            status, body = await hub.post("{ sources { name } }", token=hub.token(user="x"))
            statuses.append(status)
        assert statuses[:3] == [200, 200, 200]
        assert statuses[3:] == [429, 429]
        assert body["errors"][0]["extensions"]["code"] == "RATE_LIMITED"
        # another user of the same agency has a budget of their own
        status, _ = await hub.post("{ sources { name } }", token=hub.token(user="y"))
        assert status == 200
        async with hub.session.post(
            f"{hub.url}/graphql",
            json={"query": "{ sources { name } }"},
            headers={"Content-Type": "application/json",
                     "Authorization": f"Bearer {hub.token(user='x')}"},
        ) as resp:  # fmt: skip
            assert resp.status == 429
            assert int(resp.headers["Retry-After"]) >= 1


async def test_a_failing_vendor_is_skipped_fast_once_its_breaker_opens(
    redis_hub: HubServer,
) -> None:
    assert redis_hub.runtime.world is not None
    sim = redis_hub.runtime.world.simulators["harbor-rms"]
    sim.add_fault(FaultKind.ERROR_500)
    for text in ("Alpha", "Bravo"):  # distinct searches: no cache in the way
        body = await redis_hub.query(SEARCH, {"text": text})
        assert _statuses(body)["harbor-rms"]["status"] == "ERROR"
    asked = len(sim.requests)
    body = await redis_hub.query(SEARCH, {"text": "Charlie"})
    status = _statuses(body)["harbor-rms"]
    assert status["status"] == "ERROR"
    assert "circuit open" in status["message"]
    assert len(sim.requests) == asked  # not contacted
    assert _statuses(body)["marin-rms"]["status"] in ("OK", "NO_HIT")


# -- Redis away ------------------------------------------------------------------------------


async def test_redis_unreachable_at_start_degrades_and_keeps_answering(tmp_path: Path) -> None:
    settings = with_redis(demo_settings(tmp_path), "redis://127.0.0.1:9/0", "never")
    async with running_hub(settings, world=small_world()) as hub:
        async with hub.session.get(f"{hub.url}/healthz") as resp:
            health = await resp.json()
        assert health["status"] == "degraded"
        body = await hub.query(SEARCH, {"text": "Reyes"})
        assert body["data"]["search"]["hits"]
        # the audit guarantee does not change: the file log still has the entry
        entries = (Path(hub.settings.audit_location) / "audit.jsonl").read_text().splitlines()
        assert len(entries) == 1


async def test_redis_going_away_mid_flight_degrades_then_recovers(
    tmp_path: Path, redis_server: RedisServer
) -> None:
    settings = with_redis(demo_settings(tmp_path), redis_server.url, "mid")
    async with running_hub(settings, world=small_world()) as hub:
        first = await hub.query(CACHED_SEARCH, {"text": "Reyes"})
        assert first["data"]["search"]["hits"]
        redis_server.kill()
        during = await hub.query(CACHED_SEARCH, {"text": "Reyes"})
        assert during["data"]["search"]["hits"]
        assert not any(s["cached"] for s in during["data"]["search"]["sources"])
        async with hub.session.get(f"{hub.url}/healthz") as resp:
            assert (await resp.json())["status"] == "degraded"
        redis_server.restart()
        assert await hub.runtime.link.wait_up(10.0)
        async with hub.session.get(f"{hub.url}/healthz") as resp:
            assert (await resp.json())["status"] == "ok"
        after = await hub.query(CACHED_SEARCH, {"text": "Reyes"})
        assert after["data"]["search"]["hits"]
