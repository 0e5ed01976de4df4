"""Sentinel ALPR adapter: the conformance suite, and the mapping of hand-written feed payloads."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import aiohttp
import msgspec
import pytest
from aiohttp import web
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hub.adapters.base import SearchRequest, SourceConfig
from hub.adapters.sentinel import SentinelAdapter, plate_in_text
from hub.demo.sentinel import SentinelSimulator
from hub.errors import ConfigError, SourceProtocolError
from hub.model import (
    Agency,
    EntityKind,
    LegalTag,
    LicensePlate,
    Location,
    PlateRead,
    Provenance,
    Record,
    SourceKind,
    SourceSystem,
    make_id,
)
from hub.secret import Secret
from tests.adapters.conformance import AdapterConformance

FIXTURES = Path(__file__).parent / "fixtures" / "sentinel"
AGENCY = Agency(ori="CA0990000", name="Marin Valley Sheriff's Office", state="CA")
SYSTEM = SourceSystem(name="marin-alpr", vendor="Sentinel", kind=SourceKind.ALPR)
READS = frozenset({EntityKind.PLATE_READ})
FIXED = datetime(2000, 1, 1, tzinfo=UTC)


class TestSentinelConformance(AdapterConformance):
    adapter_cls = SentinelAdapter
    simulator_cls = SentinelSimulator


# -- a stand-in vendor answering hand-written payloads ---------------------------------------------


@dataclass
class Asked:
    path: str
    query: dict[str, str]
    key: str | None


@dataclass
class FixtureVendor:
    """An HTTP endpoint that answers the named fixture files in turn (the last one repeats)."""

    url: str = ""
    answers: list[tuple[int, str]] = field(default_factory=list)
    asked: list[Asked] = field(default_factory=list)

    def serve(self, *names: str, status: int = 200) -> None:
        self.answers = [(status, name) for name in names]

    async def handle(self, request: web.Request) -> web.Response:
        self.asked.append(
            Asked(request.path, dict(request.query), request.headers.get("X-Sentinel-Key"))
        )
        status, name = self.answers.pop(0) if len(self.answers) > 1 else self.answers[0]
        ctype = "application/json" if name.endswith(".json") else "application/x-ndjson"
        return web.Response(status=status, body=(FIXTURES / name).read_bytes(), content_type=ctype)


@pytest.fixture
async def vendor() -> AsyncIterator[FixtureVendor]:
    fixture = FixtureVendor()
    app = web.Application()
    app.add_routes([web.get("/feed/v1/reads", fixture.handle)])
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    fixture.url = f"http://127.0.0.1:{port}/"
    yield fixture
    await runner.cleanup()


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as client:
        yield client


def make_adapter(url: str, session: aiohttp.ClientSession, **options: str) -> SentinelAdapter:
    config = SourceConfig(
        name="marin-alpr",
        kind="sentinel-alpr",
        agency=AGENCY,
        url=url,
        api_key=Secret("feed-key-1"),
        options=options,
    )
    return SentinelAdapter(config, session)


def settled(record: Record) -> Record:
    """The record with its retrieval time fixed, so records compare by what the vendor said."""
    provenance = msgspec.structs.replace(record.provenance, retrieved_at=FIXED)
    return msgspec.structs.replace(record, provenance=provenance)


async def search_reads(adapter: SentinelAdapter, request: SearchRequest) -> list[PlateRead]:
    found = await adapter.search(request)
    assert all(isinstance(r, PlateRead) for r in found)
    return [r for r in found if isinstance(r, PlateRead)]


def provenance(record_id: str, last_updated: datetime | None = None) -> Provenance:
    return Provenance(
        agency=AGENCY,
        system=SYSTEM,
        record_id=record_id,
        retrieved_at=FIXED,
        last_updated=last_updated,
    )


# -- mapping ---------------------------------------------------------------------------------------


async def test_maps_every_field_of_the_feed(
    vendor: FixtureVendor, session: aiohttp.ClientSession
) -> None:
    vendor.serve("reads.ndjson")
    adapter = make_adapter(vendor.url, session)
    found = await adapter.search(
        SearchRequest(kinds=READS, plates=("7ABC123", "8XYZ999", "AB123C"))
    )
    assert [settled(r) for r in found] == [
        PlateRead(
            id=make_id("marin-alpr", EntityKind.PLATE_READ, "SEN-CA0990000-0000042"),
            provenance=provenance(
                "SEN-CA0990000-0000042", datetime(2024, 4, 5, 19, 39, 59, tzinfo=UTC)
            ),
            tags=frozenset({LegalTag.IN_STATE_ONLY.value}),
            created=date(2024, 4, 5),
            plate=LicensePlate(number="7ABC123", state="CA"),
            read_at=datetime(2024, 4, 5, 19, 34, 38, tzinfo=UTC),
            location=Location(
                address="US-101 N at Lucas Valley Rd", latitude=37.973512, longitude=-122.531104
            ),
            camera="US-101 N Lucas Valley",
            confidence=0.93,
            image_url="https://img.sentinel.example/ca0990000/2024/04/05/SEN-CA0990000-0000042.jpg",
        ),
        PlateRead(
            id=make_id("marin-alpr", EntityKind.PLATE_READ, "SEN-CA0990000-0000017"),
            provenance=provenance("SEN-CA0990000-0000017"),
            created=date(2024, 4, 4),
            plate=LicensePlate(number="8XYZ999", state="NV"),
            read_at=datetime(2024, 4, 5, 6, 53, 20, tzinfo=UTC),
            location=Location(latitude=38.1, longitude=-122.0),
            confidence=0.61,
            image_url="https://archive.sentinel.example/legacy/17.jpg",
        ),
        PlateRead(
            id=make_id("marin-alpr", EntityKind.PLATE_READ, "SEN-CA0990000-0000003"),
            provenance=provenance("SEN-CA0990000-0000003"),
            # An unknown vendor flag is kept under the vendor's name, never dropped: the policy
            # reads it as an unrecognised restriction.
            tags=frozenset({"sentinel:HOTLIST", LegalTag.SEALED.value}),
            plate=LicensePlate(number="AB123C", state="BC"),
            read_at=datetime(2024, 4, 4, 19, 46, 39, 500_000, tzinfo=UTC),
            camera="Bridge Toll Plaza 3",
        ),
    ]
    assert all(r.provenance.retrieved_at.tzinfo is not None for r in found)


async def test_one_request_carries_plates_region_and_window(
    vendor: FixtureVendor, session: aiohttp.ClientSession
) -> None:
    vendor.serve("reads.ndjson")
    adapter = make_adapter(vendor.url, session)
    await adapter.search(
        SearchRequest(
            kinds=frozenset(EntityKind),
            text="8xyz 999",
            plates=("7abc-123", "AB123C", "7ABC123"),
            plate_state="ca",
            # Rounded inwards: a read at .000 of the next millisecond is the first inside.
            since=datetime(2024, 4, 1, 0, 0, 0, 250, tzinfo=UTC),
            until=datetime(2024, 4, 30, 23, 59, 59, 999_999, tzinfo=UTC),
            limit=40,
        )
    )
    assert vendor.asked == [
        Asked(
            "/feed/v1/reads",
            {
                "plates": "7ABC123,AB123C,8XYZ999",
                "region": "US-CA",
                "from": "1711929600001",
                "to": "1714521599999",
                "limit": "40",
                "offset": "0",
            },
            "feed-key-1",
        )
    ]


async def test_canadian_plate_state_is_asked_as_a_canadian_region(
    vendor: FixtureVendor, session: aiohttp.ClientSession
) -> None:
    vendor.serve("empty.ndjson")
    adapter = make_adapter(vendor.url, session)
    assert (
        await adapter.search(SearchRequest(kinds=READS, plates=("AB123C",), plate_state="BC")) == []
    )
    assert vendor.asked[0].query["region"] == "CA-BC"


@pytest.mark.parametrize(
    "text", ["Jordan Reyes", "REYES", "123 Main St", "O'Brien 7", "ÄBC123", "7", "12.34.56", ""]
)
async def test_text_that_is_not_a_plate_never_reaches_the_vendor(
    vendor: FixtureVendor, session: aiohttp.ClientSession, text: str
) -> None:
    vendor.serve("reads.ndjson")
    adapter = make_adapter(vendor.url, session)
    assert await adapter.search(SearchRequest(kinds=READS, text=text)) == []
    assert vendor.asked == []


@pytest.mark.parametrize(
    ("text", "plate"),
    [("7ABC123", "7ABC123"), (" 7abc-123 ", "7ABC123"), ("8 XYZ 999", "8XYZ999"), ("A1", "A1")],
)
def test_plate_shaped_text(text: str, plate: str) -> None:
    assert plate_in_text(text) == plate


async def test_other_kinds_and_zero_limit_ask_nothing(
    vendor: FixtureVendor, session: aiohttp.ClientSession
) -> None:
    vendor.serve("reads.ndjson")
    adapter = make_adapter(vendor.url, session)
    others = frozenset({EntityKind.PERSON, EntityKind.VEHICLE})
    assert await adapter.search(SearchRequest(kinds=others, text="7ABC123")) == []
    assert await adapter.search(SearchRequest(kinds=READS, text="7ABC123", limit=0)) == []
    assert await adapter.get_many(EntityKind.VEHICLE, ["SEN-1"]) == []
    assert vendor.asked == []


async def test_limit_is_reached_by_paging_and_repeats_are_dropped(
    vendor: FixtureVendor, session: aiohttp.ClientSession
) -> None:
    # Page 2 repeats R2: a new read arrived between the pages and shifted every offset by one.
    vendor.serve("page1.ndjson", "page2.ndjson")
    adapter = make_adapter(vendor.url, session, page_size="2")
    found = await search_reads(adapter, SearchRequest(kinds=READS, text="7ABC123", limit=3))
    assert [r.provenance.record_id for r in found] == ["R3", "R2", "R1"]
    assert [(a.query["offset"], a.query["limit"]) for a in vendor.asked] == [("0", "2"), ("2", "1")]
    assert found[0].image_url == "https://img.example/r3.jpg"


async def test_paging_stops_at_the_last_page(
    vendor: FixtureVendor, session: aiohttp.ClientSession
) -> None:
    vendor.serve("reads.ndjson")
    adapter = make_adapter(vendor.url, session, page_size="3")
    found = await adapter.search(SearchRequest(kinds=READS, text="7ABC123", limit=100))
    assert len(found) == 3
    assert len(vendor.asked) == 1


async def test_many_plates_are_split_and_merged_in_feed_order(
    vendor: FixtureVendor, session: aiohttp.ClientSession
) -> None:
    vendor.serve("reads.ndjson", "relative_no_base.ndjson")
    adapter = make_adapter(vendor.url, session, plates_per_request="2")
    found = await adapter.search(
        SearchRequest(kinds=READS, plates=("7ABC123", "8XYZ999", "AB123C"), limit=3)
    )
    assert [a.query["plates"] for a in vendor.asked] == ["7ABC123,8XYZ999", "AB123C"]
    # Newest first across both answers (same instant: by read id), cut at the limit.
    assert [r.provenance.record_id for r in found] == [
        "R9",
        "SEN-CA0990000-0000042",
        "SEN-CA0990000-0000017",
    ]


async def test_get_many_asks_ids_in_batches(
    vendor: FixtureVendor, session: aiohttp.ClientSession
) -> None:
    vendor.serve("reads.ndjson")
    adapter = make_adapter(vendor.url, session)
    ids = [f"SEN-CA0990000-{n:07d}" for n in range(150)]
    found = await adapter.get_many(EntityKind.PLATE_READ, [*ids, ids[0], "bad,id"])
    asked = [a.query["ids"].split(",") for a in vendor.asked]
    assert asked == [ids[:100], ids[100:]]
    assert [a.query["limit"] for a in vendor.asked] == ["100", "50"]
    # The fixture answers the same three reads to each batch; each batch keeps only what it asked.
    assert sorted(r.provenance.record_id for r in found) == [
        "SEN-CA0990000-0000003",
        "SEN-CA0990000-0000017",
        "SEN-CA0990000-0000042",
    ]


async def test_image_base_option_wins_over_the_feed(
    vendor: FixtureVendor, session: aiohttp.ClientSession
) -> None:
    vendor.serve("reads.ndjson")
    adapter = make_adapter(vendor.url, session, image_base="https://proxy.example.org/alpr/")
    found = await search_reads(adapter, SearchRequest(kinds=READS, text="7ABC123"))
    assert [r.image_url for r in found] == [
        "https://proxy.example.org/alpr/2024/04/05/SEN-CA0990000-0000042.jpg",
        "https://archive.sentinel.example/legacy/17.jpg",
        None,
    ]


async def test_relative_image_without_a_base_resolves_against_the_source(
    vendor: FixtureVendor, session: aiohttp.ClientSession
) -> None:
    vendor.serve("relative_no_base.ndjson")
    adapter = make_adapter(vendor.url.rstrip("/"), session)
    [read] = await search_reads(adapter, SearchRequest(kinds=READS, text="7ABC123"))
    assert read.image_url == f"{vendor.url}images/r9.jpg"


@pytest.mark.parametrize(
    "fixture",
    [
        "malformed_line.ndjson",
        "no_summary.ndjson",
        "iso_timestamp.ndjson",
        "confidence_out_of_range.ndjson",
        "not_an_object.ndjson",
        "after_summary.ndjson",
        "count_mismatch.ndjson",
        "stuck_paging.ndjson",
    ],
)
async def test_a_bad_feed_is_a_protocol_error_never_skipped(
    vendor: FixtureVendor, session: aiohttp.ClientSession, fixture: str
) -> None:
    vendor.serve(fixture)
    adapter = make_adapter(vendor.url, session)
    with pytest.raises(SourceProtocolError) as info:
        await adapter.search(SearchRequest(kinds=READS, text="7ABC123"))
    assert info.value.source == "marin-alpr"
    # What leaves the hub names no plate (CJI).
    assert "7ABC123" not in str(info.value)


async def test_a_rejected_request_is_a_protocol_error(
    vendor: FixtureVendor, session: aiohttp.ClientSession
) -> None:
    vendor.serve("error_400.json", status=400)
    adapter = make_adapter(vendor.url, session)
    with pytest.raises(SourceProtocolError):
        await adapter.search(SearchRequest(kinds=READS, text="7ABC123"))


@pytest.mark.parametrize(
    "options", [{"page_size": "0"}, {"page_size": "5000"}, {"plates_per_request": "many"}]
)
async def test_bad_options_are_config_errors(
    session: aiohttp.ClientSession, options: dict[str, str]
) -> None:
    with pytest.raises(ConfigError):
        make_adapter("http://127.0.0.1:9", session, **options)


# -- round trip through the simulator, over records the world may never make ----------------------

IMAGE_BASE = "https://img.sentinel.example/marin/"
_ms = st.integers(
    min_value=(datetime(2010, 1, 1, tzinfo=UTC) - datetime(1970, 1, 1, tzinfo=UTC))
    // timedelta(milliseconds=1),
    max_value=(datetime(2035, 1, 1, tzinfo=UTC) - datetime(1970, 1, 1, tzinfo=UTC))
    // timedelta(milliseconds=1),
)
_moments = _ms.map(lambda ms: datetime(1970, 1, 1, tzinfo=UTC) + timedelta(milliseconds=ms))
_coordinate = st.floats(min_value=-180, max_value=180).map(lambda v: round(v, 6))
_path = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789/._-", min_size=1, max_size=24)


@st.composite
def plate_reads(draw: st.DrawFn) -> PlateRead:
    record_id = draw(st.text(alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-", min_size=1))
    read_at = draw(_moments)
    address = draw(st.none() | st.text(min_size=1, max_size=30))
    lat, lon = draw(st.none() | _coordinate), draw(st.none() | _coordinate)
    location = None
    if address is not None or lat is not None or lon is not None:
        location = Location(address=address, latitude=lat, longitude=lon)
    return PlateRead(
        id=make_id("marin-alpr", EntityKind.PLATE_READ, record_id),
        provenance=provenance(record_id, draw(st.none() | _moments)),
        tags=draw(
            st.frozensets(
                st.sampled_from(
                    [*(t.value for t in LegalTag), "sentinel:hotlist", "sentinel:NCIC-HIT"]
                )
            )
        ),
        created=draw(st.none() | st.just(read_at.date()) | st.dates(date(2010, 1, 1))),
        plate=LicensePlate(
            number=draw(
                st.text(alphabet="ABCDEFGHJKLMNPRSTUVWXYZ0123456789", min_size=1, max_size=8)
            ),
            state=draw(st.sampled_from(["CA", "NV", "OR", "WA", "BC", "ON"])),
        ),
        read_at=read_at,
        location=location,
        camera=draw(st.none() | st.text(min_size=1, max_size=30)),
        confidence=draw(st.none() | st.integers(0, 100).map(lambda c: c / 100)),
        image_url=draw(
            st.none()
            | _path.map(lambda p: IMAGE_BASE + p)
            | _path.map(lambda p: "https://elsewhere.example/" + p)
        ),
    )


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(plate_reads(), min_size=1, max_size=12, unique_by=lambda r: r.provenance.record_id))
async def test_simulator_and_adapter_agree_on_every_field(reads: list[PlateRead]) -> None:
    sim = SentinelSimulator(
        system_name="marin-alpr", agency=AGENCY, records=reads, api_key="k", image_base=IMAGE_BASE
    )
    await sim.start()
    try:
        async with aiohttp.ClientSession() as client:
            config = SourceConfig(
                name="marin-alpr",
                kind="sentinel-alpr",
                agency=AGENCY,
                url=sim.url,
                api_key=Secret("k"),
                options={"page_size": "5"},
            )
            adapter = SentinelAdapter(config, client)
            plates = tuple({r.plate.number for r in reads})
            found = await search_reads(
                adapter, SearchRequest(kinds=READS, plates=plates, limit=1000)
            )
            by_ids = await adapter.get_many(
                EntityKind.PLATE_READ, [r.provenance.record_id for r in reads]
            )
    finally:
        await sim.stop()
    want = {r.provenance.record_id: r for r in reads}
    assert {r.provenance.record_id: settled(r) for r in found} == want
    assert {r.provenance.record_id: settled(r) for r in by_ids} == want
    assert [r.read_at for r in found] == sorted((r.read_at for r in found), reverse=True)
