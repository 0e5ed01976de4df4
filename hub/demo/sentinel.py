"""Sentinel ALPR: a licence-plate-reader read feed, newline-delimited JSON.

The protocol is documented in ``docs/vendors/sentinel-alpr.md``. Reads are found through the
shared ``RecordIndex`` by plate or by id, never by scanning, so a world of a million reads answers
as fast as a small one.
"""

from __future__ import annotations

import hmac
import logging
import os
import re
import zlib
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, time, timedelta
from typing import Any
from urllib.parse import urljoin, urlsplit

import aiohttp
import msgspec
from aiohttp import web

from hub.demo.simulator import Simulator
from hub.model import Agency, EntityKind, LegalTag, PlateRead, Record, normalise_plate

log = logging.getLogger(__name__)

PUSH_TIMEOUT_S = 5.0
MAX_LIMIT = 1000
DEFAULT_LIMIT = 100
MAX_KEYS = 100  # plates or ids per request
NDJSON = "application/x-ndjson"

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

# Sentinel's flag codes for the legal tags the hub knows; any other tag travels verbatim.
FLAG_OF_TAG: dict[str, str] = {
    LegalTag.IN_STATE_ONLY: "RESTRICT_INSTATE",
    LegalTag.SEALED: "SEALED",
    LegalTag.JUVENILE: "JUVENILE",
    LegalTag.SEX_OFFENSE_VICTIM: "VICTIM_SO",
}
TAG_OF_FLAG: dict[str, str] = {flag: str(tag) for tag, flag in FLAG_OF_TAG.items()}

# ISO 3166-2 country of each non-US issuing jurisdiction a plate may carry (Canadian provinces);
# everything else is a US state.
CANADA = frozenset(["AB", "BC", "MB", "NB", "NL", "NS", "NT", "NU", "ON", "PE", "QC", "SK", "YT"])
_REGION = re.compile(r"^[A-Z]{2}-[A-Z0-9]{1,3}$")
_encoder = msgspec.json.Encoder()


def region_of_state(state: str) -> str:
    return f"{'CA' if state in CANADA else 'US'}-{state}"


def state_of_region(region: str) -> str:
    return region.partition("-")[2] or region


def epoch_ms(moment: datetime) -> int:
    """Whole milliseconds since the epoch, exactly (no float rounding)."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return (moment - EPOCH) // timedelta(milliseconds=1)


def from_epoch_ms(ms: int) -> datetime:
    return EPOCH + timedelta(milliseconds=ms)


def camera_id(name: str) -> str:
    # Stable across runs and processes, unlike hash().
    return f"CAM-{zlib.crc32(name.encode()):08X}"


def _ingested_ms(read: PlateRead) -> int | None:
    """When the read reached the system, as Sentinel records it.

    Reads are ingested as they are made, so a read created the day it was taken was ingested at
    ``ts``; an older import is stamped at midnight UTC of its creation date.
    """
    if read.created is None:
        return None
    if read.read_at.astimezone(UTC).date() == read.created:
        return epoch_ms(read.read_at)
    return epoch_ms(datetime.combine(read.created, time(), tzinfo=UTC))


def guess_image_base(reads: Sequence[PlateRead], sample: int = 1000) -> str | None:
    """The folder most image URLs live under, from a sample (a million reads need not be scanned).

    The base is the longest common folder of the URLs on the most common host, so images filed
    in dated sub-folders still share one base.
    """
    by_host: dict[str, list[str]] = {}
    for read in reads[:sample]:
        url = read.image_url
        if url and "://" in url:
            parts = urlsplit(url)
            by_host.setdefault(f"{parts.scheme}://{parts.netloc}/", []).append(url)
    if not by_host:
        return None
    urls = max(by_host.values(), key=len)
    # Character-wise on purpose (URLs, not OS paths); cut back to a whole folder below.
    prefix = os.path.commonprefix(urls)  # noqa: RUF071
    return prefix[: prefix.rfind("/") + 1]


def render_read(read: PlateRead, image_base: str | None) -> dict[str, Any]:
    """One read as a Sentinel feed line (before JSON encoding)."""
    img = read.image_url
    if img and image_base and img.startswith(image_base):
        relative = img[len(image_base) :]
        # Only send the short form when resolving it gives back exactly the same URL.
        if relative and urljoin(image_base, relative) == img:
            img = relative
    loc = read.location
    return {
        "read_id": read.provenance.record_id,
        "plate_text": read.plate.number,
        "plate_region": region_of_state(read.plate.state),
        "ts": epoch_ms(read.read_at),
        "lat": loc.latitude if loc else None,
        "lon": loc.longitude if loc else None,
        "addr": loc.address if loc else None,
        "cam": {"id": camera_id(read.camera), "name": read.camera} if read.camera else None,
        "conf": round(read.confidence * 100) if read.confidence is not None else None,
        "img": img,
        # a flag the hub's adapter does not know comes back to it as `sentinel:<flag>`
        "flags": sorted(FLAG_OF_TAG.get(tag, tag.removeprefix("sentinel:")) for tag in read.tags),
        "ingested": _ingested_ms(read),
        "updated": (
            epoch_ms(read.provenance.last_updated) if read.provenance.last_updated else None
        ),
    }


class _BadRequest(Exception):
    pass


class SentinelSimulator(Simulator):
    vendor = "Sentinel"
    kind = "sentinel-alpr"

    def __init__(
        self,
        *,
        system_name: str,
        agency: Agency,
        records: Sequence[Record],
        api_key: str,
        latency_ms: float = 0.0,
        image_base: str | None = None,
    ) -> None:
        reads = [r for r in records if isinstance(r, PlateRead)]
        super().__init__(
            system_name=system_name,
            agency=agency,
            records=reads,
            api_key=api_key,
            latency_ms=latency_ms,
        )
        self.image_base = image_base if image_base is not None else guess_image_base(reads)
        # Where new reads are pushed as they are made (``push_to``): the hub's
        # POST /sources/NAME/reads, with the key the hub knows this source by.
        self.push_url: str | None = None
        self.push_key = ""
        self.pushed: list[int] = []  # HTTP status of each push, for tests

    def routes(self) -> list[web.RouteDef]:
        return [web.get("/feed/v1/reads", self._reads)]

    # -- push: new reads as they are made -----------------------------------------------------

    def push_to(self, url: str | None, key: str) -> None:
        """Push every new read to ``url`` (``X-Notice-Key: key``); None stops pushing."""
        self.push_url = url
        self.push_key = key

    async def ingest(self, reads: Sequence[PlateRead]) -> int | None:
        """New reads reach the system: they are in the feed at once and, when pushing, sent to
        the hub as feed lines (one POST for the batch). The push's HTTP status, or None."""
        self.add_records(reads)
        if self.push_url is None or not reads:
            return None
        body = b"\n".join(_encoder.encode(render_read(r, None)) for r in reads) + b"\n"
        timeout = aiohttp.ClientTimeout(total=PUSH_TIMEOUT_S)
        try:
            async with (
                aiohttp.ClientSession(timeout=timeout) as session,
                session.post(
                    self.push_url,
                    data=body,
                    headers={"Content-Type": NDJSON, "X-Notice-Key": self.push_key},
                ) as resp,
            ):
                status = resp.status
        except (TimeoutError, aiohttp.ClientError) as exc:
            # A real feed keeps the reads (the hub's cursor, or a later push, finds them).
            log.warning("push of %d read(s) failed: %s", len(reads), type(exc).__name__)
            return None
        self.pushed.append(status)
        return status

    def authorized(self, request: web.Request) -> bool:
        given = request.headers.get("X-Sentinel-Key", "")
        return hmac.compare_digest(given.encode(), self.api_key.encode())

    def error_body(self, status: int) -> tuple[bytes, str]:
        code, message = {
            401: ("unauthorized", "missing or invalid X-Sentinel-Key"),
            400: ("bad_request", "bad request"),
        }.get(status, ("internal", "internal server error"))
        return _encoder.encode({"error": {"code": code, "message": message}}), "application/json"

    def malformed_body(self) -> tuple[bytes, str]:
        # A feed whose writer crashed mid-line and then restarted: valid lines around a broken one.
        return (
            b'{"read_id":"SEN-0","plate_text":"0AAA000","plate_region":"US-CA","ts":0,\n'
            b'{"summary":{"total":1,"offset":0,"returned":1,"next_offset":null}}\n',
            NDJSON,
        )

    async def _reads(self, request: web.Request) -> web.Response:
        try:
            reads, total, offset, limit = self._query(request.query)
        except _BadRequest as exc:
            body = _encoder.encode({"error": {"code": "bad_request", "message": str(exc)}})
            return web.Response(status=400, body=body, content_type="application/json")
        page = reads[offset : offset + limit]
        lines = [_encoder.encode(render_read(r, self.image_base)) for r in page]
        end = offset + len(page)
        summary = {
            "total": total,
            "offset": offset,
            "returned": len(page),
            "next_offset": end if end < total else None,
            "image_base": self.image_base,
        }
        lines.append(_encoder.encode({"summary": summary}))
        return web.Response(body=b"\n".join(lines) + b"\n", content_type=NDJSON)

    def _query(self, query: Mapping[str, str]) -> tuple[list[PlateRead], int, int, int]:
        limit = _int_param(query, "limit", DEFAULT_LIMIT)
        offset = _int_param(query, "offset", 0)
        if not 1 <= limit <= MAX_LIMIT:
            raise _BadRequest(f"limit must be between 1 and {MAX_LIMIT}")
        if offset < 0:
            raise _BadRequest("offset must not be negative")
        plates = _list_param(query, "plates")
        ids = _list_param(query, "ids")
        if bool(plates) == bool(ids):
            raise _BadRequest("give exactly one of plates or ids")
        region = query.get("region")
        if region is not None and not _REGION.match(region):
            raise _BadRequest("region must be an ISO 3166-2 code such as US-CA")
        since = _time_param(query, "from")
        until = _time_param(query, "to")
        state = state_of_region(region) if region else None

        found: list[PlateRead] = []
        if plates:
            for record in self.index.by_plates(
                plates, EntityKind.PLATE_READ, state=state, since=since, until=until
            ):
                assert isinstance(record, PlateRead)
                found.append(record)
        else:
            for read_id in dict.fromkeys(ids):
                read = self.index.get(EntityKind.PLATE_READ, read_id)
                if not isinstance(read, PlateRead):
                    continue
                if state and read.plate.state != state:
                    continue
                if (since and read.read_at < since) or (until and read.read_at > until):
                    continue
                found.append(read)
        # The same plate asked twice must not double its reads.
        unique = {r.provenance.record_id: r for r in found}
        ordered = sorted(unique.values(), key=lambda r: r.provenance.record_id)
        ordered.sort(key=lambda r: r.read_at, reverse=True)
        return ordered, len(ordered), offset, limit


def _int_param(query: Mapping[str, str], name: str, default: int) -> int:
    raw = query.get(name)
    if raw is None:
        return default
    try:
        return int(raw)
    except ValueError:
        raise _BadRequest(f"{name} must be an integer") from None


def _time_param(query: Mapping[str, str], name: str) -> datetime | None:
    raw = query.get(name)
    if raw is None:
        return None
    try:
        return from_epoch_ms(int(raw))
    except (ValueError, OverflowError):
        raise _BadRequest(f"{name} must be epoch milliseconds") from None


def _list_param(query: Mapping[str, str], name: str) -> list[str]:
    raw = query.get(name)
    if not raw:
        return []
    items = [item.strip() for item in raw.split(",") if item.strip()]
    if len(items) > MAX_KEYS:
        raise _BadRequest(f"at most {MAX_KEYS} {name} per request")
    if name == "plates":
        items = [normalise_plate(p) for p in items]
    return items
