"""The hub under test: ``create_app`` served by uvicorn in the benchmark's own event loop.

Several hubs (policies on or off, audit on or off, different backends) can run side by side in
front of the same vendor process, so that their samples interleave. Each has its own audit log.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import uuid
from collections.abc import AsyncIterator, Iterator, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path
from typing import Any

import aiohttp
import redis.asyncio as aioredis
import uvicorn
from redis.exceptions import RedisError
from starlette.applications import Starlette

from hub import model
from hub.context import RequestContext
from hub.edge.app import create_app
from hub.edge.runtime import Runtime
from hub.secret import Secret
from hub.settings import ResilienceSettings, Settings, SourceConfig
from hub.trust.identity import load_or_create_demo_key, mint_token
from resolvers.catalogue import CATALOGUE
from resolvers.context import Gate

# The subject of the README's worked example: an analyst of Marin Valley, purpose C.
SUBJECT_AGENCY = "CA0990000"
SUBJECT_ROLES = ("analyst",)
PURPOSE = "C"

PERSON_FIELDS = """
  id
  name { given middle surname suffix }
  dateOfBirth sex race height weight ssn
  driverLicense { number state }
  addresses { street city state postalCode }
  phones
  provenance { recordId agency { ori } }
"""
# Twenty leaf fields of a Person (the "1,000 records x 20 fields" of the wide query).
PERSON_LEAF_FIELDS = 20

SEARCH_QUERY = (
    "query Search($text: String!, $kinds: [EntityKind!], $limit: Int) {"
    " search(text: $text, kinds: $kinds, limit: $limit) {"
    "  hits { __typename"
    f"   ... on Person {{ {PERSON_FIELDS} }}"
    "   ... on Vehicle { id vin plate { number state } make model year color }"
    "   ... on Incident { id number incidentKind: kind occurredAt status"
    "      offenses { code description } }"
    "   ... on PlateRead { id plate { number state } readAt camera }"
    "   ... on RecordPointer { kind owner { ori name } contact } }"
    "  sources { source status count latencyMs message } } }"
)


DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/0"
# Far above any rate a benchmark reaches (10,000 a second), yet an interval of 0.1 ms that the
# limiter's millisecond clock can still count (at 1e9 a minute its Redis script fails).
UNLIMITED = 600_000
CACHE_TTL_S = 300.0

# -- policies off ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Allowed:
    allowed: bool = True
    status: str | None = None
    reason: str = "benchmark: policies off"


# Every field of every record type: the whole record, whatever its type.
_EVERY_FIELD = frozenset(name for names in CATALOGUE.fields.values() for name in names)


@dataclass(frozen=True, slots=True)
class _Full:
    visibility: str = "FULL"
    denied_fields: frozenset[str] = frozenset()
    rules: tuple[str, ...] = ()
    readable_fields: frozenset[str] = _EVERY_FIELD
    searchable_fields: frozenset[str] = _EVERY_FIELD


_ALLOWED = _Allowed()
_FULL = _Full()


class OpenGate:
    """Policies off: every source may be asked and every record is shown whole.

    For benchmarks only, to measure what the real gate costs; it lives here, never in
    ``hub.access``, so no deployment can configure it.
    """

    version = "bench-open-gate"

    def knows_agency(self, ori: str) -> bool:
        return True

    def check_source(
        self,
        ctx: RequestContext,
        owner: model.Agency,
        source_kind: model.SourceKind,
        kinds: frozenset[model.EntityKind],
    ) -> _Allowed:
        return _ALLOWED

    def decide(self, ctx: RequestContext, record: model.Record, now: datetime) -> _Full:
        return _FULL

    def decide_involvement(
        self, ctx: RequestContext, owner: model.Agency, involvement: model.InvolvementRef
    ) -> _Full:
        return _FULL


# -- a hub on loopback -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class HubVariant:
    """How one hub under test is configured."""

    label: str
    policies: bool = True
    audit: bool = True
    # None: a JSON-lines file in the run's directory (fsync always); or "redis://...#key".
    audit_log: str | None = None
    # The source cache answers repeated searches without asking the vendors: off, except where
    # the cache itself is measured, or every other figure would measure cache hits.
    cache: bool = False
    # Redis for what workers share (the source cache among it); None: per-process memory.
    redis_url: str | None = None
    # uvicorn's HTTP protocol: "auto" is httptools when installed (as `hub serve`), else h11.
    http: str = "auto"
    # The file audit log's fsync policy: "always" as deployed; "never" only to show how much
    # of a figure is the disk's flush rather than the hub's own work.
    fsync: str = "always"


def hub_settings(
    base_dir: Path,
    sources: tuple[SourceConfig, ...],
    agencies: Mapping[str, model.Agency],
    variant: HubVariant,
) -> Settings:
    var_dir = base_dir / "var"
    resilience = replace(
        ResilienceSettings(),
        cache_ttl_s=CACHE_TTL_S if variant.cache else 0.0,
        # One benchmark user sends more than any person could; the limiter is still consulted.
        user_per_minute=UNLIMITED,
        agency_per_minute=UNLIMITED,
        # A namespace of this run's own in a shared Redis: nothing cached by an earlier run.
        redis_prefix=f"hub-bench-{uuid.uuid4().hex[:12]}",
    )
    return Settings(
        mode="dev",
        sources=sources,
        agencies=dict(agencies),
        var_dir=var_dir,
        audit_log=variant.audit_log or str(base_dir / f"audit-{variant.label}"),
        audit_fsync="never" if variant.fsync == "never" else "always",
        resilience=resilience,
        redis_url=Secret(variant.redis_url) if variant.redis_url else None,
    )


@dataclass
class RunningHub:
    variant: HubVariant
    url: str
    runtime: Runtime
    session: aiohttp.ClientSession
    token: str
    headers: dict[str, str] = field(default_factory=dict)

    async def post(self, query: str, variables: Mapping[str, Any]) -> bytes:
        """One GraphQL request; the raw body (the client's parsing is not the hub's cost)."""
        body = json.dumps({"query": query, "variables": dict(variables)})
        async with self.session.post(
            f"{self.url}/graphql", data=body, headers=self.headers
        ) as resp:
            payload = await resp.read()
            if resp.status != 200:
                raise RuntimeError(
                    f"hub {self.variant.label} answered HTTP {resp.status}: {payload[:300]!r}"
                )
            return payload

    async def query(self, query: str, variables: Mapping[str, Any]) -> dict[str, Any]:
        answer: dict[str, Any] = json.loads(await self.post(query, variables))
        return answer


class _Server(uvicorn.Server):
    """uvicorn, leaving signals alone.

    uvicorn traps SIGINT while it serves and restores the handler it found when it stops; with
    several servers started and stopped in any order, Ctrl-C would end up trapped by none or
    re-raised late. The benchmark's own event loop handles it instead.
    """

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


@contextlib.asynccontextmanager
async def serve_hub(
    settings: Settings,
    variant: HubVariant,
    session: aiohttp.ClientSession,
    *,
    agency: str = SUBJECT_AGENCY,
    roles: tuple[str, ...] = SUBJECT_ROLES,
    purpose: str = PURPOSE,
) -> AsyncIterator[RunningHub]:
    """The hub of ``settings`` on a free loopback port, and a token for the worked subject."""
    gate: Gate | None = None if variant.policies else OpenGate()
    app = create_app(settings, gate=gate, audit=variant.audit)
    async with serve_app(app, http=variant.http, label=f"hub {variant.label}") as url:
        key = load_or_create_demo_key(settings.demo_key_path)
        token = mint_token(
            key, settings.auth, user="bench", agency=agency, state=agency[:2], roles=roles
        )
        yield RunningHub(
            variant=variant,
            url=url,
            runtime=app.state.hub,
            session=session,
            token=token,
            headers={
                "Content-Type": "application/json",
                "Authorization": f"Bearer {token}",
                "X-Purpose": purpose,
                "X-Case-Number": "BENCH-1",
            },
        )


@contextlib.asynccontextmanager
async def serve_app(
    app: Starlette, *, http: str = "auto", label: str = "app"
) -> AsyncIterator[str]:
    """``app`` under uvicorn in this event loop, on a free loopback port: its base URL."""
    config = uvicorn.Config(
        app,
        host="127.0.0.1",
        port=0,
        log_level="warning",
        lifespan="on",
        access_log=False,
        server_header=False,
        http=http,
    )
    server = _Server(config)
    task = asyncio.create_task(server.serve())
    while not server.started:
        if task.done():
            task.result()
            raise RuntimeError(f"{label} stopped before it started")
        await asyncio.sleep(0.01)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await task


@contextlib.asynccontextmanager
async def serve_hubs(
    base_dir: Path,
    sources: tuple[SourceConfig, ...],
    agencies: Mapping[str, model.Agency],
    variants: list[HubVariant],
    session: aiohttp.ClientSession,
) -> AsyncIterator[dict[str, RunningHub]]:
    """Every variant at once, in front of the same sources."""
    async with contextlib.AsyncExitStack() as stack:
        hubs = {}
        for variant in variants:
            settings = hub_settings(base_dir, sources, agencies, variant)
            hubs[variant.label] = await stack.enter_async_context(
                serve_hub(settings, variant, session)
            )
        yield hubs


def cached_answers(answer: Mapping[str, Any]) -> tuple[int, int]:
    """(sources that answered from the hub's cache, sources that answered) in one response."""
    sources = (answer.get("extensions") or {}).get("sources") or []
    answered = [s for s in sources if s.get("status") in ("OK", "NO_HIT")]
    return sum(1 for s in answered if s.get("cached")), len(answered)


def bench_redis_url() -> str:
    """The Redis the benchmark may use: ``REDIS_URL``, as for the tests."""
    return os.environ.get("REDIS_URL", DEFAULT_REDIS_URL)


async def redis_unreachable(url: str) -> str | None:
    """None when Redis answers at ``url``; otherwise why not (never the URL: it may hold a
    password)."""
    client = aioredis.Redis.from_url(url, socket_timeout=2, socket_connect_timeout=2)
    try:
        await client.ping()
    except (RedisError, OSError) as exc:
        return f"Redis at REDIS_URL does not answer ({type(exc).__name__})"
    finally:
        await client.aclose()
    return None


async def drop_redis_prefix(url: str, prefix: str) -> None:
    """Delete every key a benchmark hub wrote under ``prefix``."""
    client = aioredis.Redis.from_url(url)
    try:
        async for key in client.scan_iter(match=f"{prefix}:*", count=500):
            await client.delete(key)
    finally:
        await client.aclose()


def client_session(concurrency: int = 256) -> aiohttp.ClientSession:
    """The load client's session: enough connections that the client is never the limit."""
    connector = aiohttp.TCPConnector(limit=concurrency * 2, limit_per_host=concurrency * 2)
    return aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(total=120))


def with_timeout(sources: tuple[SourceConfig, ...], timeout_ms: int) -> tuple[SourceConfig, ...]:
    return tuple(replace(s, timeout_ms=timeout_ms) for s in sources)
