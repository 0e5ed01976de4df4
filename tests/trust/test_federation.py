"""The requester assertion: signing, verification, the hub chain and loop refusal, trace ids."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import jwt
import pytest
from aiohttp import web
from cryptography.hazmat.primitives.asymmetric import ec

from hub.context import RequestContext, Subject
from hub.errors import AccessDenied, AuthenticationError, ConfigError
from hub.settings import load_settings
from hub.trust.federation import (
    MAX_CHAIN,
    AssertionSigner,
    HubLoop,
    JwksKeys,
    PartnerTrust,
    PemKey,
    TrustedPartner,
    public_pem,
)

WEST_AGENCIES = frozenset({"CA0990000", "WA0990100", "OR0990200", "NV0990000"})
TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"


def _subject(**changes: Any) -> Subject:
    values: dict[str, Any] = {
        "user_id": "analyst1",
        "name": "Ana Lyst",
        "ori": "CA0990000",
        "state": "CA",
        "roles": frozenset({"analyst"}),
        "auth_time": datetime(2025, 1, 2, 3, 4, 5, tzinfo=UTC),
        "attributes": frozenset({"sworn"}),
    }
    values.update(changes)
    return Subject(**values)


def _ctx(chain: tuple[str, ...] = (), **subject: Any) -> RequestContext:
    return RequestContext(
        subject=_subject(**subject),
        purpose="C",
        case_number="26-001234",
        hub_chain=chain,
        request_id="r1",
    )


SERVICE_ACCOUNT = _subject(
    user_id="svc-west-hub", name="west hub", ori="NY0990000", state="NY", roles={"partner-hub"}
)


@pytest.fixture(scope="module")
def west_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


@pytest.fixture
def west(west_key: ec.EllipticCurvePrivateKey) -> AssertionSigner:
    return AssertionSigner("west-hub", west_key)


@pytest.fixture
def east(west: AssertionSigner) -> PartnerTrust:
    return PartnerTrust(
        "east-hub", [TrustedPartner("west-hub", WEST_AGENCIES, PemKey(west.public_key))]
    )


async def test_round_trip_names_the_original_requester(
    west: AssertionSigner, east: PartnerTrust
) -> None:
    assertion = west.sign(_ctx(), "east-hub", trace_id=TRACE)
    admitted = await east.admit(SERVICE_ACCOUNT, assertion, purpose="C")
    assert admitted.subject == _subject()  # user, name, agency, state, roles, attrs, auth time
    assert admitted.purpose == "C"
    assert admitted.case_number == "26-001234"
    assert admitted.hub_chain == ("west-hub",)
    assert admitted.trace_id == TRACE
    assert admitted.issuer == "west-hub"
    base = RequestContext(
        subject=SERVICE_ACCOUNT, purpose="C", client_address="127.0.0.1", request_id="r2"
    )
    ctx = admitted.context(SERVICE_ACCOUNT, base)
    # Policy will see the requester; the audit trail sees both, and the chain.
    assert ctx.subject.user_id == "analyst1"
    assert ctx.via == SERVICE_ACCOUNT
    assert ctx.hub_chain == ("west-hub",)
    assert (ctx.client_address, ctx.request_id) == ("127.0.0.1", "r2")


def test_the_assertion_is_short_lived_and_addressed(west: AssertionSigner) -> None:
    claims = jwt.decode(
        west.sign(_ctx(("north-hub",)), "east-hub"), options={"verify_signature": False}
    )
    assert claims["aud"] == "east-hub"
    assert claims["iss"] == "west-hub"
    assert claims["exp"] - claims["iat"] == 60
    assert claims["chain"] == ["north-hub", "west-hub"]
    assert "trace" not in claims
    assert jwt.get_unverified_header(west.sign(_ctx(), "east-hub"))["kid"] == west.kid


def test_a_hub_does_not_send_a_request_back_along_its_chain(west: AssertionSigner) -> None:
    with pytest.raises(HubLoop):
        west.sign(_ctx(("east-hub", "north-hub")), "east-hub")
    with pytest.raises(HubLoop):
        west.sign(_ctx(), "west-hub")
    with pytest.raises(HubLoop):
        west.sign(_ctx(tuple(f"hub-{i}" for i in range(MAX_CHAIN))), "east-hub")


def _forged(key: Any, **claims: Any) -> str:
    now = int(time.time())
    body: dict[str, Any] = {
        "iss": "west-hub",
        "aud": "east-hub",
        "iat": now,
        "exp": now + 60,
        "jti": uuid.uuid4().hex,
        "sub": "analyst1",
        "name": "Ana",
        "ori": "CA0990000",
        "state": "CA",
        "roles": ["analyst"],
        "purpose": "C",
        "chain": ["west-hub"],
    }
    body.update(claims)
    return jwt.encode({k: v for k, v in body.items() if v is not None}, key, algorithm="ES256")


async def test_a_hub_finds_itself_in_the_chain_and_refuses(
    west_key: ec.EllipticCurvePrivateKey, east: PartnerTrust
) -> None:
    assertion = _forged(west_key, chain=["east-hub", "north-hub", "west-hub"])
    with pytest.raises(HubLoop) as caught:
        await east.admit(SERVICE_ACCOUNT, assertion)
    assert caught.value.code == "HUB_LOOP"


@pytest.mark.parametrize(
    ("claims", "message"),
    [
        ({"aud": "north-hub"}, "addressed to another hub"),
        ({"iss": "north-hub"}, "does not trust"),
        ({"exp": int(time.time()) - 3600, "iat": int(time.time()) - 3660}, "expired"),
        ({"exp": int(time.time()) + 3600}, "longer than"),
        ({"chain": ["north-hub"]}, "does not end with"),
        ({"chain": None}, "chain"),
        ({"chain": "west-hub"}, "chain"),
        ({"sub": None}, "'sub'"),
        ({"jti": 42}, "malformed"),  # PyJWT checks jti is a string
        ({"ori": "not-an-ori"}, "ori"),
        ({"purpose": "J"}, "X-Purpose differs"),
    ],
)
async def test_assertions_that_do_not_verify_are_refused(
    west_key: ec.EllipticCurvePrivateKey, east: PartnerTrust, claims: dict[str, Any], message: str
) -> None:
    with pytest.raises(AuthenticationError, match=message):
        await east.admit(SERVICE_ACCOUNT, _forged(west_key, **claims), purpose="C")


async def test_an_assertion_signed_by_another_key_is_refused(east: PartnerTrust) -> None:
    stranger = ec.generate_private_key(ec.SECP256R1())
    with pytest.raises(AuthenticationError, match="signature"):
        await east.admit(SERVICE_ACCOUNT, _forged(stranger))


async def test_unsigned_and_symmetric_assertions_are_refused(
    west: AssertionSigner, east: PartnerTrust
) -> None:
    now = int(time.time())
    claims = {"iss": "west-hub", "aud": "east-hub", "iat": now, "exp": now + 60, "sub": "x"}
    unsigned = jwt.encode(claims, None, algorithm="none")
    with pytest.raises(AuthenticationError):
        await east.admit(SERVICE_ACCOUNT, unsigned)

    # HMAC keyed with the partner's public key: the classic confusion (PyJWT will not make
    # one, so by hand).
    def part(value: dict[str, Any]) -> bytes:
        return base64.urlsafe_b64encode(json.dumps(value).encode()).rstrip(b"=")

    signing_input = part({"alg": "HS256", "typ": "JWT"}) + b"." + part(claims)
    mac = hmac.new(public_pem(west.public_key), signing_input, hashlib.sha256).digest()
    forged = signing_input + b"." + base64.urlsafe_b64encode(mac).rstrip(b"=")
    with pytest.raises(AuthenticationError):
        await east.admit(SERVICE_ACCOUNT, forged.decode())


async def test_only_a_partner_hub_account_may_present_an_assertion(
    west: AssertionSigner, east: PartnerTrust
) -> None:
    analyst = _subject(ori="NY0990000", state="NY")
    with pytest.raises(AccessDenied, match="partner-hub"):
        await east.admit(analyst, west.sign(_ctx(), "east-hub"))


async def test_a_partner_speaks_only_for_its_agencies(
    west: AssertionSigner, east: PartnerTrust
) -> None:
    # The west hub may not claim a user of an east agency: that would borrow east agreements.
    with pytest.raises(AccessDenied, match="may not speak for users of NY0990000"):
        await east.admit(SERVICE_ACCOUNT, west.sign(_ctx(ori="NY0990000"), "east-hub"))
    with pytest.raises(AccessDenied, match="person"):
        await east.admit(SERVICE_ACCOUNT, west.sign(_ctx(roles={"partner-hub"}), "east-hub"))


async def test_case_number_must_agree_and_bad_trace_ids_are_ignored(
    west_key: ec.EllipticCurvePrivateKey, east: PartnerTrust
) -> None:
    with pytest.raises(AuthenticationError, match="Case-Number"):
        await east.admit(SERVICE_ACCOUNT, _forged(west_key, case="A"), case_number="B")
    for bad in ("0" * 32, "XYZ", TRACE.upper(), 42):
        admitted = await east.admit(SERVICE_ACCOUNT, _forged(west_key, trace=bad))
        assert admitted.trace_id is None


async def test_a_pinned_clock_checks_expiry_by_hand(
    west: AssertionSigner, east: PartnerTrust
) -> None:
    def signed() -> str:
        return west.sign(_ctx(), "east-hub", now=1_000_000)

    assert (await east.admit(SERVICE_ACCOUNT, signed(), now=1_000_010)).subject.ori == "CA0990000"
    with pytest.raises(AuthenticationError, match="expired"):
        await east.admit(SERVICE_ACCOUNT, signed(), now=1_000_200)
    with pytest.raises(AuthenticationError, match="future"):
        await east.admit(SERVICE_ACCOUNT, signed(), now=999_000)


async def test_an_assertion_is_good_for_one_call(
    west: AssertionSigner, east: PartnerTrust, west_key: ec.EllipticCurvePrivateKey
) -> None:
    assertion = west.sign(_ctx(), "east-hub")
    await east.admit(SERVICE_ACCOUNT, assertion)
    with pytest.raises(AuthenticationError, match="already used"):
        await east.admit(SERVICE_ACCOUNT, assertion)
    await east.admit(SERVICE_ACCOUNT, west.sign(_ctx(), "east-hub"))  # a fresh one is fine
    with pytest.raises(AuthenticationError, match="'jti'"):
        await east.admit(SERVICE_ACCOUNT, _forged(west_key, jti=None))


@pytest.fixture
async def jwks_url(west: AssertionSigner) -> AsyncIterator[str]:
    async def keys(request: web.Request) -> web.Response:
        return web.json_response(west.jwks())

    app = web.Application()
    app.router.add_get("/.well-known/hub-jwks.json", keys)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        yield f"http://127.0.0.1:{port}/.well-known/hub-jwks.json"
    finally:
        await runner.cleanup()


async def test_partner_keys_from_its_published_jwks(west: AssertionSigner, jwks_url: str) -> None:
    trust = PartnerTrust(
        "east-hub", [TrustedPartner("west-hub", WEST_AGENCIES, JwksKeys(jwks_url))]
    )
    admitted = await trust.admit(SERVICE_ACCOUNT, west.sign(_ctx(), "east-hub"))
    assert admitted.subject.user_id == "analyst1"
    other = AssertionSigner("west-hub", ec.generate_private_key(ec.SECP256R1()))
    with pytest.raises(AuthenticationError, match="not one the partner hub publishes"):
        await trust.admit(SERVICE_ACCOUNT, other.sign(_ctx(), "east-hub"))


def test_partners_from_the_config_file(tmp_path: Path, west: AssertionSigner) -> None:
    (tmp_path / "west.pem").write_bytes(public_pem(west.public_key))
    config = tmp_path / "hub.toml"
    config.write_text(
        'mode = "demo"\n[hub]\nid = "east-hub"\n'
        f'[partners.west-hub]\npublic_key = "{tmp_path / "west.pem"}"\n'
        'agencies = ["CA0990000", "WA0990100"]\n'
        '[partners.north-hub]\njwks_url = "https://north.example.org/.well-known/hub-jwks.json"\n'
        'agencies = ["MN0990000"]\n'
    )
    settings = load_settings(config, env={"HUB_VAR_DIR": str(tmp_path / "var")})
    assert settings.hub_id == "east-hub"
    assert settings.hub_signing_key_path == tmp_path / "var" / "hub-signing-key.pem"
    trust = PartnerTrust.from_settings(settings)
    assert set(trust.partners) == {"west-hub", "north-hub"}
    assert trust.partners["west-hub"].agencies == {"CA0990000", "WA0990100"}
    # This hub's own key is made on first use and published as a JWK Set.
    signer = AssertionSigner.from_settings(settings)
    (jwk,) = signer.jwks()["keys"]
    assert (jwk["kty"], jwk["crv"], jwk["alg"], jwk["kid"]) == ("EC", "P-256", "ES256", signer.kid)
    assert AssertionSigner.from_settings(settings).kid == signer.kid  # the same key next time


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[partners.west-hub]\nagencies = ['CA0990000']\n", "exactly one of public_key"),
        ("[partners.west-hub]\npublic_key = 'k.pem'\n", "agencies"),
        ("[partners.west-hub]\npublic_key = 'k.pem'\nagencies = ['nope']\n", "agencies"),
        ("[hub]\nid = 'west hub'\n", "hub.id"),
        ("[hub]\nid = 'w'\n[partners.w]\njwks_url = 'x'\nagencies = ['CA0990000']\n", "itself"),
        ("[demo]\nenabled = 'yes'\n", "demo.enabled"),
    ],
)
def test_bad_partner_config_is_a_clear_error(tmp_path: Path, text: str, message: str) -> None:
    config = tmp_path / "hub.toml"
    config.write_text('mode = "demo"\n' + text)
    with pytest.raises(ConfigError, match=message):
        load_settings(config, env={})


def test_a_missing_partner_key_file_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read partner key"):
        PemKey.load(tmp_path / "absent.pem")
