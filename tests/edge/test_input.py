"""The edge and what it is sent: never a 500 for input, the token contract enforced as written,
refusals with their own codes, each audited. Real HTTP to the hub, real simulators behind it.

Each case an outside tester reported is here, over HTTP, with its audit entry."""

from __future__ import annotations

import contextlib
import json
import math
import time
from datetime import UTC, datetime
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from graphql import GraphQLError

from hub.audit import SealedEntry
from hub.context import RequestContext, Subject
from hub.edge.body import MAX_JSON_DEPTH, check_nesting, encode_response, parse_body
from hub.errors import QueryRejected, RequestError
from hub.trust.federation import ASSERTION_HEADER, AssertionSigner, PemKey, TrustedPartner
from hub.trust.identity import mint_token
from resolvers.extensions.shaper import ResponseShaper
from tests.adapters.conformance import small_world
from tests.conftest import HubServer
from tests.edge import test_app_production
from tests.edge.test_app import SEARCH, all_requests
from tests.edge.test_app_audit import entries_of
from tests.edge.test_app_production import _idp_token

# The production-mode hub (JWKS tokens, introspection off) of tests/test_app_production.py.
identity_provider = test_app_production.identity_provider
production = test_app_production.production

SOURCES = "{ sources { name } }"
ENTITIES = (
    "query($r: [_Any!]!) { _entities(representations: $r) { __typename ... on Person { id } } }"
)


async def _raw(
    hub: HubServer,
    data: bytes,
    *,
    token: str | None = "default",
    purpose: str | None = "C",
    content_type: str = "application/json",
    headers: dict[str, str] | None = None,
) -> tuple[int, dict[str, Any], dict[str, str]]:
    """POST raw bytes to /graphql; (status, JSON body, headers with lower-case names)."""
    hdrs = {"Content-Type": content_type}
    if token is not None:
        hdrs["Authorization"] = f"Bearer {hub.token() if token == 'default' else token}"
    if purpose is not None:
        hdrs["X-Purpose"] = purpose
    hdrs.update(headers or {})
    async with hub.session.post(f"{hub.url}/graphql", data=data, headers=hdrs) as resp:
        text = await resp.text()
        assert resp.content_type == "application/json", (resp.status, text[:500])
        return resp.status, json.loads(text), {k.lower(): v for k, v in resp.headers.items()}


async def _last_entry(hub: HubServer) -> SealedEntry:
    return (await entries_of(hub.settings.audit_location))[-1]


def _code(body: dict[str, Any]) -> str:
    code: str = body["errors"][0]["extensions"]["code"]
    return code


def _deep(depth: int) -> bytes:
    """A request whose ``variables`` nest ``depth`` arrays deep, built as a string."""
    value = "[" * depth + "]" * depth
    return b'{"query": "query($v: JSON) { sources { name } }", "variables": {"v": %s}}' % (
        value.encode()
    )


# -- 1. bodies that are not a GraphQL request ------------------------------------------------


@pytest.mark.parametrize(
    ("data", "status", "code", "says"),
    [
        (b'{"query": "{ sources { name } }\xff\xfe"}', 400, "BAD_REQUEST", "UTF-8"),
        (b'\xc3\x28{"query": 1}', 400, "BAD_REQUEST", "UTF-8"),
        (b'"abc"', 400, "BAD_REQUEST", "JSON object"),
        (b"null", 400, "BAD_REQUEST", "JSON object"),
        (b"42", 400, "BAD_REQUEST", "JSON object"),
        (b'[{"query": "{ sources { name } }"}]', 400, "BAD_REQUEST", "batched"),
        (b"[]", 400, "BAD_REQUEST", "batched"),
        (b"{not json", 400, "BAD_REQUEST", "not JSON"),
        (b"", 400, "BAD_REQUEST", "not JSON"),
        (b'{"query": NaN}', 400, "BAD_REQUEST", "NaN"),
        (_deep(50_000), 400, "QUERY_REJECTED", f"deeper than {MAX_JSON_DEPTH}"),
        (b"[" * 50_000, 400, "BAD_REQUEST", "pair up"),
        (b'{"a": ' * 30_000 + b"1" + b"}" * 30_000, 400, "QUERY_REJECTED", "nests"),
        (b'{"query": 7}', 400, "BAD_REQUEST", "'query' must be a string"),
        (b'{"query": "{ sources { name } }", "variables": [1]}', 400, "BAD_REQUEST", "variables"),
        (b'{"query": "{ sources { name } }", "operationName": 3}', 400, "BAD_REQUEST", "operati"),
        (b'{"query": "{ sources { name } }", "extensions": "x"}', 400, "BAD_REQUEST", "extension"),
        (b'{"variables": {}}', 400, "BAD_REQUEST", "no GraphQL query"),
        (b'{"query": "{ sources { name } }\\ud800"}', 400, "BAD_REQUEST", "surrogate"),
    ],
    ids=[
        "invalid-utf8", "invalid-utf8-first", "json-string", "json-null", "json-number",
        "batch", "empty-batch", "not-json", "empty", "nan", "deep-variables", "unclosed-deep",
        "deep-objects", "query-not-string", "variables-not-object", "operation-name-not-string",
        "extensions-not-object", "no-query", "lone-surrogate",
    ],
)  # fmt: skip
async def test_a_body_that_is_not_a_request_is_a_4xx_and_audited(
    hub: HubServer, data: bytes, status: int, code: str, says: str
) -> None:
    got, body, headers = await _raw(hub, data)
    assert (got, _code(body)) == (status, code), body
    assert body["data"] is None
    assert says in body["errors"][0]["message"]
    assert all_requests(hub) == 0
    entry = await _last_entry(hub)
    assert (entry.outcome, entry.error_code) == ("REFUSED", code)
    assert (entry.user, entry.agency) == ("u1", "CA0990000")  # refused after the token checks
    assert entry.request_id == headers["x-request-id"]
    assert entry.trace_id == headers["x-trace-id"]


async def test_the_deep_request_that_was_a_500_and_a_traceback(hub: HubServer) -> None:
    # The tester's reproduction: 50,000 nested arrays in `variables` (JSON scalar).
    status, body, _ = await _raw(hub, _deep(50_000))
    assert status == 400
    assert _code(body) == "QUERY_REJECTED"
    # Within the bound the request passes the edge: GraphQL finds the variable unused.
    status, body, _ = await _raw(hub, _deep(MAX_JSON_DEPTH - 3))
    assert (status, _code(body)) == (200, "GRAPHQL_VALIDATION_FAILED"), body
    # and a deep value GraphQL does take (_Any) goes all the way through
    deep = "[" * (MAX_JSON_DEPTH - 6) + "]" * (MAX_JSON_DEPTH - 6)
    data = json.dumps({"query": ENTITIES, "variables": {"r": [{"__typename": "Person"}]}})
    data = data.replace('"Person"}', f'"Person", "id": {deep}}}')
    status, body, _ = await _raw(hub, data.encode())
    assert status == 200, body
    assert body["data"] == {"_entities": [None]}
    assert _code(body) == "BAD_USER_INPUT"


async def test_a_refusal_before_the_token_is_audited_as_anonymous(hub: HubServer) -> None:
    status, body, headers = await _raw(hub, b'{"query": "{ sources { name } }"}', token=None)
    assert (status, _code(body)) == (401, "UNAUTHENTICATED")
    entry = await _last_entry(hub)
    assert (entry.user, entry.agency, entry.roles) == ("anonymous", "", ())
    assert (entry.outcome, entry.error_code) == ("REFUSED", "UNAUTHENTICATED")
    assert entry.request_id == headers["x-request-id"]
    assert entry.client_address == "127.0.0.1"
    # the body is not looked at before the token: a broken one is still a 401
    status, body, _ = await _raw(hub, b"\xff\xfe[[[[", token="not.a.token")
    assert (status, _code(body)) == (401, "UNAUTHENTICATED")
    entry = await _last_entry(hub)
    assert (entry.user, entry.outcome, entry.error_code) == ("anonymous", "REFUSED",
                                                            "UNAUTHENTICATED")  # fmt: skip
    # nor is a body of the wrong kind or size
    status, body, _ = await _raw(hub, b"query=x", content_type="text/plain")
    assert (status, _code(body)) == (415, "BAD_REQUEST")
    status, body, _ = await _raw(hub, b'{"query": "' + b"x" * 300_000 + b'"}')
    assert (status, _code(body)) == (413, "QUERY_REJECTED")
    entries = await entries_of(hub.settings.audit_location)
    assert [(e.user, e.outcome, e.error_code) for e in entries[-2:]] == [
        ("anonymous", "REFUSED", "BAD_REQUEST"),
        ("anonymous", "REFUSED", "QUERY_REJECTED"),
    ]


def test_nesting_is_bounded_exactly_and_strings_do_not_count() -> None:
    def nested(depth: int) -> bytes:
        return b"[" * depth + b"]" * depth

    check_nesting(nested(MAX_JSON_DEPTH))
    with pytest.raises(QueryRejected):
        check_nesting(nested(MAX_JSON_DEPTH + 1))

    # objects and arrays count alike; brackets inside strings (escaped quotes too) do not
    def mixed(units: int) -> bytes:  # 4 levels a unit
        return b'{"a": [{"b": [' * units + b"1" + b"]}]}" * units

    check_nesting(mixed(MAX_JSON_DEPTH // 4))
    assert parse_body(b'{"query": "x", "variables": ' + mixed(15) + b"}")
    with pytest.raises(QueryRejected):
        check_nesting(b'{"x": ' + mixed(MAX_JSON_DEPTH // 4) + b"}")
    in_string = b'{"query": "' + b"[{" * 5000 + b'\\"]]' + b'"}'
    assert parse_body(in_string)["query"].startswith("[{")
    # brackets that cannot pair are not JSON, however they nest
    with pytest.raises(RequestError):
        check_nesting(b"]" * 100 + b"[" * 100)
    with pytest.raises(RequestError):
        parse_body(b"]" * 100)  # few openings: the parser finds it out, without recursing
    with pytest.raises(RequestError):
        parse_body(b'{"query": "x"' + b"[" * 100)


def test_the_nesting_check_is_cheap_on_the_largest_body() -> None:
    limit = 256 * 1024
    worst = [
        b"[" * (limit // 2) + b"]" * (limit // 2),  # one deep chain: every round runs
        b"[]" * (limit // 2),  # wide: one round
        b'{"query": "' + b'\\"' * (limit // 2 - 8) + b'"}',  # all escapes
        (b"[" * MAX_JSON_DEPTH + b"]" * MAX_JSON_DEPTH) * (limit // (2 * MAX_JSON_DEPTH)),
        b"[" * limit,  # nothing pairs
        (b"[" * 65 + b"]" * 65) * (limit // 130),  # one level too deep, again and again
        b"[" * 100 + b'"' + b'\\"' * (limit // 2 - 100),  # a string never closed, all escapes
    ]
    for body in worst:
        started = time.perf_counter()
        with contextlib.suppress(QueryRejected, RequestError):
            check_nesting(body)
        elapsed = time.perf_counter() - started
        assert elapsed < 0.25, elapsed  # measured: at most ~8 ms


# -- 2. federation representations -------------------------------------------------------------


@pytest.mark.parametrize(
    "representation",
    [
        {"__typename": "Person"},
        {"id": 5},
        {"__typename": "Nope", "id": "x"},
        {"__typename": "Agency", "id": "x"},
        {"__typename": "Person", "id": 5},
        {"__typename": "Person", "id": ""},
        {"__typename": "Person", "id": "x", "name": "Reyes"},
        {"__typename": 7, "id": "x"},
        7,
        "Person",
        None,
        [],
    ],
    ids=repr,
)
async def test_a_malformed_representation_is_bad_user_input(
    hub: HubServer, representation: Any
) -> None:
    status, body = await hub.post(ENTITIES, {"r": [representation]}, token=hub.token())
    assert status == 200, body
    if representation is None:
        # [_Any!]! refuses a null item before anything resolves: the field is null
        assert (body["data"], _code(body)) == (None, "BAD_USER_INPUT")
        assert "Did you mean" not in body["errors"][0]["message"]
        return
    assert body["data"] == {"_entities": [None]}
    (error,) = body["errors"]
    assert error["extensions"]["code"] == "BAD_USER_INPUT", error
    assert error["path"] == ["_entities", 0]
    assert error["message"].startswith("representations[0]: ")
    assert all_requests(hub) == 0


async def test_good_and_malformed_representations_side_by_side(hub: HubServer) -> None:
    person = next(r for r in small_world().records["marin-rms"] if r.id and not r.tags)
    reps = [{"__typename": "Nope"}, {"__typename": "Person", "id": person.id}, {"id": 5}]
    status, body = await hub.post(ENTITIES, {"r": reps}, token=hub.token())
    assert status == 200
    assert body["data"]["_entities"] == [None, {"__typename": "Person", "id": person.id}, None]
    assert [(e["path"], e["extensions"]["code"]) for e in body["errors"]] == [
        (["_entities", 0], "BAD_USER_INPUT"),
        (["_entities", 2], "BAD_USER_INPUT"),
    ]


@pytest.mark.parametrize(
    ("query", "variables"),
    [
        ('query($k: [EntityKind!]) { search(text: "R", kinds: $k) { hits { __typename } } }',
         {"k": ["PERSN"]}),
        ('query($s: DateTime) { plateReads(plate: "7ABC123", since: $s) { readAt } }',
         {"s": "yesterday"}),
        ("query($id: ID!) { person(id: $id) { id } }", {"id": ["x"]}),
        ("query($id: ID!) { person(id: $id) { id } }", {}),
    ],
)  # fmt: skip
async def test_variables_that_do_not_coerce_are_bad_user_input(
    hub: HubServer, query: str, variables: dict[str, Any]
) -> None:
    # graphql-core wraps these in a GraphQLError of its own: once masked as INTERNAL.
    status, body = await hub.post(query, variables, token=hub.token())
    assert status == 200
    assert (body["data"], _code(body)) == (None, "BAD_USER_INPUT"), body
    assert body["errors"][0]["message"].startswith("Variable '$")
    assert all_requests(hub) == 0


# -- 3. one operation per request ------------------------------------------------------------


async def test_two_operations_without_a_name_execute_nothing(hub: HubServer) -> None:
    document = (
        'query A { sources { name } } query B { search(text: "Reyes") { hits { __typename } } }'
    )
    data = json.dumps({"query": document}).encode()
    status, body, _ = await _raw(hub, data)
    assert (status, _code(body)) == (400, "BAD_REQUEST")
    assert body["data"] is None
    assert "operationName" in body["errors"][0]["message"]
    assert hub.simulator_requests("marin-rms") == []
    assert all_requests(hub) == 0
    entry = await _last_entry(hub)
    assert (entry.outcome, entry.error_code) == ("REFUSED", "BAD_REQUEST")
    # naming one runs that one, and only it
    status, body, _ = await _raw(
        hub, json.dumps({"query": document, "operationName": "A"}).encode()
    )
    assert status == 200
    assert set(body["data"]) == {"sources"}
    assert all_requests(hub) == 0
    status, body, _ = await _raw(
        hub, json.dumps({"query": document, "operationName": "C"}).encode()
    )
    assert (status, _code(body)) == (400, "BAD_REQUEST")


# -- 4. no hints at the schema outside demo/dev ------------------------------------------------


async def test_production_errors_suggest_no_field_names(
    production: HubServer, identity_provider: tuple[str, rsa.RSAPrivateKey]
) -> None:
    _, key = identity_provider
    token = _idp_token(key)
    status, body = await production.post("{ sourcez { name } }", token=token, purpose=None)
    assert status == 200
    (error,) = body["errors"]
    assert error["extensions"]["code"] == "GRAPHQL_VALIDATION_FAILED"
    assert error["message"] == "Cannot query field 'sourcez' on type 'Query'."
    query = 'query($k: [EntityKind!]) { search(text: "Reyes", kinds: $k) { hits { __typename } } }'
    status, body = await production.post(query, {"k": ["PERSN"]}, token=token)
    assert status == 200
    assert body["errors"]
    for error in body["errors"]:
        assert "Did you mean" not in error["message"]
        assert "PERSON" not in error["message"]
    status, body = await production.post(
        '{ search(txt: "Reyes") { hits { __typename } } }', token=token
    )
    assert body["errors"]
    assert not any("Did you mean" in e["message"] for e in body["errors"])


async def test_demo_mode_keeps_its_suggestions(hub: HubServer) -> None:
    status, body = await hub.post("{ sourcez { name } }", token=hub.token(), purpose=None)
    assert status == 200
    assert "Did you mean 'sources'?" in body["errors"][0]["message"]


def test_the_shaper_strips_suggestions_only_when_told() -> None:
    raw = GraphQLError("Cannot query field 'x' on type 'Query'. Did you mean 'a', 'b', or 'c'?")
    assert ResponseShaper._shape(raw).message == raw.message
    hidden = ResponseShaper._shape(raw, suggestions=False)
    assert hidden.message == "Cannot query field 'x' on type 'Query'."
    assert hidden.extensions == {"code": "GRAPHQL_VALIDATION_FAILED"}


# -- 5. the token contract ---------------------------------------------------------------------


def _claims(hub: HubServer, **changes: Any) -> str:
    now = int(time.time())
    claims: dict[str, Any] = {
        "sub": "u1", "name": "U. One", "ori": "CA0990000", "state": "CA", "roles": ["analyst"],
        "auth_time": now, "iat": now, "exp": now + 600,
        "iss": hub.settings.auth.issuer, "aud": hub.settings.auth.audience,
    }  # fmt: skip
    claims.update(changes)
    return jwt.encode({k: v for k, v in claims.items() if v is not None}, hub.key, "ES256")


@pytest.mark.parametrize(
    ("changes", "claim"),
    [
        ({"roles": "analyst"}, "roles"),
        ({"roles": "analyst detective"}, "roles"),
        ({"roles": None}, "roles"),
        pytest.param({"exp": str(int(time.time()) + 600)}, "exp", id="exp-as-string"),
        pytest.param({"exp": time.time() + 600.5}, "exp", id="exp-as-float"),
        ({"name": None}, "name"),
        ({"name": ""}, "name"),
        ({"auth_time": None}, "auth_time"),
        pytest.param({"auth_time": str(int(time.time()))}, "auth_time", id="auth_time-as-string"),
        ({"auth_time": True}, "auth_time"),
        ({"auth_time": 10**20}, "auth_time"),
        ({"iat": "now"}, "iat"),
        ({"exp": "soon"}, "exp"),
        ({"nbf": "1000"}, "nbf"),
        ({"ori": None}, "ori"),
        ({"state": None}, "state"),
        ({"attrs": "sworn"}, "attrs"),
    ],
    ids=lambda v: json.dumps(v) if isinstance(v, dict) else v,
)
async def test_tokens_must_keep_the_contract(
    hub: HubServer, changes: dict[str, Any], claim: str
) -> None:
    status, body = await hub.post(SEARCH, {"text": "Reyes"}, token=_claims(hub, **changes))
    assert (status, _code(body)) == (401, "UNAUTHENTICATED"), body
    assert f"'{claim}'" in body["errors"][0]["message"]
    assert all_requests(hub) == 0
    entry = await _last_entry(hub)
    assert (entry.user, entry.outcome, entry.error_code) == ("anonymous", "REFUSED",
                                                            "UNAUTHENTICATED")  # fmt: skip


async def test_a_token_that_keeps_the_contract_and_hub_token_pass(hub: HubServer) -> None:
    status, body = await hub.post(SOURCES, token=_claims(hub), purpose=None)
    assert status == 200, body
    minted = mint_token(hub.key, hub.settings.auth, user="u2", agency="WA0990100",
                        state="WA", roles=["detective"], attrs=["sworn"])  # fmt: skip
    status, body = await hub.post(SOURCES, token=minted, purpose=None)
    assert status == 200, body
    entry = await _last_entry(hub)
    assert (entry.user, entry.agency, entry.roles) == ("u2", "WA0990100", ("detective",))


# -- 6. purposes -------------------------------------------------------------------------------


@pytest.mark.parametrize("query", [SEARCH, SOURCES], ids=["data-query", "no-data-query"])
@pytest.mark.parametrize("purpose", ["c", "alpr-inv", "Z", "CJ", "x" * 80])
async def test_an_invalid_purpose_is_refused_at_the_edge(
    hub: HubServer, query: str, purpose: str
) -> None:
    status, body = await hub.post(query, {"text": "Reyes"}, token=hub.token(), purpose=purpose)
    assert (status, _code(body)) == (400, "INVALID_PURPOSE"), body
    assert body["data"] is None
    assert "case-sensitive" in body["errors"][0]["message"]
    assert all_requests(hub) == 0
    entry = await _last_entry(hub)
    assert (entry.outcome, entry.error_code) == ("REFUSED", "INVALID_PURPOSE")
    assert entry.purpose == purpose.strip()[:64]  # audited as given (HTTP trims the ends)


async def test_a_missing_purpose_still_refuses_only_data_queries(hub: HubServer) -> None:
    status, body = await hub.post(SEARCH, {"text": "Reyes"}, token=hub.token(), purpose=None)
    assert (status, _code(body)) == (200, "PURPOSE_REQUIRED")
    assert all_requests(hub) == 0
    status, body = await hub.post(SOURCES, token=hub.token(), purpose=None)
    assert status == 200
    assert body["data"]["sources"]
    status, body = await hub.post(SEARCH, {"text": "Reyes"}, token=hub.token(), purpose="C")
    assert status == 200
    assert body["extensions"]["purpose"] == "C"


# -- 7. subjects the policy does not know ------------------------------------------------------


@pytest.mark.parametrize(
    ("agency", "roles", "code"),
    [
        ("TX0990000", ("analyst",), "UNKNOWN_AGENCY"),
        ("CA0990001", ("detective",), "UNKNOWN_AGENCY"),
        ("CA0990000", ("janitor",), "UNKNOWN_ROLE"),
        ("CA0990000", ("ANALYST",), "UNKNOWN_ROLE"),
        ("CA0990000", (), "UNKNOWN_ROLE"),
    ],
)
async def test_an_unknown_subject_is_refused_not_answered_empty(
    hub: HubServer, agency: str, roles: tuple[str, ...], code: str
) -> None:
    token = hub.token(agency=agency, roles=roles)
    for query in (SEARCH, SOURCES):
        status, body = await hub.post(query, {"text": "Reyes"}, token=token)
        assert (status, _code(body)) == (403, code), body
        assert body["data"] is None
        entry = await _last_entry(hub)
        assert (entry.user, entry.agency) == ("u1", agency)
        assert (entry.outcome, entry.error_code) == ("REFUSED", code)
    assert all_requests(hub) == 0


async def test_unknown_roles_beside_a_known_one_are_ignored(hub: HubServer) -> None:
    token = hub.token(roles=("analyst", "idp-admin", "Domain Users"))
    status, body = await hub.post(SEARCH, {"text": "Reyes"}, token=token)
    assert status == 200, body
    assert body["data"]["search"]["hits"]


def _requester(ori: str, roles: frozenset[str]) -> RequestContext:
    subject = Subject(user_id="far-away", name="Far Away", ori=ori, state=ori[:2], roles=roles,
                      auth_time=datetime.now(UTC))  # fmt: skip
    return RequestContext(subject=subject, purpose="C")


@pytest.mark.parametrize(
    ("ori", "roles", "code"),
    [
        ("TX0990000", frozenset({"analyst"}), "UNKNOWN_AGENCY"),
        ("NY0990000", frozenset({"janitor"}), "UNKNOWN_ROLE"),
        ("NY0990000", frozenset({"analyst"}), None),
    ],
)
async def test_a_partner_hubs_requester_passes_the_same_checks(
    hub: HubServer, ori: str, roles: frozenset[str], code: str | None
) -> None:
    signer = AssertionSigner("east-hub", ec.generate_private_key(ec.SECP256R1()))
    # A partner that may speak for an agency this hub's policy does not know (a config slip).
    hub.runtime.partners.partners["east-hub"] = TrustedPartner(
        "east-hub", frozenset({"NY0990000", "TX0990000"}), PemKey(signer.public_key)
    )
    service = hub.token(agency="NY0990000", roles=("partner-hub",), user="svc-east")
    assertion = signer.sign(_requester(ori, roles), hub.runtime.partners.hub_id)
    status, body = await hub.post(
        SEARCH, {"text": "Reyes"}, token=service, headers={ASSERTION_HEADER: assertion}
    )
    entry = await _last_entry(hub)
    assert (entry.user, entry.agency, entry.via_user) == ("far-away", ori, "svc-east")
    if code is None:
        assert status == 200, body
        assert entry.outcome in ("OK", "PARTIAL")
        return
    assert (status, _code(body)) == (403, code), body
    assert body["data"] is None
    assert (entry.outcome, entry.error_code) == ("REFUSED", code)
    assert all_requests(hub) == 0


async def test_a_partner_account_of_an_unknown_agency_is_refused(hub: HubServer) -> None:
    service = hub.token(agency="TX0990000", roles=("partner-hub",), user="svc-tx")
    status, body = await hub.post(SOURCES, token=service, headers={ASSERTION_HEADER: "x.y.z"})
    assert (status, _code(body)) == (403, "UNKNOWN_AGENCY")


# -- response bodies: msgspec, compact, UTF-8, never NaN ---------------------------------------


def test_a_response_body_is_compact_utf8_in_response_order() -> None:
    data = {"data": {"b": 1, "a": [1.5, True, None]}, "errors": [{"message": "José — 東京"}]}
    encoded = encode_response(data)
    assert (
        encoded
        == '{"data":{"b":1,"a":[1.5,true,null]},"errors":[{"message":"José — 東京"}]}'.encode()
    )
    assert json.loads(encoded) == data
    # Key order is the executor's (GraphQL response order), not sorted.
    assert list(json.loads(encoded)["data"]) == ["b", "a"]


def test_a_response_body_never_holds_nan_or_infinity() -> None:
    encoded = encode_response({"x": [math.nan, math.inf, -math.inf, 0.1]})
    assert encoded == b'{"x":[null,null,null,0.1]}'
    json.loads(encoded, parse_constant=lambda c: pytest.fail(f"{c} emitted"))


def test_a_lone_surrogate_in_a_response_is_escaped_not_a_500() -> None:
    # Not UTF-8; as json.dumps writes it, an escape: still valid JSON text.
    data = {"data": {"name": "a\ud800b", "n": 1}}
    encoded = encode_response(data)
    assert encoded == b'{"data":{"name":"a\\ud800b","n":1}}'
    assert json.loads(encoded) == data


async def test_the_wire_carries_the_encoded_response_unescaped(hub: HubServer) -> None:
    # The coercion error quotes the variable's value: non-ASCII comes back as UTF-8.
    query = 'query($k: [EntityKind!]) { search(text: "R", kinds: $k) { hits { __typename } } }'
    body = json.dumps({"query": query, "variables": {"k": ["PERSÖN"]}})
    headers = {
        "Content-Type": "application/json",
        "Authorization": f"Bearer {hub.token()}",
        "X-Purpose": "C",
    }
    async with hub.session.post(f"{hub.url}/graphql", data=body, headers=headers) as resp:
        raw = await resp.read()
        assert (resp.status, resp.content_type, resp.charset) == (200, "application/json", None)
        assert int(resp.headers["Content-Length"]) == len(raw)
    answer = json.loads(raw)
    assert _code(answer) == "BAD_USER_INPUT", answer
    assert "PERSÖN".encode() in raw
    assert b"\\u00d6" not in raw
    assert raw == encode_response(answer)  # compact, the executor's key order
