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

A token that verified is not verified again until it expires (``VerifiedTokens``): each verifier
keeps the subject of the tokens it accepted, keyed by a hash of the whole token, bounded (least
recently used out first), never past the token's ``exp`` (the leeway is for clocks that disagree,
not for the cache), and never for a token that failed. A JWKS verifier empties it whenever its
key set is fetched anew, so a key the identity provider withdraws stops verifying as soon as it
would without the cache (the key set's lifespan, ``JWKS_LIFESPAN_S``).

Whether the agency and roles mean anything to this hub is the edge's question
(``hub.edge.pipeline``: UNKNOWN_AGENCY, UNKNOWN_ROLE), not the token's.
"""

from __future__ import annotations

import asyncio
import hashlib
import re
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
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
# Tokens whose subject a verifier keeps (about 1 KB each): more users than one hub serves at once.
MAX_VERIFIED_TOKENS = 10_000
# How long a fetched JWKS is trusted before it is fetched again: how late a withdrawn key stops
# verifying, with or without the token cache.
JWKS_LIFESPAN_S = 300.0

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


class VerifiedTokens:
    """The subjects of tokens that verified, each until its token's ``exp``: at most
    ``max_entries``, the least recently used dropped first. Keyed by the SHA-256 of the whole
    token, so two tokens that differ anywhere (a signature byte) never share an entry, and the
    tokens themselves are not kept. ``clock``: seconds since the epoch, as ``exp`` counts."""

    def __init__(
        self, max_entries: int = MAX_VERIFIED_TOKENS, clock: Callable[[], float] = time.time
    ) -> None:
        if max_entries < 1:
            raise ValueError("a token cache holds at least one token")
        self.max_entries = max_entries
        self._clock = clock
        self._entries: OrderedDict[bytes, tuple[Subject, int]] = OrderedDict()

    @staticmethod
    def key(token: str) -> bytes:
        return hashlib.sha256(token.encode("utf-8", "surrogatepass")).digest()

    def get(self, key: bytes) -> Subject | None:
        """The subject of the token hashed to ``key``, if it verified and has not expired."""
        found = self._entries.get(key)
        if found is None:
            return None
        subject, expires = found
        if self._clock() >= expires:
            del self._entries[key]
            return None
        self._entries.move_to_end(key)
        return subject

    def put(self, key: bytes, subject: Subject, claims: dict[str, Any]) -> None:
        """Keep the subject of a token that verified with ``claims``, until its ``exp``."""
        expires = claims["exp"]  # present and a whole number: decode_jwt checked both
        if self._clock() >= expires:
            return  # accepted within the leeway: verified again next time, never cached
        self._entries[key] = (subject, expires)
        self._entries.move_to_end(key)
        while len(self._entries) > self.max_entries:
            self._entries.popitem(last=False)

    def clear(self) -> None:
        self._entries.clear()

    def __len__(self) -> int:
        return len(self._entries)


@dataclass(slots=True)
class LocalKeyVerifier:
    """Demo and dev: tokens signed by the hub's own key (``hub token``). The key is fixed for
    the verifier's life, so a token that verified stays verified until it expires."""

    public_key: ec.EllipticCurvePublicKey
    auth: AuthSettings
    verified: VerifiedTokens = field(default_factory=VerifiedTokens, repr=False)

    async def verify(self, token: str) -> Subject:
        if len(token) > MAX_TOKEN_BYTES:
            raise AuthenticationError("token too large")
        key = VerifiedTokens.key(token)
        known = self.verified.get(key)
        if known is not None:
            return known
        # The demo key is P-256: only ES256 can be right, whatever the settings list.
        claims = _decode(token, self.public_key, self.auth, ("ES256",))
        subject = subject_from_claims(claims)
        self.verified.put(key, subject, claims)
        return subject


class JwksVerifier:
    """Production: tokens signed by the identity provider, keys from its JWKS URL (cached for
    ``keys_lifespan_s``). The verified tokens are forgotten whenever the key set is fetched
    again: a token is answered from the cache only while the key set it verified under is the
    one in force."""

    def __init__(
        self,
        auth: AuthSettings,
        *,
        keys_lifespan_s: float = JWKS_LIFESPAN_S,
        verified: VerifiedTokens | None = None,
    ) -> None:
        if not auth.jwks_url:
            raise ConfigError("JWKS verification needs auth.jwks_url")
        self.auth = auth
        # cache_keys=False: PyJWT's per-kid cache of signing keys outlives the key set (a kid
        # withdrawn from the JWKS would verify until restart); the key set's lifespan bounds it.
        self._client = jwt.PyJWKClient(
            auth.jwks_url, cache_keys=False, lifespan=keys_lifespan_s, timeout=5
        )
        self.verified = VerifiedTokens() if verified is None else verified
        # The key set the cached tokens verified under (None: none yet).
        self._keys: jwt.PyJWKSet | None = None

    def _keys_in_force(self) -> jwt.PyJWKSet | None:
        """The key set PyJWKClient holds now (None once its lifespan is over); the token cache
        is emptied when it is not the one the cached tokens verified under."""
        cache = self._client.jwk_set_cache
        current = cache.get() if cache is not None else None
        if current is not self._keys:
            self.verified.clear()
            self._keys = current
        return current

    async def verify(self, token: str) -> Subject:
        if len(token) > MAX_TOKEN_BYTES:
            raise AuthenticationError("token too large")
        key = VerifiedTokens.key(token)
        if self._keys_in_force() is not None:
            known = self.verified.get(key)
            if known is not None:
                return known
        try:
            # PyJWKClient is synchronous (urllib); keep the event loop free.
            signing_key = await asyncio.to_thread(self._client.get_signing_key_from_jwt, token)
        except jwt.PyJWKClientConnectionError as exc:
            raise AuthenticationError("identity provider keys are unreachable") from exc
        except (jwt.PyJWKClientError, jwt.DecodeError) as exc:
            raise AuthenticationError(
                "token key is not one the identity provider publishes"
            ) from exc
        claims = _decode(token, signing_key.key, self.auth)
        subject = subject_from_claims(claims)
        # Cached only under the key set in force now, and only if it still holds the key that
        # verified the token (another request may have fetched a new set in the meantime).
        keys = self._keys_in_force()
        if keys is not None and any(k is signing_key for k in keys.keys):
            self.verified.put(key, subject, claims)
        return subject


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
