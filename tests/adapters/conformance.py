"""The conformance suite every source adapter inherits.

A vendor's test module subclasses ``AdapterConformance`` and sets ``adapter_cls``,
``simulator_cls`` and ``lossy_fields`` (canonical fields its protocol does not carry). The suite
runs the adapter against its real simulator (an aiohttp server on loopback) serving a small
seeded world, and checks the contract of ``hub.adapters.base``: records come back whole, with
provenance, findable by the universal-search text, batch-fetchable by id, and every vendor
failure arrives as the right class of the error tree.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import ClassVar

import aiohttp
import msgspec
import pytest

from hub.adapters.base import Adapter, SearchRequest, SourceConfig
from hub.demo.simulator import FaultKind, Simulator
from hub.demo.world import SystemSpec, World, generate_world, today
from hub.errors import SourceAuthError, SourceProtocolError, SourceUnavailable
from hub.model import EntityKind, Incident, Person, PlateRead, Record, Vehicle, kind_of, make_id
from hub.secret import Secret

_WORLDS: dict[tuple[int, int], World] = {}


def small_world(size: int = 400, seed: int = 7) -> World:
    if (size, seed) not in _WORLDS:
        _WORLDS[(size, seed)] = generate_world(size=size, seed=seed, as_of=today())
    return _WORLDS[(size, seed)]


def search_text(record: Record) -> str:
    """What a user would type to find this record."""
    if isinstance(record, Person):
        return " ".join(p for p in (record.name.given, record.name.surname) if p)
    if isinstance(record, Vehicle):
        assert record.plate is not None
        return record.plate.number
    if isinstance(record, Incident):
        return record.number
    return record.plate.number


def comparable(record: Record, lossy: frozenset[str]) -> dict[str, object]:
    """The record as builtins, without what a round trip cannot keep."""
    # Sets (tags) as sorted lists: equal frozensets may iterate in different orders.
    data = msgspec.to_builtins(record, order="deterministic")
    assert isinstance(data, dict)
    data["provenance"].pop("retrieved_at")
    for name in lossy:
        data.pop(name, None)
    return data


class AdapterConformance:
    adapter_cls: ClassVar[type[Adapter]]
    simulator_cls: ClassVar[type[Simulator]]
    lossy_fields: ClassVar[frozenset[str]] = frozenset()

    @pytest.fixture
    def system(self) -> SystemSpec:
        world = small_world()
        return next(s for s in world.systems if s.kind == self.adapter_cls.kind)

    @pytest.fixture
    def records(self, system: SystemSpec) -> list[Record]:
        return small_world().records[system.name]

    @pytest.fixture
    async def simulator(
        self, system: SystemSpec, records: list[Record]
    ) -> AsyncIterator[Simulator]:
        sim = self.simulator_cls(
            system_name=system.name,
            agency=small_world().agency(system.agency),
            records=records,
            api_key=system.api_key,
        )
        await sim.start()
        yield sim
        await sim.stop()

    @pytest.fixture
    async def session(self) -> AsyncIterator[aiohttp.ClientSession]:
        async with aiohttp.ClientSession() as session:
            yield session

    def make_adapter(
        self, system: SystemSpec, url: str, session: aiohttp.ClientSession, key: str | None = None
    ) -> Adapter:
        config = SourceConfig(
            name=system.name,
            kind=system.kind,
            agency=small_world().agency(system.agency),
            url=url,
            api_key=Secret(system.api_key if key is None else key),
        )
        return self.adapter_cls(config, session)

    @pytest.fixture
    def adapter(
        self, system: SystemSpec, simulator: Simulator, session: aiohttp.ClientSession
    ) -> Adapter:
        return self.make_adapter(system, simulator.url, session)

    def sample(self, records: list[Record], kind: EntityKind, n: int = 1) -> list[Record]:
        found = [r for r in records if kind_of(r) is kind]
        assert len(found) >= n, f"the world gives this system fewer than {n} {kind}"
        step = max(1, len(found) // n)
        return found[::step][:n]

    # -- the contract ---------------------------------------------------------------------------

    def test_declares_its_contract(self) -> None:
        assert self.adapter_cls.kind == self.simulator_cls.kind
        assert self.adapter_cls.entity_kinds
        assert self.adapter_cls.vendor

    async def test_search_finds_each_kind_whole(
        self, adapter: Adapter, records: list[Record], system: SystemSpec
    ) -> None:
        for kind in sorted(self.adapter_cls.entity_kinds):
            for want in self.sample(records, kind, 3):
                found = await adapter.search(
                    SearchRequest(kinds=frozenset({kind}), text=search_text(want), limit=500)
                )
                by_id = {r.provenance.record_id: r for r in found}
                assert want.provenance.record_id in by_id, (kind, search_text(want))
                got = by_id[want.provenance.record_id]
                assert got.id == make_id(system.name, kind, want.provenance.record_id)
                assert got.provenance.agency.ori == system.agency
                assert got.provenance.system.name == system.name
                assert got.provenance.system.kind is self.adapter_cls.source_kind
                assert got.provenance.retrieved_at.tzinfo is not None
                assert comparable(got, self.lossy_fields) == comparable(want, self.lossy_fields)

    async def test_get_many_returns_known_ids_only(
        self, adapter: Adapter, records: list[Record], simulator: Simulator
    ) -> None:
        for kind in sorted(self.adapter_cls.entity_kinds):
            wanted = self.sample(records, kind, 3)
            ids = [r.provenance.record_id for r in wanted]
            simulator.clear_requests()
            got = await adapter.get_many(kind, [*ids, "no-such-record-0000"])
            assert sorted(r.provenance.record_id for r in got) == sorted(ids)
            assert all(kind_of(r) is kind for r in got)
            # Batched: a handful of ids is not a request per id.
            assert len(simulator.requests) < len(ids) + 1

    async def test_get_many_of_nothing_asks_nothing(
        self, adapter: Adapter, simulator: Simulator
    ) -> None:
        kind = sorted(self.adapter_cls.entity_kinds)[0]
        assert await adapter.get_many(kind, []) == []
        assert simulator.requests == []

    async def test_no_hit_is_empty(self, adapter: Adapter) -> None:
        found = await adapter.search(
            SearchRequest(kinds=self.adapter_cls.entity_kinds, text="Zzyzxqv Qqxqj")
        )
        assert found == []

    async def test_limit_is_respected(self, adapter: Adapter, records: list[Record]) -> None:
        # Ask for a word that many records share: the most common surname / plate prefix.
        for kind in self.adapter_cls.entity_kinds:
            want = self.sample(records, kind, 1)[0]
            found = await adapter.search(
                SearchRequest(kinds=frozenset({kind}), text=search_text(want), limit=1)
            )
            assert len(found) == 1

    async def test_kinds_it_does_not_hold_ask_nothing(
        self, adapter: Adapter, simulator: Simulator
    ) -> None:
        others = frozenset(EntityKind) - self.adapter_cls.entity_kinds
        if not others:
            pytest.skip("this adapter answers every kind")
        assert await adapter.search(SearchRequest(kinds=others, text="Reyes")) == []
        assert simulator.requests == []

    async def test_plates_batch(self, adapter: Adapter, records: list[Record]) -> None:
        for kind in (EntityKind.VEHICLE, EntityKind.PLATE_READ):
            if kind not in self.adapter_cls.entity_kinds:
                continue
            wanted = self.sample(records, kind, 3)
            plates = []
            for r in wanted:
                assert isinstance(r, Vehicle | PlateRead)
                assert r.plate is not None
                plates.append(r.plate.number)
            found = await adapter.search(
                SearchRequest(kinds=frozenset({kind}), plates=tuple(plates), limit=10_000)
            )
            got = {r.provenance.record_id for r in found}
            assert {r.provenance.record_id for r in wanted} <= got
            for r in found:
                assert isinstance(r, Vehicle | PlateRead)
                assert r.plate is not None
                assert r.plate.number in plates

    # -- failures map to the error tree ---------------------------------------------------------

    async def _search_any(self, adapter: Adapter, records: list[Record]) -> list[Record]:
        kind = sorted(self.adapter_cls.entity_kinds)[0]
        want = self.sample(records, kind, 1)[0]
        return await adapter.search(SearchRequest(kinds=frozenset({kind}), text=search_text(want)))

    async def test_http_500_is_unavailable(
        self, adapter: Adapter, simulator: Simulator, records: list[Record]
    ) -> None:
        simulator.add_fault(FaultKind.ERROR_500)
        with pytest.raises(SourceUnavailable) as info:
            await self._search_any(adapter, records)
        assert info.value.source == adapter.name

    @pytest.mark.parametrize("kind", [FaultKind.MALFORMED, FaultKind.TRUNCATED])
    async def test_bad_body_is_protocol_error(
        self, adapter: Adapter, simulator: Simulator, records: list[Record], kind: FaultKind
    ) -> None:
        simulator.add_fault(kind)
        with pytest.raises(SourceProtocolError):
            await self._search_any(adapter, records)

    async def test_wrong_key_is_auth_error(
        self,
        system: SystemSpec,
        simulator: Simulator,
        session: aiohttp.ClientSession,
        records: list[Record],
    ) -> None:
        adapter = self.make_adapter(system, simulator.url, session, key="not-the-key")
        with pytest.raises(SourceAuthError):
            await self._search_any(adapter, records)

    async def test_unreachable_is_unavailable(
        self, system: SystemSpec, session: aiohttp.ClientSession, records: list[Record]
    ) -> None:
        adapter = self.make_adapter(system, "http://127.0.0.1:9", session)
        with pytest.raises(SourceUnavailable):
            await self._search_any(adapter, records)

    @pytest.mark.parametrize("kind", [FaultKind.TIMEOUT, FaultKind.DRIP])
    async def test_slow_vendor_is_cancellable(
        self, adapter: Adapter, simulator: Simulator, records: list[Record], kind: FaultKind
    ) -> None:
        simulator.add_fault(kind, delay_ms=5_000 if kind is FaultKind.TIMEOUT else 200)
        loop = asyncio.get_running_loop()
        started = loop.time()
        with pytest.raises(TimeoutError):
            async with asyncio.timeout(0.3):
                await self._search_any(adapter, records)
        assert loop.time() - started < 2.0
