"""Tokens to subjects: verify a JWT (JWKS in production, a local key in demo/dev); mint dev
tokens.

Claims: ``sub`` (user id), ``name``, ``ori`` (employing agency), ``state``, ``roles`` (list),
``auth_time``, optional ``attrs`` (list, e.g. ``["sworn", "cfr28"]``); ``exp``, ``iss`` and ``aud``
are required and checked. Only asymmetric algorithms are accepted, so ``alg: none`` and
HMAC-with-the-public-key confusion are refused by construction. PyJWT does the verification;
its ``PyJWKClient`` fetches and caches the identity provider's JWKS.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from jwt.types import Options

from hub.context import Subject
from hub.errors import AuthenticationError, ConfigError
from hub.keyfiles import read_or_create
from hub.settings import AuthSettings

_ORI = re.compile(r"^[A-Z]{2}[A-Z0-9]{7}$")
_STATE = re.compile(r"^[A-Z]{2}$")
MAX_TOKEN_BYTES = 8192


class TokenVerifier(Protocol):
    async def verify(self, token: str) -> Subject: ...


def subject_from_claims(claims: dict[str, Any]) -> Subject:
    def text(name: str) -> str:
        value = claims.get(name)
        if not isinstance(value, str) or not value:
            raise AuthenticationError(f"token claim {name!r} is missing or not a string")
        return value

    def strings(name: str) -> frozenset[str]:
        value = claims.get(name, [])
        if isinstance(value, str):
            value = [v for v in value.replace(",", " ").split() if v]
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise AuthenticationError(f"token claim {name!r} must be a list of strings")
        return frozenset(value)

    ori = text("ori").upper()
    if not _ORI.match(ori):
        raise AuthenticationError("token claim 'ori' is not a nine-character agency identifier")
    state = text("state").upper()
    if not _STATE.match(state):
        raise AuthenticationError("token claim 'state' is not a two-letter state code")
    auth_time = claims.get("auth_time")
    return Subject(
        user_id=text("sub"),
        name=str(claims.get("name") or claims["sub"]),
        ori=ori,
        state=state,
        roles=strings("roles"),
        auth_time=datetime.fromtimestamp(auth_time, UTC) if isinstance(auth_time, int) else None,
        attributes=strings("attrs"),
    )


def decode_jwt(
    token: str,
    key: Any,
    *,
    what: str,
    algorithms: Iterable[str],
    audience: str,
    issuer: str,
    leeway: int,
    options: Options,
    wrong_audience: str = "audience is not this hub",
) -> dict[str, Any]:
    """PyJWT's verification with its failures as AuthenticationError messages a person can act
    on: ``what`` names the thing (``token``, ``assertion``)."""
    if len(token) > MAX_TOKEN_BYTES:
        raise AuthenticationError(f"{what} too large")
    try:
        claims: dict[str, Any] = jwt.decode(
            token,
            key,
            algorithms=list(algorithms),
            audience=audience,
            issuer=issuer,
            leeway=leeway,
            options=options,
        )
    except jwt.ExpiredSignatureError as exc:
        raise AuthenticationError(f"{what} expired") from exc
    except jwt.InvalidSignatureError as exc:
        raise AuthenticationError(f"{what} signature does not verify") from exc
    except jwt.InvalidAlgorithmError as exc:
        raise AuthenticationError(f"{what} algorithm not allowed") from exc
    except jwt.InvalidAudienceError as exc:
        raise AuthenticationError(f"{what} {wrong_audience}") from exc
    except jwt.InvalidIssuerError as exc:
        raise AuthenticationError(f"{what} issuer is not trusted") from exc
    except jwt.MissingRequiredClaimError as exc:
        raise AuthenticationError(f"{what} lacks the {exc.claim!r} claim") from exc
    except jwt.ImmatureSignatureError as exc:
        raise AuthenticationError(f"{what} not yet valid") from exc
    except jwt.InvalidTokenError as exc:
        raise AuthenticationError(f"{what} is malformed") from exc
    except (TypeError, ValueError) as exc:
        # PyJWT raises these when the token's algorithm does not fit the key's type.
        raise AuthenticationError(f"{what} algorithm does not match the key") from exc
    return claims


def _decode(
    token: str, key: Any, auth: AuthSettings, algorithms: Iterable[str] | None = None
) -> dict[str, Any]:
    return decode_jwt(
        token,
        key,
        what="token",
        algorithms=auth.algorithms if algorithms is None else algorithms,
        audience=auth.audience,
        issuer=auth.issuer,
        leeway=auth.leeway_s,
        options={"require": ["exp", "iss", "aud", "sub"]},
    )


@dataclass(slots=True)
class LocalKeyVerifier:
    """Demo and dev: tokens signed by the hub's own key (``hub token``)."""

    public_key: ec.EllipticCurvePublicKey
    auth: AuthSettings

    async def verify(self, token: str) -> Subject:
        # The demo key is P-256: only ES256 can be right, whatever the settings list.
        return subject_from_claims(_decode(token, self.public_key, self.auth, ("ES256",)))


class JwksVerifier:
    """Production: tokens signed by the identity provider, keys from its JWKS URL (cached)."""

    def __init__(self, auth: AuthSettings) -> None:
        if not auth.jwks_url:
            raise ConfigError("JWKS verification needs auth.jwks_url")
        self.auth = auth
        self._client = jwt.PyJWKClient(auth.jwks_url, cache_keys=True, lifespan=300, timeout=5)

    async def verify(self, token: str) -> Subject:
        if len(token) > MAX_TOKEN_BYTES:
            raise AuthenticationError("token too large")
        try:
            # PyJWKClient is synchronous (urllib); keep the event loop free.
            signing_key = await asyncio.to_thread(self._client.get_signing_key_from_jwt, token)
        except jwt.PyJWKClientConnectionError as exc:
            raise AuthenticationError("identity provider keys are unreachable") from exc
        except (jwt.PyJWKClientError, jwt.DecodeError) as exc:
            raise AuthenticationError(
                "token key is not one the identity provider publishes"
            ) from exc
        return subject_from_claims(_decode(token, signing_key.key, self.auth))


def load_or_create_demo_key(path: Path) -> ec.EllipticCurvePrivateKey:
    """The demo signing key at ``path``, made on first use (mode 0600, race-safe)."""

    def make() -> bytes:
        return ec.generate_private_key(ec.SECP256R1()).private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )

    loaded = serialization.load_pem_private_key(read_or_create(path, make), password=None)
    if not isinstance(loaded, ec.EllipticCurvePrivateKey):
        raise ConfigError(f"{path} does not hold an EC private key")
    return loaded


def mint_token(
    key: ec.EllipticCurvePrivateKey,
    auth: AuthSettings,
    *,
    user: str,
    agency: str,
    state: str,
    roles: Iterable[str],
    name: str | None = None,
    attrs: Iterable[str] = (),
    ttl_s: int | None = None,
    now: float | None = None,
    extra: dict[str, Any] | None = None,
) -> str:
    """A token the hub with the same auth settings and key accepts (demo/dev only)."""
    issued = int(time.time() if now is None else now)
    claims: dict[str, Any] = {
        "sub": user,
        "name": name or user,
        "ori": agency,
        "state": state,
        "roles": sorted(set(roles)),
        "attrs": sorted(set(attrs)),
        "iss": auth.issuer,
        "aud": auth.audience,
        "iat": issued,
        "auth_time": issued,
        "exp": issued + (auth.token_ttl_s if ttl_s is None else ttl_s),
        **(extra or {}),
    }
    return jwt.encode(claims, key, algorithm="ES256")
