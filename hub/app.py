"""The Starlette app: the edge of every request, and the lifespan that owns every resource.

Edge, in order, before any GraphQL runs: method and content type (a browser cannot forge an
``application/json`` POST across origins without a preflight we never grant), body size, the
bearer token (401 with a clear message, no GraphQL executed), then the purpose and case number
headers into the ``RequestContext``. The lifespan makes the aiohttp session, the adapters, the
access policy and the token verifier, and in demo mode starts the simulated vendor systems.

This is the only module of ``hub`` that imports ``resolvers``.
"""

from __future__ import annotations

import contextlib
import gc
import hashlib
import hmac
import json
import logging
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import aiohttp
from cross_web import HTTPException
from opentelemetry.sdk.trace.export import SpanExporter
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from strawberry.asgi import GraphQL

from hub.adapters.base import Adapter
from hub.adapters.partner import attach_signer
from hub.adapters.registry import AdapterRegistry
from hub.audit import AuditTrail, build_tracer_provider, load_otlp_exporter, open_audit_log
from hub.context import RequestContext
from hub.demo.runner import RunningWorld, start_world
from hub.demo.world import World, generate_world, today
from hub.errors import (
    AccessDenied,
    AuditUnavailable,
    AuthenticationError,
    HubError,
    RequestError,
)
from hub.federation import (
    ASSERTION_HEADER,
    JWKS_PATH,
    PARTNER_ROLE,
    AssertionSigner,
    HubLoop,
    PartnerTrust,
    current_request,
)
from hub.identity import JwksVerifier, LocalKeyVerifier, TokenVerifier, load_or_create_demo_key
from hub.model import make_id
from hub.persisted import PersistedQueries
from hub.policy_sync import PolicyWatcher
from hub.ratelimit import RateLimiter
from hub.redis_link import RedisLink
from hub.settings import Settings
from hub.shared_state import SharedState
from resolvers.context import Gate, HubContext, Services
from resolvers.schema import build_schema

log = logging.getLogger(__name__)

MAX_HEADER_VALUE = 64


@dataclass(slots=True)
class Runtime:
    """Everything the lifespan made; ``app.state.hub`` once the app is ready."""

    settings: Settings
    services: Services
    verifier: TokenVerifier
    session: aiohttp.ClientSession
    world: RunningWorld | None
    trail: AuditTrail | None
    # Partner hubs (hub.federation): who may call us for their users, our assertion key, and
    # how a partner's call joins its caller's trace.
    partners: PartnerTrust
    signer: AssertionSigner
    # What workers share through Redis, each falling back to memory (hub.redis_link).
    link: RedisLink
    limiter: RateLimiter
    persisted: PersistedQueries
    watcher: PolicyWatcher | None


def _error_response(status: int, code: str, message: str, **headers: str) -> JSONResponse:
    return JSONResponse(
        {"data": None, "errors": [{"message": message, "extensions": {"code": code}}]},
        status_code=status,
        headers=headers or None,
    )


def _document_of(body: bytes) -> tuple[str | None, str | None]:
    """(operation name, sha256 of the query text) of a JSON GraphQL request, if it is one."""
    try:
        payload = json.loads(body)
    except ValueError:
        return None, None
    if not isinstance(payload, dict):
        return None, None
    query, name = payload.get("query"), payload.get("operationName")
    digest = hashlib.sha256(query.encode()).hexdigest() if isinstance(query, str) else None
    return (name if isinstance(name, str) else None), digest


async def _resolve_persisted(persisted: PersistedQueries, body: bytes) -> bytes:
    """The request body with the document a persisted-query hash names (APQ or safelist)."""
    try:
        payload = json.loads(body)
    except ValueError:
        return body  # strawberry answers a malformed body with a clear 400
    if not isinstance(payload, dict):
        return body
    query, extensions = payload.get("query"), payload.get("extensions")
    document = await persisted.resolve(
        query if isinstance(query, str) else None,
        extensions if isinstance(extensions, dict) else None,
    )
    if document is None or document == query:
        return body
    payload["query"] = document
    return json.dumps(payload).encode()


class HubGraphQL(GraphQL[HubContext, None]):
    async def handle_request(self, request: Request) -> Response:
        try:
            response: Response = await self.run(request)
        except HTTPException as exc:
            return _error_response(exc.status_code, "BAD_REQUEST", exc.reason)
        return response

    async def get_context(self, request: Any, response: Any) -> HubContext:
        runtime: Runtime = request.app.state.hub
        ctx: RequestContext = request.state.hub_request
        return HubContext(runtime.services, ctx, getattr(request.state, "audit_op", None))


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
        graphql_ide="graphiql" if settings.introspection else None,
        allow_queries_via_get=False,
    )

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        running: RunningWorld | None = None
        active = settings
        if settings.uses_demo_world:
            demo = settings.demo
            the_world = world or generate_world(
                size=demo.size, seed=demo.seed, region=demo.region, as_of=today()
            )
            running = await start_world(the_world, latency_ms=demo.latency_ms)
            active = settings.with_sources(running.sources, running.agencies)
        connector = aiohttp.TCPConnector(limit=256, limit_per_host=64)
        session = aiohttp.ClientSession(connector=connector)
        exporter = ops_exporter
        if exporter is None and active.otlp_endpoint:
            exporter = load_otlp_exporter(active.otlp_endpoint)
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
                cache=shared.cache(adapters),
                breaker=shared.breaker(adapters),
            )
            trail = (
                AuditTrail(audit_log, provider, policy_version=the_gate.version)
                if (audit_log is not None)
                else None
            )
            # What start-up made (the demo world, policy, schema) lives as long as the process:
            # keep the cyclic GC from rescanning it on every collection.
            gc.collect()
            gc.freeze()
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
            if settings.introspection and "text/html" in request.headers.get("accept", ""):
                return await graphql.render_graphql_ide(request)
            return _error_response(405, "BAD_REQUEST", "send GraphQL as a JSON POST", Allow="POST")
        content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if content_type != "application/json":
            return _error_response(
                415, "BAD_REQUEST", "GraphQL requests must be POSTed as application/json"
            )
        limit = runtime.settings.limits.max_body_bytes
        declared = request.headers.get("content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > limit):
            return _error_response(413, "QUERY_REJECTED", f"request body over {limit} bytes")
        body = b""
        async for chunk in request.stream():
            body += chunk
            if len(body) > limit:
                return _error_response(413, "QUERY_REJECTED", f"request body over {limit} bytes")
        request._body = body  # starlette replays it to strawberry's request.json()
        header = request.headers.get("authorization", "")
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            return _error_response(
                401,
                "UNAUTHENTICATED",
                "send Authorization: Bearer <token> (hub token prints one)",
                **{"WWW-Authenticate": 'Bearer realm="hub"'},
            )
        try:
            subject = await runtime.verifier.verify(token.strip())
        except AuthenticationError as exc:
            return _error_response(
                401,
                exc.code,
                exc.message,
                **{"WWW-Authenticate": 'Bearer realm="hub", error="invalid_token"'},
            )
        purpose = request.headers.get("x-purpose")
        case_number = request.headers.get("x-case-number")
        ctx = RequestContext(
            subject=subject,
            purpose=purpose[:MAX_HEADER_VALUE] if purpose else None,
            case_number=case_number[:MAX_HEADER_VALUE] if case_number else None,
            client_address=request.client.host if request.client else None,
            request_id=str(uuid.uuid4()),
            received_at=datetime.now(UTC),
        )
        inherited_trace: str | None = None
        assertion = request.headers.get(ASSERTION_HEADER)
        if assertion is not None or PARTNER_ROLE in subject.roles:
            # A partner hub's call runs as the user it asks for; its own account is only `via`.
            try:
                if assertion is None:
                    raise AccessDenied(
                        f"a partner hub must name the requester it asks for ({ASSERTION_HEADER})"
                    )
                admitted = await runtime.partners.admit(
                    subject, assertion, purpose=ctx.purpose, case_number=ctx.case_number
                )
            except HubLoop as exc:
                return _error_response(409, exc.code, exc.message)
            except AuthenticationError as exc:
                return _error_response(401, exc.code, exc.message)
            except AccessDenied as exc:
                return _error_response(403, exc.code, exc.message)
            ctx = admitted.context(subject, ctx)
            inherited_trace = admitted.trace_id
        decision = await runtime.limiter.hit(
            {"user": f"{ctx.subject.ori}/{ctx.subject.user_id}", "agency": ctx.subject.ori}
        )
        if not decision.allowed:
            return _error_response(
                429,
                "RATE_LIMITED",
                f"too many requests for this {decision.limited_by}; retry later",
                **{"Retry-After": decision.retry_after_header},
            )
        try:
            body = await _resolve_persisted(runtime.persisted, body)
        except RequestError as exc:
            # Apollo clients expect these as a GraphQL answer, then send the full document.
            return _error_response(200, exc.code, exc.message)
        request._body = body
        request.state.hub_request = ctx
        # For adapters whose calls carry no request (get_many): a partner hub needs the requester.
        current_request.set(ctx)
        trail = runtime.trail
        if trail is None:
            return await graphql.handle_request(request)
        name, digest = _document_of(body)
        # One audited operation per request; its entry is durable before the response leaves.
        try:
            # A partner's call joins its caller's trace: one trace id in both audit logs.
            async with trail.operation(
                ctx, name=name or "anonymous", document_hash=digest, parent_trace_id=inherited_trace
            ) as op:
                op.annotate(policy_version=runtime.services.gate.version)
                request.state.audit_op = op
                response = await graphql.handle_request(request)
                if response.status_code >= 400:
                    op.set_outcome("REFUSED", "BAD_REQUEST")
        except AuditUnavailable as exc:
            log.error("audit trail unavailable; response withheld: %s", exc.message)
            return _error_response(
                503, exc.code, "the audit trail cannot be written, so no data is released"
            )
        response.headers["X-Request-Id"] = ctx.request_id
        response.headers["X-Trace-Id"] = op.trace_id
        return response

    async def source_notices(request: Request) -> Response:
        """A vendor system pushes that records were expunged or sealed (adapter hook): every
        cached answer holding them is evicted. Authenticated by the source's ``notice_key``."""
        runtime: Runtime = request.app.state.hub
        adapter = runtime.services.by_name.get(request.path_params["name"])
        expected = adapter.config.options.get("notice_key", "") if adapter else ""
        given = request.headers.get("x-notice-key", "")
        if adapter is None or not expected or not hmac.compare_digest(given, expected):
            return _error_response(403, "FORBIDDEN", "not a source that may send notices here")
        body = await request.body()
        if len(body) > runtime.settings.limits.max_body_bytes:
            return _error_response(413, "BAD_REQUEST", "notice body too large")
        try:
            refs = adapter.parse_notices(body)
        except (ValueError, KeyError, TypeError):
            return _error_response(400, "BAD_REQUEST", "not a notice this source's adapter reads")
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
        return _error_response(400 if exc.code != "INTERNAL" else 500, exc.code, exc.message)

    return Starlette(
        routes=[
            Route("/graphql", graphql_endpoint, methods=["GET", "POST"]),
            Route("/healthz", healthz, methods=["GET"]),
            Route("/sources/{name}/notices", source_notices, methods=["POST"]),
            Route(JWKS_PATH, hub_jwks, methods=["GET"]),
        ],
        lifespan=lifespan,
        exception_handlers={HubError: hub_error},
    )
