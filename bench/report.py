"""What a scenario found, as a table for people and as JSON for machines."""

from __future__ import annotations

import importlib.util
import json
import math
import os
import platform
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

Unit = Literal["text", "int", "ms", "ratio", "rps", "MB", "s"]

_SUFFIXED = ("ms", "rps", "MB", "s")
_FORMATS: dict[str, str] = {
    "int": "{:,.0f}",
    "ms": "{:.1f}",
    "ratio": "{:.2f}",
    "rps": "{:,.0f}",
    "MB": "{:,.0f}",
    "s": "{:.1f}",
}


@dataclass(frozen=True, slots=True)
class Column:
    name: str
    unit: Unit = "text"


@dataclass(slots=True)
class Table:
    title: str
    columns: list[Column]
    rows: list[list[Any]] = field(default_factory=list)

    def add(self, *values: Any) -> None:
        if len(values) != len(self.columns):
            raise ValueError(f"{self.title}: {len(values)} values for {len(self.columns)} columns")
        self.rows.append(list(values))

    def records(self) -> list[dict[str, Any]]:
        return [
            {c.name: _plain(v) for c, v in zip(self.columns, row, strict=True)} for row in self.rows
        ]


@dataclass(frozen=True, slots=True)
class Target:
    """A figure the issues ask for, and whether this run met it."""

    name: str
    value: float
    limit: float
    comparison: Literal["<=", ">="]
    # A check rather than a goal (0 leaks): a run that misses it exits non-zero.
    required: bool = False

    @property
    def met(self) -> bool:
        if math.isnan(self.value):
            return False
        return self.value <= self.limit if self.comparison == "<=" else self.value >= self.limit

    def describe(self) -> str:
        verdict = "met" if self.met else "NOT MET"
        return f"{self.name}: {self.value:.2f} (target {self.comparison} {self.limit:g}) {verdict}"


@dataclass(slots=True)
class ScenarioResult:
    name: str
    title: str
    tables: list[Table] = field(default_factory=list)
    targets: list[Target] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    # None when the scenario ran; otherwise why it could not ("not available: ...").
    unavailable: str | None = None
    error: str | None = None
    seconds: float = 0.0
    settings: dict[str, Any] = field(default_factory=dict)

    def as_json(self) -> dict[str, Any]:
        return {
            "scenario": self.name,
            "title": self.title,
            "available": self.unavailable is None and self.error is None,
            "unavailable": self.unavailable,
            "error": self.error,
            "seconds": round(self.seconds, 2),
            "settings": self.settings,
            "tables": [
                {
                    "title": t.title,
                    "columns": [asdict(c) for c in t.columns],
                    "rows": t.records(),
                }
                for t in self.tables
            ],
            "targets": [
                {
                    "name": t.name,
                    "value": _plain(t.value),
                    "limit": t.limit,
                    "comparison": t.comparison,
                    "met": t.met,
                }
                for t in self.targets
            ],
            "notes": self.notes,
        }


def _plain(value: Any) -> Any:
    if isinstance(value, float):
        return None if math.isnan(value) else round(value, 4)
    return value


def _cell(value: Any, unit: Unit) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    if unit in _FORMATS and isinstance(value, int | float):
        return _FORMATS[unit].format(value)
    return str(value)


def render_table(table: Table) -> str:
    headers = [f"{c.name} {c.unit}" if c.unit in _SUFFIXED else c.name for c in table.columns]
    cells = [
        [_cell(v, c.unit) for v, c in zip(row, table.columns, strict=True)] for row in table.rows
    ]
    widths = [max(len(h), *(len(r[i]) for r in cells)) for i, h in enumerate(headers)]
    right = [c.unit != "text" for c in table.columns]

    def line(values: Sequence[str]) -> str:
        return "  ".join(
            v.rjust(w) if r else v.ljust(w) for v, w, r in zip(values, widths, right, strict=True)
        ).rstrip()

    out = [table.title, line(headers), line(["-" * w for w in widths])]
    out += [line(r) for r in cells]
    return "\n".join(out)


def render_text(result: ScenarioResult) -> str:
    head = f"== {result.name}: {result.title}"
    if result.error is not None:
        return f"{head}\nFAILED: {result.error}"
    if result.unavailable is not None:
        return f"{head}\nnot available: {result.unavailable}"
    parts = [f"{head}  ({result.seconds:.1f} s)"]
    parts += [render_table(t) for t in result.tables]
    if result.targets:
        parts.append("\n".join(f"target  {t.describe()}" for t in result.targets))
    if result.notes:
        parts.append("\n".join(f"note    {n}" for n in result.notes))
    return "\n\n".join(parts)


def machine() -> dict[str, Any]:
    """Where the figures were measured."""
    return {
        "python": platform.python_version(),
        "implementation": platform.python_implementation(),
        "system": f"{platform.system()} {platform.release()}",
        "machine": platform.machine(),
        "cpus": os.cpu_count(),
        "load_average": [round(x, 2) for x in os.getloadavg()]
        if hasattr(os, "getloadavg")
        else None,
        # What the hubs under test run on: the runner's loop, uvicorn's http="auto".
        "event_loop": "uvloop" if importlib.util.find_spec("uvloop") else "asyncio",
        "http_parser": "httptools" if importlib.util.find_spec("httptools") else "h11",
    }


def describe_machine() -> str:
    m = machine()
    load = m["load_average"]
    return (
        f"{m['implementation']} {m['python']}, {m['event_loop']}, {m['http_parser']}, "
        f"{m['cpus']} CPUs, {m['system']}" + (f", load {load[0]:.2f}" if load else "")
    )


def render_json(results: Sequence[ScenarioResult], *, quick: bool, command: str) -> str:
    return json.dumps(
        {
            "command": command,
            "quick": quick,
            "machine": machine(),
            "scenarios": [r.as_json() for r in results],
        },
        indent=2,
    )
