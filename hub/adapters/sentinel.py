"""Sentinel ALPR: plate reads from a newline-delimited JSON feed.

The protocol is documented in ``docs/vendors/sentinel-alpr.md``. This module is written from that
document alone, not from the demo simulator, so the conformance suite's round trip checks two
independent readings of one protocol.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Annotated
from urllib.parse import urljoin

import aiohttp
import msgspec

from hub.adapters.base import Adapter, SearchRequest, SourceConfig
from hub.adapters.calls import batches
from hub.adapters.http import convert_wire, decode_json, request_bytes
from hub.errors import SourceProtocolError
from hub.model import (
    EntityKind,
    LegalTag,
    LicensePlate,
    Location,
    PlateRead,
    Provenance,
    Record,
    SourceKind,
    make_id,
    normalise_plate,
)

FEED_PATH = "/feed/v1/reads"
NDJSON = "application/x-ndjson"
MAX_PAGE = 1000  # the feed's largest page
MAX_KEYS = 100  # the feed's most plates or ids per request

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MS = timedelta(milliseconds=1)
# 9999-12-31T23:59:59.999Z: beyond it datetime cannot represent the instant.
_MAX_MS = 253_402_300_799_999

TAG_OF_FLAG: dict[str, str] = {
    "RESTRICT_INSTATE": LegalTag.IN_STATE_ONLY.value,
    "SEALED": LegalTag.SEALED.value,
    "JUVENILE": LegalTag.JUVENILE.value,
    "VICTIM_SO": LegalTag.SEX_OFFENSE_VICTIM.value,
}

# Issuing jurisdictions that are Canadian provinces (ISO 3166-2 "CA-xx"); all others are US states.
_CANADA = frozenset(["AB", "BC", "MB", "NB", "NL", "NS", "NT", "NU", "ON", "PE", "QC", "SK", "YT"])

# What a typed plate looks like: ASCII letters and digits, maybe grouped by spaces or dashes.
_PLATE_LIKE = re.compile(r"[A-Za-z0-9][A-Za-z0-9 \-]*")

EpochMs = Annotated[int, msgspec.Meta(ge=0, le=_MAX_MS)]


class _Camera(msgspec.Struct):
    id: str | None = None
    name: str | None = None


class _Read(msgspec.Struct):
    read_id: Annotated[str, msgspec.Meta(min_length=1)]
    plate_text: str
    plate_region: str
    ts: EpochMs
    lat: float | None = None
    lon: float | None = None
    addr: str | None = None
    cam: _Camera | None = None
    conf: Annotated[int, msgspec.Meta(ge=0, le=100)] | None = None
    img: str | None = None
    flags: list[str] = []
    ingested: EpochMs | None = None
    updated: EpochMs | None = None


class _Summary(msgspec.Struct):
    total: Annotated[int, msgspec.Meta(ge=0)]
    offset: Annotated[int, msgspec.Meta(ge=0)]
    returned: Annotated[int, msgspec.Meta(ge=0)]
    next_offset: Annotated[int, msgspec.Meta(ge=0)] | None = None
    image_base: str | None = None


def plate_in_text(text: str) -> str | None:
    """The plate that universal-search text names, or None when it does not look like a plate.

    ALPR systems hold plates, not names: text that is not plate-shaped is never sent to the
    vendor, so a person's name does not end up in the vendor's query log for nothing.
    """
    stripped = text.strip()
    if not _PLATE_LIKE.fullmatch(stripped):
        return None
    plate = normalise_plate(stripped)
    if 2 <= len(plate) <= 8 and any(ch.isdigit() for ch in plate):
        return plate
    return None


def region_of_state(state: str) -> str:
    state = state.strip().upper()
    return f"{'CA' if state in _CANADA else 'US'}-{state}"


def _ms_ceil(moment: datetime) -> int:
    return -((_aware(moment) - _EPOCH) // -_MS)


def _ms_floor(moment: datetime) -> int:
    return (_aware(moment) - _EPOCH) // _MS


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def _at(ms: int) -> datetime:
    return _EPOCH + ms * _MS


class SentinelAdapter(Adapter):
    """Plate reads from a Sentinel ALPR read feed (``GET /feed/v1/reads``, NDJSON)."""

    kind = "sentinel-alpr"
    vendor = "Sentinel"
    source_kind = SourceKind.ALPR
    entity_kinds = frozenset({EntityKind.PLATE_READ})

    def __init__(self, config: SourceConfig, session: aiohttp.ClientSession) -> None:
        super().__init__(config, session)
        self._feed_url = config.url.rstrip("/") + FEED_PATH
        self._page_size = config.int_option("page_size", 500, MAX_PAGE)
        self._plates_per_request = config.int_option("plates_per_request", MAX_KEYS, MAX_KEYS)
        self._image_base = config.options.get("image_base") or None
        # Relative image paths with no base from config or feed resolve against the feed host.
        self._default_image_base = config.url.rstrip("/") + "/"

    # -- the contract ---------------------------------------------------------------------------

    async def search(self, request: SearchRequest) -> list[Record]:
        if EntityKind.PLATE_READ not in request.kinds or request.limit <= 0:
            return []
        plates = [normalise_plate(p) for p in request.plates]
        if request.text:
            typed = plate_in_text(request.text)
            if typed is not None:
                plates.append(typed)
        plates = list(dict.fromkeys(p for p in plates if p))
        if not plates:
            return []
        params: dict[str, str] = {}
        if request.plate_state:
            params["region"] = region_of_state(request.plate_state)
        if request.since is not None:
            params["from"] = str(_ms_ceil(request.since))
        if request.until is not None:
            params["to"] = str(_ms_floor(request.until))
        found: dict[str, PlateRead] = {}
        for chunk in batches(plates, self._plates_per_request):
            for read in await self._fetch({**params, "plates": ",".join(chunk)}, request.limit):
                found.setdefault(read.provenance.record_id, read)
        # Each chunk is ordered by the feed; merged, they are put back in the feed's order.
        reads = sorted(found.values(), key=lambda r: r.provenance.record_id)
        reads.sort(key=lambda r: r.read_at, reverse=True)
        return list(reads[: request.limit])

    async def get_many(self, kind: EntityKind, record_ids: Sequence[str]) -> list[Record]:
        if kind is not EntityKind.PLATE_READ:
            return []
        # An id with a comma cannot be asked for in the feed's list syntax, nor exist in it.
        ids = [i for i in dict.fromkeys(record_ids) if i and "," not in i]
        out: list[Record] = []
        for chunk in batches(ids, MAX_KEYS):
            wanted = set(chunk)
            reads = await self._fetch({"ids": ",".join(chunk)}, len(chunk))
            out.extend(r for r in reads if r.provenance.record_id in wanted)
        return out

    def parse_reads(self, body: bytes) -> list[Record]:
        """Sentinel's push of new reads: feed lines (one read each, no summary line), the
        format of ``GET /feed/v1/reads``. ``ValueError`` on any line that is not a read."""
        wire: list[_Read] = []
        for number, line in enumerate(body.split(b"\n"), start=1):
            if not line.strip():
                continue
            try:
                wire.append(msgspec.json.decode(line, type=_Read))
            except (msgspec.DecodeError, msgspec.ValidationError) as exc:
                # The line may be CJI: the error names its number only.
                raise ValueError(f"pushed line {number} is not a Sentinel read") from exc
        base = self._image_base or self._default_image_base
        retrieved_at = datetime.now(UTC)
        return [self._record(w, base, retrieved_at) for w in wire]

    # -- the feed -------------------------------------------------------------------------------

    async def _fetch(self, params: Mapping[str, str], limit: int) -> list[PlateRead]:
        """Up to ``limit`` reads of one query, following the feed's pages."""
        out: dict[str, PlateRead] = {}
        offset = 0
        while len(out) < limit:
            page_limit = min(self._page_size, limit - len(out))
            reads, summary = await self._page(
                {**params, "limit": str(page_limit), "offset": str(offset)}
            )
            # New reads arriving between pages shift offsets; a read seen twice counts once.
            for read in reads:
                out.setdefault(read.provenance.record_id, read)
            if summary.next_offset is None or summary.returned == 0:
                break
            if summary.next_offset <= offset:
                raise SourceProtocolError(self.name, "vendor feed paging did not advance")
            offset = summary.next_offset
        return list(out.values())[:limit]

    async def _page(self, params: Mapping[str, str]) -> tuple[list[PlateRead], _Summary]:
        body = await request_bytes(
            self.name,
            self.session,
            "GET",
            self._feed_url,
            headers={"X-Sentinel-Key": self.config.api_key.reveal(), "Accept": NDJSON},
            params=params,
        )
        assert body is not None  # only a not_found_ok request answers None
        wire_reads: list[_Read] = []
        summary: _Summary | None = None
        for number, line in enumerate(body.split(b"\n"), start=1):
            if not line.strip():
                continue  # NDJSON allows blank lines; the summary still proves completeness
            if summary is not None:
                raise SourceProtocolError(self.name, "vendor feed has lines after its summary")
            obj = decode_json(self.name, line)
            # The vendor's values may be CJI; an error names the line, never its content.
            what = f"vendor feed line {number}"
            if isinstance(obj, dict) and "summary" in obj:
                summary = convert_wire(self.name, obj["summary"], _Summary, what)
            else:
                wire_reads.append(convert_wire(self.name, obj, _Read, what))
        if summary is None:
            raise SourceProtocolError(self.name, "vendor feed ended without its summary line")
        if summary.returned != len(wire_reads):
            raise SourceProtocolError(
                self.name,
                f"vendor feed summary counts {summary.returned} reads but carried "
                f"{len(wire_reads)}",
            )
        image_base = self._image_base or summary.image_base or self._default_image_base
        retrieved_at = datetime.now(UTC)
        return [self._record(w, image_base, retrieved_at) for w in wire_reads], summary

    def _record(self, wire: _Read, image_base: str, retrieved_at: datetime) -> PlateRead:
        location = None
        if wire.lat is not None or wire.lon is not None or wire.addr is not None:
            location = Location(address=wire.addr, latitude=wire.lat, longitude=wire.lon)
        region = wire.plate_region.strip().upper()
        return PlateRead(
            id=make_id(self.name, EntityKind.PLATE_READ, wire.read_id),
            provenance=Provenance(
                agency=self.config.agency,
                system=self.system,
                record_id=wire.read_id,
                retrieved_at=retrieved_at,
                last_updated=_at(wire.updated) if wire.updated is not None else None,
            ),
            # A flag this adapter does not know keeps its vendor's name: the policy reads it as
            # an unrecognised restriction (a pointer at most) until legal-tags.yaml names it.
            tags=frozenset(TAG_OF_FLAG.get(flag, f"sentinel:{flag}") for flag in wire.flags),
            created=_at(wire.ingested).date() if wire.ingested is not None else None,
            plate=LicensePlate(
                number=normalise_plate(wire.plate_text),
                state=region.partition("-")[2] or region,
            ),
            read_at=_at(wire.ts),
            location=location,
            camera=wire.cam.name if wire.cam is not None else None,
            confidence=wire.conf / 100 if wire.conf is not None else None,
            image_url=urljoin(image_base, wire.img) if wire.img else None,
        )
