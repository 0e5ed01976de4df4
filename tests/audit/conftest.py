"""Audit test fixtures: entries, contexts, and real Redis servers (the shared one at REDIS_URL,
and private ones a test starts, stops and kills on its own port)."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import pytest
import redis
import redis.asyncio as aioredis

from hub.audit.entry import AuditEntry, RecordAccess, SourceCall
from hub.context import RequestContext, Subject

REDIS_URL = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")


def make_entry(n: int = 0, *, user: str = "u1", agency: str = "CA0990000",
               records: tuple[tuple[str, str], ...] = (), purpose: str | None = "C",
               at: str | None = None) -> AuditEntry:
    return AuditEntry(
        at=at or f"2024-01-01T00:00:{n % 60:02d}.000000+00:00",
        trace_id=f"{n:032x}",
        operation="search",
        outcome="OK",
        user=user,
        agency=agency,
        roles=("analyst",),
        purpose=purpose,
        criteria={"text": f"Reyes {n}", "plate": "7ABC123"},
        sources=(SourceCall(source="marin-rms", agency="CA0990000", status="OK", count=1,
                            latency_ms=1.5),),
        records=tuple(RecordAccess(id=i, owner=o) for i, o in records),
    )


def make_context(user: str = "u1", agency: str = "CA0990000", purpose: str | None = "C",
                 roles: frozenset[str] = frozenset({"analyst"})) -> RequestContext:
    return RequestContext(
        subject=Subject(user_id=user, name="Dana Officer", ori=agency, state=agency[:2],
                        roles=roles),
        purpose=purpose,
        case_number="2024-000123",
        client_address="127.0.0.1",
        request_id=uuid.uuid4().hex,
    )


@pytest.fixture(scope="session")
def redis_url() -> str:
    try:
        redis.Redis.from_url(REDIS_URL, socket_connect_timeout=1).ping()
    except redis.RedisError:
        pytest.skip(f"no Redis at {REDIS_URL}")
    return REDIS_URL


@pytest.fixture
async def redis_client(redis_url: str) -> AsyncIterator[aioredis.Redis]:
    client = aioredis.Redis.from_url(redis_url)
    yield client
    await client.aclose()


@pytest.fixture
async def stream_key(redis_client: aioredis.Redis) -> AsyncIterator[str]:
    key = f"test:audit:{uuid.uuid4().hex}"
    yield key
    await redis_client.delete(key)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


class RedisServer:
    """A redis-server process of the test's own, on its own port."""

    def __init__(self, port: int, directory: Path, persistent: bool) -> None:
        self.port = port
        self.directory = directory
        self.persistent = persistent
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        args = ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1",
                "--save", "", "--daemonize", "no", "--dir", str(self.directory)]
        # Persistent: every acknowledged write is fsynced to the AOF, so a restart shows what a
        # kill -9 kept.
        args += (["--appendonly", "yes", "--appendfsync", "always"] if self.persistent
                 else ["--appendonly", "no"])
        self.process = subprocess.Popen(args, stdout=subprocess.DEVNULL,
                                        stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while True:
            try:
                redis.Redis(port=self.port, socket_connect_timeout=0.2).ping()
                return
            except redis.ConnectionError:
                if time.monotonic() > deadline or self.process.poll() is not None:
                    raise RuntimeError("redis-server did not start") from None
                time.sleep(0.05)

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait()


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[Callable[..., RedisServer]]:
    if shutil.which("redis-server") is None:
        pytest.skip("redis-server is not installed")
    servers: list[RedisServer] = []

    def start(*, persistent: bool = False) -> RedisServer:
        directory = tmp_path / f"redis-{len(servers)}"
        directory.mkdir()
        server = RedisServer(free_port(), directory, persistent)
        server.start()
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.kill()
