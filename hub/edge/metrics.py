"""Prometheus metrics at ``GET /metrics``: what the hub does, never what it was asked.

Metrics (every label value is a name from configuration or a code of the hub, never CJI)::

    hub_requests_total{outcome, code, status}      POST /graphql by audit outcome (OK, PARTIAL,
                                                   REFUSED, ERROR, CANCELLED), error code ("" if
                                                   none) and HTTP status
    hub_request_duration_seconds                   POST /graphql, edge to answer
    hub_source_requests_total{source, agency, status}
                                                   each source call's status (OK, NO_HIT,
                                                   TIMEOUT, ERROR, DENIED); answers from the
                                                   source cache count too
    hub_source_latency_seconds{source, agency}     vendor calls only (not cache hits, not
                                                   sources skipped by policy or an open breaker)
    hub_source_cache_requests_total{source, result}
                                                   source-cache lookups: result hit or miss
                                                   (sources with caching on only)
    hub_source_breaker_state{source, agency}       0 closed, 1 half-open, 2 open (read when
                                                   scraped)
    hub_audit_append_seconds                       audit entry appended and durable
    hub_rate_limit_refusals_total{limited_by}      429s: "user" or "agency"

Deliberately never a label: the operation name (a client chooses it), the user, the asking
agency, search text, plates, record ids, the case number. ``tests/edge/test_metrics.py`` scrapes
after a search and checks that no label value holds what was searched.

Who may read it (``HUB_METRICS_TOKEN``, from the environment like every secret): with a token
set, only ``Authorization: Bearer <token>``; without one, anyone in demo and dev mode, nobody in
production mode (403, saying how to turn it on). The metrics hold no CJI, but request rates,
source names and breaker states are an operator's business.

Several workers (``hub serve --workers N``) count into one set of numbers through
prometheus-client's multiprocess mode: ``hub serve`` points ``PROMETHEUS_MULTIPROC_DIR`` at
``VAR_DIR/metrics`` (emptied at start) before any worker starts, and a scrape of any worker sums
every worker's files. The breaker gauge takes the most recently written value (the scraping
worker's reading: with Redis the breakers are shared, so any worker's reading is the hub's).

Cost: a few label lookups and increments per request, no I/O (multiprocess: writes to an mmap).
"""

from __future__ import annotations

import hmac
import os
import time
from collections.abc import AsyncIterator, Iterable, Mapping, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any, Final, TypeVar, cast

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from prometheus_client.multiprocess import MultiProcessCollector
from starlette.requests import Request
from starlette.responses import Response

from hub.audit import AuditEntry, AuditLog, RawEntry
from hub.errors import AccessDenied, AuthenticationError, HubError
from hub.model import Record
from hub.settings import Settings
from hub.shared.breaker import BreakerState
from hub.shared.cache import Eviction, SourceCache

if TYPE_CHECKING:
    from hub.adapters.fanout import SourceStatus
    from hub.edge.runtime import Runtime
    from resolvers.context import OperationRecorder

TOKEN_ENV: Final = "HUB_METRICS_TOKEN"  # noqa: S105 (the variable's name)
MULTIPROC_ENV: Final = "PROMETHEUS_MULTIPROC_DIR"
PATH: Final = "/metrics"

_Metric = TypeVar("_Metric", Counter, Histogram)
_BREAKER_VALUE = {BreakerState.CLOSED: 0, BreakerState.HALF_OPEN: 1, BreakerState.OPEN: 2}
# Statuses of a call that reached the vendor (a latency worth observing).
_CALLED = frozenset({"OK", "NO_HIT", "TIMEOUT", "ERROR"})
_LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 1.5, 2.5, 5.0, 10.0)
_APPEND_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0)


class HubMetrics:
    """The hub's metrics, in a registry of their own (several apps in one process, as in the
    tests, never collide), and the ``/metrics`` endpoint."""

    def __init__(self, *, token: str | None = None, open_without_token: bool = False) -> None:
        self.token = token or None
        self.open_without_token = open_without_token
        # Each metric's children by label values: a request costs a dict lookup per increment
        # instead of prometheus-client's labels() (a lock, validation). Bounded: every label
        # value is a configured source, an agency ORI or a code of the hub.
        self._children: dict[tuple[int, tuple[str, ...]], Any] = {}
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.requests = Counter(
            "hub_requests", "POST /graphql by audit outcome, error code and HTTP status",
            ["outcome", "code", "status"], registry=r,
        )  # fmt: skip
        self.request_seconds = Histogram(
            "hub_request_duration_seconds", "POST /graphql from the edge to the answer",
            registry=r,
        )  # fmt: skip
        self.source_requests = Counter(
            "hub_source_requests", "source calls by status (cache hits included)",
            ["source", "agency", "status"], registry=r,
        )  # fmt: skip
        self.source_seconds = Histogram(
            "hub_source_latency_seconds", "vendor call latency (cache hits excluded)",
            ["source", "agency"], buckets=_LATENCY_BUCKETS, registry=r,
        )  # fmt: skip
        self.cache_requests = Counter(
            "hub_source_cache_requests", "source-cache lookups by result (hit, miss)",
            ["source", "result"], registry=r,
        )  # fmt: skip
        self.breaker_state = Gauge(
            "hub_source_breaker_state", "circuit breaker per source: 0 closed, 1 half-open, 2 open",
            ["source", "agency"], multiprocess_mode="mostrecent", registry=r,
        )  # fmt: skip
        self.audit_append_seconds = Histogram(
            "hub_audit_append_seconds", "an audit entry appended and durable",
            buckets=_APPEND_BUCKETS, registry=r,
        )  # fmt: skip
        self.rate_limited = Counter(
            "hub_rate_limit_refusals", "requests refused by a rate limit (429)",
            ["limited_by"], registry=r,
        )  # fmt: skip

    @classmethod
    def from_environment(
        cls, settings: Settings, environ: Mapping[str, str] | None = None
    ) -> HubMetrics:
        env = os.environ if environ is None else environ
        return cls(
            token=env.get(TOKEN_ENV, "").strip() or None,
            open_without_token=settings.mode != "production",
        )

    # -- recording ---------------------------------------------------------------------------

    def child(self, metric: _Metric, *values: str) -> _Metric:
        """``metric.labels(*values)``, looked up once."""
        key = (id(metric), values)
        found = self._children.get(key)
        if found is None:
            found = self._children[key] = metric.labels(*values)
        return cast(_Metric, found)

    def request_done(self, outcome: str, code: str | None, status: int, seconds: float) -> None:
        self.child(self.requests, outcome, code or "", str(status)).inc()
        self.request_seconds.observe(seconds)

    def source_called(self, status: SourceStatus) -> None:
        outcome = str(status.status)
        self.child(self.source_requests, status.source, status.agency, outcome).inc()
        if not status.cached and status.latency_ms is not None and outcome in _CALLED:
            self.child(self.source_seconds, status.source, status.agency).observe(
                status.latency_ms / 1000
            )

    def rate_limit_refused(self, limited_by: str | None) -> None:
        self.child(self.rate_limited, limited_by or "unknown").inc()

    # -- what the lifespan wraps -------------------------------------------------------------

    def recorder(self, op: OperationRecorder) -> OperationRecorder:
        """``op`` as the resolvers' recorder, counting each source call on the way."""
        return _MeteredRecorder(op, self)

    def timed_log(self, log: AuditLog) -> AuditLog:
        """``log``, timing each append (the audit trail's writes)."""
        return _TimedAuditLog(log, self.audit_append_seconds)

    def metered_cache(self, cache: SourceCache) -> SourceCache:
        """``cache``, counting hits and misses per source."""
        return _MeteredCache(cache, self)

    # -- GET /metrics ------------------------------------------------------------------------

    def _allowed(self, request: Request) -> None:
        if self.token is None:
            if self.open_without_token:
                return
            raise AccessDenied(
                f"/metrics needs a scrape token in production mode: set {TOKEN_ENV} and scrape "
                "with Authorization: Bearer <token>"
            )
        scheme, _, given = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(
            given.strip().encode(), self.token.encode()
        ):
            raise AuthenticationError("/metrics needs Authorization: Bearer <metrics token>")

    async def endpoint(self, request: Request) -> Response:
        try:
            self._allowed(request)
        except HubError as exc:
            from hub.edge.pipeline import error_response

            challenge = {"WWW-Authenticate": 'Bearer realm="metrics"'}
            return error_response(exc, **(challenge if exc.http_status == 401 else {}))
        runtime: Runtime | None = getattr(request.app.state, "hub", None)
        if runtime is not None:
            await self._read_breakers(runtime)
        return Response(self.exposition(), media_type=CONTENT_TYPE_LATEST)

    async def _read_breakers(self, runtime: Runtime) -> None:
        breaker = runtime.services.breaker
        if breaker is None:
            return
        for adapter in runtime.services.adapters:
            state = await breaker.state(adapter.name)
            self.breaker_state.labels(adapter.name, adapter.config.agency.ori).set(
                _BREAKER_VALUE.get(state, 0)
            )

    def exposition(self) -> bytes:
        """The text format: this process's registry, or every worker's (multiprocess mode)."""
        if os.environ.get(MULTIPROC_ENV):
            registry = CollectorRegistry()
            MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
            return generate_latest(registry)
        return generate_latest(self.registry)


def metrics_of(request: Request) -> HubMetrics | None:
    """The app's metrics (``app.state.metrics``), if it keeps any."""
    metrics = getattr(request.app.state, "metrics", None)
    return metrics if isinstance(metrics, HubMetrics) else None


class _MeteredRecorder:
    """An ``OperationRecorder`` (``hub.audit.Operation``) that also counts source calls."""

    def __init__(self, op: OperationRecorder, metrics: HubMetrics) -> None:
        self._op = op
        self._metrics = metrics

    def source_called(self, status: SourceStatus) -> None:
        self._metrics.source_called(status)
        self._op.source_called(status)

    def record_returned(self, hub_id: str, owner: str, visibility: str | None = None) -> None:
        self._op.record_returned(hub_id, owner, visibility)

    def withheld(self, field: str, rules: Iterable[str] = (), count: int = 1) -> None:
        self._op.withheld(field, rules, count)

    def set_outcome(self, outcome: str, error_code: str | None = None) -> None:
        self._op.set_outcome(outcome, error_code)

    def annotate(
        self,
        *,
        name: str | None = None,
        document_hash: str | None = None,
        criteria: Mapping[str, Any] | None = None,
        policy_version: str | None = None,
    ) -> None:
        self._op.annotate(
            name=name, document_hash=document_hash, criteria=criteria,
            policy_version=policy_version,
        )  # fmt: skip


class _TimedAuditLog:
    """An ``AuditLog`` whose successful appends are timed."""

    def __init__(self, inner: AuditLog, histogram: Histogram) -> None:
        self._inner = inner
        self._histogram = histogram

    async def append(self, entry: AuditEntry) -> str:
        started = time.perf_counter()
        entry_hash = await self._inner.append(entry)
        self._histogram.observe(time.perf_counter() - started)
        return entry_hash

    def scan(
        self, *, since: datetime | None = None, until: datetime | None = None
    ) -> AsyncIterator[RawEntry]:
        return self._inner.scan(since=since, until=until)

    def tail(self, n: int, *, follow: bool = False) -> AsyncIterator[RawEntry]:
        return self._inner.tail(n, follow=follow)

    async def close(self) -> None:
        await self._inner.close()


class _MeteredCache(SourceCache):
    """A ``SourceCache`` counting its lookups per source (sources with caching on only: a
    partner hub, never cached, is no miss)."""

    def __init__(self, inner: SourceCache, metrics: HubMetrics) -> None:
        super().__init__(inner.policy)
        self._inner = inner
        self._metrics = metrics

    async def get(self, source: str, key: str) -> list[Record] | None:
        found = await self._inner.get(source, key)
        self._count(source, found)
        return found

    async def get_many(self, sources: Sequence[str], key: str) -> list[list[Record] | None]:
        found = await self._inner.get_many(sources, key)
        for source, records in zip(sources, found, strict=True):
            self._count(source, records)
        return found

    def _count(self, source: str, found: list[Record] | None) -> None:
        if self.policy.ttl(source) > 0:
            result = "miss" if found is None else "hit"
            self._metrics.child(self._metrics.cache_requests, source, result).inc()

    async def put(self, source: str, key: str, records: Sequence[Record]) -> None:
        await self._inner.put(source, key, records)

    async def evict_record(self, hub_id: str) -> Eviction:
        return await self._inner.evict_record(hub_id)

    @property
    def degraded(self) -> bool:
        return self._inner.degraded

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)
