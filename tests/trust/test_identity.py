from __future__ import annotations

import base64
import json
import time
from pathlib import Path

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from hub.errors import AuthenticationError
from hub.settings import AuthSettings
from hub.trust.identity import LocalKeyVerifier, load_or_create_demo_key, mint_token

AUTH = AuthSettings()


@pytest.fixture
def key(tmp_path: Path) -> ec.EllipticCurvePrivateKey:
    return load_or_create_demo_key(tmp_path / "key.pem")


@pytest.fixture
def verifier(key: ec.EllipticCurvePrivateKey) -> LocalKeyVerifier:
    return LocalKeyVerifier(key.public_key(), AUTH)


def _token(key: ec.EllipticCurvePrivateKey, **kw: object) -> str:
    args: dict[str, object] = {
        "user": "analyst1", "agency": "CA0990000", "state": "CA", "roles": ["analyst"],
    }  # fmt: skip
    args.update(kw)
    return mint_token(key, AUTH, **args)  # type: ignore[arg-type]


async def test_minted_token_round_trips_to_a_subject(
    key: ec.EllipticCurvePrivateKey, verifier: LocalKeyVerifier
) -> None:
    subject = await verifier.verify(_token(key, roles=["analyst", "detective"], attrs=["sworn"]))
    assert subject.user_id == "analyst1"
    assert subject.ori == "CA0990000"
    assert subject.state == "CA"
    assert subject.roles == frozenset({"analyst", "detective"})
    assert subject.attributes == frozenset({"sworn"})
    assert subject.auth_time is not None


def test_demo_key_is_made_once_and_private(tmp_path: Path) -> None:
    path = tmp_path / "var" / "k.pem"
    first = load_or_create_demo_key(path)
    second = load_or_create_demo_key(path)
    assert first.private_numbers() == second.private_numbers()
    assert path.stat().st_mode & 0o077 == 0


async def test_expired_token_refused(
    key: ec.EllipticCurvePrivateKey, verifier: LocalKeyVerifier
) -> None:
    old = time.time() - 3600
    with pytest.raises(AuthenticationError, match="expired"):
        await verifier.verify(_token(key, ttl_s=60, now=old))


async def test_alg_none_refused(verifier: LocalKeyVerifier) -> None:
    def b64(d: dict[str, object]) -> str:
        return base64.urlsafe_b64encode(json.dumps(d).encode()).rstrip(b"=").decode()

    claims = {
        "sub": "x", "ori": "CA0990000", "state": "CA", "roles": ["analyst"],
        "iss": AUTH.issuer, "aud": AUTH.audience, "exp": int(time.time()) + 60,
    }  # fmt: skip
    unsigned = f"{b64({'alg': 'none', 'typ': 'JWT'})}.{b64(claims)}."
    with pytest.raises(AuthenticationError, match="algorithm"):
        await verifier.verify(unsigned)


async def test_other_key_refused(verifier: LocalKeyVerifier) -> None:
    stranger = ec.generate_private_key(ec.SECP256R1())
    with pytest.raises(AuthenticationError, match="signature"):
        await verifier.verify(_token(stranger))


async def test_hmac_with_public_key_refused(
    key: ec.EllipticCurvePrivateKey, verifier: LocalKeyVerifier
) -> None:
    # The classic confusion attack: sign HS256 with the public key's bytes.
    forged = jwt.encode({"sub": "x"}, "public-key-bytes-" * 4, algorithm="HS256")
    with pytest.raises(AuthenticationError, match="algorithm"):
        await verifier.verify(forged)


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ({"aud": "someone-else"}, "audience"),
        ({"iss": "evil"}, "issuer"),
        ({"ori": "short"}, "ori"),
        ({"state": "California"}, "state"),
        ({"roles": [1, 2]}, "roles"),
        # the README's contract, as written: lists are lists, times are numbers, none missing
        ({"roles": "analyst"}, "'roles' must be a JSON list"),
        ({"roles": "analyst,detective"}, "'roles' must be a JSON list"),
        ({"attrs": "sworn"}, "'attrs' must be a JSON list"),
        ({"exp": str(int(time.time()) + 600)}, "'exp' must be a whole number"),
        ({"exp": "tomorrow"}, "'exp' must be a whole number"),
        ({"auth_time": "1700000000"}, "'auth_time' must be a whole number"),
        ({"auth_time": 1.7e9}, "'auth_time' must be a whole number"),
        ({"name": None}, "lacks the 'name' claim"),
        ({"auth_time": None}, "lacks the 'auth_time' claim"),
        ({"roles": None}, "lacks the 'roles' claim"),
    ],
)
async def test_bad_claims_refused(
    key: ec.EllipticCurvePrivateKey,
    verifier: LocalKeyVerifier,
    override: dict[str, object],
    message: str,
) -> None:
    with pytest.raises(AuthenticationError, match=message):
        await verifier.verify(_token(key, extra=override))


async def test_garbage_refused(verifier: LocalKeyVerifier) -> None:
    with pytest.raises(AuthenticationError, match="malformed"):
        await verifier.verify("not.a.token")
    with pytest.raises(AuthenticationError, match="too large"):
        await verifier.verify("a" * 10_000)


async def test_rsa_key_of_stranger_refused(verifier: LocalKeyVerifier) -> None:
    rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    forged = jwt.encode(
        {"sub": "x", "iss": AUTH.issuer, "aud": AUTH.audience, "exp": int(time.time()) + 60},
        rsa_key,
        algorithm="RS256",
    )
    with pytest.raises(AuthenticationError):
        await verifier.verify(forged)
