"""The hub's error tree. Every class has a stable ``code`` that clients see in
``errors[].extensions.code``; anything not in this tree is masked as ``INTERNAL``.

    HubError                      INTERNAL
    ├── RequestError              BAD_REQUEST       (HTTP 400: body, envelope, operation)
    │   ├── AuthenticationError   UNAUTHENTICATED   (HTTP 401, no GraphQL executed)
    │   ├── PurposeRequired       PURPOSE_REQUIRED  (no data, no vendor call)
    │   ├── InvalidPurpose        INVALID_PURPOSE   (HTTP 400, whatever the query)
    │   ├── InvalidInput          BAD_USER_INPUT    (an argument, an entity representation)
    │   │   └── InvalidId         BAD_USER_INPUT
    │   └── QueryRejected         QUERY_REJECTED    (depth, aliases, tokens, cost, size, nesting)
    ├── AccessDenied              FORBIDDEN         (HTTP 403 when the edge refuses)
    │   ├── ForbiddenField        FORBIDDEN_FIELD   (one per denied Type.field)
    │   ├── UnknownAgency         UNKNOWN_AGENCY    (HTTP 403: the agency is no participant)
    │   └── UnknownRole           UNKNOWN_ROLE      (HTTP 403: no role the hub knows)
    ├── SourceError               SOURCE_ERROR      (source status ERROR)
    │   ├── SourceTimeout         SOURCE_TIMEOUT    (source status TIMEOUT)
    │   ├── SourceUnavailable     SOURCE_UNAVAILABLE  connection refused, HTTP 5xx
    │   ├── SourceProtocolError   SOURCE_PROTOCOL   malformed or truncated body, wrong type
    │   └── SourceAuthError       SOURCE_AUTH       the vendor refused the hub's credentials
    ├── AuditUnavailable          AUDIT_UNAVAILABLE (fail closed: no data leaves)
    └── ConfigError               CONFIG_ERROR

Vendor and library exceptions are translated at the boundary (``raise SourceX(...) from exc``);
their text may carry CJI, so messages shown to clients are written by us, not copied from them.
"""

from __future__ import annotations


class HubError(Exception):
    code = "INTERNAL"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class RequestError(HubError):
    code = "BAD_REQUEST"


class AuthenticationError(RequestError):
    code = "UNAUTHENTICATED"


class PurposeRequired(RequestError):
    code = "PURPOSE_REQUIRED"


class InvalidPurpose(RequestError):
    code = "INVALID_PURPOSE"


class InvalidInput(RequestError):
    code = "BAD_USER_INPUT"


class InvalidId(InvalidInput):
    code = "BAD_USER_INPUT"


class QueryRejected(RequestError):
    code = "QUERY_REJECTED"


class AccessDenied(HubError):
    code = "FORBIDDEN"


class ForbiddenField(AccessDenied):
    code = "FORBIDDEN_FIELD"


class UnknownAgency(AccessDenied):
    """The requester's agency (token ``ori``) is not one the access policy names: refused at the
    edge, never answered as an empty result."""

    code = "UNKNOWN_AGENCY"


class UnknownRole(AccessDenied):
    """None of the requester's roles is one the hub knows (``hub.access.catalogue.ROLES``);
    unknown roles beside a known one are ignored."""

    code = "UNKNOWN_ROLE"


class SourceError(HubError):
    """A source failed to answer. ``status`` is the SourceOutcome this failure reports."""

    code = "SOURCE_ERROR"
    status = "ERROR"

    def __init__(self, source: str, message: str) -> None:
        super().__init__(message)
        self.source = source


class SourceTimeout(SourceError):
    code = "SOURCE_TIMEOUT"
    status = "TIMEOUT"


class SourceUnavailable(SourceError):
    code = "SOURCE_UNAVAILABLE"


class SourceProtocolError(SourceError):
    code = "SOURCE_PROTOCOL"


class SourceAuthError(SourceError):
    code = "SOURCE_AUTH"


class AuditUnavailable(HubError):
    code = "AUDIT_UNAVAILABLE"


class ConfigError(HubError):
    code = "CONFIG_ERROR"
