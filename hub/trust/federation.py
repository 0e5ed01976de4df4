"""Partner hubs: the signed requester assertion, the hub chain, and the refusal of loops.

When this hub asks a partner hub (``hub.adapters.partner``), it calls with its own service
account's bearer token **and** a requester assertion: a short-lived JWT signed with this hub's
key that says who the original requester is (user, name, agency ORI, state, roles, attributes),
why (purpose, case number), which hubs the request has crossed (``chain``, ending with this
hub), and the trace id of the operation, so both audit trails name the same trace::

    {"iss": "west-hub", "aud": "east-hub", "iat": ..., "exp": iat + 60, "jti": "...",
     "sub": "analyst1", "name": "...", "ori": "CA0990000", "state": "CA", "roles": ["analyst"],
     "attrs": [], "purpose": "C", "case": "26-001234", "chain": ["west-hub"],
     "trace": "4bf92f3577b34da6a3ce929d0e0e4736"}

The receiving hub (``hub.edge.pipeline``, through ``PartnerTrust.admit``) accepts it only from
a calling token that holds the ``partner-hub`` role, only when signed by a partner hub it trusts
(its PEM key or JWKS in ``[partners.ID]``), addressed to itself, short-lived, naming a requester
of an agency that partner may speak for, and without this hub in the chain (``HUB_LOOP``). The
request then runs as the **original requester** (policy is theirs, never the service
account's), with the service account as ``via`` and the chain as ``hub_chain``: the audit entry
holds both.

What lives here besides: ``current_request`` (the request being served, for adapters whose
calls carry no request, such as ``get_many``). A partner's call joins its caller's trace through
the assertion's trace id (``hub.audit``'s operations accept a remote parent); ``caller_span``
reads the caller's span from the W3C trace context headers (``traceparent``, through
``opentelemetry.propagate``, which the calling hub's adapter injects), believed only when it
names the trace the signed assertion names.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import re
import time
import uuid
from collections.abc import Iterable, Mapping
from contextvars import ContextVar
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from jwt.algorithms import ECAlgorithm
from jwt.types import Options
from opentelemetry import propagate, trace
from opentelemetry.context import Context

from hub.context import RequestContext, Subject
from hub.errors import AccessDenied, AuthenticationError, ConfigError, RequestError
from hub.settings import PartnerSettings, Settings
from hub.trust.identity import (
    MAX_TOKEN_BYTES,
    decode_jwt,
    load_or_create_demo_key,
    subject_from_claims,
)

ASSERTION_HEADER = "X-Hub-Assertion"
PARTNER_ROLE = "partner-hub"
# Long enough for one hop's clock skew and queueing, short enough that a leaked assertion is
# worth little: each call signs a fresh one.
ASSERTION_TTL_S = 60
MAX_ASSERTION_TTL_S = 300
LEEWAY_S = 30
# A request crossing more hubs than this is refused: bounded everything, loops or not.
MAX_CHAIN = 8
MAX_CLAIM = 64
MAX_SEEN_ASSERTIONS = 100_000
ALGORITHMS = ("ES256", "RS256")
JWKS_PATH = "/.well-known/hub-jwks.json"

_TRACE_ID = re.compile(r"^[0-9a-f]{32}$")

current_request: ContextVar[RequestContext | None] = ContextVar("hub_current_request", default=None)


class HubLoop(RequestError):
    """This hub is already in the request's hub chain: answering would loop."""

    code = "HUB_LOOP"
    http_status = 409


@dataclass(frozen=True, slots=True)
class Admitted:
    """What a verified assertion says: the request runs as ``subject``."""

    subject: Subject
    purpose: str | None
    case_number: str | None
    hub_chain: tuple[str, ...]
    trace_id: str | None
    issuer: str

    def context(self, via: Subject, base: RequestContext) -> RequestContext:
        """``base`` (the edge's context for the calling account) as the original requester's."""
        return RequestContext(
            subject=self.subject,
            purpose=self.purpose,
            case_number=self.case_number,
            client_address=base.client_address,
            via=via,
            hub_chain=self.hub_chain,
            request_id=base.request_id,
            received_at=base.received_at,
            extras=dict(base.extras),
        )


def key_id(public_key: ec.EllipticCurvePublicKey) -> str:
    """A stable ``kid``: the key's SHA-256 fingerprint, shortened."""
    der = public_key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return base64.urlsafe_b64encode(hashlib.sha256(der).digest()[:12]).decode().rstrip("=")


def public_pem(public_key: ec.EllipticCurvePublicKey) -> bytes:
    return public_key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


class AssertionSigner:
    """Signs requester assertions as hub ``hub_id`` (ES256, P-256)."""

    def __init__(
        self, hub_id: str, key: ec.EllipticCurvePrivateKey, ttl_s: int = ASSERTION_TTL_S
    ) -> None:
        self.hub_id = hub_id
        self._key = key
        self.ttl_s = ttl_s
        self.kid = key_id(key.public_key())

    @classmethod
    def from_settings(cls, settings: Settings) -> AssertionSigner:
        return cls(settings.hub_id, load_or_create_demo_key(settings.hub_signing_key_path))

    @property
    def public_key(self) -> ec.EllipticCurvePublicKey:
        return self._key.public_key()

    def jwks(self) -> dict[str, Any]:
        """This hub's public key as a JWK Set, for partners that configure a ``jwks_url``."""
        jwk: dict[str, Any] = ECAlgorithm.to_jwk(self.public_key, as_dict=True)
        return {"keys": [{**jwk, "kid": self.kid, "use": "sig", "alg": "ES256"}]}

    def sign(
        self,
        ctx: RequestContext,
        audience: str,
        *,
        trace_id: str | None = None,
        now: float | None = None,
    ) -> str:
        """An assertion of ``ctx``'s requester for partner hub ``audience``.

        Raises HubLoop if ``audience`` is already in the chain: this hub would send the request
        back to a hub it came through."""
        if audience in ctx.hub_chain or audience == self.hub_id:
            raise HubLoop(f"hub {audience!r} is already in this request's hub chain")
        chain = [*ctx.hub_chain, self.hub_id]
        if len(chain) > MAX_CHAIN:
            raise HubLoop(f"the request has crossed more than {MAX_CHAIN} hubs")
        subject = ctx.subject
        issued = int(time.time() if now is None else now)
        claims: dict[str, Any] = {
            "iss": self.hub_id,
            "aud": audience,
            "iat": issued,
            "exp": issued + self.ttl_s,
            "jti": uuid.uuid4().hex,
            "sub": subject.user_id,
            "name": subject.name,
            "ori": subject.ori,
            "state": subject.state,
            "roles": sorted(subject.roles),
            "attrs": sorted(subject.attributes),
            "chain": chain,
        }
        if subject.auth_time is not None:
            claims["auth_time"] = int(subject.auth_time.timestamp())
        if ctx.purpose is not None:
            claims["purpose"] = ctx.purpose
        if ctx.case_number is not None:
            claims["case"] = ctx.case_number
        if trace_id is not None:
            claims["trace"] = trace_id
        return jwt.encode(claims, self._key, algorithm="ES256", headers={"kid": self.kid})


def caller_span(trace_id: str | None, headers: Mapping[str, str]) -> Context | None:
    """The partner's calling span, as the remote parent of the operation it asks for.

    Read from the request's trace context headers (``opentelemetry.propagate.extract``: W3C
    ``traceparent`` unless ``OTEL_PROPAGATORS`` says otherwise), and believed only when it
    names ``trace_id``, the trace the signed assertion names: an unsigned header never moves an
    audited operation into another trace. None when there is no such header or it names
    another trace (the operation then joins ``trace_id`` under a parent span it makes up).
    Only the span is kept: baggage a caller sent goes no further."""
    if trace_id is None:
        return None
    span = trace.get_current_span(propagate.extract(headers, context=Context()))
    parent = span.get_span_context()
    if not parent.is_valid or not parent.is_remote or format(parent.trace_id, "032x") != trace_id:
        return None
    return trace.set_span_in_context(trace.NonRecordingSpan(parent), Context())


class PartnerKeys(Protocol):
    """Where a partner hub's assertion-signing keys come from."""

    async def key_for(self, token: str) -> Any: ...


@dataclass(frozen=True, slots=True)
class PemKey:
    key: Any

    @classmethod
    def load(cls, path: Path) -> PemKey:
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise ConfigError(f"cannot read partner key {path}: {exc.strerror}") from exc
        try:
            return cls(serialization.load_pem_public_key(data))
        except ValueError as exc:
            raise ConfigError(f"{path} is not a PEM public key") from exc

    async def key_for(self, token: str) -> Any:
        return self.key


class JwksKeys:
    """A partner's published JWKS, fetched and cached by PyJWT's ``PyJWKClient``."""

    def __init__(self, url: str) -> None:
        self._client = jwt.PyJWKClient(url, cache_keys=True, lifespan=300, timeout=5)

    async def key_for(self, token: str) -> Any:
        try:
            # PyJWKClient is synchronous (urllib); keep the event loop free.
            found = await asyncio.to_thread(self._client.get_signing_key_from_jwt, token)
        except jwt.PyJWKClientConnectionError as exc:
            raise AuthenticationError("the partner hub's keys are unreachable") from exc
        except (jwt.PyJWKClientError, jwt.DecodeError) as exc:
            raise AuthenticationError("assertion key is not one the partner hub publishes") from exc
        return found.key


@dataclass(frozen=True, slots=True)
class TrustedPartner:
    id: str
    agencies: frozenset[str]
    keys: PartnerKeys

    @classmethod
    def of(cls, spec: PartnerSettings) -> TrustedPartner:
        keys: PartnerKeys
        if spec.public_key is not None:
            keys = PemKey.load(spec.public_key)
        elif spec.jwks_url is not None:
            keys = JwksKeys(spec.jwks_url)
        else:
            raise ConfigError(f"[partners.{spec.id}] needs public_key or jwks_url")
        return cls(spec.id, spec.agencies, keys)


def _optional_text(claims: Mapping[str, Any], name: str) -> str | None:
    value = claims.get(name)
    if value is None:
        return None
    if not isinstance(value, str) or not value or len(value) > MAX_CLAIM:
        raise AuthenticationError(f"assertion claim {name!r} must be a short string")
    return value


def _chain(claims: Mapping[str, Any], issuer: str) -> tuple[str, ...]:
    chain = claims.get("chain")
    if (
        not isinstance(chain, list)
        or not chain
        or not all(isinstance(h, str) and 0 < len(h) <= MAX_CLAIM for h in chain)
    ):
        raise AuthenticationError("assertion claim 'chain' must list the hubs crossed")
    if chain[-1] != issuer:
        raise AuthenticationError("assertion chain does not end with the hub that signed it")
    if len(set(chain)) != len(chain):
        raise HubLoop("the request's hub chain names a hub twice")
    if len(chain) > MAX_CHAIN:
        raise HubLoop(f"the request has crossed more than {MAX_CHAIN} hubs")
    return tuple(chain)


class PartnerTrust:
    """The receiving side: which partner hubs may call this hub, and for whom."""

    def __init__(self, hub_id: str, partners: Iterable[TrustedPartner] = ()) -> None:
        self.hub_id = hub_id
        self.partners = {p.id: p for p in partners}
        # Assertion ids seen and when they expire: each assertion is good for one call.
        self._seen: dict[tuple[str, str], int] = {}

    @classmethod
    def from_settings(cls, settings: Settings) -> PartnerTrust:
        return cls(settings.hub_id, (TrustedPartner.of(p) for p in settings.partners))

    async def admit(
        self,
        caller: Subject,
        assertion: str,
        *,
        purpose: str | None = None,
        case_number: str | None = None,
        now: float | None = None,
    ) -> Admitted:
        """The original requester of a partner hub's call, once everything checks out.

        ``caller`` is the verified bearer token's subject (the partner's service account);
        ``purpose`` and ``case_number`` are the request's headers, which must agree with the
        assertion when given. Raises AccessDenied (403: the caller is no partner hub, or speaks
        for an agency it may not), AuthenticationError (401: the assertion does not verify) or
        HubLoop (this hub is in the chain).
        """
        if PARTNER_ROLE not in caller.roles:
            raise AccessDenied(
                f"only a partner hub's service account (role {PARTNER_ROLE}) may present "
                "a requester assertion"
            )
        if len(assertion) > MAX_TOKEN_BYTES:
            raise AuthenticationError("assertion too large")
        try:
            unverified = jwt.decode(assertion, options={"verify_signature": False})
        except jwt.InvalidTokenError as exc:
            raise AuthenticationError("assertion is malformed") from exc
        issuer = unverified.get("iss")
        partner = self.partners.get(issuer) if isinstance(issuer, str) else None
        if partner is None:
            raise AuthenticationError("assertion is from a hub this hub does not trust")
        key = await partner.keys.key_for(assertion)
        claims = _verify(assertion, key, self.hub_id, partner.id, now)
        chain = _chain(claims, partner.id)
        if self.hub_id in chain:
            raise HubLoop(
                f"hub {self.hub_id!r} is already in this request's hub chain; answering would loop"
            )
        requester = subject_from_claims(claims)
        if PARTNER_ROLE in requester.roles:
            raise AccessDenied("an asserted requester is a person, not a partner hub")
        if requester.ori not in partner.agencies:
            raise AccessDenied(
                f"partner hub {partner.id!r} may not speak for users of {requester.ori}"
            )
        asserted_purpose = _optional_text(claims, "purpose")
        asserted_case = _optional_text(claims, "case")
        if purpose is not None and purpose != asserted_purpose:
            raise AuthenticationError("X-Purpose differs from the purpose the assertion states")
        if case_number is not None and case_number != asserted_case:
            raise AuthenticationError("X-Case-Number differs from the assertion's case number")
        # Last: an assertion is spent only by the call it admits.
        self._once(partner.id, claims, now)
        trace = claims.get("trace")
        trace_id = (
            trace
            if isinstance(trace, str) and _TRACE_ID.match(trace) and trace != "0" * 32
            else None
        )
        return Admitted(
            subject=requester,
            purpose=asserted_purpose,
            case_number=asserted_case,
            hub_chain=chain,
            trace_id=trace_id,
            issuer=partner.id,
        )

    def _once(self, issuer: str, claims: Mapping[str, Any], now: float | None) -> None:
        """Refuse a replayed assertion (in this process; a partner signs one per call)."""
        jti = claims.get("jti")
        if not isinstance(jti, str) or not 0 < len(jti) <= MAX_CLAIM:
            raise AuthenticationError("assertion claim 'jti' must be a short string")
        clock = int(time.time() if now is None else now)
        if len(self._seen) >= MAX_SEEN_ASSERTIONS:
            self._seen = {k: exp for k, exp in self._seen.items() if exp + LEEWAY_S >= clock}
            if len(self._seen) >= MAX_SEEN_ASSERTIONS:
                # Bounded: forget the oldest half rather than grow (they expire soon anyway).
                kept = sorted(self._seen.items(), key=lambda item: item[1])
                self._seen = dict(kept[len(kept) // 2 :])
        key = (issuer, jti)
        if key in self._seen:
            raise AuthenticationError("assertion already used; partners sign one per call")
        self._seen[key] = int(claims["exp"])


def _verify(
    assertion: str, key: Any, audience: str, issuer: str, now: float | None
) -> dict[str, Any]:
    options: Options = {"require": ["exp", "iat", "iss", "aud", "sub", "jti", "chain"]}
    if now is not None:
        # Tests pin the clock; PyJWT reads time itself, so check exp/iat by hand then.
        options["verify_exp"] = False
        options["verify_iat"] = False
    claims = decode_jwt(
        assertion,
        key,
        what="assertion",
        algorithms=ALGORITHMS,
        audience=audience,
        issuer=issuer,
        leeway=LEEWAY_S,
        options=options,
        wrong_audience="is addressed to another hub",
    )
    issued, expires = claims.get("iat"), claims.get("exp")
    if not isinstance(issued, int) or not isinstance(expires, int):
        raise AuthenticationError("assertion times must be whole seconds")
    if expires - issued > MAX_ASSERTION_TTL_S:
        raise AuthenticationError(
            f"assertion lives longer than {MAX_ASSERTION_TTL_S} s; partners sign one per call"
        )
    if now is not None:
        if expires + LEEWAY_S < now:
            raise AuthenticationError("assertion expired")
        if issued - LEEWAY_S > now:
            raise AuthenticationError("assertion issued in the future")
    return claims
