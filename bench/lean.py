"""The least any hub could be: the floor the issue's targets leave room above.

``serve_lean_hub`` serves, under uvicorn exactly as the hub under test is served, one POST route
that does only what no hub can skip: read the request (JSON), make the baseline client's vendor
calls (``bench.baseline``), write one audit entry to the hub's own file log and wait until it is
durable (``FileAuditLog``, fsync always: chained, group-committed, flushed in a thread), then
answer with the merged records. No schema, token, policy, canonical model, span or metric.

What it measures: the HTTP hop between the client and a hub, plus a durable audit write before
the answer, on this machine. ``lean / floor`` is the lowest ``hub / floor`` any hub that keeps a
durable trail can reach here; a target below it cannot be met by the hub's own code.
"""

from __future__ import annotations

import contextlib
import json
import uuid
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import aiohttp
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from bench.baseline import BaselineClient
from bench.hubs import SUBJECT_AGENCY, serve_app
from hub.audit.entry import AuditEntry, RecordAccess, SourceCall
from hub.audit.file_log import FileAuditLog
from hub.settings import SourceConfig


def lean_app(sources: Sequence[SourceConfig], audit_dir: Path) -> Starlette:
    """One route, ``POST /search`` with ``{"text": ..., "limit": ...}``."""
    held: list[tuple[BaselineClient, FileAuditLog]] = []  # set while the app runs

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        async with (
            aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=256, limit_per_host=64),
                cookie_jar=aiohttp.DummyCookieJar(),
            ) as session,
            FileAuditLog(audit_dir, fsync="always") as audit,
        ):
            held.append((BaselineClient(sources, session), audit))
            yield
            held.clear()

    async def search(request: Request) -> Response:
        asked = json.loads(await request.body())
        text, limit = str(asked["text"]), int(asked["limit"])
        client, audit = held[0]
        body = await client.search(text, limit)
        hits = json.loads(body)["hits"]
        await audit.append(
            AuditEntry(
                at=datetime.now(UTC).isoformat(),
                trace_id=uuid.uuid4().hex,
                operation="search",
                outcome="OK",
                user="bench",
                agency=SUBJECT_AGENCY,
                criteria={"search": [{"text": text, "limit": limit}]},
                sources=tuple(
                    SourceCall(source=s.name, agency=s.agency.ori, status="OK") for s in sources
                ),
                records=tuple(
                    RecordAccess(id=f"{hit['source']}:{hit.get('personId', '')}", owner="-")
                    for hit in hits
                ),
            )
        )
        return Response(body, media_type="application/json")

    return Starlette(routes=[Route("/search", search, methods=["POST"])], lifespan=lifespan)


@dataclass
class LeanHub:
    url: str
    session: aiohttp.ClientSession

    async def search(self, text: str, limit: int = 50) -> bytes:
        async with self.session.post(
            f"{self.url}/search", data=json.dumps({"text": text, "limit": limit})
        ) as resp:
            resp.raise_for_status()
            return await resp.read()


@contextlib.asynccontextmanager
async def serve_lean_hub(
    sources: Sequence[SourceConfig], audit_dir: Path, session: aiohttp.ClientSession
) -> AsyncIterator[LeanHub]:
    async with serve_app(lean_app(sources, audit_dir)) as url:
        yield LeanHub(url, session)
