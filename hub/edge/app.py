"""The Starlette app (``create_app``) and the lifespan that owns every resource.

The lifespan makes the aiohttp session, the adapters, the access policy, the token verifier, the
audit trail and what workers share through Redis (``hub.shared``), and keeps them in a
``Runtime`` (``hub.edge.runtime``). When the settings ask for the demo world it starts the
simulated vendor systems through ``hub.demo.runner.start_demo``, imported only then: the demo
world (and Faker with it) is never loaded otherwise.

Routes: ``/graphql`` (POST: ``hub.edge.pipeline``; GET serves GraphiQL or 405 and runs no
operation, so it is not audited; a WebSocket there speaks graphql-transport-ws:
``hub.edge.websocket``), ``/healthz``, ``/sources/NAME/notices`` (a vendor's expungement
and sealing notices), this hub's assertion keys for partner hubs and the signed checkpoints of
its audit chain (``/audit/checkpoints``, partner hubs only). A ``HubError`` that escapes
a route is answered with its ``http_status`` and code (``hub.errors``).

GraphiQL is the hub's own page, offline (``hub.edge.graphiql``): its files under ``/graphiql/``,
none of another host; demo and dev only.

The edge (``hub.edge``) is the only part of ``hub`` that imports ``resolvers``, apart from the
``hub`` command (``hub.cli``).
"""

from __future__ import annotations

import asyncio
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
from starlette.routing import Route, WebSocketRoute
from starlette.websockets import WebSocket

from hub.adapters.base import Adapter
from hub.adapters.partner import attach_signer
from hub.adapters.registry import AdapterRegistry
from hub.audit import AuditTrail, build_tracer_provider, open_audit_log
from hub.audit.checkpoint import CheckpointSigner, checkpoint_store, write_periodically
from hub.audit.tracing import ops_exporter_from_environment
from hub.edge.graphiql import GraphiQL
from hub.edge.metrics import PATH as METRICS_PATH
from hub.edge.metrics import HubMetrics
from hub.edge.pipeline import HubGraphQL, error_response, run_graphql
from hub.edge.runtime import Runtime
from hub.edge.websocket import audit_writable, serve_websocket
from hub.errors import (
    AccessDenied,
    AuditUnavailable,
    AuthenticationError,
    HubError,
    MethodNotAllowed,
    NoticeTooLarge,
    RequestError,
)
from hub.live import Live, open_live
from hub.model import PlateRead, make_id
from hub.settings import Settings
from hub.shared.policy_sync import PolicyWatcher
from hub.shared.redis_link import RedisLink
from hub.shared.state import SharedState
from hub.trust.federation import JWKS_PATH, PARTNER_ROLE, AssertionSigner, PartnerTrust
from hub.trust.identity import (
    JwksVerifier,
    LocalKeyVerifier,
    TokenVerifier,
    load_or_create_demo_key,
)
from resolvers import present
from resolvers.context import Gate
from resolvers.live import LiveServices
from resolvers.schema import build_schema

if TYPE_CHECKING:
    # Types only: the demo world is imported in the lifespan, when the settings ask for it.
    from hub.demo.runner import RunningWorld
    from hub.demo.world import World

log = logging.getLogger(__name__)

CHECKPOINTS_PATH = "/audit/checkpoints"
CHECKPOINTS_MAX = 1000


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
        # No cookie jar: one session serves every user, so a cookie a vendor set while
        # answering one user's question must not ride along on the next user's (and keeping
        # none also spares a jar lookup per vendor call).
        session = aiohttp.ClientSession(connector=connector, cookie_jar=aiohttp.DummyCookieJar())
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
        live: Live | None = None
        checkpoints: asyncio.Task[None] | None = None
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
            if audit_log is not None:
                # Signed checkpoints of the chain head (hub.audit.checkpoint), with the key the
                # partners already trust for assertions; published at /audit/checkpoints.
                store = checkpoint_store(audit_log, active.audit_checkpoint_path)
                app.state.audit_checkpoints = store
                if active.audit_checkpoint_s > 0:
                    key = load_or_create_demo_key(active.hub_signing_key_path)
                    checkpoints = asyncio.create_task(
                        write_periodically(
                            audit_log,
                            CheckpointSigner(key, signer.kid, active.hub_id),
                            store,
                            active.audit_checkpoint_s,
                        )
                    )
            the_gate = gate if gate is not None else default_gate(active)
            services = LiveServices(
                settings=active,
                adapters=tuple(adapters),
                gate=the_gate,
                audit_log=audit_log,
                # Cached answers expire with their records (owners' retention limits).
                cache=metrics.metered_cache(
                    shared.cache(adapters, getattr(the_gate, "retention_ends", None))
                ),
                breaker=shared.breaker(adapters),
            )
            trail = (
                AuditTrail(metrics.timed_log(audit_log), provider, policy_version=the_gate.version)
                if (audit_log is not None)
                else None
            )
            # Watches and hot-list alerts (hub.live): with Redis only, shared by every worker.
            live = open_live(active, the_gate, trail, adapters, present.matches)
            if live is not None:
                await live.start()
                services.live = live
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
            if checkpoints is not None:
                checkpoints.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await checkpoints
            if live is not None:
                await live.close()
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

    async def graphql_websocket(websocket: WebSocket) -> None:
        await serve_websocket(graphql, websocket)

    async def _pushed(request: Request, may: str, what: str) -> tuple[Adapter, bytes] | Response:
        """A vendor's push: its source and body, or the refusal (no such source, no or a wrong
        ``notice_key``, a body over the limit)."""
        runtime: Runtime = request.app.state.hub
        adapter = runtime.services.by_name.get(request.path_params["name"])
        expected = adapter.config.options.get("notice_key", "") if adapter else ""
        given = request.headers.get("x-notice-key", "")
        if adapter is None or not expected or not hmac.compare_digest(given, expected):
            return error_response(AccessDenied(f"not a source that may {may} here"))
        body = await request.body()
        if len(body) > runtime.settings.limits.max_body_bytes:
            return error_response(NoticeTooLarge(f"{what} too large"))
        return adapter, body

    async def source_notices(request: Request) -> Response:
        """A vendor system pushes that records were expunged or sealed (adapter hook): every
        cached answer holding them is evicted. Authenticated by the source's ``notice_key``."""
        runtime: Runtime = request.app.state.hub
        pushed = await _pushed(request, "send notices", "notice body")
        if isinstance(pushed, Response):
            return pushed
        adapter, body = pushed
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
        answer = {"notices": len(refs), "evicted": evicted, "deferred": deferred}
        live = getattr(runtime.services, "live", None)
        if isinstance(live, Live):
            # Watches see the records again, fetched fresh when the event is handled.
            try:
                await live.publish_notices(adapter.name, refs)
            except HubError as exc:
                # The cache is done with; the watches are not: 503, so that the vendor sends
                # the notices again (evicting again does no harm), rather than lose them.
                log.warning("notices of %s not passed to watches: %s", adapter.name, exc.code)
                live_error = {"code": exc.code, "message": exc.message}
                return JSONResponse({**answer, "live": live_error}, status_code=503)
        return JSONResponse(answer)

    async def source_reads(request: Request) -> Response:
        """An ALPR system pushes new plate reads (adapter hook ``parse_reads``): matched against
        watches and hot lists at once, on whichever worker takes the event. Authenticated by
        the source's ``notice_key``; 503 when live results are off (no Redis)."""
        runtime: Runtime = request.app.state.hub
        pushed = await _pushed(request, "push reads", "pushed reads")
        if isinstance(pushed, Response):
            return pushed
        adapter, body = pushed
        try:
            reads = [r for r in adapter.parse_reads(body) if isinstance(r, PlateRead)]
        except (ValueError, KeyError, TypeError) as exc:
            return error_response(RequestError(str(exc)[:200]))
        live = getattr(runtime.services, "live", None)
        if not isinstance(live, Live):
            return JSONResponse({"accepted": 0, "live": False}, status_code=503)
        try:
            await live.publish_reads(adapter.name, reads)
        except HubError as exc:
            return JSONResponse(
                {"accepted": 0, "error": exc.code, "message": exc.message}, status_code=503
            )
        # Counts only: plates are CJI and stay out of logs.
        log.info("source %s pushed %d read(s)", adapter.name, len(reads))
        return JSONResponse({"accepted": len(reads)})

    async def healthz(request: Request) -> Response:
        runtime: Runtime | None = getattr(request.app.state, "hub", None)
        if runtime is None:
            return JSONResponse({"status": "starting"}, status_code=503)
        link = runtime.link.health()
        cache = runtime.services.cache
        degraded = link.degraded or (cache is not None and cache.degraded)
        health: dict[str, object] = {
            # Degraded: Redis is configured but away; the hub answers from memory meanwhile.
            "status": "degraded" if degraded else "ok",
            "mode": runtime.settings.mode,
            "sources": len(runtime.services.adapters),
            "redis": link.as_dict(),
        }
        if runtime.trail is not None:
            # No entry, no data: a hub whose audit log cannot take an entry refuses every
            # data request, so a balancer must send them elsewhere (503).
            try:
                await audit_writable(runtime.services.audit_log)
            except AuditUnavailable as exc:
                health.update(status="unavailable", audit=exc.message)
                return JSONResponse(health, status_code=503)
        return JSONResponse(health)

    async def hub_jwks(request: Request) -> Response:
        """This hub's assertion-signing key, for partners that configure our ``jwks_url``."""
        runtime: Runtime = request.app.state.hub
        return JSONResponse(runtime.signer.jwks(), headers={"Cache-Control": "max-age=300"})

    async def audit_checkpoints(request: Request) -> Response:
        """Signed checkpoints of the audit chain's head, newest first, for partner hubs (their
        service accounts: role ``partner-hub``) to keep. No CJI; still not public: the seqs tell
        how busy the hub is, so nobody else may read them."""
        runtime: Runtime = request.app.state.hub
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise AuthenticationError("send Authorization: Bearer <token>")
        subject = await runtime.verifier.verify(token.strip())
        if PARTNER_ROLE not in subject.roles:
            raise AccessDenied("audit checkpoints are published to partner hubs only")
        store = getattr(request.app.state, "audit_checkpoints", None)
        if store is None:
            raise AuditUnavailable("the audit trail is not configured")
        raw = request.query_params.get("limit", "100")
        if not raw.isdigit() or not 1 <= int(raw) <= CHECKPOINTS_MAX:
            raise RequestError(f"limit must be a whole number from 1 to {CHECKPOINTS_MAX}")
        try:
            found = await store.latest(int(raw))
        except OSError as exc:
            raise AuditUnavailable("the audit checkpoints cannot be read") from exc
        return JSONResponse(
            {"issuer": runtime.settings.hub_id, "jwks": JWKS_PATH, "checkpoints": found},
            headers={"Cache-Control": "no-store"},
        )

    async def hub_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HubError)
        return error_response(exc)

    return Starlette(
        routes=[
            Route("/graphql", graphql_endpoint, methods=["GET", "POST"]),
            # GraphQL over WebSocket (graphql-transport-ws): hub.edge.websocket
            WebSocketRoute("/graphql", graphql_websocket),
            Route("/healthz", healthz, methods=["GET"]),
            Route("/sources/{name}/notices", source_notices, methods=["POST"]),
            Route("/sources/{name}/reads", source_reads, methods=["POST"]),
            Route(JWKS_PATH, hub_jwks, methods=["GET"]),
            Route(CHECKPOINTS_PATH, audit_checkpoints, methods=["GET"]),
            Route(METRICS_PATH, metrics.endpoint, methods=["GET"]),
            *(graphiql.routes() if graphiql is not None else ()),
        ],
        lifespan=lifespan,
        exception_handlers={HubError: hub_error},
    )
