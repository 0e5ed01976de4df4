"""The hub's error tree: every stable code clients see in ``errors[].extensions.code``, and the
HTTP status of the answer that carries it. Anything not in this tree is masked as ``INTERNAL``.

Each class has its ``code`` and its ``http_status``; the edge (``hub.edge``) answers a refusal
with the status of its error, and has no status of its own. GraphQL over HTTP: a request refused
before anything executes is answered 4xx (5xx when the hub cannot serve it) with ``"data":
null``; an error raised while the operation executes (in a resolver or a schema extension) is a
GraphQL error in a 200 answer, whatever its class, and the classes that arise only there say 200.
A few classes live where they are raised (the module is named); this table is all of them.

    class                              code                           HTTP
    HubError                           INTERNAL                       500  [1]
    ├── RequestError                   BAD_REQUEST                    400  body, envelope, no query
    │   ├── AuthenticationError        UNAUTHENTICATED                401  token, partner assertion
    │   ├── PurposeRequired            PURPOSE_REQUIRED               200  [2]
    │   ├── InvalidPurpose             INVALID_PURPOSE                400  whatever the query
    │   ├── InvalidInput               BAD_USER_INPUT                 200  argument, representation
    │   │   └── InvalidId              BAD_USER_INPUT                 200  not a hub id
    │   ├── QueryRejected              QUERY_REJECTED                 400  JSON nesting [7]
    │   │   └── BodyTooLarge           QUERY_REJECTED                 413  over max_body_bytes
    │   ├── UnsupportedMediaType       BAD_REQUEST                    415  not application/json
    │   ├── MethodNotAllowed           BAD_REQUEST                    405  GET, not for GraphiQL
    │   ├── NoticeTooLarge             BAD_REQUEST                    413  a source's notices [3]
    │   ├── HubLoop                    HUB_LOOP                       409  hub.trust.federation
    │   ├── PersistedQueryNotFound     PERSISTED_QUERY_NOT_FOUND      200  hub.shared.persisted [4]
    │   ├── PersistedQueryNotSupported PERSISTED_QUERY_NOT_SUPPORTED  200  hub.shared.persisted
    │   ├── PersistedQueryHashMismatch PERSISTED_QUERY_HASH_MISMATCH  200  hub.shared.persisted
    │   ├── QueryNotInSafelist         PERSISTED_QUERY_NOT_IN_LIST    200  hub.shared.persisted
    │   └── PersistedQueryInvalid      BAD_REQUEST                    200  hub.shared.persisted
    ├── AccessDenied                   FORBIDDEN                      403  [5]
    │   ├── ForbiddenField             FORBIDDEN_FIELD                200  once per Type.field
    │   ├── UnknownAgency              UNKNOWN_AGENCY                 403  no participant agency
    │   └── UnknownRole                UNKNOWN_ROLE                   403  no role the hub knows
    ├── RateLimited                    RATE_LIMITED                   429  with Retry-After
    ├── SourceError                    SOURCE_ERROR                   200  [6] source status ERROR
    │   ├── SourceTimeout              SOURCE_TIMEOUT                 200  source status TIMEOUT
    │   ├── SourceUnavailable          SOURCE_UNAVAILABLE             200  refused, HTTP 5xx
    │   ├── SourceProtocolError        SOURCE_PROTOCOL                200  malformed body
    │   └── SourceAuthError            SOURCE_AUTH                    200  credentials refused
    ├── AuditUnavailable               AUDIT_UNAVAILABLE              503  fail closed
    └── ConfigError                    CONFIG_ERROR                   500  start-up, one line

    codes with no class                code                           HTTP
    a syntax error                     GRAPHQL_PARSE_FAILED           200  nothing executes
    a document the schema refuses      GRAPHQL_VALIDATION_FAILED      200  nothing executes
    depth, aliases, tokens, cost       QUERY_REJECTED                 200  nothing executes
    variables that do not coerce       BAD_USER_INPUT                 200  nothing executes
    several operations, none named     BAD_REQUEST                    400  strawberry's refusal

[1] A HubError of no other class that reaches the edge. An unexpected exception inside an
operation is masked as ``INTERNAL`` ("Unexpected error.") in a 200 answer.
[2] A data query without ``X-Purpose``: nothing executes and no vendor is called; the answer is
``"data": null`` with this error.
[3] ``POST /sources/NAME/notices`` (not GraphQL): 403 FORBIDDEN for a source that may not send
notices, 413 this, 400 BAD_REQUEST for a body its adapter cannot read.
[4] The persisted-query codes are GraphQL answers: Apollo clients expect them with 200 and then
send the full document. So is BAD_REQUEST for a malformed ``extensions.persistedQuery``.
[5] At the edge: a partner hub's account without an assertion, an asserted requester the
partner may not speak for.
[6] Adapters raise these; the fan-out (``hub.adapters.fanout``) turns each into its source's
status (ERROR, TIMEOUT) and message in ``extensions.sources`` of a 200 answer.
[7] At the edge: the body's JSON nests deeper than ``MAX_JSON_DEPTH`` (``hub.edge.body``).

Raised inside an operation, a class with a 4xx or 5xx here is a GraphQL error in a 200 answer
all the same: ``QueryRejected`` (a ``limit``, a search text or a plate out of bounds),
``AccessDenied`` (the audit trail for a non-auditor, a notice from outside the owning agency),
``AuditUnavailable`` (``auditEvents`` with no audit log configured).

The codes of the second table come from graphql-core and strawberry, shaped in
``resolvers.extensions.shaper`` (``ResponseShaper``), ``resolvers.extensions.limits``
(``CostLimit``) and ``resolvers.schema`` (``AmbiguousOperation``).

Vendor and library exceptions are translated at the boundary (``raise SourceX(...) from exc``);
their text may carry CJI, so messages shown to clients are written by us, not copied from them.
"""

from __future__ import annotations


class HubError(Exception):
    code = "INTERNAL"
    http_status = 500

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class RequestError(HubError):
    code = "BAD_REQUEST"
    http_status = 400


class AuthenticationError(RequestError):
    code = "UNAUTHENTICATED"
    http_status = 401


class PurposeRequired(RequestError):
    code = "PURPOSE_REQUIRED"
    http_status = 200


class InvalidPurpose(RequestError):
    code = "INVALID_PURPOSE"
    http_status = 400


class InvalidInput(RequestError):
    code = "BAD_USER_INPUT"
    http_status = 200


class InvalidId(InvalidInput):
    code = "BAD_USER_INPUT"
    http_status = 200


class QueryRejected(RequestError):
    code = "QUERY_REJECTED"
    http_status = 400


class BodyTooLarge(QueryRejected):
    """The request body is over ``limits.max_body_bytes``: refused before it is read whole."""

    code = "QUERY_REJECTED"
    http_status = 413


class UnsupportedMediaType(RequestError):
    """A GraphQL request not POSTed as ``application/json``."""

    code = "BAD_REQUEST"
    http_status = 415


class MethodNotAllowed(RequestError):
    """``GET /graphql`` other than a browser's for GraphiQL: no operation runs over GET."""

    code = "BAD_REQUEST"
    http_status = 405


class NoticeTooLarge(RequestError):
    """A source's notice body (``POST /sources/NAME/notices``) over ``limits.max_body_bytes``."""

    code = "BAD_REQUEST"
    http_status = 413


class AccessDenied(HubError):
    code = "FORBIDDEN"
    http_status = 403


class ForbiddenField(AccessDenied):
    code = "FORBIDDEN_FIELD"
    http_status = 200


class UnknownAgency(AccessDenied):
    """The requester's agency (token ``ori``) is not one the access policy names: refused at the
    edge, never answered as an empty result."""

    code = "UNKNOWN_AGENCY"
    http_status = 403


class UnknownRole(AccessDenied):
    """None of the requester's roles is one the hub knows (``hub.access.catalogue.ROLES``);
    unknown roles beside a known one are ignored."""

    code = "UNKNOWN_ROLE"
    http_status = 403


class RateLimited(HubError):
    """The user's or the agency's rate limit (``hub.shared.ratelimit``) refuses the request."""

    code = "RATE_LIMITED"
    http_status = 429


class SourceError(HubError):
    """A source failed to answer. ``status`` is the SourceOutcome this failure reports."""

    code = "SOURCE_ERROR"
    http_status = 200
    status = "ERROR"

    def __init__(self, source: str, message: str) -> None:
        super().__init__(message)
        self.source = source


class SourceTimeout(SourceError):
    code = "SOURCE_TIMEOUT"
    http_status = 200
    status = "TIMEOUT"


class SourceUnavailable(SourceError):
    code = "SOURCE_UNAVAILABLE"
    http_status = 200


class SourceProtocolError(SourceError):
    code = "SOURCE_PROTOCOL"
    http_status = 200


class SourceAuthError(SourceError):
    code = "SOURCE_AUTH"
    http_status = 200


class AuditUnavailable(HubError):
    code = "AUDIT_UNAVAILABLE"
    http_status = 503


class ConfigError(HubError):
    code = "CONFIG_ERROR"
    http_status = 500
