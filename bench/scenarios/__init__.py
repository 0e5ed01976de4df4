"""The benchmark scenarios, by name, in the order ``hub bench all`` runs them.

Each module has ``NAME``, ``TITLE`` and ``async def run(ctx: BenchContext) -> ScenarioResult``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from types import ModuleType

from bench.context import BenchContext
from bench.report import ScenarioResult

from . import (
    audit,
    audit_query,
    cache,
    differential,
    fanout,
    leaks,
    linkage,
    overhead,
    scale,
    stream,
    wide,
)

Scenario = Callable[[BenchContext], Awaitable[ScenarioResult]]

_MODULES: tuple[ModuleType, ...] = (
    fanout, overhead, wide, audit, cache, scale, stream, leaks, audit_query, linkage, differential,
)  # fmt: skip

SCENARIOS: dict[str, Scenario] = {m.NAME: m.run for m in _MODULES}
TITLES: dict[str, str] = {m.NAME: m.TITLE for m in _MODULES}
# What `hub bench all` runs: the performance ratios. `leaks` (10,000 outsider cases, about five
# minutes) is a check of the access rules, run by its name; so is `audit-query` (PostgreSQL
# loaded with a million audit entries: a few minutes, and a database server); so is `linkage`
# (entity resolution scored against the demo world's truth, not a ratio: about two minutes);
# so is `stream` (time to first hit of a streaming search; its slow source: a second a sample);
# so is `differential` (the compiled executor against graphql-core: thousands of random cases).
PERFORMANCE: tuple[str, ...] = tuple(
    m.NAME for m in _MODULES if m not in (leaks, audit_query, linkage, stream, differential)
)
