"""The Starlette app (``create_app``) and the lifespan that owns every resource.

The lifespan makes the aiohttp session, the adapters, the access policy, the token verifier, the
audit trail and what workers share through Redis (``hub.shared``), and keeps them in a
``Runtime`` (``hub.edge.runtime``). When the settings ask for the demo world it starts the
simulated vendor systems through ``hub.demo.runner.start_demo``, imported only then: the demo
world (and Faker with it) is never loaded otherwise.

Routes: ``/graphql`` (POST: ``hub.edge.pipeline``; GET serves GraphiQL or 405 and runs no
operation, so it is not audited), ``/healthz``, ``/sources/NAME/notices`` (a vendor's expungement
and sealing notices) and this hub's assertion keys for partner hubs. A ``HubError`` that escapes
a route is answered with its ``http_status`` and code (``hub.errors``).

GraphiQL is the hub's own page, offline (``hub.edge.graphiql``): its files under ``/graphiql/``,
none of another host; demo and dev only.

The edge (``hub.edge``) is the only part of ``hub`` that imports ``resolvers``, apart from the
``hub`` command (``hub.cli``).
"""

from __future__ import annotations

import contextlib
import gc
import hmac
import logging
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING

import aiohttp
from opentelemetry.sdk.trace.export import SpanExporter
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from hub.adapters.base import Adapter
from hub.adapters.partner import attach_signer
from hub.adapters.registry import AdapterRegistry
from hub.audit import AuditTrail, build_tracer_provider, open_audit_log
from hub.audit.tracing import ops_exporter_from_environment
from hub.edge.graphiql import GraphiQL
from hub.edge.metrics import PATH as METRICS_PATH
from hub.edge.metrics import HubMetrics
from hub.edge.pipeline import HubGraphQL, error_response, run_graphql
from hub.edge.runtime import Runtime
from hub.errors import AccessDenied, HubError, MethodNotAllowed, NoticeTooLarge, RequestError
from hub.model import make_id
from hub.settings import Settings
from hub.shared.policy_sync import PolicyWatcher
from hub.shared.redis_link import RedisLink
from hub.shared.state import SharedState
from hub.trust.federation import JWKS_PATH, AssertionSigner, PartnerTrust
from hub.trust.identity import (
    JwksVerifier,
    LocalKeyVerifier,
    TokenVerifier,
    load_or_create_demo_key,
)
from resolvers.context import Gate, Services
from resolvers.schema import build_schema

if TYPE_CHECKING:
    # Types only: the demo world is imported in the lifespan, when the settings ask for it.
    from hub.demo.runner import RunningWorld
    from hub.demo.world import World

log = logging.getLogger(__name__)


def build_verifier(settings: Settings) -> TokenVerifier:
    if settings.auth.jwks_url:
        return JwksVerifier(settings.auth)
    key = load_or_create_demo_key(settings.demo_key_path)
    return LocalKeyVerifier(key.public_key(), settings.auth)


def default_gate(settings: Settings) -> Gate:
    from resolvers.catalogue import load_policy

    return load_policy(settings.policy_dir)


def create_app(
    settings: Settings,
    *,
    world: World | None = None,
    gate: Gate | None = None,
    audit: bool = True,
    ops_exporter: SpanExporter | None = None,
) -> Starlette:
    """The hub. With no sources configured it runs ``world`` (default: the demo world).

    ``audit=False`` exists for benchmarks that measure what audit costs; nothing else may use it.
    ``ops_exporter`` receives the redacted operations telemetry (default: the configured OTLP
    endpoint, if any).
    """
    schema = build_schema(settings)
    graphql = HubGraphQL(
        schema,
        graphql_ide=None,  # the hub serves its own, offline: hub.edge.graphiql
        allow_queries_via_get=False,
    )
    graphiql = GraphiQL(settings) if settings.introspection else None
    metrics = HubMetrics.from_environment(settings)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        running: RunningWorld | None = None
        active = settings
        if settings.uses_demo_world:
            from hub.demo.runner import start_demo

            running = await start_demo(settings.demo, world)
            active = settings.with_sources(running.sources, running.agencies)
        connector = aiohttp.TCPConnector(limit=256, limit_per_host=64)
        session = aiohttp.ClientSession(connector=connector)
        exporter = ops_exporter
        if exporter is None:
            # otlp_endpoint, else the standard OTEL_* variables (hub.audit.tracing)
            exporter = ops_exporter_from_environment(active.otlp_endpoint)
        provider = build_tracer_provider(
            ops_exporter=exporter, ops_sample_ratio=active.otlp_sample_ratio
        )
        audit_log = (
            open_audit_log(active.audit_location, fsync=active.audit_fsync) if audit else None
        )
        link = RedisLink(active.redis_url)
        watcher: PolicyWatcher | None = None
        try:
            # Never raises: an unreachable Redis at start leaves the hub degraded, not down.
            await link.start()
            shared = SharedState(active, link)
            registry = AdapterRegistry.from_entry_points()
            adapters: list[Adapter] = [
                registry.get(source.kind)(source, session) for source in active.sources
            ]
            signer = AssertionSigner.from_settings(active)
            attach_signer(adapters, signer)
            the_gate = gate if gate is not None else default_gate(active)
            services = Services(
                settings=active,
                adapters=tuple(adapters),
                gate=the_gate,
                audit_log=audit_log,
                cache=metrics.metered_cache(shared.cache(adapters)),
                breaker=shared.breaker(adapters),
            )
            trail = (
                AuditTrail(metrics.timed_log(audit_log), provider, policy_version=the_gate.version)
                if (audit_log is not None)
                else None
            )
            # What start-up made (the demo world, policy, schema) lives as long as the process:
            # keep the cyclic GC from rescanning it on every collection.
            gc.collect()
            gc.freeze()
            app.state.metrics = metrics
            app.state.hub = Runtime(
                active,
                services,
                build_verifier(active),
                session,
                running,
                trail,
                partners=PartnerTrust.from_settings(active),
                signer=signer,
                link=link,
                limiter=shared.limiter(),
                persisted=await shared.persisted(),
                watcher=None,
            )
            reload = getattr(the_gate, "reload_if_changed", None)
            if reload is not None:
                # Policy files are data: every worker picks a change up within seconds.
                watcher = PolicyWatcher(
                    link,
                    reload,
                    lambda: the_gate.version,
                    prefix=f"{active.resilience.redis_prefix}:policy",
                    local_check_s=active.policy_reload_s,
                )
                await watcher.start()
                app.state.hub.watcher = watcher
            yield
            for adapter in adapters:
                await adapter.close()
        finally:
            if watcher is not None:
                await watcher.close()
            await link.close()
            await session.close()
            if audit_log is not None:
                await audit_log.close()
            provider.shutdown()
            if running is not None:
                await running.stop()

    async def graphql_endpoint(request: Request) -> Response:
        runtime: Runtime = request.app.state.hub
        if request.method == "GET":
            if graphiql is not None and "text/html" in request.headers.get("accept", ""):
                return graphiql.page()
            return error_response(MethodNotAllowed("send GraphQL as a JSON POST"), Allow="POST")
        return await run_graphql(graphql, runtime, request)

    async def source_notices(request: Request) -> Response:
        """A vendor system pushes that records were expunged or sealed (adapter hook): every
        cached answer holding them is evicted. Authenticated by the source's ``notice_key``."""
        runtime: Runtime = request.app.state.hub
        adapter = runtime.services.by_name.get(request.path_params["name"])
        expected = adapter.config.options.get("notice_key", "") if adapter else ""
        given = request.headers.get("x-notice-key", "")
        if adapter is None or not expected or not hmac.compare_digest(given, expected):
            return error_response(AccessDenied("not a source that may send notices here"))
        body = await request.body()
        if len(body) > runtime.settings.limits.max_body_bytes:
            return error_response(NoticeTooLarge("notice body too large"))
        try:
            refs = adapter.parse_notices(body)
        except (ValueError, KeyError, TypeError):
            return error_response(RequestError("not a notice this source's adapter reads"))
        evicted, deferred = 0, False
        cache = runtime.services.cache
        for kind, record_id in refs:
            if cache is not None:
                eviction = await cache.evict_record(make_id(adapter.name, kind, record_id))
                evicted += eviction.entries
                deferred = deferred or eviction.deferred
        # Counts only: record ids are CJI and stay out of logs.
        log.info("source %s sent %d notice(s); %d cache entries evicted", adapter.name,
                 len(refs), evicted)  # fmt: skip
        return JSONResponse({"notices": len(refs), "evicted": evicted, "deferred": deferred})

    async def healthz(request: Request) -> Response:
        runtime: Runtime | None = getattr(request.app.state, "hub", None)
        if runtime is None:
            return JSONResponse({"status": "starting"}, status_code=503)
        link = runtime.link.health()
        cache = runtime.services.cache
        degraded = link.degraded or (cache is not None and cache.degraded)
        return JSONResponse(
            {
                # Degraded: Redis is configured but away; the hub answers from memory meanwhile.
                "status": "degraded" if degraded else "ok",
                "mode": runtime.settings.mode,
                "sources": len(runtime.services.adapters),
                "redis": link.as_dict(),
            }
        )

    async def hub_jwks(request: Request) -> Response:
        """This hub's assertion-signing key, for partners that configure our ``jwks_url``."""
        runtime: Runtime = request.app.state.hub
        return JSONResponse(runtime.signer.jwks(), headers={"Cache-Control": "max-age=300"})

    async def hub_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HubError)
        return error_response(exc)

    return Starlette(
        routes=[
            Route("/graphql", graphql_endpoint, methods=["GET", "POST"]),
            Route("/healthz", healthz, methods=["GET"]),
            Route("/sources/{name}/notices", source_notices, methods=["POST"]),
            Route(JWKS_PATH, hub_jwks, methods=["GET"]),
            Route(METRICS_PATH, metrics.endpoint, methods=["GET"]),
            *(graphiql.routes() if graphiql is not None else ()),
        ],
        lifespan=lifespan,
        exception_handlers={HubError: hub_error},
    )
