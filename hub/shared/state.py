"""What hub workers share through Redis, made from settings: the source cache, rate limits,
circuit breakers and persisted queries. Each works from per-process memory when Redis is not
configured, and falls back to it while Redis is unreachable (``hub.shared.redis_link``).

The audit log is deliberately not here: it has its own client and fails closed, where these
degrade.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime

from hub.adapters.base import Adapter
from hub.errors import ConfigError
from hub.model import Record, SourceKind
from hub.secret import Secret
from hub.settings import Settings
from hub.shared.breaker import BreakerSettings, CircuitBreaker, make_circuit_breaker
from hub.shared.cache import (
    CacheCipher,
    CachePolicy,
    SourceCache,
    load_or_create_cache_key,
    make_source_cache,
)
from hub.shared.persisted import (
    MemorySafelist,
    PersistedQueries,
    RedisSafelist,
    make_document_store,
    publish_safelist,
    read_manifest,
)
from hub.shared.ratelimit import Limit, RateLimiter, make_rate_limiter
from hub.shared.redis_link import RedisLink


@dataclass(slots=True)
class SharedState:
    settings: Settings
    link: RedisLink

    def _key(self, component: str) -> str:
        return f"{self.settings.resilience.redis_prefix}:{component}"

    def _secret(self) -> Secret | None:
        """The key that seals what is shared: configured, or (demo/dev) kept in var_dir."""
        key = self.settings.resilience.cache_key
        if key is None and self.settings.mode != "production":
            key = load_or_create_cache_key(self.settings.var_dir / "cache-key")
        if key is None and self.link.configured:
            raise ConfigError("a shared cache needs cache.key (HUB_CACHE_KEY) in production")
        return key

    def cache(
        self,
        adapters: Sequence[Adapter],
        retention_ends: Callable[[Record], datetime | None] | None = None,
    ) -> SourceCache:
        ttl: dict[str, float] = {}
        for adapter in adapters:
            if adapter.source_kind is SourceKind.HUB:
                # A partner hub answers per requester under its own policy: never shared.
                ttl[adapter.name] = 0.0
            elif "cache_ttl_s" in adapter.config.options:
                try:
                    ttl[adapter.name] = float(adapter.config.options["cache_ttl_s"])
                except ValueError as exc:
                    raise ConfigError(f"sources.{adapter.name}.cache_ttl_s: a number") from exc
        policy = CachePolicy(self.settings.resilience.cache_ttl_s, ttl, retention_ends)
        return make_source_cache(self.link, policy, self._secret(), prefix=self._key("cache"))

    def breaker(self, adapters: Sequence[Adapter]) -> CircuitBreaker:
        r = self.settings.resilience
        slowest_s = max((a.config.timeout_ms for a in adapters), default=1500) / 1000
        return make_circuit_breaker(
            self.link,
            BreakerSettings(
                failures=r.breaker_failures,
                cooldown_s=r.breaker_cooldown_s,
                probe_timeout_s=2 * slowest_s,
            ),
            prefix=self._key("cb"),
        )

    def limiter(self) -> RateLimiter:
        r = self.settings.resilience
        return make_rate_limiter(
            self.link,
            {"user": Limit(r.user_per_minute, 60.0), "agency": Limit(r.agency_per_minute, 60.0)},
            prefix=self._key("rl"),
        )

    async def persisted(self) -> PersistedQueries:
        r = self.settings.resilience
        if r.persisted_queries == "off":
            return PersistedQueries()
        if r.persisted_queries == "safelist":
            assert r.safelist_path is not None  # settings checked it
            documents = read_manifest(r.safelist_path)
            if not self.link.configured:
                return PersistedQueries(safelist=MemorySafelist(documents))
            # Every worker reads one list from Redis; the manifest given at start seeds it.
            await publish_safelist(self.link, documents, prefix=self._key("pq"))
            safelist = RedisSafelist(self.link, prefix=self._key("pq"))
            await safelist.refresh()
            return PersistedQueries(safelist=safelist)
        secret = self._secret()
        cipher = None if secret is None else CacheCipher(secret)
        return PersistedQueries(
            store=make_document_store(self.link, cipher, prefix=self._key("pq"))
        )
