"""The Starlette app: the edge of every request, and the lifespan that owns every resource.

Edge, in order, before any GraphQL runs (``_Edge.admit``): content type (a browser cannot forge an
``application/json`` POST across origins without a preflight we never grant), body size (the
body is read once), the bearer token (401 with a clear message), the subject's agency and roles
(403 UNKNOWN_AGENCY / UNKNOWN_ROLE: someone the policy does not know is never answered as an
empty result), the purpose header (400 INVALID_PURPOSE for a code that names no purpose,
whatever the query; codes are case-sensitive), a partner hub's requester assertion (the
requester passes the same checks, its asserted purpose too), the rate limit, then the body:
UTF-8, JSON nesting at most ``MAX_JSON_DEPTH`` (checked on the raw bytes before anything
recurses), parsed once, one operation (no batches), persisted queries. strawberry receives that
parsed request; it does not parse the body again.

Every POST to /graphql leaves exactly one audit entry, a refusal too (outcome REFUSED with its
code). A refusal before the token is verified is audited under ``hub.identity.ANONYMOUS``
(user "anonymous", no agency): who sent it is not known, and the entry says no more than that.
GET serves GraphiQL or 405 and runs no operation; it is not audited.

The lifespan makes the aiohttp session, the adapters, the access policy and the token verifier,
and in demo mode starts the simulated vendor systems.

This is the only module of ``hub`` that imports ``resolvers``.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import gc
import hashlib
import hmac
import json
import logging
import re
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, NoReturn

import aiohttp
from cross_web import AsyncHTTPRequestAdapter, HTTPException, StarletteRequestAdapter
from opentelemetry.sdk.trace.export import SpanExporter
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from strawberry.asgi import GraphQL
from strawberry.http import GraphQLRequestData

from hub.access.catalogue import ROLES
from hub.access.purposes import purpose_of
from hub.adapters.base import Adapter
from hub.adapters.partner import attach_signer
from hub.adapters.registry import AdapterRegistry
from hub.audit import AuditTrail, build_tracer_provider, load_otlp_exporter, open_audit_log
from hub.context import RequestContext, Subject
from hub.demo.runner import RunningWorld, start_world
from hub.demo.world import World, generate_world, today
from hub.errors import (
    AccessDenied,
    AuditUnavailable,
    AuthenticationError,
    HubError,
    QueryRejected,
    RequestError,
    UnknownAgency,
    UnknownRole,
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
from hub.identity import (
    ANONYMOUS,
    JwksVerifier,
    LocalKeyVerifier,
    TokenVerifier,
    load_or_create_demo_key,
)
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
# The deepest a request body's JSON may nest (objects and arrays, the envelope included).
MAX_JSON_DEPTH = 64


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


def _status_of(exc: HubError) -> int:
    """The HTTP status the edge answers a refusal with."""
    if isinstance(exc, AuthenticationError):
        return 401
    if isinstance(exc, HubLoop):
        return 409
    if isinstance(exc, AccessDenied):
        return 403  # FORBIDDEN, UNKNOWN_AGENCY, UNKNOWN_ROLE
    if isinstance(exc, AuditUnavailable):
        return 503
    if isinstance(exc, RequestError):
        return 400  # BAD_REQUEST, INVALID_PURPOSE, QUERY_REJECTED (JSON nesting)
    return 500


class Refusal(Exception):
    """What the edge answers instead of running the request."""

    def __init__(self, status: int, code: str, message: str, **headers: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.headers = headers

    @classmethod
    def of(cls, exc: HubError, **headers: str) -> Refusal:
        return cls(_status_of(exc), exc.code, exc.message, **headers)

    def response(self) -> JSONResponse:
        return _error_response(self.status, self.code, self.message, **self.headers)


# A JSON string (escapes included), to be skipped when counting brackets. A string left open
# runs to the end of the body (the parser stops there): every match attempt succeeds, so one
# pass is linear, where retrying from each quote of '"\\"\\"\\"...' would be quadratic.
_JSON_STRING = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*(?:"|\\?\Z)', re.DOTALL)
# Both kinds of bracket as one, everything else deleted: b'{"a": [1, {}]}' -> b"[[[]]]".
_ONE_BRACKET = bytes.maketrans(b"{}", b"[]")
_NOT_BRACKETS = bytes(b for b in range(256) if b not in b"[]{}")
# A \uD800-\uDFFF escape: a surrogate, which is only valid as one half of a pair.
_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F]")


@functools.cache
def _whole_groups(limit: int) -> re.Pattern[bytes]:
    """Bracket groups ("[[][]]", brackets only) nested at most ``limit`` deep, one after the
    other. Each group matches one way or not at all, so a match, or its failure, is linear."""
    group = rb"\[\]"
    for _ in range(limit - 1):
        group = rb"\[(?:" + group + rb")*\]"
    return re.compile(rb"(?:" + group + rb")*")


def check_nesting(body: bytes, limit: int = MAX_JSON_DEPTH) -> None:
    """QueryRejected if ``body``'s JSON nests deeper than ``limit``, before any parser recurses
    into it; RequestError if its brackets do not pair up (it is not JSON then). C speed, no
    recursion: one regex pass drops the strings, one translate keeps the brackets, one regex
    match takes whole groups at most ``limit`` deep for as long as there are any."""
    brackets = _JSON_STRING.sub(b"", body).translate(_ONE_BRACKET, _NOT_BRACKETS)
    if brackets.count(b"[") <= limit:
        return  # no deeper than its number of opening brackets; the parser judges the rest
    found = _whole_groups(limit).match(brackets)  # "(...)*" matches, if only the empty string
    stop = found.end() if found is not None else 0
    if stop == len(brackets):
        return
    # What stopped the match: a "]" with nothing open, or a group that never closes (brackets
    # that do not pair up: not JSON), or else a group that goes deeper than ``limit``.
    if brackets[stop] == ord("]") or 2 * brackets.count(b"[") != len(brackets):
        raise RequestError("the request body is not JSON: its brackets do not pair up")
    raise QueryRejected(
        f"the request body nests JSON deeper than {limit} levels; nothing was executed"
    )


def _not_json(constant: str) -> NoReturn:
    raise RequestError(f"the request body is not JSON: {constant} is not a JSON value")


def _lone_surrogate(value: object) -> bool:
    """Whether a parsed JSON value holds a string that is not Unicode (an unpaired surrogate
    escape): it could not be hashed, audited or answered. Nesting is already bounded."""
    if isinstance(value, str):
        return any("\ud800" <= c <= "\udfff" for c in value)
    if isinstance(value, dict):
        return any(_lone_surrogate(k) or _lone_surrogate(v) for k, v in value.items())
    if isinstance(value, list):
        return any(_lone_surrogate(v) for v in value)
    return False


def parse_body(body: bytes, max_depth: int = MAX_JSON_DEPTH) -> dict[str, Any]:
    """A GraphQL-over-HTTP request body as its JSON object, parsed once; RequestError (400
    BAD_REQUEST) or QueryRejected (400 QUERY_REJECTED, nesting) with a message saying what is
    wrong with it."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise RequestError(
            f"the request body is not UTF-8 (an invalid byte at offset {exc.start})"
        ) from exc
    check_nesting(body, max_depth)
    try:
        payload = json.loads(text, parse_constant=_not_json)
    except json.JSONDecodeError as exc:
        raise RequestError(
            f"the request body is not JSON: {exc.msg} (line {exc.lineno}, column {exc.colno})"
        ) from exc
    except RecursionError as exc:  # not reached: check_nesting bounds the depth
        raise QueryRejected("the request body nests JSON too deeply") from exc
    if _SURROGATE_ESCAPE.search(body) and _lone_surrogate(payload):
        raise RequestError("the request body is not JSON text: it escapes a lone surrogate")
    if isinstance(payload, list):
        raise RequestError("batched requests are not supported: send one operation per request")
    if not isinstance(payload, dict):
        raise RequestError(
            'the request body must be a JSON object: {"query": "...", "variables": {...}}'
        )
    for key, kind, types in (
        ("query", "a string", str),
        ("operationName", "a string", str),
        ("variables", "an object", dict),
        ("extensions", "an object", dict),
    ):
        if payload.get(key) is not None and not isinstance(payload[key], types):
            raise RequestError(f"the request's {key!r} must be {kind} or null")
    return payload


class _EdgeRequest(StarletteRequestAdapter):
    """strawberry's adapter of a Starlette request, keeping the request: its ``state`` holds
    what the edge parsed."""

    def __init__(self, request: Request) -> None:
        super().__init__(request)
        self.request = request


class HubGraphQL(GraphQL[HubContext, None]):
    request_adapter_class = _EdgeRequest

    async def handle_request(self, request: Request) -> Response:
        try:
            response: Response = await self.run(request)
        except HTTPException as exc:
            return _error_response(exc.status_code, "BAD_REQUEST", exc.reason)
        return response

    async def parse_http_body(
        self, request: AsyncHTTPRequestAdapter
    ) -> GraphQLRequestData | list[GraphQLRequestData]:
        """The request as the edge parsed it (``request.state.graphql``): the body is read
        and parsed once, at the edge, never again here."""
        parsed = (
            getattr(request.request.state, "graphql", None)
            if isinstance(request, _EdgeRequest)
            else None
        )
        if not isinstance(parsed, GraphQLRequestData):
            raise HTTPException(400, "the request was not parsed at the edge")
        return parsed

    async def get_context(self, request: Any, response: Any) -> HubContext:
        runtime: Runtime = request.app.state.hub
        ctx: RequestContext = request.state.hub_request
        return HubContext(runtime.services, ctx, getattr(request.state, "audit_op", None))


class _Edge:
    """One POST /graphql through the edge (the order is the module docstring's). ``ctx`` is
    who is known to ask, as far as checked: ``ANONYMOUS`` until the token verifies, the partner
    hub's requester once an assertion is admitted; a refusal is audited under it."""

    def __init__(self, runtime: Runtime, request: Request) -> None:
        self.runtime = runtime
        self.request = request
        purpose = request.headers.get("x-purpose")
        case_number = request.headers.get("x-case-number")
        self.ctx = RequestContext(
            subject=ANONYMOUS,
            purpose=purpose[:MAX_HEADER_VALUE] if purpose else None,
            case_number=case_number[:MAX_HEADER_VALUE] if case_number else None,
            client_address=request.client.host if request.client else None,
            request_id=str(uuid.uuid4()),
            received_at=datetime.now(UTC),
        )
        self.inherited_trace: str | None = None
        self.name: str | None = None
        self.digest: str | None = None

    async def admit(self) -> GraphQLRequestData:
        """The request to execute, or Refusal."""
        body = await self._read_body()
        self.ctx = dataclasses.replace(self.ctx, subject=await self._authenticate())
        try:
            self._known(self.ctx.subject)
            purpose_of(self.ctx.purpose)
            await self._partner()
        except HubError as exc:
            raise Refusal.of(exc) from exc
        decision = await self.runtime.limiter.hit(
            {"user": f"{self.ctx.subject.ori}/{self.ctx.subject.user_id}",
             "agency": self.ctx.subject.ori}
        )  # fmt: skip
        if not decision.allowed:
            raise Refusal(
                429,
                "RATE_LIMITED",
                f"too many requests for this {decision.limited_by}; retry later",
                **{"Retry-After": decision.retry_after_header},
            )
        try:
            payload = parse_body(body)
        except HubError as exc:
            raise Refusal.of(exc) from exc
        name, query = payload.get("operationName"), payload.get("query")
        self.name = name
        try:
            document = await self.runtime.persisted.resolve(
                query, payload.get("extensions"), scope=self.ctx.subject.ori
            )
        except RequestError as exc:
            # Apollo clients expect these as a GraphQL answer, then send the full document.
            raise Refusal(200, exc.code, exc.message) from exc
        if document is None:
            raise Refusal(400, "BAD_REQUEST", "no GraphQL query found in the request")
        self.digest = hashlib.sha256(document.encode()).hexdigest()
        return GraphQLRequestData(
            query=document,
            variables=payload.get("variables"),
            operation_name=name,
            extensions=payload.get("extensions"),
        )

    async def _read_body(self) -> bytes:
        request = self.request
        content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if content_type != "application/json":
            raise Refusal(415, "BAD_REQUEST", "GraphQL requests must be POSTed as application/json")
        limit = self.runtime.settings.limits.max_body_bytes
        too_large = Refusal(413, "QUERY_REJECTED", f"request body over {limit} bytes")
        declared = request.headers.get("content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > limit):
            raise too_large
        body = bytearray()
        async for chunk in request.stream():
            body += chunk
            if len(body) > limit:
                raise too_large
        return bytes(body)

    async def _authenticate(self) -> Subject:
        header = self.request.headers.get("authorization", "")
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise Refusal(
                401,
                "UNAUTHENTICATED",
                "send Authorization: Bearer <token> (hub token prints one)",
                **{"WWW-Authenticate": 'Bearer realm="hub"'},
            )
        try:
            return await self.runtime.verifier.verify(token.strip())
        except AuthenticationError as exc:
            raise Refusal.of(
                exc, **{"WWW-Authenticate": 'Bearer realm="hub", error="invalid_token"'}
            ) from exc

    def _known(self, subject: Subject) -> None:
        """UnknownAgency / UnknownRole for a subject the access policy does not know: it would
        otherwise be answered as if it were someone (an empty result, pointers to records)."""
        if not self.runtime.services.gate.knows_agency(subject.ori):
            raise UnknownAgency(
                f"agency {subject.ori} does not take part in this hub: no access for its users"
            )
        if not subject.roles & ROLES.keys():
            # Roles the hub does not use may ride along with a known one (identity providers
            # carry many); with none known there is nothing policy could grant.
            raise UnknownRole(
                "none of the token's roles is one this hub knows: " + ", ".join(ROLES)
            )

    async def _partner(self) -> None:
        """A partner hub's call runs as the user it asks for; its own account is only ``via``.
        The requester passes the same checks as a token's subject."""
        subject = self.ctx.subject
        assertion = self.request.headers.get(ASSERTION_HEADER)
        if assertion is None and PARTNER_ROLE not in subject.roles:
            return
        if assertion is None:
            raise AccessDenied(
                f"a partner hub must name the requester it asks for ({ASSERTION_HEADER})"
            )
        admitted = await self.runtime.partners.admit(
            subject, assertion, purpose=self.ctx.purpose, case_number=self.ctx.case_number
        )
        self.ctx = admitted.context(subject, self.ctx)
        self.inherited_trace = admitted.trace_id
        self._known(self.ctx.subject)
        purpose_of(self.ctx.purpose)

    async def refuse(self, refusal: Refusal) -> Response:
        """The refusal's answer, once its audit entry is written (outcome REFUSED, its code)."""
        response = refusal.response()
        response.headers["X-Request-Id"] = self.ctx.request_id
        trail = self.runtime.trail
        if trail is None:
            return response
        try:
            async with trail.operation(
                self.ctx,
                name=self.name or "anonymous",
                document_hash=self.digest,
                parent_trace_id=self.inherited_trace,
            ) as op:
                op.annotate(policy_version=self.runtime.services.gate.version)
                op.set_outcome("REFUSED", refusal.code)
        except AuditUnavailable as exc:
            # A refusal releases no data: it is still answered, and the failure logged.
            log.error("audit trail unavailable; a %s refusal went unaudited: %s",
                      refusal.code, exc.message)  # fmt: skip
            return response
        response.headers["X-Trace-Id"] = op.trace_id
        return response


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
        edge = _Edge(runtime, request)
        try:
            data = await edge.admit()
        except Refusal as refusal:
            return await edge.refuse(refusal)
        ctx = edge.ctx
        request.state.graphql = data
        request.state.hub_request = ctx
        # For adapters whose calls carry no request (get_many): a partner hub needs the requester.
        current_request.set(ctx)
        trail = runtime.trail
        if trail is None:
            return await graphql.handle_request(request)
        # One audited operation per request; its entry is durable before the response leaves.
        try:
            # A partner's call joins its caller's trace: one trace id in both audit logs.
            async with trail.operation(
                ctx,
                name=edge.name or "anonymous",
                document_hash=edge.digest,
                parent_trace_id=edge.inherited_trace,
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
        return _error_response(_status_of(exc), exc.code, exc.message)

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
