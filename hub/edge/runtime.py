"""``Runtime``: everything the app's lifespan made (``hub.edge.app``), as every request reads it
from ``app.state.hub``."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import aiohttp

from hub.audit import AuditTrail
from hub.settings import Settings
from hub.shared.persisted import PersistedQueries
from hub.shared.policy_sync import PolicyWatcher
from hub.shared.ratelimit import RateLimiter
from hub.shared.redis_link import RedisLink
from hub.trust.federation import AssertionSigner, PartnerTrust
from hub.trust.identity import TokenVerifier
from resolvers.context import Services

if TYPE_CHECKING:
    # A type only: the demo world is imported when the settings ask for it, never before.
    from hub.demo.runner import RunningWorld


@dataclass(slots=True)
class Runtime:
    """Everything the lifespan made; ``app.state.hub`` once the app is ready."""

    settings: Settings
    services: Services
    verifier: TokenVerifier
    session: aiohttp.ClientSession
    world: RunningWorld | None
    trail: AuditTrail | None
    # Partner hubs (hub.trust.federation): who may call us for their users, our assertion key,
    # and how a partner's call joins its caller's trace.
    partners: PartnerTrust
    signer: AssertionSigner
    # What workers share through Redis, each falling back to memory (hub.shared).
    link: RedisLink
    limiter: RateLimiter
    persisted: PersistedQueries
    watcher: PolicyWatcher | None
