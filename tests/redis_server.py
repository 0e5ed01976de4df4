"""Real Redis for tests, the one place: the shared server at ``REDIS_URL`` for the normal path
(each test under its own key prefix, deleted afterwards), and private ``redis-server`` processes
a test starts on a free port of its own to kill, pause and restart (the failure cases).

The fixtures (``tests/conftest.py`` loads this module as a plugin, so every test may ask for
them): ``redis_url``, ``redis_client``, ``redis_prefix``, ``redis_link``, ``redis_links`` on the
shared server; ``redis_server`` (one private server) and ``redis_servers`` (start as many as a
test needs, ``persistent=True`` for an append-only file fsynced on every write). The helpers
below are for what a fixture cannot do (a server started later on a port chosen earlier, a
prefix a hub process is configured with).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
import redis.asyncio as aioredis

from bench.hubs import drop_redis_prefix
from hub.shared.redis_link import RedisLink
from tests.ports import free_port

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


# Delete every key under a prefix (test cleanup): the benchmarks' own helper.
drop_prefix = drop_redis_prefix


async def started_link(url: str | None, **kwargs: Any) -> RedisLink:
    link = RedisLink(url, **{**FAST, **kwargs})
    await link.start()
    return link


class RedisServer:
    """A redis-server of the test's own. Not persistent, a restart comes back empty; persistent,
    every acknowledged write is fsynced to the append-only file first, so a restart (same port,
    same directory) shows what a kill -9 kept."""

    def __init__(
        self, directory: Path, port: int | None = None, *, persistent: bool = False
    ) -> None:
        self.directory = directory
        self.port = port if port is not None else free_port()
        self.persistent = persistent
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
            "--save", "", "--daemonize", "no", "--dir", str(self.directory),
        ]  # fmt: skip
        if self.persistent:
            args += ["--appendonly", "yes", "--appendfsync", "always"]
        else:
            args += ["--appendonly", "no"]
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
        """SIGKILL: connections reset; every key lost unless persistent."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait()

    def restart(self) -> None:
        """Start again on the same port (empty unless persistent)."""
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
def private_server(directory: Path, *, persistent: bool = False) -> Iterator[RedisServer]:
    """A started private server, killed afterwards; skips when redis-server is not installed."""
    if shutil.which("redis-server") is None:
        pytest.skip("redis-server is not installed")
    directory.mkdir(parents=True, exist_ok=True)
    server = RedisServer(directory, persistent=persistent).start()
    try:
        yield server
    finally:
        if server.process is not None and server.process.poll() is None:
            server.resume()  # a stopped process still dies of SIGKILL; this keeps it tidy
        server.kill()


# -- fixtures --------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def redis_url() -> str:
    """The shared Redis; the test is skipped when nothing answers at ``REDIS_URL``."""
    return shared_url()


@pytest.fixture
async def redis_client(redis_url: str) -> AsyncIterator[aioredis.Redis]:
    """A plain client of the shared Redis, to look at what the code under test wrote."""
    client = aioredis.Redis.from_url(redis_url)
    yield client
    await client.aclose()


@pytest.fixture
async def redis_prefix(request: pytest.FixtureRequest, redis_url: str) -> AsyncIterator[str]:
    """A key prefix of the test's own on the shared Redis; every key under it deleted after."""
    module = request.module.__name__.rpartition(".")[2].removeprefix("test_")
    prefix = unique_prefix(module)
    yield prefix
    await drop_prefix(redis_url, prefix)


@pytest.fixture
async def redis_link(redis_url: str) -> AsyncIterator[RedisLink]:
    """A started link to the shared Redis (short timeouts: ``FAST``)."""
    link = await started_link(redis_url)
    yield link
    await link.close()


@pytest.fixture
async def redis_links(redis_url: str) -> AsyncIterator[tuple[RedisLink, RedisLink]]:
    """Two links: two hub worker processes as far as Redis can tell."""
    a, b = await started_link(redis_url), await started_link(redis_url)
    yield a, b
    await a.close()
    await b.close()


@pytest.fixture
def redis_servers(tmp_path: Path) -> Iterator[Callable[..., RedisServer]]:
    """Starts private servers (``persistent=True`` for an fsynced append-only file), each in
    a directory of its own and killed afterwards."""
    servers: list[RedisServer] = []
    with contextlib.ExitStack() as stack:

        def start(*, persistent: bool = False) -> RedisServer:
            directory = tmp_path / f"redis-{len(servers)}"
            servers.append(stack.enter_context(private_server(directory, persistent=persistent)))
            return servers[-1]

        yield start


@pytest.fixture
def redis_server(redis_servers: Callable[..., RedisServer]) -> RedisServer:
    """One private server, not persistent."""
    return redis_servers()
