"""Shared fixtures: the hub served over real HTTP (uvicorn on a free loopback port) in front of
the demo world's simulators (real aiohttp servers), and real Redis (``tests.redis_server``)."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import uvicorn
from cryptography.hazmat.primitives.asymmetric import ec

from hub.demo.world import World
from hub.edge.app import create_app
from hub.edge.runtime import Runtime
from hub.settings import Settings, load_settings
from hub.trust.identity import load_or_create_demo_key, mint_token
from tests.adapters.conformance import small_world

# The Redis fixtures (redis_url, redis_client, redis_prefix, redis_link(s), redis_server(s)).
pytest_plugins = ("tests.redis_server",)


@dataclass
class HubServer:
    url: str
    settings: Settings
    runtime: Runtime
    key: ec.EllipticCurvePrivateKey
    session: aiohttp.ClientSession
    tokens: dict[tuple[str, str, tuple[str, ...]], str] = field(default_factory=dict)

    def token(
        self, agency: str = "CA0990000", roles: Iterable[str] = ("analyst",), user: str = "u1"
    ) -> str:
        key = (user, agency, tuple(sorted(roles)))
        if key not in self.tokens:
            self.tokens[key] = mint_token(
                self.key, self.settings.auth, user=user, agency=agency, state=agency[:2],
                roles=roles,
            )  # fmt: skip
        return self.tokens[key]

    async def post(
        self,
        query: str,
        variables: dict[str, Any] | None = None,
        *,
        token: str | None = None,
        purpose: str | None = "C",
        headers: dict[str, str] | None = None,
    ) -> tuple[int, dict[str, Any]]:
        hdrs = {"Content-Type": "application/json"}
        if token is not None:
            hdrs["Authorization"] = f"Bearer {token}"
        if purpose is not None:
            hdrs["X-Purpose"] = purpose
        hdrs.update(headers or {})
        async with self.session.post(
            f"{self.url}/graphql", json={"query": query, "variables": variables}, headers=hdrs
        ) as resp:
            return resp.status, await resp.json(content_type=None)

    async def query(
        self,
        query: str,
        variables: dict[str, Any] | None = None,
        *,
        agency: str = "CA0990000",
        roles: Iterable[str] = ("analyst",),
        purpose: str | None = "C",
    ) -> dict[str, Any]:
        status, body = await self.post(
            query, variables, token=self.token(agency, roles), purpose=purpose
        )
        assert status == 200, body
        return body

    def simulator_requests(self, source: str) -> list[Any]:
        assert self.runtime.world is not None
        return self.runtime.world.simulators[source].requests


async def serve_hub(
    settings: Settings, world: World | None = None, **app_kwargs: Any
) -> AsyncIterator[HubServer]:
    app = create_app(settings, world=world, **app_kwargs)
    config = uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", lifespan="on")
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    while not server.started:
        if task.done():
            task.result()
        await asyncio.sleep(0.01)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        async with aiohttp.ClientSession() as session:
            yield HubServer(
                url=f"http://127.0.0.1:{port}",
                settings=settings,
                runtime=app.state.hub,
                key=load_or_create_demo_key(settings.demo_key_path),
                session=session,
            )
    finally:
        server.should_exit = True
        await task


# ``async with running_hub(settings, world) as hub:``
running_hub = contextlib.asynccontextmanager(serve_hub)


def demo_settings(tmp_path: Path, **env: str) -> Settings:
    return load_settings(None, env={"HUB_VAR_DIR": str(tmp_path / "var"), **env})


def unthrottled(settings: Settings) -> Settings:
    """For load tests: rate limits far above what one test can send."""
    return dataclasses.replace(
        settings,
        resilience=dataclasses.replace(
            settings.resilience, user_per_minute=10**7, agency_per_minute=10**7
        ),
    )


@pytest.fixture
async def hub(tmp_path: Path) -> AsyncIterator[HubServer]:
    async for server in serve_hub(demo_settings(tmp_path), world=small_world()):
        yield server
