"""Imports point one way (README, Layout): leaf modules, then trust, access and audit, adapters,
what workers share, the demo world, resolvers, the edge, the command; ``bench`` beside them all.
And what ``hub serve`` imports loads neither the demo world (nor Faker) nor the benchmarks."""

from __future__ import annotations

import ast
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

# A module imports only what ranks below its own; the modules of one package import each other.
RANKS: dict[str, int] = {
    "hub.errors": 0,
    "hub.secret": 0,
    "hub.ncic": 0,
    "hub.context": 0,
    "hub.model": 1,
    "hub.settings": 2,
    "hub.trust": 3,
    "hub.access": 3,
    "hub.audit": 3,
    "hub.linkage": 3,
    "hub.adapters": 4,
    "hub.shared": 5,
    "hub.demo": 6,
    "hub.live": 6,  # watches, hot lists, live delivery: over access, audit, adapters, shared
    "hub.oversight": 6,  # reviews, notices, the transparency report: over audit and adapters
    "resolvers": 7,
    "hub.edge": 8,
    "hub.cli": 9,
    "hub.__main__": 10,  # `python -m hub`: runs the command
    "bench": 10,
}
# The imports that run upward, each lazy (inside a function): the command that runs the
# benchmarks imports them when it runs.
UPWARD = {("hub.cli", "bench")}


def _unit(module: str) -> str:
    """The entry of RANKS a module belongs to."""
    parts = module.split(".")
    for n in range(len(parts), 0, -1):
        if ".".join(parts[:n]) in RANKS:
            return ".".join(parts[:n])
    if module == "hub":
        return "hub"
    raise AssertionError(f"{module} has no place in RANKS")


@dataclass(frozen=True)
class Import:
    importer: str
    imported: str
    line: int
    lazy: bool  # inside a function, or only for type checking


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _imports(path: Path) -> list[Import]:
    name = _module_name(path)
    tree = ast.parse(path.read_text(), str(path))
    found: list[Import] = []

    def visit(nodes: list[ast.AST], lazy: bool) -> None:
        for node in nodes:
            if isinstance(node, ast.Import):
                found.extend(Import(name, a.name, node.lineno, lazy) for a in node.names)
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                # "from hub import model" imports hub.model
                targets = (
                    [f"{node.module}.{a.name}" for a in node.names]
                    if node.module in ("hub", "resolvers", "bench")
                    else [node.module]
                )
                found.extend(Import(name, t, node.lineno, lazy) for t in targets)
            elif isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
                visit(list(node.body), True)
                visit(list(node.orelse), lazy)
            else:
                inner = lazy or isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
                visit(list(ast.iter_child_nodes(node)), inner)

    visit([tree], False)
    return [i for i in found if i.imported.split(".")[0] in ("hub", "resolvers", "bench")]


def _sources() -> list[Path]:
    return sorted(p for d in ("hub", "resolvers", "bench") for p in (ROOT / d).rglob("*.py"))


ALL = [i for path in _sources() for i in _imports(path)]


def _upward(imp: Import) -> str | None:
    """Why ``imp`` runs against the order, or None."""
    importer, imported = _unit(imp.importer), _unit(imp.imported)
    if importer == imported or imported == "hub":
        return None
    if (importer, imported) in UPWARD:
        return None if imp.lazy else "upward, and at import time"
    return None if RANKS[imported] < RANKS[importer] else "upward"


def test_imports_point_one_way() -> None:
    assert len(ALL) > 200  # the scan found the imports
    wrong = [
        f"{i.importer} (line {i.line}) imports {i.imported}: {why}"
        for i in ALL
        if (why := _upward(i)) is not None
    ]
    assert wrong == []


def test_only_the_demo_wiring_imports_the_demo_world() -> None:
    outside = [
        i for i in ALL
        if _unit(i.imported) == "hub.demo" and _unit(i.importer) not in ("hub.demo", "bench")
    ]  # fmt: skip
    # hub.cli: `hub audit demo-history` and the demo world's source kinds, when they run.
    assert {i.importer for i in outside} <= {"hub.edge.app", "hub.edge.runtime", "hub.cli"}
    assert all(i.lazy for i in outside), [i for i in outside if not i.lazy]


def test_the_leaves_import_nothing_of_the_hub_but_leaves() -> None:
    for imp in ALL:
        assert imp.importer not in ("hub.errors", "hub.secret", "hub.ncic", "hub.context"), imp
        if imp.importer == "hub.model":
            assert imp.imported == "hub.errors"
        if imp.importer == "hub.settings":
            assert imp.imported in ("hub.errors", "hub.model", "hub.secret")


@pytest.mark.parametrize("module", ["hub.edge.app", "hub.cli"])
def test_serving_loads_no_demo_world_and_no_benchmarks(module: str) -> None:
    # A fresh interpreter: this one has long imported everything.
    probe = (
        f"import sys, {module}\n"
        "loaded = sorted(m for m in sys.modules if m.split('.')[0] in ('faker', 'bench')"
        " or m.startswith('hub.demo'))\n"
        "print(loaded)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=120, cwd=ROOT
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"
