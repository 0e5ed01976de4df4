"""The Sentinel ALPR simulator speaks the feed documented in docs/vendors/sentinel-alpr.md."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime, timedelta
from typing import Any

import aiohttp
import pytest

from hub.demo.sentinel import SentinelSimulator, camera_id, guess_image_base
from hub.demo.simulator import FaultKind
from hub.model import (
    Agency,
    EntityKind,
    LegalTag,
    LicensePlate,
    Location,
    PlateRead,
    Provenance,
    SourceKind,
    SourceSystem,
    Vehicle,
    make_id,
)

AGENCY = Agency(ori="NV0990000", name="Sierra State Patrol", state="NV")
SYSTEM = SourceSystem(name="sierra-alpr", vendor="Sentinel", kind=SourceKind.ALPR)
KEY = "sierra-feed-key"
BASE = "https://img.sentinel.example/nv0990000/"
T0 = datetime(2024, 4, 5, 12, 0, 0, tzinfo=UTC)


def read(
    record_id: str,
    plate: str,
    minutes_ago: int,
    state: str = "CA",
    **fields: Any,
) -> PlateRead:
    return PlateRead(
        id=make_id(SYSTEM.name, EntityKind.PLATE_READ, record_id),
        provenance=Provenance(agency=AGENCY, system=SYSTEM, record_id=record_id, retrieved_at=T0),
        plate=LicensePlate(number=plate, state=state),
        read_at=T0 - timedelta(minutes=minutes_ago),
        **fields,
    )


RECORDS = [
    read("R-05", "7ABC123", 50, image_url=BASE + "2023/12/31/R-05.jpg"),
    read("R-02", "7ABC123", 10, image_url=BASE + "2024/04/05/R-02.jpg", camera="I-80 E Exit 13"),
    read("R-01", "7ABC123", 10),  # same instant as R-02: ordered by id
    read("R-03", "8XYZ999", 20, state="NV"),
    read("R-04", "7ABC123", 30, state="NV"),
    read(
        "R-06",
        "8XYZ999",
        5,
        state="NV",
        location=Location(address="I-80 E at Exit 13", latitude=39.52963, longitude=-119.81381),
        camera="I-80 E Exit 13",
        confidence=0.87,
        image_url="https://archive.example.net/old/R-06.jpg",
        tags=frozenset({LegalTag.IN_STATE_ONLY.value}),
        created=(T0 - timedelta(minutes=5)).date(),
    ),
    read("R-07", "4GHI567", 600, created=date(2024, 4, 1)),
]


@pytest.fixture
async def sim() -> AsyncIterator[SentinelSimulator]:
    simulator = SentinelSimulator(
        system_name=SYSTEM.name, agency=AGENCY, records=RECORDS, api_key=KEY
    )
    await simulator.start()
    yield simulator
    await simulator.stop()


@pytest.fixture
async def client() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


async def feed(
    client: aiohttp.ClientSession, sim: SentinelSimulator, key: str = KEY, **query: str
) -> tuple[int, str, list[dict[str, Any]]]:
    async with client.get(
        f"{sim.url}/feed/v1/reads", params=query, headers={"X-Sentinel-Key": key}
    ) as resp:
        body = await resp.read()
        if resp.content_type == "application/x-ndjson":
            assert body.endswith(b"\n")
            lines = [json.loads(line) for line in body.decode().splitlines()]
        else:
            lines = [json.loads(body)]
        return resp.status, resp.content_type, lines


def ms_ago(minutes: int) -> str:
    return str(int((T0 - timedelta(minutes=minutes)).timestamp() * 1000))


def ids(lines: list[dict[str, Any]]) -> list[str]:
    return [line["read_id"] for line in lines[:-1]]


async def test_wrong_key_is_refused_with_the_vendor_error_body(
    sim: SentinelSimulator, client: aiohttp.ClientSession
) -> None:
    status, ctype, [body] = await feed(client, sim, key="nope", plates="7ABC123")
    assert (status, ctype) == (401, "application/json")
    assert body["error"]["code"] == "unauthorized"


async def test_reads_newest_first_then_by_id_with_a_summary_last(
    sim: SentinelSimulator, client: aiohttp.ClientSession
) -> None:
    status, ctype, lines = await feed(client, sim, plates="7abc-123,7ABC123")
    assert (status, ctype) == (200, "application/x-ndjson")
    # Asking a plate twice does not double its reads.
    assert ids(lines) == ["R-01", "R-02", "R-04", "R-05"]
    assert lines[-1] == {
        "summary": {
            "total": 4,
            "offset": 0,
            "returned": 4,
            "next_offset": None,
            "image_base": BASE,
        }
    }


async def test_pages_follow_offsets(sim: SentinelSimulator, client: aiohttp.ClientSession) -> None:
    _, _, first = await feed(client, sim, plates="7ABC123,8XYZ999", limit="4")
    assert ids(first) == ["R-06", "R-01", "R-02", "R-03"]
    assert first[-1]["summary"] | {"image_base": None} == {
        "total": 6,
        "offset": 0,
        "returned": 4,
        "next_offset": 4,
        "image_base": None,
    }
    _, _, second = await feed(client, sim, plates="7ABC123,8XYZ999", limit="4", offset="4")
    assert ids(second) == ["R-04", "R-05"]
    assert second[-1]["summary"]["next_offset"] is None
    _, _, beyond = await feed(client, sim, plates="7ABC123", offset="40")
    assert beyond == [
        {
            "summary": {
                "total": 4,
                "offset": 40,
                "returned": 0,
                "next_offset": None,
                "image_base": BASE,
            }
        }
    ]


async def test_region_and_inclusive_time_window_filter(
    sim: SentinelSimulator, client: aiohttp.ClientSession
) -> None:
    _, _, nv = await feed(client, sim, plates="7ABC123,8XYZ999", region="US-NV")
    assert ids(nv) == ["R-06", "R-03", "R-04"]
    # Both ends inclusive: R-04 is read exactly at "from", R-01 and R-02 exactly at "to".
    window_ends = {"from": ms_ago(30), "to": ms_ago(10)}
    _, _, window = await feed(client, sim, plates="7ABC123", **window_ends)
    assert ids(window) == ["R-01", "R-02", "R-04"]


async def test_batch_get_by_ids_skips_unknown(
    sim: SentinelSimulator, client: aiohttp.ClientSession
) -> None:
    _, _, lines = await feed(client, sim, ids="R-07,R-03,NOPE,R-03")
    assert ids(lines) == ["R-03", "R-07"]


async def test_a_read_in_the_vendor_format(
    sim: SentinelSimulator, client: aiohttp.ClientSession
) -> None:
    _, _, lines = await feed(client, sim, ids="R-06,R-02,R-07")
    by_id = {line["read_id"]: line for line in lines[:-1]}
    t6 = int((T0 - timedelta(minutes=5)).timestamp() * 1000)
    assert by_id["R-06"] == {
        "read_id": "R-06",
        "plate_text": "8XYZ999",
        "plate_region": "US-NV",
        "ts": t6,
        "lat": 39.52963,
        "lon": -119.81381,
        "addr": "I-80 E at Exit 13",
        "cam": {"id": camera_id("I-80 E Exit 13"), "name": "I-80 E Exit 13"},
        "conf": 87,
        # Not under the feed's image base: sent whole.
        "img": "https://archive.example.net/old/R-06.jpg",
        "flags": ["RESTRICT_INSTATE"],
        # Created the day it was read: ingested as it was read.
        "ingested": t6,
        "updated": None,
    }
    assert by_id["R-02"]["img"] == "2024/04/05/R-02.jpg"
    assert by_id["R-02"]["cam"] == by_id["R-06"]["cam"]
    # Created another day: ingested at midnight UTC of that day.
    assert by_id["R-07"]["ingested"] == int(datetime(2024, 4, 1, tzinfo=UTC).timestamp() * 1000)
    assert by_id["R-07"]["conf"] is None
    assert by_id["R-07"]["cam"] is None


@pytest.mark.parametrize(
    "query",
    [
        {},
        {"plates": "7ABC123", "ids": "R-01"},
        {"plates": "7ABC123", "limit": "0"},
        {"plates": "7ABC123", "limit": "1001"},
        {"plates": "7ABC123", "offset": "-1"},
        {"plates": "7ABC123", "limit": "ten"},
        {"plates": "7ABC123", "region": "California"},
        {"plates": "7ABC123", "from": "yesterday"},
        {"plates": ",".join(f"{n}ABC000" for n in range(101))},
    ],
)
async def test_bad_parameters_are_400(
    sim: SentinelSimulator, client: aiohttp.ClientSession, query: dict[str, str]
) -> None:
    status, _, [body] = await feed(client, sim, **query)
    assert status == 400
    assert body["error"]["code"] == "bad_request"


async def test_malformed_fault_is_broken_ndjson(
    sim: SentinelSimulator, client: aiohttp.ClientSession
) -> None:
    sim.add_fault(FaultKind.MALFORMED, times=1)
    async with client.get(
        f"{sim.url}/feed/v1/reads", params={"plates": "7ABC123"}, headers={"X-Sentinel-Key": KEY}
    ) as resp:
        assert resp.status == 200
        assert resp.content_type == "application/x-ndjson"
        first = (await resp.read()).splitlines()[0]
    with pytest.raises(json.JSONDecodeError):
        json.loads(first)


def test_keeps_only_plate_reads_and_guesses_the_image_base() -> None:
    vehicle = Vehicle(
        id="v",
        provenance=RECORDS[0].provenance,
        plate=LicensePlate(number="7ABC123", state="CA"),
    )
    sim = SentinelSimulator(
        system_name=SYSTEM.name, agency=AGENCY, records=[vehicle, *RECORDS], api_key=KEY
    )
    assert sim.records == RECORDS
    assert sim.image_base == BASE
    assert guess_image_base([read("X", "1A", 1)]) is None
    assert camera_id("I-80 E Exit 13") == camera_id("I-80 E Exit 13") != camera_id("I-80 W")
