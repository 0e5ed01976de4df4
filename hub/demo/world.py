"""The seeded demo world: fictional agencies, their systems, and the records each system holds.

INTERFACE (fixed; generation is filled in by ``generate_world``).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from hub.model import Agency, EntityKind, Record


@dataclass(frozen=True, slots=True)
class SystemSpec:
    """One simulated vendor system of one agency."""

    name: str  # the source name, e.g. "marin-rms"
    kind: str  # the adapter kind, e.g. "northwind-rms"
    agency: str  # owning ORI
    api_key: str  # the credential the simulator expects (demo only, deterministic)
    entity_kinds: frozenset[EntityKind]


@dataclass(slots=True)
class World:
    seed: int
    size: int
    region: str
    agencies: list[Agency]
    systems: list[SystemSpec]
    # system name -> the canonical records that system holds (ids made with that system's name)
    records: dict[str, list[Record]] = field(default_factory=dict)

    def agency(self, ori: str) -> Agency:
        return next(a for a in self.agencies if a.ori == ori)


def generate_world(size: int = 2000, seed: int = 1, region: str = "west") -> World:
    raise NotImplementedError
