"""Start the demo world's simulated vendor systems on loopback and describe them as sources.

``start_demo`` is how the platform starts the demo world: the app's lifespan imports it when the
settings ask for the demo world, and nothing else of the platform imports ``hub.demo``.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field

from hub.demo.simulator import Simulator
from hub.demo.world import World, generate_world, today
from hub.model import Agency
from hub.secret import Secret
from hub.settings import DemoSettings, SourceConfig

# adapter kind -> the simulator that speaks that protocol
SIMULATORS: dict[str, str] = {
    "northwind-rms": "hub.demo.northwind:NorthwindSimulator",
    "keystone-rms": "hub.demo.keystone:KeystoneSimulator",
    "beacon-cad": "hub.demo.beacon:BeaconSimulator",
    "sentinel-alpr": "hub.demo.sentinel:SentinelSimulator",
}


def simulator_class(kind: str) -> type[Simulator]:
    module_name, _, attr = SIMULATORS[kind].partition(":")
    cls = getattr(importlib.import_module(module_name), attr)
    assert isinstance(cls, type)
    assert issubclass(cls, Simulator)
    return cls


@dataclass(slots=True)
class RunningWorld:
    world: World
    simulators: dict[str, Simulator] = field(default_factory=dict)
    sources: tuple[SourceConfig, ...] = ()

    @property
    def agencies(self) -> dict[str, Agency]:
        return {a.ori: a for a in self.world.agencies}

    async def stop(self) -> None:
        for sim in self.simulators.values():
            await sim.stop()


async def start_world(
    world: World, host: str = "127.0.0.1", latency_ms: float = 0.0, timeout_ms: int = 1500
) -> RunningWorld:
    """Every system of the world as a real aiohttp server on ``host`` (ephemeral ports)."""
    running = RunningWorld(world)
    sources = []
    try:
        for system in world.systems:
            sim = simulator_class(system.kind)(
                system_name=system.name,
                agency=world.agency(system.agency),
                records=world.records.get(system.name, []),
                api_key=system.api_key,
                latency_ms=latency_ms,
            )
            url = await sim.start(host)
            running.simulators[system.name] = sim
            sources.append(
                SourceConfig(
                    name=system.name,
                    kind=system.kind,
                    agency=world.agency(system.agency),
                    url=url,
                    api_key=Secret(system.api_key),
                    timeout_ms=timeout_ms,
                    # The simulated vendor may push expungement and sealing notices with its key.
                    options={"notice_key": system.api_key},
                )
            )
    except BaseException:
        await running.stop()
        raise
    running.sources = tuple(sources)
    return running


async def start_demo(demo: DemoSettings, world: World | None = None) -> RunningWorld:
    """The demo world the settings describe (or ``world``), its systems started on loopback."""
    the_world = world or generate_world(
        size=demo.size, seed=demo.seed, region=demo.region, as_of=today()
    )
    return await start_world(the_world, latency_ms=demo.latency_ms)
