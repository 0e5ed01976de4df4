"""GET /audit/checkpoints: the hub's signed audit checkpoints, for partner hubs only, written
periodically by the app, verifiable against the hub's published JWKS."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import jwt
from click.testing import CliRunner

from hub.audit.checkpoint import read_checkpoint
from hub.cli import main
from tests.conftest import HubServer, demo_settings, running_hub

SEARCH = '{ search(text: "Reyes") { hits { __typename } } }'


async def _get(hub: HubServer, token: str | None, query: str = "") -> tuple[int, Any]:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    async with hub.session.get(f"{hub.url}/audit/checkpoints{query}", headers=headers) as resp:
        return resp.status, await resp.json(content_type=None)


async def _first_checkpoints(hub: HubServer, token: str) -> list[str]:
    for _ in range(500):  # the writer runs every 20 ms; bounded wait, no timing asserted
        status, body = await _get(hub, token)
        assert status == 200, body
        if body["checkpoints"]:
            return list(body["checkpoints"])
        await asyncio.sleep(0.02)
    raise AssertionError("no checkpoint was written")


async def test_partner_hubs_read_signed_checkpoints_and_nobody_else(tmp_path: Path) -> None:
    settings = demo_settings(tmp_path, HUB_AUDIT_CHECKPOINT_S="0.02")
    async with running_hub(settings) as hub:
        status, body = await hub.post(SEARCH, token=hub.token())
        assert status == 200, body
        partner = hub.token(agency="WA0990100", roles=("partner-hub",), user="svc-east-hub")
        checkpoints = await _first_checkpoints(hub, partner)
        # Nobody without the partner role learns anything, not even how many there are.
        status, body = await _get(hub, None)
        assert status == 401
        assert "checkpoints" not in body
        for roles in (("analyst",), ("auditor",), ("supervisor",)):
            status, body = await _get(hub, hub.token(roles=roles))
            assert status == 403, roles
            assert "checkpoints" not in body
        assert (await _get(hub, "not-a-token"))[0] == 401
        for bad in ("?limit=0", "?limit=abc", "?limit=1001"):
            assert (await _get(hub, partner, bad))[0] == 400
        status, body = await _get(hub, partner, "?limit=1")
        assert len(body["checkpoints"]) == 1
        # Verifiable with nothing but the hub's published key; no CJI in them.
        jwks = jwt.PyJWKClient(f"{hub.url}{body['jwks']}")
        signing = await asyncio.to_thread(jwks.get_signing_key_from_jwt, checkpoints[0])
        checkpoint = read_checkpoint(checkpoints[0], signing.key, issuer=body["issuer"])
        assert checkpoint.seq >= 1
        claims = jwt.decode(checkpoints[0], options={"verify_signature": False})
        assert set(claims) == {"iss", "sub", "iat", "seq", "hash"}
        assert "Reyes" not in checkpoints[0]

        # A partner verifies the log against the URL (the key from the hub's JWKS).
        runner = CliRunner()
        env = {"HUB_VAR_DIR": str(tmp_path / "partner-var")}  # no key of the hub's here
        args = ["audit", "verify", "--log", str(tmp_path / "var" / "audit"),
                "--checkpoint", f"{hub.url}/audit/checkpoints", "--token", partner]  # fmt: skip
        done = await asyncio.to_thread(runner.invoke, main, args, env=env)
        assert done.exit_code == 0, done.output
        assert "holds checkpoint seq" in done.output


async def test_no_periodic_checkpoints_when_switched_off(tmp_path: Path) -> None:
    settings = demo_settings(tmp_path, HUB_AUDIT_CHECKPOINT_S="0")
    async with running_hub(settings) as hub:
        status, _ = await hub.post(SEARCH, token=hub.token())
        assert status == 200
        partner = hub.token(agency="WA0990100", roles=("partner-hub",), user="svc-east-hub")
        await asyncio.sleep(0.1)
        status, body = await _get(hub, partner)
        assert status == 200
        assert body["checkpoints"] == []
