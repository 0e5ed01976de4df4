"""A real ``hub serve`` process for tests: started, awaited until /healthz answers, stopped."""

from __future__ import annotations

import asyncio
import os
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import pytest

STARTUP_S = 60.0


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
