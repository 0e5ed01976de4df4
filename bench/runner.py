"""Run scenarios one after another in one event loop, each in isolation from the last."""

from __future__ import annotations

import asyncio
import gc
import logging
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from bench.context import BenchContext
from bench.hubs import client_session
from bench.report import ScenarioResult, describe_machine, render_json, render_text
from bench.scenarios import PERFORMANCE, SCENARIOS, TITLES

ALL = "all"


def scenario_names(choice: str) -> list[str]:
    """The scenarios ``choice`` names: one of ``SCENARIOS`` or ``all``."""
    if choice == ALL:
        return list(PERFORMANCE)
    if choice not in SCENARIOS:
        raise ValueError(f"unknown scenario {choice!r}; one of {', '.join([*SCENARIOS, ALL])}")
    return [choice]


def _quiet_logs() -> None:
    # Casbin logs every denied decision at WARNING the first time it is asked; a benchmark's
    # output is its table. uvicorn's own errors still show.
    logging.getLogger("casbin").setLevel(logging.ERROR)


async def run_scenarios(
    names: Sequence[str],
    *,
    quick: bool,
    tiny: bool = False,
    verbose: bool = True,
    strict: bool = False,
) -> list[ScenarioResult]:
    """Each scenario's result; a scenario that fails is reported as failed and the rest still
    run, unless ``strict`` (tests), where the failure is raised."""
    _quiet_logs()
    results = []
    with tempfile.TemporaryDirectory(prefix="hub-bench-") as scratch:
        async with client_session() as session:
            ctx = BenchContext(
                quick=quick, base_dir=Path(scratch), session=session, tiny=tiny, verbose=verbose
            )
            for name in names:
                ctx.progress(f"{name}: {TITLES[name]}")
                started = time.perf_counter()
                try:
                    result = await SCENARIOS[name](ctx)
                except Exception as exc:
                    result = ScenarioResult(
                        name, TITLES[name], error=f"{type(exc).__name__}: {exc}"
                    )
                    if strict:
                        raise
                result.seconds = time.perf_counter() - started
                results.append(result)
                # What one scenario left behind must not be collected during the next one.
                gc.collect()
    return results


def loop_factory() -> Callable[[], asyncio.AbstractEventLoop] | None:
    """uvloop's event loop where it is installed, as `hub serve` runs (uvicorn's loop="auto"):
    the hubs under test run in this process's loop. None: asyncio's own."""
    try:
        import uvloop
    except ImportError:
        return None
    return uvloop.new_event_loop


def run(names: Sequence[str], *, quick: bool, tiny: bool = False) -> list[ScenarioResult]:
    with asyncio.Runner(loop_factory=loop_factory()) as runner:
        return runner.run(run_scenarios(names, quick=quick, tiny=tiny))


def main(choice: str, *, quick: bool, as_json: bool) -> int:
    """``hub bench``: run, print the tables (to stderr with ``--json``, which owns stdout)."""
    names = scenario_names(choice)
    results = run(names, quick=quick)
    text = "\n\n".join(render_text(r) for r in results)
    command = f"hub bench {choice}" + (" --quick" if quick else "")
    head = f"{command}  ({describe_machine()})\n"
    if as_json:
        print(head, text, sep="\n", file=sys.stderr)
        print(render_json(results, quick=quick, command=command))
    else:
        print(head, text, sep="\n")
    return exit_code(results)


def exit_code(results: Sequence[ScenarioResult]) -> int:
    """1 when a scenario failed to run or missed a required target (a check, not a goal)."""
    failed = any(r.error is not None for r in results)
    missed = any(t.required and not t.met for r in results for t in r.targets)
    return 1 if failed or missed else 0
