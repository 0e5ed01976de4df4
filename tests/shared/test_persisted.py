"""Persisted queries: the APQ exchange (memory and real Redis, shared by workers, sealed at
rest), the safelist from a manifest file or a Redis hash, and their errors."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import redis.asyncio as aioredis

from hub.errors import ConfigError, RequestError
from hub.secret import Secret
from hub.shared.cache import CacheCipher, generate_cache_key
from hub.shared.persisted import (
    MemoryDocumentStore,
    MemorySafelist,
    PersistedQueries,
    RedisDocumentStore,
    RedisSafelist,
    document_hash,
    make_document_store,
    publish_safelist,
    read_manifest,
)
from hub.shared.redis_link import RedisLink, RedisUnavailable
from tests.redis_server import (
    RedisServer,
    started_link,
)

CIPHER = CacheCipher(Secret(generate_cache_key()))
SEARCH = "query Search($text: String!) { search(text: $text) { __typename } }"
LITERAL = 'query { search(text: "Esperanza Villanueva") { __typename } }'
LOOKUP = "query Lookup($id: ID!) { node(id: $id) { id } }"


def apq(sha256: str) -> dict[str, object]:
    return {"persistedQuery": {"version": 1, "sha256Hash": sha256}}


async def code_of(queries: PersistedQueries, query: str | None, extensions: object) -> str:
    with pytest.raises(RequestError) as raised:
        await queries.resolve(query, extensions)  # type: ignore[arg-type]
    return raised.value.code


def manifest(tmp_path: Path, *bodies: str, **override: object) -> Path:
    ops = [{"id": document_hash(b), "name": f"op{i}", "type": "query", "body": b}
           for i, b in enumerate(bodies)]  # fmt: skip
    data = {"format": "apollo-persisted-query-manifest", "version": 1, "operations": ops}
    data.update(override)
    path = tmp_path / "manifest.json"
    path.write_text(json.dumps(data), encoding="utf-8")
    return path


# -- APQ --------------------------------------------------------------------------------------


async def test_apq_exchange_in_memory() -> None:
    queries = PersistedQueries(store=MemoryDocumentStore())
    assert queries.mode == "apq"
    sha = document_hash(SEARCH)
    with pytest.raises(RequestError) as raised:
        await queries.resolve(None, apq(sha))
    assert raised.value.code == "PERSISTED_QUERY_NOT_FOUND"
    assert raised.value.message == "PersistedQueryNotFound"  # what Apollo clients match on
    assert await queries.resolve(SEARCH, apq(sha)) == SEARCH
    assert await queries.resolve(None, apq(sha)) == SEARCH
    assert await queries.resolve(None, apq(sha.upper())) == SEARCH
    # Plain requests pass through untouched.
    assert await queries.resolve(LOOKUP, None) == LOOKUP
    assert await queries.resolve(LOOKUP, {"other": 1}) == LOOKUP


async def test_a_document_that_does_not_match_its_hash_is_refused_and_not_stored() -> None:
    queries = PersistedQueries(store=MemoryDocumentStore())
    sha = document_hash(SEARCH)
    assert await code_of(queries, LOOKUP, apq(sha)) == "PERSISTED_QUERY_HASH_MISMATCH"
    assert await code_of(queries, None, apq(sha)) == "PERSISTED_QUERY_NOT_FOUND"


@pytest.mark.parametrize(
    "extensions",
    [
        {"persistedQuery": "abc"},
        {"persistedQuery": {"version": 2, "sha256Hash": "0" * 64}},
        {"persistedQuery": {"version": 1, "sha256Hash": "xyz"}},
        {"persistedQuery": {"version": 1}},
    ],
)
async def test_malformed_extensions_are_bad_requests(extensions: dict[str, object]) -> None:
    queries = PersistedQueries(store=MemoryDocumentStore())
    assert await code_of(queries, None, extensions) == "BAD_REQUEST"


async def test_off_mode_refuses_persisted_queries() -> None:
    queries = PersistedQueries()
    assert queries.mode == "off"
    assert await code_of(queries, None, apq(document_hash(SEARCH))) == (
        "PERSISTED_QUERY_NOT_SUPPORTED"
    )
    assert await queries.resolve(SEARCH, None) == SEARCH


async def test_oversized_documents_run_but_are_not_stored() -> None:
    queries = PersistedQueries(store=MemoryDocumentStore(), max_document_bytes=10)
    sha = document_hash(SEARCH)
    assert await queries.resolve(SEARCH, apq(sha)) == SEARCH
    assert await code_of(queries, None, apq(sha)) == "PERSISTED_QUERY_NOT_FOUND"


async def test_memory_store_is_bounded_in_bytes() -> None:
    store = MemoryDocumentStore(max_bytes=100)
    for i in range(5):
        await store.put(str(i), "x" * 40)
    assert await store.get("0") is None
    assert await store.get("4") is not None


async def test_apq_in_redis_is_shared_by_workers_and_sealed(
    redis_links: tuple[RedisLink, RedisLink], redis_prefix: str, redis_client: aioredis.Redis
) -> None:
    a = PersistedQueries(store=RedisDocumentStore(redis_links[0], CIPHER, prefix=redis_prefix))
    b = PersistedQueries(store=RedisDocumentStore(redis_links[1], CIPHER, prefix=redis_prefix))
    sha = document_hash(LITERAL)
    assert await code_of(b, None, apq(sha)) == "PERSISTED_QUERY_NOT_FOUND"
    assert await a.resolve(LITERAL, apq(sha)) == LITERAL
    assert await b.resolve(None, apq(sha)) == LITERAL
    keys = [k async for k in redis_client.scan_iter(match=f"{redis_prefix}:*")]
    assert len(keys) == 1
    assert sha.encode() not in keys[0]
    value: Any = await redis_client.get(keys[0])
    assert b"Villanueva" not in value
    assert b"search" not in value
    assert 0 < await redis_client.pttl(keys[0]) <= 24 * 3600 * 1000


async def test_apq_falls_back_to_memory_while_redis_is_away(redis_server: RedisServer) -> None:
    link = await started_link(redis_server.url)
    try:
        store = make_document_store(link, CIPHER)
        assert isinstance(store, RedisDocumentStore)
        queries = PersistedQueries(store=store)
        redis_server.kill()
        sha = document_hash(SEARCH)
        assert await queries.resolve(SEARCH, apq(sha)) == SEARCH
        assert await queries.resolve(None, apq(sha)) == SEARCH
        redis_server.start()
        assert await link.wait_up(5.0)
        # Redis came back empty; this worker still knows the document from memory.
        assert await queries.resolve(None, apq(sha)) == SEARCH
    finally:
        await link.close()


def test_documents_in_redis_must_be_sealed() -> None:
    with pytest.raises(ConfigError, match="cache key"):
        make_document_store(RedisLink("redis://127.0.0.1:1/0"), None)
    assert isinstance(make_document_store(RedisLink(None), None), MemoryDocumentStore)


# -- safelist ---------------------------------------------------------------------------------


async def test_safelist_from_a_manifest(tmp_path: Path) -> None:
    safelist = MemorySafelist.from_manifest(manifest(tmp_path, SEARCH, LOOKUP))
    assert len(safelist) == 2
    queries = PersistedQueries(store=MemoryDocumentStore(), safelist=safelist)
    assert queries.mode == "safelist"
    assert await queries.resolve(None, apq(document_hash(SEARCH))) == SEARCH
    assert await queries.resolve(LOOKUP, None) == LOOKUP
    assert await queries.resolve(LOOKUP, apq(document_hash(LOOKUP))) == LOOKUP
    assert await queries.resolve(None, None) is None

    assert await code_of(queries, LITERAL, None) == "PERSISTED_QUERY_NOT_IN_LIST"
    assert await code_of(queries, None, apq(document_hash(LITERAL))) == (
        "PERSISTED_QUERY_NOT_IN_LIST"
    )
    # Sending a new document with its hash does not register it.
    assert await code_of(queries, LITERAL, apq(document_hash(LITERAL))) == (
        "PERSISTED_QUERY_NOT_IN_LIST"
    )
    assert await code_of(queries, None, apq(document_hash(LITERAL))) == (
        "PERSISTED_QUERY_NOT_IN_LIST"
    )
    assert await code_of(queries, SEARCH, apq(document_hash(LOOKUP))) == (
        "PERSISTED_QUERY_HASH_MISMATCH"
    )


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ({"format": "something-else"}, "format"),
        ({"version": 2}, "version 1"),
        ({"operations": {}}, "must be a list"),
        ({"operations": [{"id": "0" * 64, "body": SEARCH}]}, "SHA-256"),
        ({"operations": [{"id": "0" * 64}]}, "string 'body'"),
    ],
)
def test_a_bad_manifest_is_a_config_error(
    tmp_path: Path, override: dict[str, object], message: str
) -> None:
    with pytest.raises(ConfigError, match=message):
        read_manifest(manifest(tmp_path, SEARCH, **override))


def test_an_unreadable_manifest_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read"):
        read_manifest(tmp_path / "missing.json")
    (tmp_path / "bad.json").write_text("{", encoding="utf-8")
    with pytest.raises(ConfigError, match="not JSON"):
        read_manifest(tmp_path / "bad.json")


async def test_safelist_in_redis_loaded_by_an_operator(
    redis_links: tuple[RedisLink, RedisLink], redis_prefix: str, tmp_path: Path
) -> None:
    operator, worker = redis_links
    queries = PersistedQueries(safelist=RedisSafelist(worker, prefix=redis_prefix))
    assert await code_of(queries, SEARCH, None) == "PERSISTED_QUERY_NOT_IN_LIST"

    documents = read_manifest(manifest(tmp_path, SEARCH, LOOKUP))
    assert await publish_safelist(operator, documents, prefix=redis_prefix) == 2
    assert await queries.resolve(SEARCH, None) == SEARCH
    assert await queries.resolve(None, apq(document_hash(LOOKUP))) == LOOKUP

    # A new list replaces the old one at once.
    await publish_safelist(operator, {document_hash(LOOKUP): LOOKUP}, prefix=redis_prefix)
    assert await code_of(queries, SEARCH, None) == "PERSISTED_QUERY_NOT_IN_LIST"
    assert await queries.resolve(LOOKUP, None) == LOOKUP

    with pytest.raises(ConfigError, match="SHA-256"):
        await publish_safelist(operator, {"0" * 64: SEARCH}, prefix=redis_prefix)


async def test_the_last_known_safelist_decides_while_redis_is_away(
    redis_server: RedisServer,
) -> None:
    link = await started_link(redis_server.url)
    try:
        await publish_safelist(link, {document_hash(SEARCH): SEARCH})
        safelist = RedisSafelist(link)
        assert await safelist.refresh() == 1
        queries = PersistedQueries(safelist=safelist)
        redis_server.kill()
        assert await queries.resolve(SEARCH, None) == SEARCH
        assert await code_of(queries, LOOKUP, None) == "PERSISTED_QUERY_NOT_IN_LIST"
        assert await safelist.refresh() == -1
        with pytest.raises(RedisUnavailable):
            await publish_safelist(link, {document_hash(LOOKUP): LOOKUP})
    finally:
        await link.close()
