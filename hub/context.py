"""Who is asking and why: the request contract every layer after the edge receives.

The edge (``hub.edge.pipeline``) builds one ``RequestContext`` per HTTP request from the
verified token (``hub.trust.identity``) and the ``X-Purpose`` / ``X-Case-Number`` headers.
Nothing below the edge reads headers or tokens itself.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime


@dataclass(frozen=True, slots=True)
class Subject:
    """A verified user (or partner-hub service account) and what their token says of them."""

    user_id: str
    name: str
    ori: str  # employing agency
    state: str  # the agency's state, two letters
    roles: frozenset[str]
    auth_time: datetime | None = None
    # Attributes such as "sworn" or "cfr28" (28 CFR Part 23 certified).
    attributes: frozenset[str] = frozenset()


@dataclass(frozen=True, slots=True)
class RequestContext:
    subject: Subject
    purpose: str | None  # a purpose code from hub.access.purposes, None when the client gave none
    case_number: str | None = None
    client_address: str | None = None
    # When a partner hub calls us on a user's behalf: the hub's own service account is `subject`
    # only until the assertion is verified; then `subject` is the original requester and
    # `via` names the calling hub's account.
    via: Subject | None = None
    hub_chain: tuple[str, ...] = ()
    request_id: str = ""
    received_at: datetime | None = None
    extras: dict[str, str] = field(default_factory=dict)
