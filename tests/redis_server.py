"""Real Redis for tests: the shared server at ``REDIS_URL`` for the normal path (each test under
its own key prefix, deleted afterwards), and private ``redis-server`` processes a test starts on
a free port of its own to kill, pause and restart (the failure cases).

Test modules make their fixtures from these in a few lines (``shared_url``, ``private_server``,
``drop_prefix``), so each module reads on its own.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
import redis.asyncio as aioredis

from hub.shared.redis_link import RedisLink

REDIS_URL = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")

# Short timeouts and backoff so failure tests take a fraction of a second.
FAST = {"timeout_s": 0.3, "backoff_min_s": 0.05, "backoff_max_s": 0.2}


def shared_url() -> str:
    """``REDIS_URL``, or skip the test when nothing answers there."""
    try:
        redis.Redis.from_url(REDIS_URL, socket_connect_timeout=1).ping()
    except redis.RedisError:
        pytest.skip(f"no Redis at {REDIS_URL}")
    return REDIS_URL


def unique_prefix(name: str) -> str:
    return f"test:{name}:{uuid.uuid4().hex[:12]}"


async def drop_prefix(url: str, prefix: str) -> None:
    """Delete every key under ``prefix`` (test cleanup)."""
    client = aioredis.Redis.from_url(url)
    try:
        async for key in client.scan_iter(match=f"{prefix}:*", count=500):
            await client.delete(key)
    finally:
        await client.aclose()


async def started_link(url: str | None, **kwargs: Any) -> RedisLink:
    link = RedisLink(url, **{**FAST, **kwargs})
    await link.start()
    return link


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


class RedisServer:
    """A redis-server of the test's own, without persistence: a restart comes back empty."""

    def __init__(self, directory: Path, port: int | None = None) -> None:
        self.directory = directory
        self.port = port if port is not None else free_port()
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def start(self) -> RedisServer:
        args = [
            "redis-server", "--port", str(self.port), "--bind", "127.0.0.1",
            "--save", "", "--appendonly", "no", "--daemonize", "no",
            "--dir", str(self.directory),
        ]  # fmt: skip
        self.process = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while True:
            try:
                redis.Redis(port=self.port, socket_connect_timeout=0.2).ping()
                return self
            except redis.ConnectionError:
                if time.monotonic() > deadline or self.process.poll() is not None:
                    raise RuntimeError("redis-server did not start") from None
                time.sleep(0.02)

    def kill(self) -> None:
        """SIGKILL: connections reset, every key lost."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait()

    def restart(self) -> None:
        """Start again on the same port (empty)."""
        self.kill()
        self.start()

    def pause(self) -> None:
        """SIGSTOP: connections stay open and nothing answers (a hung server); keys kept."""
        assert self.process is not None
        self.process.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGCONT)


@contextlib.contextmanager
def private_server(directory: Path) -> Iterator[RedisServer]:
    """A started private server, killed afterwards; skips when redis-server is not installed."""
    if shutil.which("redis-server") is None:
        pytest.skip("redis-server is not installed")
    directory.mkdir(parents=True, exist_ok=True)
    server = RedisServer(directory).start()
    try:
        yield server
    finally:
        if server.process is not None and server.process.poll() is None:
            server.resume()  # a stopped process still dies of SIGKILL; this keeps it tidy
        server.kill()
