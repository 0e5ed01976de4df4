"""differential: the compiled execution path (``resolvers.compiled``) against graphql-core.

Two parts, in one run:

- **cases**: the differential tests (``tests/resolvers/test_compiled.py``) with thousands of
  random documents instead of the suite's hundreds: each document, drawn from the schema by the
  no-leak tests' generator (with @include/@skip added at random), is executed by both executors
  for a random subject, and the responses (data, errors, extensions) and what the audit trail is
  told must be identical. Run by pytest in a subprocess: the generator is hypothesis, a test
  dependency (``pip install -e '.[test]'``); without it, or without the tests (an installed
  wheel), the part is reported not available. Target: 0 differences (a check: a run that finds
  one exits non-zero).
- **speed**: the wide query (1,000 persons x 20 fields, policies on) executed in-process by both
  schemas over the same vendors, sampled in turn: the time of ``schema.execute`` and the ratio
  compiled / graphql-core (the HTTP edge and the audit trail are the same for both and left out).
"""

from __future__ import annotations

import asyncio
import dataclasses
import importlib.util
import json
import os
import re
import sys
from pathlib import Path
from typing import Any

from bench.context import BenchContext
from bench.hubs import SUBJECT_AGENCY, SUBJECT_ROLES, HubVariant, serve_hubs
from bench.measure import interleaved_latency, ratio
from bench.report import Column, ScenarioResult, Table, Target
from bench.scenarios.wide import WIDE_QUERY
from bench.vendors import WIDE_SURNAME, VendorProcess, WorldPlan
from hub.context import RequestContext, Subject
from hub.settings import ExecutionSettings
from resolvers.context import HubContext
from resolvers.schema import build_schema

NAME = "differential"
TITLE = "compiled execution vs graphql-core: identical answers (target 0 differences), speed"
TESTS = Path(__file__).resolve().parents[2] / "tests" / "resolvers" / "test_compiled.py"
RANDOM_TESTS = "random_documents or planted_examples"
SOURCES = 4


def cases_unavailable() -> str | None:
    """Why the random cases cannot run here, or None."""
    if not TESTS.is_file():
        return f"the differential tests are not here ({TESTS}): run from a source checkout"
    for module in ("pytest", "hypothesis"):
        if importlib.util.find_spec(module) is None:
            return f"{module} is not installed: pip install -e '.[test]'"
    return None


async def run_cases(per_test: int) -> tuple[int, int, str]:
    """(cases run, cases that differed, pytest's last lines) for ``per_test`` examples per test."""
    env = {**os.environ, "HUB_DIFFERENTIAL_EXAMPLES": str(per_test)}
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "pytest", str(TESTS), "-q", "-p", "no:cacheprovider",
        "-k", RANDOM_TESTS, "--hypothesis-show-statistics",
        cwd=str(TESTS.parents[2]), env=env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
    )  # fmt: skip
    output, _ = await process.communicate()
    text = output.decode(errors="replace")
    # hypothesis's statistics, per test and phase: "- 500 passing, 0 failing, and 3 invalid ..."
    counts = [(int(p), int(f)) for p, f in re.findall(r"(\d+) passing, (\d+) failing", text)]
    passing = sum(p for p, _ in counts)
    failing = sum(f for _, f in counts)
    if process.returncode != 0 and failing == 0:
        failing = 1  # pytest failed otherwise (a fixture, an import): counted, never hidden
    tail = "\n".join(text.strip().splitlines()[-3:])
    return passing + failing, failing, tail


async def run(ctx: BenchContext) -> ScenarioResult:
    per_test = ctx.pick(500, 2500, tiny=3)
    records = ctx.pick(1000, 1000, tiny=40)
    samples = ctx.pick(5, 30, tiny=2)
    result = ScenarioResult(
        NAME,
        TITLE,
        settings={"cases per test": per_test, "records": records, "samples": samples},
    )
    speed = Table(
        f"schema.execute of one search returning {records:,} persons, in process",
        [Column("executor"), Column("p50", "ms"), Column("p99", "ms")],
    )
    figures = Table(
        "compiled / graphql-core",
        [Column("figure"), Column("p50 ratio", "ratio"), Column("p99 ratio", "ratio")],
    )
    result.tables += [speed, figures]

    plan = WorldPlan(shape="wide", systems=SOURCES, records=records)
    variant = HubVariant("both on", policies=True, audit=True)
    async with await VendorProcess.start(plan) as vendors:
        sources = vendors.info.source_configs(timeout_ms=30_000)
        async with serve_hubs(
            ctx.scratch(NAME), sources, vendors.info.agencies(), [variant], ctx.session
        ) as hubs:
            runtime = hubs[variant.label].runtime
            base = runtime.settings
            executors = {
                label: build_schema(
                    dataclasses.replace(base, execution=ExecutionSettings(compiled=compiled))
                )
                for label, compiled in (("graphql-core", False), ("compiled", True))
            }
            subject = Subject(
                user_id="bench", name="bench", ori=SUBJECT_AGENCY, state=SUBJECT_AGENCY[:2],
                roles=frozenset(SUBJECT_ROLES),
            )  # fmt: skip
            request = RequestContext(subject=subject, purpose="C")
            variables = {"text": WIDE_SURNAME, "limit": records}

            async def execute(label: str) -> str:
                context = HubContext(runtime.services, request)
                answer = await executors[label].execute(
                    WIDE_QUERY, variables, context_value=context
                )
                errors = [e.formatted for e in answer.errors or []]
                return json.dumps({"data": answer.data, "errors": errors})

            answers = {label: await execute(label) for label in executors}
            if answers["compiled"] != answers["graphql-core"]:
                result.targets.append(Target("wide query differences", 1, 0, "<=", True))
            ctx.progress(f"differential: {samples} samples of each executor")

            def probe(label: str) -> Any:
                return lambda: execute(label)

            stats = await interleaved_latency(
                {label: probe(label) for label in executors}, samples, warmup=1, collect=True
            )
    for label, stat in stats.items():
        speed.add(label, stat.median * 1000, stat.p99 * 1000)
    figures.add(
        "schema.execute time",
        ratio(stats["compiled"].median, stats["graphql-core"].median),
        ratio(stats["compiled"].p99, stats["graphql-core"].p99),
    )

    unavailable = cases_unavailable()
    cases = Table("random documents through both executors", [Column("figure"), Column("n")])
    result.tables.append(cases)
    if unavailable is not None:
        cases.add("not run", unavailable)
    else:
        ctx.progress(f"differential: {2 * per_test:,} random cases (pytest, hypothesis)")
        ran, differed, tail = await run_cases(per_test)
        cases.add("cases run", f"{ran:,}")
        cases.add("cases that differed", f"{differed:,}")
        result.targets.append(Target("random cases that differed", differed, 0, "<=", True))
        if differed:
            result.notes.append(f"pytest: {tail}")
    result.notes.append(
        "speed: the same search for an analyst of CA0990000 (purpose C), both schemas over the "
        "same vendors, sampled in turn with a full garbage collection before each; cases: "
        "hypothesis draws subjects and documents afresh each run (a difference is printed with "
        "its document by pytest -k 'random_documents or planted_examples')"
    )
    return result
