"""Every scenario runs in a tiny configuration and reports the right shape (no timing asserts)."""

from __future__ import annotations

import json
import math

import pytest
from click.testing import CliRunner

from bench.report import ScenarioResult, Target, describe_machine, render_json, render_text
from bench.runner import exit_code, loop_factory, run, run_scenarios, scenario_names
from bench.scenarios import SCENARIOS
from bench.scenarios.cache import unavailable_reason
from hub.cli import main

# Figures the issues set a target on, by scenario.
TARGETED = {"fanout", "overhead", "wide", "audit"}


def test_names() -> None:
    assert scenario_names("all") == ["fanout", "overhead", "wide", "audit", "cache", "scale"]
    assert scenario_names("wide") == ["wide"]
    with pytest.raises(ValueError, match="unknown scenario"):
        scenario_names("nope")


def test_cli_refuses_an_unknown_scenario() -> None:
    result = CliRunner().invoke(main, ["bench", "nope"])
    assert result.exit_code == 2
    assert "unknown scenario 'nope'" in result.output


@pytest.mark.parametrize("name", list(SCENARIOS))
async def test_scenario_shape(name: str) -> None:
    (result,) = await run_scenarios([name], quick=True, tiny=True, verbose=False, strict=True)
    assert result.name == name
    assert result.error is None
    if name == "cache" and unavailable_reason() is not None:
        assert result.unavailable == unavailable_reason()
        assert render_text(result).endswith(f"not available: {result.unavailable}")
        return
    assert result.unavailable is None
    assert result.tables
    for table in result.tables:
        assert table.rows
        for row in table.rows:
            assert len(row) == len(table.columns)
        for column in table.columns:
            if column.unit in ("ms", "ratio", "rps", "MB"):
                values = [r[table.columns.index(column)] for r in table.rows]
                assert all(isinstance(v, float) and not math.isnan(v) for v in values), column
    if name == "cache":
        # Warm answers all came from the cache, cold and cache-off ones from the vendors.
        from_cache = {row[0]: row[-1].split("/") for row in result.tables[0].rows}
        assert from_cache["warm"][0] == from_cache["warm"][1] != "0"
        assert from_cache["cold"][0] == from_cache["cache off"][0] == "0"
    if name in TARGETED:
        assert result.targets
        assert all(isinstance(t.met, bool) for t in result.targets)
    document = json.loads(render_json([result], quick=True, command=f"hub bench {name}"))
    (scenario,) = document["scenarios"]
    assert scenario["available"] is True
    assert [len(t["rows"]) for t in scenario["tables"]] == [len(t.rows) for t in result.tables]
    assert render_text(result).startswith(f"== {name}: ")


def test_a_missed_required_target_fails_the_run_and_a_missed_goal_does_not() -> None:
    goal = ScenarioResult("wide", "t", targets=[Target("ratio", 2.0, 1.3, "<=")])
    check = ScenarioResult("leaks", "t", targets=[Target("leaks", 3.0, 0, "<=", required=True)])
    passed = ScenarioResult("leaks", "t", targets=[Target("leaks", 0.0, 0, "<=", required=True)])
    assert exit_code([goal]) == 0
    assert exit_code([goal, check]) == 1
    assert exit_code([passed]) == 0
    assert exit_code([ScenarioResult("x", "t", error="boom")]) == 1


def test_the_hubs_under_test_run_on_what_hub_serve_runs_on() -> None:
    # uvicorn's loop="auto" and http="auto" (hub serve) take uvloop and httptools when they are
    # installed; the runner's loop is the hubs' loop, and the report says which it was.
    uvloop = pytest.importorskip("uvloop")
    pytest.importorskip("httptools")
    assert loop_factory() is uvloop.new_event_loop
    assert ", uvloop, httptools," in describe_machine()
    assert run([], quick=True) == []  # the runner starts and stops its uvloop loop cleanly
