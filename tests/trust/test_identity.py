from __future__ import annotations

import asyncio
import base64
import json
import time
from collections.abc import AsyncIterator
from pathlib import Path

import jwt
import pytest
from aiohttp import web
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from hub.errors import AuthenticationError
from hub.settings import AuthSettings
from hub.trust.identity import (
    JwksVerifier,
    LocalKeyVerifier,
    VerifiedTokens,
    load_or_create_demo_key,
    mint_token,
)

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


# -- tokens verified once, until they expire --------------------------------------------------


class _Clock:
    """Seconds since the epoch, moved by the test: the cache's view of time only (PyJWT keeps
    the real clock)."""

    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now


async def test_a_verified_token_is_kept_until_its_exp_and_no_longer(
    key: ec.EllipticCurvePrivateKey,
) -> None:
    clock = _Clock()
    verifier = LocalKeyVerifier(key.public_key(), AUTH, VerifiedTokens(clock=clock))
    token = _token(key, ttl_s=600)
    exp = jwt.decode(token, options={"verify_signature": False})["exp"]
    first = await verifier.verify(token)
    entry = VerifiedTokens.key(token)
    assert len(verifier.verified) == 1
    assert verifier.verified.get(entry) == first
    assert await verifier.verify(token) == first
    clock.now = exp - 0.001
    assert verifier.verified.get(entry) == first
    clock.now = exp  # at exp, not after: the leeway is PyJWT's, for clocks, never the cache's
    assert verifier.verified.get(entry) is None
    assert len(verifier.verified) == 0


async def test_an_expired_token_is_refused_though_it_verified_before(
    key: ec.EllipticCurvePrivateKey,
) -> None:
    # Real time: a token that lives one second, verified, then asked again past its exp.
    auth = AuthSettings(leeway_s=0)
    verifier = LocalKeyVerifier(key.public_key(), auth)
    token = mint_token(
        key, auth, user="a1", agency="CA0990000", state="CA", roles=["analyst"], ttl_s=1
    )
    exp = jwt.decode(token, options={"verify_signature": False})["exp"]
    if time.time() >= exp:  # minted at the very end of a second
        pytest.skip("the token expired before it could be verified once")
    await verifier.verify(token)
    await asyncio.sleep(exp - time.time() + 0.01)
    with pytest.raises(AuthenticationError, match="expired"):
        await verifier.verify(token)
    assert len(verifier.verified) == 0


async def test_a_token_accepted_within_the_leeway_is_not_cached(
    key: ec.EllipticCurvePrivateKey, verifier: LocalKeyVerifier
) -> None:
    late = _token(key, ttl_s=60, now=time.time() - 70)  # expired 10 s ago; leeway 30 s
    await verifier.verify(late)
    assert len(verifier.verified) == 0


async def test_a_token_that_fails_is_never_cached(
    key: ec.EllipticCurvePrivateKey, verifier: LocalKeyVerifier
) -> None:
    stranger = ec.generate_private_key(ec.SECP256R1())
    forged = _token(stranger)
    bad_claim = _token(key, extra={"ori": "short"})  # signed right, claim wrong
    for token, message in ((forged, "signature"), (bad_claim, "ori")):
        for _ in range(2):
            with pytest.raises(AuthenticationError, match=message):
                await verifier.verify(token)
    assert len(verifier.verified) == 0
    # The whole token is the key: a valid token's signature altered is verified, and refused.
    good = _token(key)
    await verifier.verify(good)
    head, body, signature = good.split(".")
    flipped = signature[:-2] + ("A" if signature[-2] != "A" else "B") + signature[-1]
    with pytest.raises(AuthenticationError):
        await verifier.verify(f"{head}.{body}.{flipped}")
    assert len(verifier.verified) == 1


async def test_the_cache_is_bounded_least_recently_used_out_first(
    key: ec.EllipticCurvePrivateKey,
) -> None:
    verifier = LocalKeyVerifier(key.public_key(), AUTH, VerifiedTokens(max_entries=2))
    first, second, third = (_token(key, user=f"analyst{i}") for i in range(3))
    await verifier.verify(first)
    await verifier.verify(second)
    await verifier.verify(first)  # first is now the most recently used
    await verifier.verify(third)
    assert len(verifier.verified) == 2
    assert verifier.verified.get(VerifiedTokens.key(second)) is None
    assert verifier.verified.get(VerifiedTokens.key(first)) is not None
    assert verifier.verified.get(VerifiedTokens.key(third)) is not None
    # The dropped token is verified again, in full, and still accepted.
    assert (await verifier.verify(second)).user_id == "analyst1"
    with pytest.raises(ValueError, match="at least one"):
        VerifiedTokens(max_entries=0)


class _IdentityProvider:
    """A real JWKS endpoint on loopback whose published keys the test changes."""

    def __init__(self) -> None:
        self.keys: dict[str, rsa.RSAPrivateKey] = {}
        self.fetches = 0

    def publish(self, kid: str) -> rsa.RSAPrivateKey:
        self.keys[kid] = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        return self.keys[kid]

    async def jwks(self, request: web.Request) -> web.Response:
        self.fetches += 1
        published = []
        for kid, key in self.keys.items():
            jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(key.public_key()))
            jwk.update({"kid": kid, "use": "sig", "alg": "RS256"})
            published.append(jwk)
        return web.json_response({"keys": published})

    def token(self, kid: str, key: rsa.RSAPrivateKey | None = None) -> str:
        now = int(time.time())
        claims = {
            "sub": "det-1", "name": "Det. One", "ori": "CA0990000", "state": "CA",
            "roles": ["detective"], "iss": "https://idp.example", "aud": "hub",
            "exp": now + 600, "auth_time": now,
        }  # fmt: skip
        signer = self.keys[kid] if key is None else key
        return jwt.encode(claims, signer, algorithm="RS256", headers={"kid": kid})


@pytest.fixture
async def idp() -> AsyncIterator[tuple[_IdentityProvider, str]]:
    provider = _IdentityProvider()
    app = web.Application()
    app.router.add_get("/jwks.json", provider.jwks)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    yield provider, f"http://127.0.0.1:{runner.addresses[0][1]}/jwks.json"
    await runner.cleanup()


async def test_a_withdrawn_jwks_key_stops_verifying_cached_tokens(
    idp: tuple[_IdentityProvider, str],
) -> None:
    provider, url = idp
    k1 = provider.publish("k1")
    auth = AuthSettings(issuer="https://idp.example", audience="hub", jwks_url=url)
    lifespan = 0.3
    verifier = JwksVerifier(auth, keys_lifespan_s=lifespan)
    token = provider.token("k1")
    subject = await verifier.verify(token)
    assert await verifier.verify(token) == subject
    assert (len(verifier.verified), provider.fetches) == (1, 1)  # the second from the cache
    # The provider withdraws k1 (compromised) and signs with k2 from now on.
    del provider.keys["k1"]
    provider.publish("k2")
    await asyncio.sleep(lifespan + 0.05)  # the key set fetched before now has had its day
    with pytest.raises(AuthenticationError, match="not one the identity provider publishes"):
        await verifier.verify(token)
    assert len(verifier.verified) == 0
    assert (await verifier.verify(provider.token("k2"))).user_id == "det-1"
    # A token signed by the withdrawn key, new or cached before, is refused.
    with pytest.raises(AuthenticationError):
        await verifier.verify(provider.token("k1", key=k1))


async def test_a_new_key_set_empties_the_cache(idp: tuple[_IdentityProvider, str]) -> None:
    provider, url = idp
    provider.publish("k1")
    auth = AuthSettings(issuer="https://idp.example", audience="hub", jwks_url=url)
    verifier = JwksVerifier(auth, keys_lifespan_s=0.3)
    await verifier.verify(provider.token("k1"))
    assert len(verifier.verified) == 1
    await asyncio.sleep(0.4)
    provider.publish("k2")  # rotation: k1 stays, k2 added
    token = provider.token("k2")
    await verifier.verify(token)
    # The key set was fetched anew: only what verified under it is kept.
    assert len(verifier.verified) == 1
    assert verifier.verified.get(VerifiedTokens.key(token)) is not None
    assert provider.fetches == 2
