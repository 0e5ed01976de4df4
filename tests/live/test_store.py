"""The live store's event stream (``hub.live.store``), on the real Redis at REDIS_URL: bounded
by refusing a push, never by dropping an event no worker has handled."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator

import pytest

from hub.live.store import GROUP, LiveStore
from hub.secret import Secret
from hub.shared.cache import CacheCipher
from tests.redis_server import drop_prefix, shared_url, unique_prefix


@pytest.fixture
async def store() -> AsyncIterator[LiveStore]:
    url, prefix = shared_url(), unique_prefix("live-store")
    live = LiveStore(url, CacheCipher(Secret(os.urandom(32).hex())), prefix)
    await live.ensure_group()
    try:
        yield live
    finally:
        await live.close()
        await drop_prefix(url, prefix)


async def test_a_full_stream_refuses_the_next_event_and_drops_none(store: LiveStore) -> None:
    store.events_max = 3
    added = [await store.add_event(f"event {n}".encode()) for n in range(3)]
    assert all(added)
    assert await store.add_event(b"one too many") is None
    assert await store.client.xlen(store.events) == 3
    kept = await store.client.xrange(store.events)
    assert [fields[b"e"] for _, fields in kept] == [b"event 0", b"event 1", b"event 2"]


async def test_only_events_every_worker_is_done_with_are_trimmed(store: LiveStore) -> None:
    ids = [await store.add_event(f"event {n}".encode()) for n in range(5)]
    assert await store.trim_handled() == 0  # none read yet: all stay
    read = await store.client.xreadgroup(GROUP, "w1", {store.events: ">"}, count=3)
    assert [i.decode() for i, _ in read[0][1]] == ids[:3]
    await store.client.xack(store.events, GROUP, ids[0], ids[1])
    # ids[2] is read but not acknowledged (its worker may have died): it and what follows stay
    assert await store.trim_handled() == 2
    assert [i.decode() for i, _ in await store.client.xrange(store.events)] == ids[2:]
    await store.client.xack(store.events, GROUP, ids[2])
    store.events_max = 3
    assert await store.add_event(b"full") is None  # three kept: one handled, two waiting
    assert await store.trim_handled() == 0  # the last one read marks the group's place
    more = await store.client.xreadgroup(GROUP, "w1", {store.events: ">"}, count=5)
    await store.client.xack(store.events, GROUP, *[i for i, _ in more[0][1]])
    assert await store.trim_handled() == 2
    assert await store.add_event(b"room again") is not None
