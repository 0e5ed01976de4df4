"""The request context of the resolvers (``resolvers.context``)."""

from __future__ import annotations

from hub.adapters.fanout import Outcome, SourceStatus
from hub.context import RequestContext, Subject
from resolvers.context import HubContext
from tests.conftest import HubServer


def _context(hub: HubServer) -> HubContext:
    subject = Subject(user_id="u1", name="u1", ori="CA0990000", state="CA",
                      roles=frozenset({"analyst"}))  # fmt: skip
    return HubContext(hub.runtime.services, RequestContext(subject=subject, purpose="C"))


async def test_sources_are_listed_in_the_configurations_order_not_as_they_answered(
    hub: HubServer,
) -> None:
    """Lookups of several sources finish in any order; ``extensions.sources`` must not follow
    it (an order that follows timing says which source had more to do)."""
    adapters = hub.runtime.services.adapters
    assert len(adapters) >= 3
    ctx = _context(hub)
    for adapter in reversed(adapters):
        ctx.note(SourceStatus(adapter.name, adapter.config.agency.ori, Outcome.NO_HIT))
    listed = [s.source for s in ctx.source_statuses()]
    assert listed == [a.name for a in adapters]
