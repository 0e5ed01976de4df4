"""A real ``hub serve`` process for tests: started, awaited until /healthz answers, stopped;
the configuration that points it at a demo world's simulators, and a token it accepts."""

from __future__ import annotations

import asyncio
import os
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import pytest

from hub.demo.runner import RunningWorld
from hub.settings import AuthSettings
from hub.trust.identity import load_or_create_demo_key, mint_token

STARTUP_S = 60.0


def world_tables(world: RunningWorld, *, timeout_ms: int, notice_keys: bool = False) -> list[str]:
    """The ``[agencies.*]`` and ``[sources.*]`` tables of a hub.toml for ``world``'s simulators
    (``notice_keys``: each source may push notices and reads, with its API key)."""
    lines = [
        f'[agencies.{a.ori}]\nname = "{a.name}"\nstate = "{a.state}"' for a in world.world.agencies
    ]
    for source in world.sources:
        key = source.api_key.reveal()
        notice = f'\nnotice_key = "{key}"' if notice_keys else ""
        lines.append(
            f'[sources.{source.name}]\nkind = "{source.kind}"\nagency = "{source.agency.ori}"\n'
            f'url = "{source.url}"\napi_key = "{key}"{notice}\ntimeout_ms = {timeout_ms}'
        )
    return lines


def dev_token(var_dir: Path, user: str, agency: str, roles: tuple[str, ...]) -> str:
    """A token the hub processes of ``var_dir`` accept (signed with the key they made there)."""
    key = load_or_create_demo_key(var_dir / "demo-signing-key.pem")
    return mint_token(key, AuthSettings(), user=user, agency=agency, state=agency[:2],
                      roles=roles)  # fmt: skip


def hub_command() -> list[str]:
    script = Path(sys.executable).parent / "hub"
    if script.exists():
        return [str(script)]
    found = shutil.which("hub")
    assert found, "the hub console script is not installed (pip install -e .)"
    return [found]


@dataclass
class HubProcess:
    name: str
    url: str
    process: asyncio.subprocess.Process
    log: Path

    @classmethod
    async def start(
        cls, name: str, args: list[str], *, url: str, cwd: Path, env: dict[str, str], logs: Path
    ) -> HubProcess:
        log = logs / f"{name}.log"
        with log.open("wb") as out:
            process = await asyncio.create_subprocess_exec(
                *hub_command(),
                "serve",
                *args,
                cwd=cwd,
                env={**os.environ, **env},
                stdout=out,
                stderr=asyncio.subprocess.STDOUT,
            )
        return cls(name, url, process, log)

    async def ready(self, session: aiohttp.ClientSession) -> None:
        deadline = asyncio.get_running_loop().time() + STARTUP_S
        while asyncio.get_running_loop().time() < deadline:
            if self.process.returncode is not None:
                pytest.fail(f"{self.name} exited at startup:\n{self.log.read_text()[-3000:]}")
            try:
                async with session.get(f"{self.url}/healthz") as resp:
                    if resp.status == 200:
                        return
            except aiohttp.ClientConnectionError:
                pass
            await asyncio.sleep(0.2)
        pytest.fail(f"{self.name} did not start within {STARTUP_S} s")

    async def stop(self) -> None:
        if self.process.returncode is None:
            self.process.terminate()
            try:
                await asyncio.wait_for(self.process.wait(), 15)
            except TimeoutError:
                self.process.kill()
                await self.process.wait()
