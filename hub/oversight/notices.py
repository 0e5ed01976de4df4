"""Expungement and sealing notices, onward to the partner hubs that were shown the record.

The trail knows who received a record: an entry written for a partner hub's request holds the
records it returned and the request's hub chain, whose last hub is the partner that called this
hub. Those partners get the owner's notice over HTTP (``PartnerHubAdapter.send_notice``: the
partner's ``recordNotice``, signed as the records clerk who sent it, so the partner audits who
did), and each does the same with the partners it showed the record to. The chain stops loops:
a hub never sends a notice back to a hub the notice came through.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

from hub.adapters.base import Adapter
from hub.adapters.partner import PartnerHubAdapter
from hub.audit import AuditLog
from hub.context import RequestContext
from hub.errors import HubError
from hub.oversight.trail import scoped_entries


@dataclass(frozen=True, slots=True)
class Propagation:
    notified: list[str] = field(default_factory=list)  # partner hub ids that took the notice
    unreached: list[str] = field(default_factory=list)  # partner hub ids that did not


async def partners_shown(log: AuditLog, owner: str, record_id: str) -> set[str]:
    """The partner hubs (ids) whose requests this hub answered with ``record_id``, as the
    owner's auditor reads the trail."""
    entries = await scoped_entries(log, owner, None, datetime.now(UTC), record_id=record_id)
    return {e.hub_chain[-1] for e in entries if e.hub_chain}


def partner_adapter(adapters: Sequence[Adapter], hub_id: str) -> PartnerHubAdapter | None:
    for adapter in adapters:
        if isinstance(adapter, PartnerHubAdapter) and adapter.partner_id == hub_id:
            return adapter
    return None


async def propagate_notice(
    log: AuditLog | None,
    adapters: Sequence[Adapter],
    ctx: RequestContext,
    owner: str,
    record_id: str,
    notice: str,
) -> Propagation:
    """Send the notice to every partner hub shown the record (not to one in the request's
    chain). A partner that cannot be reached is reported, never retried silently."""
    if log is None:
        return Propagation()
    targets = sorted(await partners_shown(log, owner, record_id) - set(ctx.hub_chain))
    out = Propagation()
    sends = []
    for hub_id in targets:
        adapter = partner_adapter(adapters, hub_id)
        if adapter is None:
            out.unreached.append(hub_id)  # no longer configured as a source: nowhere to send
            continue
        sends.append((hub_id, adapter.send_notice(ctx, record_id, notice)))
    results = await asyncio.gather(*(s for _, s in sends), return_exceptions=True)
    for (hub_id, _), result in zip(sends, results, strict=True):
        if isinstance(result, HubError):
            out.unreached.append(hub_id)
        elif isinstance(result, BaseException):
            raise result
        else:
            out.notified.append(hub_id)
    out.unreached.sort()
    return out
