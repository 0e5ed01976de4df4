"""Retention, the record half: an over-age record is invisible over HTTP, and a cached vendor
answer never outlives the first of its records to pass its owner's retention limit."""

from __future__ import annotations

import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import redis.asyncio as aioredis
import yaml

from hub.access.policy import default_policy_dir
from hub.model import EntityKind, Person
from hub.secret import Secret
from hub.shared.cache import (
    CachePolicy,
    MemorySourceCache,
    RedisSourceCache,
    generate_cache_key,
)
from hub.shared.redis_link import RedisLink
from resolvers.catalogue import load_policy
from tests.access.samples import CASCADE, MARIN, record
from tests.adapters.conformance import small_world
from tests.conftest import demo_settings, running_hub

SEARCH = """query($text: String!) {
  search(text: $text, kinds: [PERSON], limit: 100) {
    hits { __typename ... on Person { id provenance { agency { ori } } } }
    sources { source status cached }
  }
}"""


def set_retention(directory: Path, ori: str, days: int | None) -> None:
    path = directory / "agencies.yaml"
    data = yaml.safe_load(path.read_text())
    facts = data["agencies"][ori]
    if days is None:
        facts.pop("retention_days", None)
    else:
        facts["retention_days"] = {**facts.get("retention_days", {}), "PERSON": days}
    path.write_text(yaml.safe_dump(data, sort_keys=False))


def copy_policy(tmp_path: Path) -> Path:
    directory = tmp_path / "policies"
    shutil.copytree(default_policy_dir(), directory)
    return directory


def ids_of(body: dict[str, Any]) -> dict[str, str]:
    assert "errors" not in body, body
    hits = body["data"]["search"]["hits"]
    return {h["id"]: h["provenance"]["agency"]["ori"] for h in hits if h["__typename"] == "Person"}


def cached(body: dict[str, Any]) -> dict[str, bool]:
    return {s["source"]: s["cached"] for s in body["data"]["search"]["sources"]}


async def test_retention_hides_an_over_age_record_over_http(tmp_path: Path) -> None:
    world = small_world()
    today = datetime.now(UTC).date()
    # Marin's Reyes records made before today; every one is past a limit of 0 days.
    old = {
        r.id
        for r in world.records["marin-rms"]
        if isinstance(r, Person)
        and r.name.surname == "Reyes"
        and r.created is not None
        and r.created < today
    }
    assert old
    policies = copy_policy(tmp_path)
    settings = demo_settings(tmp_path, HUB_POLICY_DIR=str(policies))
    async with running_hub(settings, world) as hub:
        before = ids_of(await hub.query(SEARCH, {"text": "Reyes"}, agency=MARIN))
        assert old & set(before)
        assert CASCADE in before.values()
        # Marin keeps persons 0 days: the policy reload takes it in (no restart).
        set_retention(policies, MARIN, 0)
        assert hub.runtime.services.gate.reload_if_changed()  # type: ignore[attr-defined]
        after = ids_of(await hub.query(SEARCH, {"text": "Reyes"}, agency=MARIN))
        assert not old & set(after)
        # Nothing else changed: another owner's records are still there.
        assert {i for i, o in before.items() if o != MARIN} == {
            i for i, o in after.items() if o != MARIN
        }
        # An answer holding over-age records is not cached at all: asked twice, Marin's
        # system answers twice; Cascade City's answer (no limit) comes from the cache.
        first = await hub.query(SEARCH, {"text": "Jordan Reyes"}, agency=MARIN)
        second = await hub.query(SEARCH, {"text": "Jordan Reyes"}, agency=MARIN)
        assert cached(first)["marin-rms"] is False
        assert cached(second)["marin-rms"] is False
        assert cached(second)["cascade-rms"] is True
        assert not old & set(ids_of(second))


async def test_an_answer_ttl_ends_with_its_first_record_to_expire(tmp_path: Path) -> None:
    policies = copy_policy(tmp_path)
    set_retention(policies, MARIN, 30)
    policy = load_policy(policies)
    now = datetime.now(UTC)
    # Made 30 days ago: visible through today, over age from tomorrow 00:00 UTC.
    last_day = record(EntityKind.PERSON, MARIN, age_days=30, now=now)
    fresh = record(EntityKind.PERSON, MARIN, age_days=1, now=now)
    unlimited = record(EntityKind.PERSON, CASCADE, age_days=4000, now=now)
    expired = record(EntityKind.PERSON, MARIN, age_days=31, now=now)
    midnight = datetime.combine(now.date() + timedelta(days=1), datetime.min.time(), UTC)
    assert policy.retention_ends(last_day) == midnight
    assert policy.retention_ends(unlimited) is None
    cache_policy = CachePolicy(86_400.0, retention_ends=policy.retention_ends)
    left = (midnight - datetime.now(UTC)).total_seconds()
    assert 0 < cache_policy.answer_ttl("s", [fresh, last_day, unlimited]) <= left
    assert cache_policy.answer_ttl("s", [fresh, unlimited]) == 86_400.0
    assert cache_policy.answer_ttl("s", [unlimited, expired]) == 0.0
    cache = MemorySourceCache(cache_policy)
    await cache.put("s", "k-expired", [unlimited, expired])
    await cache.put("s", "k-fresh", [fresh])
    assert await cache.get("s", "k-expired") is None
    assert await cache.get("s", "k-fresh") == [fresh]


async def test_the_shared_cache_keeps_an_answer_no_longer_than_its_records(
    tmp_path: Path, redis_link: RedisLink, redis_prefix: str, redis_client: aioredis.Redis
) -> None:
    policies = copy_policy(tmp_path)
    set_retention(policies, MARIN, 30)
    policy = load_policy(policies)
    now = datetime.now(UTC)
    last_day = record(EntityKind.PERSON, MARIN, age_days=30, now=now)
    expired = record(EntityKind.PERSON, MARIN, age_days=31, now=now)
    cache = RedisSourceCache(
        redis_link,
        CachePolicy(86_400.0, retention_ends=policy.retention_ends),
        Secret(generate_cache_key()),
        prefix=redis_prefix,
    )
    await cache.put("s", "k-expired", [expired])
    assert await cache.get("s", "k-expired") is None
    await cache.put("s", "k-last-day", [last_day])
    assert await cache.get("s", "k-last-day") == [last_day]
    midnight = datetime.combine(now.date() + timedelta(days=1), datetime.min.time(), UTC)
    ttl_ms = await redis_client.pttl(cache.entry_key("s", "k-last-day"))
    assert 0 < ttl_ms <= (midnight - now).total_seconds() * 1000
