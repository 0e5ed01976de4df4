"""The benchmark scenarios, by name, in the order ``hub bench all`` runs them.

Each module has ``NAME``, ``TITLE`` and ``async def run(ctx: BenchContext) -> ScenarioResult``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from types import ModuleType

from hub.bench.context import BenchContext
from hub.bench.report import ScenarioResult

from . import audit, cache, fanout, overhead, scale, wide

Scenario = Callable[[BenchContext], Awaitable[ScenarioResult]]

_MODULES: tuple[ModuleType, ...] = (fanout, overhead, wide, audit, cache, scale)

SCENARIOS: dict[str, Scenario] = {m.NAME: m.run for m in _MODULES}
TITLES: dict[str, str] = {m.NAME: m.TITLE for m in _MODULES}
