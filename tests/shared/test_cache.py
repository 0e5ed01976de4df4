"""The source cache on real Redis (and in memory): hits, TTL, sealing at rest, eviction by
record, degradation while Redis is away and the replay of evictions it missed."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pytest
import redis.asyncio as aioredis

from hub.adapters.base import SearchRequest
from hub.context import RequestContext, Subject
from hub.errors import ConfigError
from hub.model import (
    Agency,
    EntityKind,
    LicensePlate,
    Person,
    PersonName,
    Provenance,
    Record,
    SourceKind,
    SourceSystem,
    Vehicle,
    make_id,
)
from hub.secret import Secret
from hub.shared.cache import (
    CacheCipher,
    CachePolicy,
    MemorySourceCache,
    RedisSourceCache,
    SourceCache,
    generate_cache_key,
    load_or_create_cache_key,
    lookup_key,
    make_source_cache,
    search_key,
)
from hub.shared.redis_link import RedisLink
from tests.redis_server import (
    RedisServer,
    started_link,
)

KEY = Secret(generate_cache_key())
MARIN = Agency(ori="CA0990000", name="Marin Valley SO", state="CA")
SYSTEM = SourceSystem(name="marin-rms", vendor="Northwind", kind=SourceKind.RMS)
NOW = datetime(2024, 5, 1, tzinfo=UTC)
POLICY = CachePolicy(default_ttl_s=30.0, ttl_s={"short-rms": 0.2, "partner-hub": 0.0})

# CJI that must never be readable in Redis, in values or in key names.
SURNAME, GIVEN, PLATE, DOB = "Villanueva", "Esperanza", "7XYZ123", "1987-03-14"


def person(record_id: str, surname: str = SURNAME) -> Person:
    return Person(
        id=make_id("marin-rms", EntityKind.PERSON, record_id),
        provenance=Provenance(agency=MARIN, system=SYSTEM, record_id=record_id, retrieved_at=NOW),
        name=PersonName(given=GIVEN, surname=surname),
        date_of_birth=date.fromisoformat(DOB),
    )


def vehicle(record_id: str) -> Vehicle:
    return Vehicle(
        id=make_id("marin-rms", EntityKind.VEHICLE, record_id),
        provenance=Provenance(agency=MARIN, system=SYSTEM, record_id=record_id, retrieved_at=NOW),
        plate=LicensePlate(number=PLATE, state="CA"),
        make="Honda",
    )


def request(text: str = f"{GIVEN} {SURNAME}", **kwargs: object) -> SearchRequest:
    return SearchRequest(kinds=frozenset({EntityKind.PERSON}), text=text, **kwargs)  # type: ignore[arg-type]


@pytest.fixture(params=["memory", "redis"])
def cache(request: pytest.FixtureRequest, redis_link: RedisLink, redis_prefix: str) -> SourceCache:
    if request.param == "memory":
        return MemorySourceCache(POLICY)
    return RedisSourceCache(redis_link, POLICY, KEY, prefix=redis_prefix)


# -- keys -------------------------------------------------------------------------------------


def test_search_keys_normalise_what_does_not_change_the_question() -> None:
    a = SearchRequest(
        kinds=frozenset({EntityKind.VEHICLE, EntityKind.PERSON}),
        text="  Esperanza   VILLANUEVA ",
        plates=("7xyz123", "8ABC000", "7XYZ123"),
        plate_state="ca",
    )
    b = SearchRequest(
        kinds=frozenset({EntityKind.PERSON, EntityKind.VEHICLE}),
        text="esperanza villanueva",
        plates=("8ABC000", "7XYZ123"),
        plate_state="CA",
    )
    assert search_key(a) == search_key(b)
    assert search_key(a) != search_key(SearchRequest(kinds=a.kinds, text=a.text, limit=10))
    assert search_key(request()) != search_key(request("Esperanza Villanuevo"))
    assert search_key(request()) != search_key(request(since=NOW))


def test_who_asks_is_not_part_of_the_key() -> None:
    # The cache holds vendor answers; access is decided per reader after it.
    def ctx(user: str, ori: str) -> RequestContext:
        subject = Subject(user_id=user, name="x", ori=ori, state=ori[:2], roles=frozenset())
        return RequestContext(subject=subject, purpose="C", case_number=None,
                              client_address="127.0.0.1", request_id=user)  # fmt: skip

    assert search_key(request(context=ctx("a", "CA0990000"))) == search_key(
        request(context=ctx("b", "NV0990000"))
    )


def test_lookup_keys_ignore_order_and_repeats() -> None:
    assert lookup_key(EntityKind.PERSON, ["2", "1", "2"]) == lookup_key(
        EntityKind.PERSON, ["1", "2"]
    )
    assert lookup_key(EntityKind.PERSON, ["1"]) != lookup_key(EntityKind.VEHICLE, ["1"])


def test_the_cache_key_must_be_real_key_material(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="at least 32 bytes"):
        CacheCipher(Secret("c2hvcnQ="))
    with pytest.raises(ConfigError, match="base64"):
        CacheCipher(Secret("not base64 at all!"))
    first = load_or_create_cache_key(tmp_path / "var" / "cache-key")
    assert load_or_create_cache_key(tmp_path / "var" / "cache-key").reveal() == first.reveal()
    assert (tmp_path / "var" / "cache-key").stat().st_mode & 0o077 == 0
    CacheCipher(first)


async def test_the_shared_cache_needs_a_key(redis_link: RedisLink) -> None:
    with pytest.raises(ConfigError, match="encryption key"):
        make_source_cache(redis_link, POLICY, None)
    assert isinstance(make_source_cache(redis_link, POLICY, KEY), RedisSourceCache)
    assert isinstance(make_source_cache(RedisLink(None), POLICY, None), MemorySourceCache)


# -- both implementations ---------------------------------------------------------------------


async def test_hit_and_miss(cache: SourceCache) -> None:
    key = search_key(request())
    assert await cache.get("marin-rms", key) is None
    answer: list[Record] = [person("P1"), vehicle("V1")]
    await cache.put("marin-rms", key, answer)
    assert await cache.get("marin-rms", key) == answer
    assert await cache.get("other-rms", key) is None
    assert await cache.get("marin-rms", search_key(request("someone else"))) is None
    # An empty answer (NO_HIT) is an answer too.
    await cache.put("marin-rms", "empty", [])
    assert await cache.get("marin-rms", "empty") == []


async def test_many_sources_read_at_once_in_their_order(cache: SourceCache) -> None:
    key = search_key(request())
    await cache.put("marin-rms", key, [person("P1")])
    await cache.put("other-rms", key, [])
    found = await cache.get_many(["other-rms", "unknown-rms", "marin-rms"], key)
    assert found == [[], None, [person("P1")]]
    assert await cache.get_many([], key) == []


async def test_entries_expire_by_their_source_ttl(cache: SourceCache) -> None:
    await cache.put("short-rms", "k", [person("P1")])
    await cache.put("marin-rms", "k", [person("P1")])
    assert await cache.get("short-rms", "k") is not None
    await asyncio.sleep(0.3)
    assert await cache.get("short-rms", "k") is None
    assert await cache.get("marin-rms", "k") is not None


async def test_fetch_says_when_the_answer_was_cached(cache: SourceCache) -> None:
    calls: list[str] = []

    async def vendor() -> list[Record]:
        calls.append("called")
        return [person("P1")]

    records, cached = await cache.fetch("marin-rms", "k", vendor)
    assert (records, cached, len(calls)) == ([person("P1")], False, 1)
    records, cached = await cache.fetch("marin-rms", "k", vendor)
    assert (records, cached, len(calls)) == ([person("P1")], True, 1)
    # A TTL of 0: never cached (a partner hub's answer depends on who asks).
    for _ in range(2):
        assert (await cache.fetch("partner-hub", "k", vendor))[1] is False
    assert len(calls) == 3


async def test_a_failing_vendor_call_caches_nothing(cache: SourceCache) -> None:
    async def failing() -> list[Record]:
        raise TimeoutError

    with pytest.raises(TimeoutError):
        await cache.fetch("marin-rms", "k", failing)
    assert await cache.get("marin-rms", "k") is None


async def test_evicting_a_record_drops_every_answer_holding_it(cache: SourceCache) -> None:
    sealed, other = person("P1"), person("P2", surname="Okafor")
    await cache.put("marin-rms", "by-name", [sealed, other])
    await cache.put("marin-rms", "by-id", [sealed])
    await cache.put("short-rms", "by-plate", [sealed, vehicle("V1")])
    await cache.put("marin-rms", "unrelated", [other])

    eviction = await cache.evict_record(sealed.id)
    assert (eviction.entries, eviction.deferred) == (3, False)
    for source, key in [
        ("marin-rms", "by-name"),
        ("marin-rms", "by-id"),
        ("short-rms", "by-plate"),
    ]:
        assert await cache.get(source, key) is None
    assert await cache.get("marin-rms", "unrelated") == [other]
    assert (await cache.evict_record(sealed.id)).entries == 0


async def test_an_answer_fetched_before_the_eviction_is_not_stored_after_it(
    cache: SourceCache,
) -> None:
    sealed = person("P1")
    await cache.evict_record(sealed.id)
    await cache.put("marin-rms", "late", [sealed, vehicle("V1")])
    assert await cache.get("marin-rms", "late") is None
    await cache.put("marin-rms", "clean", [vehicle("V1")])
    assert await cache.get("marin-rms", "clean") == [vehicle("V1")]


# -- in memory --------------------------------------------------------------------------------


async def test_memory_cache_is_a_bounded_lru() -> None:
    cache = MemorySourceCache(POLICY, max_entries=3, max_records=5)
    for k in "abc":
        await cache.put("marin-rms", k, [person(k)])
    assert await cache.get("marin-rms", "a") is not None  # a is now the most recent
    await cache.put("marin-rms", "d", [person("d")])
    assert len(cache) == 3
    assert await cache.get("marin-rms", "b") is None
    # Bounded in records too: a big answer pushes out the older ones.
    await cache.put("marin-rms", "big", [person(str(i)) for i in range(4)])
    assert len(cache) == 2  # c and a (least recent) went; d (1 record) + big (4) fit in 5
    assert await cache.get("marin-rms", "c") is None
    assert await cache.get("marin-rms", "d") is not None
    assert await cache.get("marin-rms", "big") is not None
    await cache.put("marin-rms", "huge", [person(str(i)) for i in range(6)])
    assert await cache.get("marin-rms", "huge") is None


# -- in Redis ---------------------------------------------------------------------------------


async def test_redis_holds_no_cji_in_values_or_key_names(
    redis_link: RedisLink, redis_prefix: str, redis_client: aioredis.Redis
) -> None:
    cache = RedisSourceCache(redis_link, POLICY, KEY, prefix=redis_prefix)
    target = person("P-4471")
    car = vehicle("V-9982")
    await cache.put("marin-rms", search_key(request()), [target, car])
    await cache.put("marin-rms", lookup_key(EntityKind.PERSON, ["P-4471"]), [target])

    forbidden = [SURNAME, GIVEN, PLATE, DOB, "P-4471", "V-9982", target.id, car.id,
                 SURNAME.casefold(), GIVEN.casefold()]  # fmt: skip
    keys = [k async for k in redis_client.scan_iter(match=f"{redis_prefix}:*")]
    assert len(keys) == 2 + 2  # two entries, an index per record
    blobs: list[Any] = []
    for key in keys:
        blobs.append(key)
        if await redis_client.type(key) == b"zset":
            blobs += await redis_client.zrange(key, 0, -1)
        else:
            blobs.append(await redis_client.get(key))
    for blob in blobs:
        for word in forbidden:
            assert word.encode() not in blob, (word, blob[:80])
    assert await cache.get("marin-rms", search_key(request())) == [target, car]


async def test_two_workers_share_answers(
    redis_links: tuple[RedisLink, RedisLink], redis_prefix: str
) -> None:
    a, b = redis_links
    worker_a = RedisSourceCache(a, POLICY, KEY, prefix=redis_prefix)
    worker_b = RedisSourceCache(b, POLICY, KEY, prefix=redis_prefix)
    await worker_a.put("marin-rms", "k", [person("P1")])
    assert await worker_b.get("marin-rms", "k") == [person("P1")]
    assert (await worker_b.evict_record(person("P1").id)).entries == 1
    assert await worker_a.get("marin-rms", "k") is None


async def test_a_value_moved_or_sealed_under_another_key_does_not_open(
    redis_link: RedisLink, redis_prefix: str, redis_client: aioredis.Redis
) -> None:
    cache = RedisSourceCache(redis_link, POLICY, KEY, prefix=redis_prefix)
    await cache.put("marin-rms", "mine", [person("P1")])
    await cache.put("marin-rms", "theirs", [person("P2", surname="Okafor")])
    # Someone with write access to Redis copies one answer over another.
    copied: Any = await redis_client.get(cache.entry_key("marin-rms", "mine"))
    await redis_client.set(cache.entry_key("marin-rms", "theirs"), copied)
    assert await cache.get("marin-rms", "theirs") is None
    assert await redis_client.exists(cache.entry_key("marin-rms", "theirs")) == 0

    other_key = RedisSourceCache(
        redis_link, POLICY, Secret(generate_cache_key()), prefix=redis_prefix
    )
    assert await other_key.get("marin-rms", "mine") is None
    assert await cache.get("marin-rms", "mine") == [person("P1")]


async def test_a_dead_redis_turns_the_cache_off_and_it_comes_back(
    redis_server: RedisServer,
) -> None:
    link = await started_link(redis_server.url)
    try:
        cache = RedisSourceCache(link, POLICY, KEY, prefix="c")
        await cache.put("marin-rms", "k", [person("P1")])
        assert await cache.get("marin-rms", "k") is not None
        redis_server.kill()

        started = time.monotonic()
        assert await cache.get("marin-rms", "k") is None  # a miss, not an error
        await cache.put("marin-rms", "k2", [person("P2")])
        assert await cache.get("marin-rms", "k2") is None
        assert time.monotonic() - started < 0.5
        assert cache.degraded

        redis_server.start()
        assert await link.wait_up(5.0)
        assert not cache.degraded
        await cache.put("marin-rms", "k3", [person("P3")])
        assert await cache.get("marin-rms", "k3") == [person("P3")]
    finally:
        await link.close()


async def test_an_eviction_redis_missed_is_replayed_before_the_cache_serves_again(
    redis_server: RedisServer,
) -> None:
    link = await started_link(redis_server.url, timeout_s=0.2)
    try:
        cache = RedisSourceCache(link, POLICY, KEY, prefix="c")
        sealed = person("P1")
        await cache.put("marin-rms", "holds-it", [sealed])
        await cache.put("marin-rms", "does-not", [vehicle("V1")])
        redis_server.pause()  # hung, keys kept: the stale entry is still there when it returns

        assert await cache.get("marin-rms", "holds-it") is None
        eviction = await cache.evict_record(sealed.id)
        assert eviction.deferred

        redis_server.resume()
        assert await link.wait_up(5.0)
        assert await cache.get("marin-rms", "holds-it") is None
        assert await cache.get("marin-rms", "does-not") == [vehicle("V1")]
        # The tombstone went in with the replay.
        await cache.put("marin-rms", "late", [sealed])
        assert await cache.get("marin-rms", "late") is None
    finally:
        await link.close()
