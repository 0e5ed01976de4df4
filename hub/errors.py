"""The hub's error tree. Every class has a stable ``code`` that clients see in
``errors[].extensions.code``; anything not in this tree is masked as ``INTERNAL``.

    HubError                      INTERNAL
    ├── RequestError              BAD_REQUEST
    │   ├── AuthenticationError   UNAUTHENTICATED   (HTTP 401, no GraphQL executed)
    │   ├── PurposeRequired       PURPOSE_REQUIRED  (no data, no vendor call)
    │   ├── InvalidPurpose        INVALID_PURPOSE
    │   ├── InvalidId             BAD_USER_INPUT
    │   └── QueryRejected         QUERY_REJECTED    (depth, aliases, tokens, cost, size)
    ├── AccessDenied              FORBIDDEN
    │   └── ForbiddenField        FORBIDDEN_FIELD   (one per denied Type.field)
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


class InvalidId(RequestError):
    code = "BAD_USER_INPUT"


class QueryRejected(RequestError):
    code = "QUERY_REJECTED"


class AccessDenied(HubError):
    code = "FORBIDDEN"


class ForbiddenField(AccessDenied):
    code = "FORBIDDEN_FIELD"


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
