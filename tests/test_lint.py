"""The code standards are part of the test command: ruff clean and ruff-formatted everywhere,
mypy --strict clean on hub/, resolvers/ and bench/."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, cwd=ROOT, capture_output=True, text=True, timeout=300)


@pytest.mark.slow
def test_ruff_clean() -> None:
    result = _run(str(BIN / "ruff"), "check", "hub", "resolvers", "bench", "tests")
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.slow
def test_ruff_formatted() -> None:
    result = _run(str(BIN / "ruff"), "format", "--check", "hub", "resolvers", "bench", "tests")
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.slow
def test_mypy_strict_clean() -> None:
    result = _run(str(BIN / "mypy"), "--strict", "hub", "resolvers", "bench")
    assert result.returncode == 0, result.stdout + result.stderr
