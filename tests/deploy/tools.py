"""What the deployment tests share: where deploy/ is, and finding the tools they run.

A tool the tests need but cannot find skips the test with the reason, on a developer's machine;
under CI (``CI=true``) it fails it, so a CI run without the tool cannot pass by skipping.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
KUBERNETES = DEPLOY / "kubernetes"
# The virtualenv that runs the tests: its console scripts (hub, hadolint, docker-compose).
VENV_BIN = Path(sys.executable).parent


def in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() == "true"


def missing(reason: str, *, required_in_ci: bool = True) -> None:
    """Skip (fail under CI=true, unless ``required_in_ci`` is False) for a missing tool."""
    if in_ci() and required_in_ci:
        pytest.fail(f"{reason} (CI=true: this environment must provide it)")
    pytest.skip(reason)


def find_tool(name: str, *, extra_dirs: tuple[str, ...] = ()) -> str | None:
    """``name`` from the test virtualenv, then PATH, then ``extra_dirs`` (/usr/sbin is not on
    every user's PATH)."""
    local = VENV_BIN / name
    if local.is_file() and os.access(local, os.X_OK):
        return str(local)
    found = shutil.which(name)
    if found:
        return found
    for directory in extra_dirs:
        candidate = Path(directory) / name
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return str(candidate)
    return None


def need_tool(name: str, how: str, *, required_in_ci: bool = True) -> str:
    path = find_tool(name, extra_dirs=("/usr/sbin", "/usr/local/sbin"))
    if path is None:
        missing(f"{name} is not installed ({how})", required_in_ci=required_in_ci)
    assert path is not None
    return path


def need_module(name: str, package: str) -> None:
    if importlib.util.find_spec(name) is None:
        missing(f"the Python package {package} is not installed (a [test] dependency)")


def haproxy() -> str:
    return need_tool(
        "haproxy",
        "Debian: apt-get install -y haproxy; .ci/run installs it",
    )


def hub_executable() -> str:
    """The hub console script of the virtualenv running the tests (pip install -e .)."""
    path = find_tool("hub")
    assert path, "the hub console script is not installed (pip install -e .)"
    return path
