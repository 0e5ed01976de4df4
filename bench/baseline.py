"""The floor a hub is measured against: the same vendor calls, made by the least code that can.

``BaselineClient.search`` asks every Northwind source for persons matching a text, with the very
request the hub's adapter sends (same path, parameters, headers), in parallel with plain aiohttp,
decodes each JSON answer, merges the records into one list, cuts it to the limit and encodes the
merged answer, as any hub must. No schema, no policy, no audit, no canonical model: whatever the
hub spends beyond this is its overhead.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Sequence
from typing import Any

import aiohttp

from hub.settings import SourceConfig

PERSONS_PATH = "/api/v2/persons"
MAX_PAGE_SIZE = 100


class BaselineClient:
    def __init__(self, sources: Sequence[SourceConfig], session: aiohttp.ClientSession) -> None:
        unsupported = [s.name for s in sources if s.kind != "northwind-rms"]
        if unsupported:
            raise ValueError(f"the baseline speaks Northwind only, not {unsupported}")
        self.sources = list(sources)
        self.session = session

    async def _persons(self, source: SourceConfig, text: str, limit: int) -> list[dict[str, Any]]:
        headers = {"X-Api-Key": source.api_key.reveal(), "Accept": "application/json"}
        size = min(limit, MAX_PAGE_SIZE)
        records: list[dict[str, Any]] = []
        page = 1
        # Northwind pages; follow them as the adapter does, until the limit or the last page.
        while len(records) < limit:
            params = {"q": text, "page": str(page), "pageSize": str(size)}
            async with self.session.get(
                source.url + PERSONS_PATH, params=params, headers=headers
            ) as resp:
                resp.raise_for_status()
                answer: dict[str, Any] = json.loads(await resp.read())
            records.extend(answer["data"])
            if not answer["data"] or page * size >= answer["paging"]["totalRecords"]:
                break
            page += 1
        for record in records:
            record["source"] = source.name
        return records[:limit]

    async def search(self, text: str, limit: int = 50) -> bytes:
        """Every source's persons matching ``text``, merged, at most ``limit``, as JSON."""
        pages = await asyncio.gather(*(self._persons(s, text, limit) for s in self.sources))
        merged = [record for page in pages for record in page]
        merged.sort(key=lambda r: (r.get("lastName") or "", r.get("firstName") or ""))
        return json.dumps({"hits": merged[:limit]}).encode()
