"""The benchmark scenarios, by name, in the order ``hub bench all`` runs them.

Each module has ``NAME``, ``TITLE`` and ``async def run(ctx: BenchContext) -> ScenarioResult``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from types import ModuleType

from bench.context import BenchContext
from bench.report import ScenarioResult

from . import audit, cache, fanout, leaks, overhead, scale, wide

Scenario = Callable[[BenchContext], Awaitable[ScenarioResult]]

_MODULES: tuple[ModuleType, ...] = (fanout, overhead, wide, audit, cache, scale, leaks)

SCENARIOS: dict[str, Scenario] = {m.NAME: m.run for m in _MODULES}
TITLES: dict[str, str] = {m.NAME: m.TITLE for m in _MODULES}
# What `hub bench all` runs: the performance ratios. `leaks` (10,000 outsider cases, about five
# minutes) is a check of the access rules, run by its name.
PERFORMANCE: tuple[str, ...] = tuple(m.NAME for m in _MODULES if m is not leaks)
