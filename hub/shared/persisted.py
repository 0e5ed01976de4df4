"""Persisted queries: Apollo's automatic persisted queries (APQ), and a safelist mode.

APQ (the protocol of Apollo Client's persisted-queries link): a client sends only
``extensions.persistedQuery = {"version": 1, "sha256Hash": "<hex>"}``. A known hash runs its
document; an unknown one is answered ``PERSISTED_QUERY_NOT_FOUND`` (message
``PersistedQueryNotFound``, which clients match on), and the client re-sends the hash with the full
document, which is stored once its SHA-256 is checked. Documents live in Redis for ``ttl_s``
(refreshed on use) so every worker knows them; in memory (bounded LRU) without Redis or while
it is unreachable. A document can carry literal search criteria, so in Redis it is sealed like a
cache entry (``hub.shared.cache.CacheCipher``) and its key is an HMAC of its hash.

Safelist: only registered documents run, whether sent by hash or in full; anything else is
refused with ``PERSISTED_QUERY_NOT_IN_LIST`` (Apollo Router's code) and nothing new is stored.
The list is an Apollo persisted query manifest (``read_manifest``), used from the file
(``MemorySafelist``), or loaded into a Redis hash by an operator command (``publish_safelist``)
and read by every worker (``RedisSafelist``, which keeps its last good copy for when Redis is
down: unknown documents are still refused).

Codes (``errors[].extensions.code``): PERSISTED_QUERY_NOT_FOUND, PERSISTED_QUERY_NOT_SUPPORTED,
PERSISTED_QUERY_HASH_MISMATCH, PERSISTED_QUERY_NOT_IN_LIST, and BAD_REQUEST for a malformed
``persistedQuery`` extension (``PersistedQueryInvalid``); all answered with HTTP 200.
"""

from __future__ import annotations

import abc
import hashlib
import json
import re
import uuid
from collections import OrderedDict
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

import redis.asyncio as aioredis
from cryptography.exceptions import InvalidTag
from redis.typing import EncodableT, FieldT

from hub.errors import ConfigError, RequestError
from hub.shared.cache import CacheCipher
from hub.shared.redis_link import RedisLink, RedisUnavailable

DEFAULT_PREFIX = "hub:pq"
MANIFEST_FORMAT = "apollo-persisted-query-manifest"
_SHA256 = re.compile(r"^[0-9a-fA-F]{64}$")


class PersistedQueryNotFound(RequestError):
    code = "PERSISTED_QUERY_NOT_FOUND"
    http_status = 200

    def __init__(self) -> None:
        super().__init__("PersistedQueryNotFound")


class PersistedQueryNotSupported(RequestError):
    code = "PERSISTED_QUERY_NOT_SUPPORTED"
    http_status = 200

    def __init__(self) -> None:
        super().__init__("PersistedQueryNotSupported")


class PersistedQueryHashMismatch(RequestError):
    code = "PERSISTED_QUERY_HASH_MISMATCH"
    http_status = 200

    def __init__(self) -> None:
        super().__init__("provided sha does not match query")


class QueryNotInSafelist(RequestError):
    code = "PERSISTED_QUERY_NOT_IN_LIST"
    http_status = 200

    def __init__(self) -> None:
        super().__init__("this operation is not in the hub's safelist of registered operations")


class PersistedQueryInvalid(RequestError):
    """A malformed ``extensions.persistedQuery``."""

    code = "BAD_REQUEST"
    http_status = 200


def document_hash(document: str) -> str:
    """The APQ hash of a document: SHA-256 of its exact UTF-8 bytes, lower-case hex."""
    return hashlib.sha256(document.encode()).hexdigest()


# -- APQ document stores ----------------------------------------------------------------------


class DocumentStore(abc.ABC):
    """Where APQ documents are kept, by hash within a scope (the agency that sent them)."""

    @abc.abstractmethod
    async def get(self, sha256: str, scope: str = "") -> str | None: ...

    @abc.abstractmethod
    async def put(self, sha256: str, document: str, scope: str = "") -> None: ...


class MemoryDocumentStore(DocumentStore):
    """An LRU bounded by ``max_bytes`` of documents."""

    def __init__(self, *, max_bytes: int = 32 * 1024 * 1024) -> None:
        self._max_bytes = max_bytes
        self._bytes = 0
        self._documents: OrderedDict[tuple[str, str], str] = OrderedDict()

    async def get(self, sha256: str, scope: str = "") -> str | None:
        document = self._documents.get((scope, sha256))
        if document is not None:
            self._documents.move_to_end((scope, sha256))
        return document

    async def put(self, sha256: str, document: str, scope: str = "") -> None:
        if len(document) > self._max_bytes:
            return
        old = self._documents.pop((scope, sha256), None)
        if old is not None:
            self._bytes -= len(old)
        self._documents[(scope, sha256)] = document
        self._bytes += len(document)
        while self._bytes > self._max_bytes:
            _, dropped = self._documents.popitem(last=False)
            self._bytes -= len(dropped)


class RedisDocumentStore(DocumentStore):
    """APQ documents in Redis, sealed; a ``MemoryDocumentStore`` while Redis is unreachable."""

    def __init__(
        self,
        link: RedisLink,
        cipher: CacheCipher,
        *,
        prefix: str = DEFAULT_PREFIX,
        ttl_s: float = 24 * 3600,
    ) -> None:
        self.link = link
        self.prefix = prefix
        self.fallback = MemoryDocumentStore()
        self._cipher = cipher
        self._ttl_ms = int(ttl_s * 1000)

    def _key(self, sha256: str, scope: str) -> str:
        name = f"{scope}\x1f{sha256}" if scope else sha256
        return f"{self.prefix}:apq:{self._cipher.name('apq', name)}"

    async def get(self, sha256: str, scope: str = "") -> str | None:
        key = self._key(sha256, scope)

        async def read(client: aioredis.Redis) -> Any:
            return await client.getex(key, px=self._ttl_ms)

        try:
            sealed = await self.link.run(read)
        except RedisUnavailable:
            sealed = None
        if sealed is not None:
            try:
                document = self._cipher.open(bytes(sealed), key.encode()).decode()
            except (InvalidTag, UnicodeDecodeError):
                document = None
            # The hash is checked again: a document that does not match is not run.
            if document is not None and document_hash(document) == sha256:
                return document
        return await self.fallback.get(sha256, scope)

    async def put(self, sha256: str, document: str, scope: str = "") -> None:
        key = self._key(sha256, scope)
        sealed = self._cipher.seal(document.encode(), key.encode())

        async def write(client: aioredis.Redis) -> Any:
            return await client.set(key, sealed, px=self._ttl_ms)

        try:
            await self.link.run(write)
        except RedisUnavailable:
            await self.fallback.put(sha256, document, scope)


# -- safelists --------------------------------------------------------------------------------


def read_manifest(path: Path) -> dict[str, str]:
    """The operations of an Apollo persisted query manifest, by id (sha256 of the body).

    The file looks like ``{"format": "apollo-persisted-query-manifest", "version": 1,
    "operations": [{"id": "<sha256 of body>", "name": "...", "type": "query", "body": "..."}]}``.
    Ids must be the SHA-256 of the body, so a client sending the full text is matched too.
    """
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"cannot read safelist {path.name}: {exc.strerror}") from exc
    except (ValueError, UnicodeDecodeError) as exc:
        raise ConfigError(f"safelist {path.name} is not JSON") from exc
    if not isinstance(data, dict) or data.get("format") != MANIFEST_FORMAT:
        raise ConfigError(f"safelist {path.name}: format must be {MANIFEST_FORMAT!r}")
    if data.get("version") != 1:
        raise ConfigError(f"safelist {path.name}: only manifest version 1 is understood")
    operations = data.get("operations")
    if not isinstance(operations, list):
        raise ConfigError(f"safelist {path.name}: 'operations' must be a list")
    documents: dict[str, str] = {}
    for i, op in enumerate(operations):
        where = f"safelist {path.name}: operations[{i}]"
        if not isinstance(op, dict) or not isinstance(op.get("body"), str):
            raise ConfigError(f"{where} needs a string 'body'")
        body: str = op["body"]
        op_id = op.get("id")
        if not isinstance(op_id, str) or op_id.lower() != document_hash(body):
            raise ConfigError(f"{where}: 'id' must be the SHA-256 of 'body'")
        documents[op_id.lower()] = body
    return documents


class Safelist(abc.ABC):
    """The registered documents, by hash."""

    @abc.abstractmethod
    async def get(self, sha256: str) -> str | None:
        """The registered document with this hash, or None."""


class MemorySafelist(Safelist):
    def __init__(self, documents: Mapping[str, str]) -> None:
        self._documents = {k.lower(): v for k, v in documents.items()}

    @classmethod
    def from_manifest(cls, path: Path) -> MemorySafelist:
        return cls(read_manifest(path))

    def __len__(self) -> int:
        return len(self._documents)

    async def get(self, sha256: str) -> str | None:
        return self._documents.get(sha256)


def _safelist_key(prefix: str) -> str:
    return f"{prefix}:safelist"


class RedisSafelist(Safelist):
    """The safelist in a Redis hash (hash → document) that an operator loads
    (``publish_safelist``). Each lookup asks Redis, so a change applies at once; the answers are
    kept, and when Redis is unreachable the last known list decides."""

    def __init__(self, link: RedisLink, *, prefix: str = DEFAULT_PREFIX) -> None:
        self.link = link
        self.key = _safelist_key(prefix)
        self._known: dict[str, str] = {}

    async def refresh(self) -> int:
        """Load the whole list (at start); the number of documents, or -1 if Redis is away."""

        async def read(client: aioredis.Redis) -> Any:
            return await client.hgetall(self.key)

        try:
            everything = await self.link.run(read)
        except RedisUnavailable:
            return -1
        self._known = {k.decode(): v.decode() for k, v in everything.items()}
        return len(self._known)

    async def get(self, sha256: str) -> str | None:
        async def read(client: aioredis.Redis) -> Any:
            return await client.hget(self.key, sha256)

        try:
            found = await self.link.run(read)
        except RedisUnavailable:
            return self._known.get(sha256)
        if found is None:
            self._known.pop(sha256, None)
            return None
        document: str = found.decode()
        self._known[sha256] = document
        return document


async def publish_safelist(
    link: RedisLink, documents: Mapping[str, str], *, prefix: str = DEFAULT_PREFIX
) -> int:
    """Replace the safelist in Redis with ``documents`` in one step (the operator command).

    Raises ``RedisUnavailable`` if Redis cannot be reached; returns the number of documents.
    """
    for sha256, body in documents.items():
        if document_hash(body) != sha256.lower():
            raise ConfigError("every safelist id must be the SHA-256 of its document")
    key = _safelist_key(prefix)
    staging = f"{key}:loading:{uuid.uuid4().hex}"
    mapping: dict[FieldT, EncodableT] = {k.lower(): v for k, v in documents.items()}

    async def replace(client: aioredis.Redis) -> Any:
        if not mapping:
            return await client.delete(key)
        async with client.pipeline(transaction=True) as pipe:
            pipe.hset(staging, mapping=mapping)
            pipe.rename(staging, key)
            return await pipe.execute()

    await link.run(replace)
    return len(mapping)


# -- the request step -------------------------------------------------------------------------


class PersistedQueries:
    """Turns a request's ``query`` and ``extensions`` into the document to run.

    Modes: ``safelist`` (a safelist is given: only its documents run), ``apq`` (a store is
    given), ``off`` (neither: a ``persistedQuery`` extension is refused as not supported).
    """

    def __init__(
        self,
        *,
        store: DocumentStore | None = None,
        safelist: Safelist | None = None,
        max_document_bytes: int = 64 * 1024,
    ) -> None:
        self.store = store
        self.safelist = safelist
        self.max_document_bytes = max_document_bytes

    @property
    def mode(self) -> Literal["safelist", "apq", "off"]:
        if self.safelist is not None:
            return "safelist"
        return "apq" if self.store is not None else "off"

    async def resolve(
        self, query: str | None, extensions: Mapping[str, Any] | None, scope: str = ""
    ) -> str | None:
        """The document to execute, or None when the request carries none (the caller then
        answers as for a missing query). Raises one of this module's ``RequestError``s.

        ``scope`` (the asking agency): automatic persisted queries are kept per scope, so a
        hash sent alone tells nobody whether another agency sent that document (a document may
        hold search criteria). The safelist is the operator's, the same for everyone."""
        sha256 = _requested_hash(extensions)
        if self.safelist is not None:
            if sha256 is None:
                if query is None:
                    return None
                sha256 = document_hash(query)
            elif query is not None and document_hash(query) != sha256:
                raise PersistedQueryHashMismatch()
            document = await self.safelist.get(sha256)
            if document is None:
                raise QueryNotInSafelist()
            return document
        if sha256 is None:
            return query
        if self.store is None:
            raise PersistedQueryNotSupported()
        if query is None:
            found = await self.store.get(sha256, scope)
            if found is None:
                raise PersistedQueryNotFound()
            return found
        if document_hash(query) != sha256:
            raise PersistedQueryHashMismatch()
        if len(query.encode()) <= self.max_document_bytes:
            await self.store.put(sha256, query, scope)
        return query


def _requested_hash(extensions: Mapping[str, Any] | None) -> str | None:
    if not extensions or extensions.get("persistedQuery") is None:
        return None
    ext = extensions["persistedQuery"]
    if not isinstance(ext, Mapping):
        raise PersistedQueryInvalid("extensions.persistedQuery must be an object")
    if ext.get("version") != 1:
        raise PersistedQueryInvalid("unsupported persisted query version (only version 1 is)")
    sha256 = ext.get("sha256Hash")
    if not isinstance(sha256, str) or not _SHA256.match(sha256):
        raise PersistedQueryInvalid("extensions.persistedQuery.sha256Hash must be 64 hex digits")
    return sha256.lower()


def make_document_store(
    link: RedisLink,
    cipher: CacheCipher | None,
    *,
    prefix: str = DEFAULT_PREFIX,
    ttl_s: float = 24 * 3600,
) -> DocumentStore:
    """Redis-backed APQ when the link is configured (documents sealed with ``cipher``)."""
    if not link.configured:
        return MemoryDocumentStore()
    if cipher is None:
        raise ConfigError("persisted queries in Redis need the cache key to seal documents")
    return RedisDocumentStore(link, cipher, prefix=prefix, ttl_s=ttl_s)
