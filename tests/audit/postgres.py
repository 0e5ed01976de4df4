"""Real PostgreSQL for the audit tests: one database per test session (created at the start,
dropped at the end) on the server at ``HUB_TEST_POSTGRES`` (default 127.0.0.1:5432, user postgres,
trust auth), a schema of its own per test, and a TCP proxy in front of the server that a test
can cut and restore (the server itself is shared: it is never stopped).

Import the fixtures into a test module: ``from tests.audit.postgres import pg_database, pg_url``.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import uuid
from collections.abc import AsyncIterator, Iterator
from urllib.parse import urlsplit

import psycopg
import pytest

SERVER = os.environ.get("HUB_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432")


def _admin() -> psycopg.Connection[tuple[object, ...]]:
    return psycopg.connect(f"{SERVER}/postgres", autocommit=True, connect_timeout=5)


@pytest.fixture(scope="session")
def pg_database() -> Iterator[str]:
    """A database of this test session's own; its URL (no fragment)."""
    name = f"hub_test_{uuid.uuid4().hex[:12]}"
    try:
        with _admin() as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
    except psycopg.OperationalError as exc:
        pytest.fail(f"PostgreSQL at {SERVER} is needed for these tests: {exc}")
    yield f"{SERVER}/{name}"
    with _admin() as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def pg_schema() -> str:
    return f"t_{uuid.uuid4().hex[:16]}"


@pytest.fixture
def pg_url(pg_database: str, pg_schema: str) -> str:
    """An audit log location of the test's own: the session's database, a fresh schema."""
    return f"{pg_database}#{pg_schema}"


class TcpProxy:
    """Forwards a loopback port to the PostgreSQL server; ``cut`` closes the listener and every
    connection through it (the server "goes away"), ``restore`` listens again on the same port."""

    def __init__(self, target_host: str, target_port: int) -> None:
        self.target = (target_host, target_port)
        self.port = 0
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", self.port)
        self.port = self._server.sockets[0].getsockname()[1]

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection(*self.target)
        except OSError:
            writer.close()
            return
        self._writers |= {writer, up_writer}

        async def pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
            with contextlib.suppress(OSError, asyncio.IncompleteReadError):
                while data := await src.read(65536):
                    dst.write(data)
                    await dst.drain()
            dst.close()

        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))
        self._writers -= {writer, up_writer}

    async def cut(self) -> None:
        server, self._server = self._server, None
        if server is not None:
            server.close()
        for writer in list(self._writers):
            writer.transport.abort()
        self._writers.clear()
        if server is not None:
            await server.wait_closed()

    async def restore(self) -> None:
        await self.start()


@pytest.fixture
async def pg_proxy() -> AsyncIterator[TcpProxy]:
    parts = urlsplit(SERVER)
    proxy = TcpProxy(parts.hostname or "127.0.0.1", parts.port or 5432)
    await proxy.start()
    yield proxy
    await proxy.cut()


def via_proxy(database_url: str, schema: str, proxy: TcpProxy) -> str:
    """``database_url`` through ``proxy``, with ``schema`` as the fragment."""
    parts = urlsplit(database_url)
    user = f"{parts.username}@" if parts.username else ""
    # A short timeout: the failure cases wait for it.
    return f"postgresql://{user}127.0.0.1:{proxy.port}{parts.path}?connect_timeout=1#{schema}"
