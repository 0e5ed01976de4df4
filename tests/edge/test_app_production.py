"""Production mode: tokens from an identity provider's JWKS, introspection and GraphiQL off;
and what leaves the hub as operations telemetry carries no CJI."""

from __future__ import annotations

import dataclasses
import json
import time
from collections.abc import AsyncIterator
from pathlib import Path

import jwt
import pytest
from aiohttp import web
from cryptography.hazmat.primitives.asymmetric import rsa
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from hub.settings import AuthSettings
from tests.adapters.conformance import small_world
from tests.conftest import HubServer, demo_settings, running_hub
from tests.edge.test_app import SEARCH

ISSUER = "https://idp.test"


@pytest.fixture
async def identity_provider() -> AsyncIterator[tuple[str, rsa.RSAPrivateKey]]:
    """A real JWKS endpoint on loopback, as an identity provider publishes one."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(key.public_key()))
    jwk.update({"kid": "k1", "use": "sig", "alg": "RS256"})

    async def jwks(request: web.Request) -> web.Response:
        return web.json_response({"keys": [jwk]})

    app = web.Application()
    app.router.add_get("/jwks.json", jwks)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    yield f"http://127.0.0.1:{port}/jwks.json", key
    await runner.cleanup()


def _idp_token(key: rsa.RSAPrivateKey, **override: object) -> str:
    claims = {
        "sub": "det-1", "name": "Det. One", "ori": "CA0990000", "state": "CA",
        "roles": ["detective"], "iss": ISSUER, "aud": "hub", "exp": int(time.time()) + 600,
        "auth_time": int(time.time()),
    }  # fmt: skip
    claims.update(override)
    return jwt.encode(claims, key, algorithm="RS256", headers={"kid": "k1"})


@pytest.fixture
async def production(
    tmp_path: Path, identity_provider: tuple[str, rsa.RSAPrivateKey]
) -> AsyncIterator[HubServer]:
    url, _ = identity_provider
    settings = dataclasses.replace(
        demo_settings(tmp_path),
        mode="production",
        auth=AuthSettings(issuer=ISSUER, audience="hub", jwks_url=url),
    )
    async with running_hub(settings, world=small_world()) as hub:
        yield hub


async def test_identity_provider_tokens_are_verified_through_jwks(
    production: HubServer, identity_provider: tuple[str, rsa.RSAPrivateKey]
) -> None:
    _, key = identity_provider
    status, body = await production.post(SEARCH, {"text": "Reyes"}, token=_idp_token(key))
    assert status == 200
    assert body["data"]["search"]["hits"]
    # a token the provider did not sign, or for another audience, is refused
    stranger = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    status, body = await production.post(SEARCH, {"text": "Reyes"}, token=_idp_token(stranger))
    assert status == 401
    status, body = await production.post(
        SEARCH, {"text": "Reyes"}, token=_idp_token(key, aud="other")
    )
    assert status == 401
    assert body["errors"][0]["message"] == "token audience is not this hub"
    # and the demo's own key is worth nothing here
    status, _ = await production.post(SEARCH, {"text": "Reyes"}, token=production.token())
    assert status == 401


async def test_introspection_and_graphiql_are_off(
    production: HubServer, identity_provider: tuple[str, rsa.RSAPrivateKey]
) -> None:
    _, key = identity_provider
    status, body = await production.post(
        "{ __schema { types { name } } }", token=_idp_token(key), purpose=None
    )
    assert status == 200
    assert body["data"] is None
    assert body["errors"][0]["extensions"]["code"] == "GRAPHQL_VALIDATION_FAILED"
    async with production.session.get(
        f"{production.url}/graphql", headers={"Accept": "text/html"}
    ) as resp:
        assert resp.status == 405


async def test_operations_telemetry_carries_no_cji(tmp_path: Path) -> None:
    exporter = InMemorySpanExporter()
    async with running_hub(
        demo_settings(tmp_path), world=small_world(), ops_exporter=exporter
    ) as hub:
        query = """{ search(text: "Jordan Reyes") { hits { ... on Person {
            name { surname } ssn dateOfBirth vehicles { plate { number } } } } } }"""
        status, body = await hub.post(
            query, token=hub.token(roles=("detective",)), headers={"X-Case-Number": "26-000777"}
        )
        assert status == 200
        assert body["data"]["search"]["hits"]
        plates = await hub.query('{ plateReads(plate: "7ABC123") { plate { number } } }')
        assert plates["data"]["plateReads"]
        hub.runtime.trail.tracer_provider.force_flush()  # type: ignore[union-attr]
    spans = exporter.get_finished_spans()
    assert spans, "nothing was exported"
    exported = json.dumps([json.loads(s.to_json()) for s in spans])
    for cji in ("Reyes", "Jordan", "7ABC123", "1988-04-12", "26-000777"):
        assert cji not in exported
    # what operations need is still there: which sources, how they fared
    assert "marin-rms" in exported
