"""Tokens to subjects: verify a JWT (JWKS in production, a local key in demo/dev); mint dev
tokens.

A token must carry every claim of ``TOKEN_CLAIMS`` (the README's contract), each of its type:
``sub`` (user id), ``name``, ``ori`` (employing agency) and ``state`` strings; ``roles`` a JSON list
of strings (not a space- or comma-separated string); ``auth_time`` and ``exp`` integers
(NumericDate: whole seconds; ``iat`` and ``nbf`` too when present); ``iss`` and ``aud`` this
hub's. ``attrs`` (a list of strings, e.g. ``["sworn", "cfr28"]``) is optional. A token that breaks
the contract is refused with a message naming the claim. Only asymmetric algorithms are
accepted, so ``alg: none`` and HMAC-with-the-public-key confusion are refused by construction.
PyJWT does the verification; its ``PyJWKClient`` fetches and caches the identity provider's JWKS.

Whether the agency and roles mean anything to this hub is the edge's question
(``hub.edge.pipeline``: UNKNOWN_AGENCY, UNKNOWN_ROLE), not the token's.
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
from hub.settings import AuthSettings
from hub.trust.keyfiles import read_or_create

_ORI = re.compile(r"^[A-Z]{2}[A-Z0-9]{7}$")
_STATE = re.compile(r"^[A-Z]{2}$")
MAX_TOKEN_BYTES = 8192
# What every token must carry (README: "Tokens must carry ...").
TOKEN_CLAIMS = ("sub", "name", "ori", "state", "roles", "auth_time", "exp", "iss", "aud")
# Claims that are NumericDates: whole seconds since the epoch, never strings.
_TIMES = ("exp", "iat", "nbf", "auth_time")

# Who is asking when nobody has been authenticated (a refusal before or at the token check):
# the audit trail records such refusals under this subject. No agency ("") and no role: it
# matches no token's subject (a token's ori is nine characters) and no policy rule.
ANONYMOUS = Subject(user_id="anonymous", name="anonymous", ori="", state="", roles=frozenset())


class TokenVerifier(Protocol):
    async def verify(self, token: str) -> Subject: ...


def subject_from_claims(claims: dict[str, Any]) -> Subject:
    """The subject verified claims describe; AuthenticationError naming the claim that is
    missing or of the wrong type. ``auth_time`` may be absent here (a partner's assertion
    carries it when known); a token's presence checks are ``TOKEN_CLAIMS``, in ``_decode``."""

    def text(name: str) -> str:
        value = claims.get(name)
        if not isinstance(value, str) or not value:
            raise AuthenticationError(f"token claim {name!r} is missing or not a string")
        return value

    def strings(name: str, *, required: bool) -> frozenset[str]:
        value = claims.get(name)
        if value is None and not required:
            return frozenset()
        if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
            raise AuthenticationError(
                f'token claim {name!r} must be a JSON list of strings, such as ["analyst"]'
            )
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
        name=text("name"),
        ori=ori,
        state=state,
        roles=strings("roles", required=True),
        auth_time=None if auth_time is None else _instant(auth_time, "auth_time"),
        attributes=strings("attrs", required=False),
    )


def _is_numeric_date(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _instant(value: object, name: str) -> datetime:
    if not isinstance(value, int) or isinstance(value, bool):
        raise AuthenticationError(f"token claim {name!r} must be a whole number of seconds")
    try:
        return datetime.fromtimestamp(value, UTC)
    except (OverflowError, OSError, ValueError) as exc:
        raise AuthenticationError(f"token claim {name!r} is not a time") from exc


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
        raise AuthenticationError(_malformed(token, what)) from exc
    except (TypeError, ValueError) as exc:
        # PyJWT raises these when the token's algorithm does not fit the key's type.
        raise AuthenticationError(f"{what} algorithm does not match the key") from exc
    # PyJWT reads times with int(): "exp": "1900000000" or 1.9e9 would pass. NumericDates are
    # whole seconds, as numbers.
    wrong = _not_numeric_date(claims)
    if wrong is not None:
        raise AuthenticationError(
            f"{what} claim {wrong!r} must be a whole number of seconds (NumericDate)"
        )
    return claims


def _not_numeric_date(claims: dict[str, Any]) -> str | None:
    return next((n for n in _TIMES if n in claims and not _is_numeric_date(claims[n])), None)


def _malformed(token: str, what: str) -> str:
    """The message for a token PyJWT calls invalid: which time claim is not a number, when
    that is why ("exp": "abc"), else malformed. Only the message comes from the unverified
    claims, and it names one of ours."""
    try:
        claims: dict[str, Any] = jwt.decode(token, options={"verify_signature": False})
    except jwt.InvalidTokenError:
        return f"{what} is malformed"
    wrong = _not_numeric_date(claims)
    if wrong is None:
        return f"{what} is malformed"
    return f"{what} claim {wrong!r} must be a whole number of seconds (NumericDate)"


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
        options={"require": list(TOKEN_CLAIMS)},
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
