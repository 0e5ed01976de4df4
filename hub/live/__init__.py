"""Live results: watches (standing queries), hot-list alerts, and their delivery to any worker.

- ``model``    watches, deliveries, hot-list entries and alerts; the NCIC-style reason codes.
- ``rules``    ``policies/live.yaml`` (watch expiry per purpose and role, deconfliction
               consent) and the hot-list file, re-read when they change.
- ``store``    the Redis layout: one event stream with a consumer group, sealed watches,
               per-user inboxes and per-agency alert streams, idempotent delivery.
- ``service``  ``Live``: events in (plate-read pushes, vendor notices, re-query), matching,
               delivery decided by the access policy at delivery time, audit, deconfliction.

``open_live`` makes the service from settings in the app's lifespan (None without Redis: live
results need a store every worker shares).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from hub.adapters.base import Adapter
from hub.audit import AuditTrail
from hub.errors import ConfigError
from hub.live.model import Alert, Delivery, HotListEntry, Interest, Target, Watch
from hub.live.rules import RULES_FILE, HotLists, LiveRules, Reloading
from hub.live.service import Decider, Live, Matcher
from hub.live.store import LiveStore
from hub.model import Agency
from hub.settings import Settings
from hub.shared.cache import CacheCipher, load_or_create_cache_key


def open_live(
    settings: Settings,
    gate: Decider,
    trail: AuditTrail | None,
    adapters: Sequence[Adapter],
    matcher: Matcher,
    agencies: Mapping[str, Agency] | None = None,
) -> Live | None:
    """The live service of this worker, not yet started; None when no Redis is configured.
    ConfigError (file and key) when live.yaml or the hot-list file does not load."""
    if settings.redis_url is None:
        return None
    secret = settings.resilience.cache_key
    if secret is None:
        if settings.mode == "production":
            raise ConfigError("live results in Redis need cache.key (HUB_CACHE_KEY) in production")
        secret = load_or_create_cache_key(settings.var_dir / "cache-key")  # demo, dev
    from hub.access.policy import default_policy_dir

    policy_dir = settings.policy_dir or default_policy_dir()
    rules_path = policy_dir / RULES_FILE
    hot_path = settings.live.hot_lists
    rules = Reloading(rules_path, lambda: LiveRules.parse(rules_path, gate.knows_agency))
    hot_lists = Reloading(hot_path, lambda: HotLists.parse(hot_path, gate.knows_agency))
    store = LiveStore(
        settings.redis_url,
        CacheCipher(secret),
        f"{settings.resilience.redis_prefix}:live",
    )
    return Live(
        store,
        gate,
        trail,
        adapters,
        agencies if agencies is not None else settings.agencies,
        rules,
        hot_lists,
        matcher,
        settings.live,
    )


__all__ = [
    "Alert",
    "Delivery",
    "HotListEntry",
    "HotLists",
    "Interest",
    "Live",
    "LiveRules",
    "LiveStore",
    "Target",
    "Watch",
    "open_live",
]
