"""Tables for people and JSON for machines."""

from __future__ import annotations

import json
import math

import pytest

from bench.report import (
    Column,
    ScenarioResult,
    Table,
    Target,
    render_json,
    render_table,
    render_text,
)


def _table() -> Table:
    table = Table("t", [Column("hub"), Column("p50", "ms"), Column("ratio", "ratio")])
    table.add("both on", 12.345, 1.2345)
    table.add("both off", 1234.5, math.nan)
    return table


def test_table_aligns_columns_and_formats_units() -> None:
    lines = render_table(_table()).splitlines()
    assert lines[0] == "t"
    assert lines[1].split() == ["hub", "p50", "ms", "ratio"]
    assert lines[3].split() == ["both", "on", "12.3", "1.23"]
    # A figure that could not be measured reads "-", never "nan".
    assert lines[4].split() == ["both", "off", "1234.5", "-"]
    assert len({len(line) for line in lines[1:3]}) == 1


def test_a_row_must_fill_every_column() -> None:
    with pytest.raises(ValueError, match="2 values for 3 columns"):
        _table().add("x", 1.0)


def test_targets() -> None:
    assert Target("a", 1.1, 1.15, "<=").met
    assert not Target("a", 1.2, 1.15, "<=").met
    assert Target("b", 0.6, 0.5, ">=").met
    assert not Target("b", math.nan, 0.5, ">=").met
    assert "NOT MET" in Target("a", 1.2, 1.15, "<=").describe()


def test_json_carries_rows_by_column_and_targets() -> None:
    result = ScenarioResult("wide", "title", tables=[_table()])
    result.targets.append(Target("x", 1.0, 1.3, "<="))
    unavailable = ScenarioResult("cache", "title", unavailable="no cache yet")
    document = json.loads(render_json([result, unavailable], quick=True, command="hub bench all"))
    assert document["quick"] is True
    assert document["machine"]["cpus"] >= 1
    wide, cache = document["scenarios"]
    assert wide["available"] is True
    assert wide["tables"][0]["rows"][0] == {"hub": "both on", "p50": 12.345, "ratio": 1.2345}
    assert wide["tables"][0]["rows"][1]["ratio"] is None
    assert wide["targets"] == [
        {"name": "x", "value": 1.0, "limit": 1.3, "comparison": "<=", "met": True}
    ]
    assert cache["available"] is False
    assert cache["unavailable"] == "no cache yet"


def test_text_says_why_a_scenario_did_not_run() -> None:
    text = render_text(ScenarioResult("cache", "title", unavailable="no cache yet"))
    assert text.splitlines()[-1] == "not available: no cache yet"
    failed = render_text(ScenarioResult("fanout", "title", error="RuntimeError: boom"))
    assert "FAILED: RuntimeError: boom" in failed
