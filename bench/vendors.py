"""The simulated vendors of a benchmark, in a process of their own.

The hub under test and the load client run in the benchmark's process; the vendor simulators run
here, on the other core, as real vendors run on other machines. Had they shared the hub's event
loop, every millisecond a simulator spends rendering JSON would be charged to the hub: 64
simulators answering one fan-out would add their CPU time, one after another, to the very latency
the benchmark divides by the floor.

The parent writes one JSON line (a ``WorldPlan``) to this process's stdin; the process builds the
world, starts every system on loopback and answers with one JSON line (``VendorsInfo``). It then
obeys one command per line (``latency``, ``rss``) until ``stop`` or end of input.
"""

from __future__ import annotations

import asyncio
import gc
import json
import sys
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

import msgspec

from bench.measure import rss_bytes
from hub.model import Agency, Person, PersonName, Record
from hub.secret import Secret
from hub.settings import SourceConfig

WorldShape = Literal["demo", "clones", "wide"]

# The surname every record of a "wide" world shares, so that one search finds them all.
WIDE_SURNAME = "Benchmark"
# The system whose records "clones" and "wide" worlds copy: a Northwind RMS (JSON).
TEMPLATE_SYSTEM = "marin-rms"
TEMPLATE_KIND = "northwind-rms"
STARTUP_TIMEOUT_S = 600.0


@dataclass(frozen=True, slots=True)
class WorldPlan:
    """What the vendor process serves.

    - ``demo``: ``generate_world(size, seed)`` as ``hub serve`` runs it (four vendors, seven
      systems);
    - ``clones``: ``systems`` Northwind RMSs, each serving the records of the demo world's Marin
      RMS, owned in turn by the world's RMS agencies: a fan-out as wide as asked;
    - ``wide``: ``systems`` Northwind RMSs sharing ``records`` persons, all surnamed
      ``WIDE_SURNAME``, with no legal tags, so one search returns exactly ``records`` records.
    """

    shape: WorldShape = "demo"
    size: int = 2000
    seed: int = 1
    systems: int = 4
    records: int = 1000
    latency_ms: float = 0.0


@dataclass(slots=True)
class VendorsInfo:
    """What the vendor process answers once every system is listening."""

    sources: list[dict[str, Any]]
    # Search texts with hits, most frequent first (surnames of the world's persons).
    texts: list[str]
    records: int
    rss_bytes: int
    build_s: float
    pid: int = 0
    extra: dict[str, Any] = field(default_factory=dict)

    def source_configs(self, timeout_ms: int = 1500) -> tuple[SourceConfig, ...]:
        return tuple(
            SourceConfig(
                name=s["name"],
                kind=s["kind"],
                agency=Agency(**s["agency"]),
                url=s["url"],
                api_key=Secret(s["api_key"]),
                timeout_ms=timeout_ms,
            )
            for s in self.sources
        )

    def agencies(self) -> dict[str, Agency]:
        return {s["agency"]["ori"]: Agency(**s["agency"]) for s in self.sources}


# -- the parent's side ---------------------------------------------------------------------------


class VendorProcess:
    """A running vendor process; ``async with VendorProcess.start(plan) as vendors``."""

    def __init__(self, process: asyncio.subprocess.Process, info: VendorsInfo) -> None:
        self.process = process
        self.info = info

    @classmethod
    async def start(cls, plan: WorldPlan) -> VendorProcess:
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "bench.vendors",
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            limit=64 * 1024 * 1024,
        )
        try:
            reply = await cls._exchange(process, asdict(plan), STARTUP_TIMEOUT_S)
        except BaseException:
            await cls._terminate(process)
            raise
        info = VendorsInfo(**reply)
        info.pid = process.pid
        return cls(process, info)

    async def __aenter__(self) -> VendorProcess:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    @staticmethod
    async def _exchange(
        process: asyncio.subprocess.Process, message: dict[str, Any], timeout_s: float
    ) -> dict[str, Any]:
        assert process.stdin is not None
        assert process.stdout is not None
        process.stdin.write(json.dumps(message).encode() + b"\n")
        await process.stdin.drain()
        async with asyncio.timeout(timeout_s):
            line = await process.stdout.readline()
        if not line:
            raise RuntimeError(f"the vendor process exited (status {await process.wait()})")
        reply: dict[str, Any] = json.loads(line)
        if "error" in reply:
            raise RuntimeError(f"the vendor process failed: {reply['error']}")
        return reply

    async def set_latency(self, latency_ms: float) -> None:
        """Every system answers ``latency_ms`` later than it otherwise would."""
        await self._exchange(self.process, {"op": "latency", "ms": latency_ms}, 30)

    async def rss(self) -> int:
        reply = await self._exchange(self.process, {"op": "rss"}, 30)
        return int(reply["rss_bytes"])

    async def stop(self) -> None:
        if self.process.returncode is None:
            assert self.process.stdin is not None
            try:
                self.process.stdin.write(b'{"op": "stop"}\n')
                await self.process.stdin.drain()
                async with asyncio.timeout(10):
                    await self.process.wait()
            except (TimeoutError, ConnectionError):
                await self._terminate(self.process)

    @staticmethod
    async def _terminate(process: asyncio.subprocess.Process) -> None:
        if process.returncode is None:
            process.kill()
            await process.wait()


# -- the vendor process's side ---------------------------------------------------------------------


def _clone_systems(plan: WorldPlan) -> list[tuple[str, str, Agency, str, list[Record]]]:
    from hub.demo.world import generate_world

    world = generate_world(size=plan.size, seed=plan.seed)
    template = world.system(TEMPLATE_SYSTEM)
    records = world.records[TEMPLATE_SYSTEM]
    owners = [world.agency(s.agency) for s in world.systems if s.kind.endswith("-rms")]
    owners = list({a.ori: a for a in owners}.values())
    return [
        (f"rms-{i:02d}", TEMPLATE_KIND, owners[i % len(owners)], template.api_key, records)
        for i in range(plan.systems)
    ]


def _wide_systems(plan: WorldPlan) -> list[tuple[str, str, Agency, str, list[Record]]]:
    from hub.demo.world import generate_world

    # Enough people in the template system for ``plan.records`` of them.
    size = max(plan.size, plan.records * 20)
    world = generate_world(size=size, seed=plan.seed)
    template = world.system(TEMPLATE_SYSTEM)
    persons = [r for r in world.records[TEMPLATE_SYSTEM] if isinstance(r, Person)]
    if len(persons) < plan.records:
        raise ValueError(f"the template system holds only {len(persons)} persons")
    renamed: list[Record] = [
        msgspec.structs.replace(
            p,
            name=PersonName(given=p.name.given, middle=p.name.middle, surname=WIDE_SURNAME),
            aliases=(),
            tags=frozenset(),
        )
        for p in persons[: plan.records]
    ]
    owners = [world.agency(s.agency) for s in world.systems if s.kind.endswith("-rms")]
    owners = list({a.ori: a for a in owners}.values())
    share = -(-plan.records // plan.systems)
    return [
        (
            f"wide-{i:02d}",
            TEMPLATE_KIND,
            owners[i % len(owners)],
            template.api_key,
            renamed[i * share : (i + 1) * share],
        )
        for i in range(plan.systems)
    ]


def _demo_systems(plan: WorldPlan) -> list[tuple[str, str, Agency, str, list[Record]]]:
    from hub.demo.world import generate_world

    world = generate_world(size=plan.size, seed=plan.seed)
    return [
        (s.name, s.kind, world.agency(s.agency), s.api_key, world.records.get(s.name, []))
        for s in world.systems
    ]


def _texts(systems: Sequence[tuple[str, str, Agency, str, list[Record]]]) -> list[str]:
    surnames: Counter[str] = Counter()
    for *_, records in systems:
        for record in records:
            if isinstance(record, Person) and record.name.surname:
                surnames[record.name.surname] += 1
    return [name for name, _ in surnames.most_common(64)]


async def _serve(plan: WorldPlan, commands: asyncio.StreamReader) -> None:
    from hub.demo.runner import simulator_class
    from hub.demo.simulator import Simulator

    started = time.perf_counter()
    build = {"demo": _demo_systems, "clones": _clone_systems, "wide": _wide_systems}[plan.shape]
    systems = build(plan)
    simulators: list[Simulator] = []
    sources = []
    try:
        for name, kind, agency, api_key, records in systems:
            sim = simulator_class(kind)(
                system_name=name,
                agency=agency,
                records=records,
                api_key=api_key,
                latency_ms=plan.latency_ms,
            )
            url = await sim.start("127.0.0.1")
            simulators.append(sim)
            sources.append(
                {
                    "name": name,
                    "kind": kind,
                    "agency": msgspec.to_builtins(agency),
                    "url": url,
                    "api_key": api_key,
                }
            )
        # The world is built for good: keep the collector from rescanning millions of records
        # (at 1M records a full collection stalls every simulator for seconds, which would be
        # charged to whichever request was waiting).
        gc.collect()
        gc.freeze()
        texts = [WIDE_SURNAME] if plan.shape == "wide" else _texts(systems)
        if plan.shape == "demo" and "Reyes" in texts:
            # The worked example of the README leads.
            texts.remove("Reyes")
            texts.insert(0, "Reyes")
        _reply(
            asdict(
                VendorsInfo(
                    sources=sources,
                    texts=texts,
                    records=sum(len(s[4]) for s in systems),
                    rss_bytes=rss_bytes(),
                    build_s=round(time.perf_counter() - started, 3),
                )
            )
        )
        while line := await commands.readline():
            command = json.loads(line)
            op = command.get("op")
            if op == "stop":
                break
            if op == "latency":
                for sim in simulators:
                    sim.latency_ms = float(command["ms"])
                _reply({"ok": True})
            elif op == "rss":
                _reply({"rss_bytes": rss_bytes()})
            else:
                _reply({"error": f"unknown command {op!r}"})
    finally:
        for sim in simulators:
            await sim.stop()


def _reply(message: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(message) + "\n")
    sys.stdout.flush()


async def _main() -> None:
    loop = asyncio.get_running_loop()
    commands = asyncio.StreamReader(limit=1024 * 1024)
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(commands), sys.stdin)
    first = await commands.readline()
    if not first:
        return
    try:
        plan = WorldPlan(**json.loads(first))
    except (TypeError, ValueError) as exc:
        _reply({"error": f"bad plan: {exc}"})
        return
    try:
        await _serve(plan, commands)
    except Exception as exc:
        _reply({"error": f"{type(exc).__name__}: {exc}"})
        raise


if __name__ == "__main__":
    asyncio.run(_main())
