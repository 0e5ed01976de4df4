"""Packaging: honest, reproducible dependencies, and a wheel that runs.

- constraints.txt pins every distribution the README's commands install, every extra included;
  constraints-lowest.txt pins pyproject.toml's lower bounds, and the suite's core passes on them.
- The stale ``casbin`` distribution (the same module, unmaintained) is never beside ``pycasbin``.
- The built wheel, installed in a fresh virtualenv and another directory, serves the demo with
  the access policy the wheel carries, and ``python -m hub`` is the ``hub`` command.

After adding or changing a requirement, ``.ci/constraints`` regenerates both constraints files.
"""

from __future__ import annotations

import importlib.metadata
import json
import os
import shutil
import signal
import subprocess
import sys
import time
import tomllib
import urllib.error
import urllib.request
import zipfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest
from packaging.requirements import Requirement
from packaging.utils import NormalizedName, canonicalize_name
from packaging.version import Version

from tests.ports import free_port

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
CONSTRAINTS = ROOT / "constraints.txt"
LOWEST = ROOT / "constraints-lowest.txt"

# The README's worked example.
SEARCH = (
    '{ search(text: "Reyes") { hits { __typename ... on Person { name { given middle surname } '
    "dateOfBirth ssn provenance { agency { ori } system { name } } } ... on RecordPointer { kind "
    "owner { ori name } contact } } sources { source status count latencyMs message } } }"
)
REYES_AGENCIES = {"CA0990000", "WA0990100", "OR0990200"}

# What the lowest versions run (about 40 s): every dependency exercised (the app end to end over
# HTTP with the demo world, the command, the policy, XML and JSON vendor protocols, Redis, audit,
# tokens, federation's _entities between two hub processes).
LOWEST_SUBSET = [
    "tests/edge/test_app.py",
    "tests/edge/test_app_shared.py",
    "tests/edge/test_app_production.py",
    "tests/test_cli.py",
    "tests/access/test_cases.py",
    "tests/access/test_loader.py",
    "tests/access/test_policy.py",
    "tests/adapters/test_keystone.py",
    "tests/adapters/test_northwind.py",
    "tests/adapters/test_registry.py",
    "tests/shared/test_redis_link.py",
    "tests/shared/test_cache.py",
    "tests/audit",
    "tests/trust",
    "tests/demo/test_world.py",
    "tests/resolvers/test_catalogue.py",
    "tests/federation/test_partner_adapter.py",
    "tests/federation/test_two_hubs.py",
]

SKIP_WHEN_COPYING = shutil.ignore_patterns(
    ".git", ".venv", "venv", "tests", "node_modules", "__pycache__", "*.egg-info", "build",
    "dist", "var", ".*_cache", ".hypothesis", "*.pyc",
)  # fmt: skip


# -- the pins --------------------------------------------------------------------------------------


def _pins_of(text: str, where: str) -> dict[str, Version]:
    """The ``name==version`` lines of a constraints file whose markers hold here."""
    pins: dict[str, Version] = {}
    for line in text.splitlines():
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        req = Requirement(line)
        if req.marker is not None and not req.marker.evaluate():
            continue
        (spec,) = req.specifier
        assert spec.operator == "==", f"{where}: {line} is not a pin"
        pins[canonicalize_name(req.name)] = Version(spec.version)
    return pins


def _pins(path: Path) -> dict[str, Version]:
    return _pins_of(path.read_text(encoding="utf-8"), path.name)


def _declared(*extras: str) -> list[Requirement]:
    """pyproject.toml's requirements: the dependencies and those of ``extras``."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    lines = list(project["dependencies"])
    for extra in extras:
        lines += project["optional-dependencies"][extra]
    return [Requirement(line) for line in lines]


def _applies(req: Requirement, extras: set[str]) -> bool:
    if req.marker is None:
        return True
    return any(req.marker.evaluate({"extra": e}) for e in extras | {""})


def test_constraints_pin_everything_the_test_command_installs() -> None:
    """Every distribution ``pip install -c constraints.txt -e '.[test]'`` brings is pinned, at
    the version installed here."""
    pins = _pins(CONSTRAINTS)
    seen: set[NormalizedName] = set()
    walked: set[tuple[str, frozenset[str]]] = set()
    problems: list[str] = []
    todo: list[tuple[str, frozenset[str]]] = [("hub", frozenset({"test"}))]
    while todo:
        name, extras = todo.pop()
        if (name, extras) in walked:
            continue
        walked.add((name, extras))
        try:
            dist = importlib.metadata.distribution(name)
        except importlib.metadata.PackageNotFoundError:
            problems.append(f"{name} is required but not installed")
            continue
        for line in dist.requires or []:
            req = Requirement(line)
            key = canonicalize_name(req.name)
            if key != "hub" and _applies(req, set(extras)):
                seen.add(key)
                todo.append((key, frozenset(req.extras)))
    for key in sorted(seen):
        try:
            installed = Version(importlib.metadata.version(key))
        except importlib.metadata.PackageNotFoundError:
            continue  # reported above
        if key not in pins:
            problems.append(f"{key} {installed} is installed but not pinned")
        elif pins[key] != installed:
            problems.append(f"{key}: {installed} installed, {pins[key]} pinned")
    assert problems == [], "constraints.txt is out of date: run .ci/constraints"


def test_constraints_cover_every_extra_and_the_build() -> None:
    """Every extra's requirements resolve within constraints.txt (nothing unpinned), and the
    build backend is pinned (for ``PIP_CONSTRAINT=constraints.txt``: pip's ``-c`` does not reach
    its isolated build)."""
    uv = _uv()
    done = subprocess.run(
        [uv, "pip", "compile", "pyproject.toml", "--all-extras", "--universal", "--no-header",
         "--no-annotate", "--quiet", "-c", str(CONSTRAINTS)],
        cwd=ROOT, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    pins = _pins(CONSTRAINTS)
    resolved = _pins_of(done.stdout, "uv pip compile")
    unpinned = {k: str(v) for k, v in resolved.items() if pins.get(k) != v}
    assert unpinned == {}, "constraints.txt is out of date: run .ci/constraints"
    build = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["build-system"]
    for line in build["requires"]:
        req = Requirement(line)
        assert req.specifier.contains(pins[canonicalize_name(req.name)]), line


def test_the_lowest_pins_are_the_declared_lower_bounds() -> None:
    """constraints-lowest.txt installs exactly the oldest release each requirement allows."""
    lowest = _pins(LOWEST)
    wrong = {}
    for req in _declared("test"):
        floors = [Version(s.version) for s in req.specifier if s.operator == ">="]
        key = canonicalize_name(req.name)
        if not floors:
            continue
        if lowest.get(key) != max(floors):
            wrong[key] = f"{req.specifier} declared, {lowest.get(key)} in {LOWEST.name}"
    assert wrong == {}, f"{LOWEST.name} is out of date: run .ci/constraints"


def test_the_stale_casbin_distribution_is_never_installed() -> None:
    """``casbin`` (unmaintained) and ``pycasbin`` both install the module casbin; only pycasbin
    may provide it."""
    with pytest.raises(importlib.metadata.PackageNotFoundError):
        importlib.metadata.distribution("casbin")
    assert importlib.metadata.packages_distributions()["casbin"] == ["pycasbin"]
    assert all(canonicalize_name(r.name) != "casbin" for r in _declared("test", "dev", "otlp"))


# -- the wheel -------------------------------------------------------------------------------------


def _uv() -> str:
    found = BIN / "uv"
    if found.exists():
        return str(found)
    which = shutil.which("uv")
    assert which, "uv is a test dependency: pip install -c constraints.txt -e '.[test]'"
    return which


def _run(args: list[str], *, cwd: Path, env: Mapping[str, str], timeout: float) -> str:
    done = subprocess.run(
        args, cwd=cwd, env=dict(env), capture_output=True, text=True, timeout=timeout
    )
    assert done.returncode == 0, f"{' '.join(args)}:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    return done.stdout


def _clean_env(*, redis: bool = False, **extra: str) -> dict[str, str]:
    """This environment without the hub's settings (nor REDIS_URL, unless ``redis``) and
    without this virtualenv."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("HUB_", "PYTEST_", "VIRTUAL_ENV", "PYTHON"))
        and (redis or k != "REDIS_URL")
    }
    env["PATH"] = os.pathsep.join(
        p for p in env.get("PATH", "").split(os.pathsep) if Path(p) != BIN
    )
    env.update(extra)
    return env


def _http(url: str, body: Any = None, headers: Mapping[str, str] | None = None) -> Any:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, headers=dict(headers or {}))
    with urllib.request.urlopen(request, timeout=30) as resp:
        return json.loads(resp.read() or b"null")


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The hub's wheel, built (``pip wheel --no-deps``) from a copy of this tree: the build
    leaves nothing in the working tree."""
    base = tmp_path_factory.mktemp("wheel")
    source = base / "source"
    shutil.copytree(ROOT, source, ignore=SKIP_WHEN_COPYING, symlinks=True)
    env = _clean_env(PIP_CONSTRAINT=str(CONSTRAINTS))  # pins the build backend too
    _run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-input", "-q", "-w",
         str(base / "dist"), str(source)],
        cwd=base, env=env, timeout=300,
    )  # fmt: skip
    (built,) = (base / "dist").glob("hub-*.whl")
    return built


@pytest.mark.slow
def test_the_wheel_carries_the_policy_its_data_and_the_license(wheel: Path) -> None:
    names = set(zipfile.ZipFile(wheel).namelist())
    policies = {p.name for p in (ROOT / "policies").iterdir() if p.is_file() and p.name[0] != "."}
    assert {n.removeprefix("hub/policies/") for n in names if n.startswith("hub/policies/")} == (
        policies
    )
    assert "hub/__main__.py" in names
    data = {
        path.relative_to(ROOT).as_posix()
        for package in ("hub", "resolvers", "bench")
        for path in (ROOT / package).rglob("*")
        if path.is_file()
        and path.suffix not in (".py", ".pyc")
        and not any(part.startswith((".", "__pycache__")) for part in path.relative_to(ROOT).parts)
    }
    assert data - names == set(), (
        "package data left out of the wheel: [tool.setuptools.package-data]"
    )
    assert any(n.endswith(".dist-info/licenses/LICENSE") for n in names)
    assert not any(n.startswith(("tests/", "policies/")) for n in names)
    metadata = next(n for n in names if n.endswith(".dist-info/METADATA"))
    text = zipfile.ZipFile(wheel).read(metadata).decode()
    assert "License-Expression: Apache-2.0" in text


@pytest.fixture(scope="module")
def installed(wheel: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh virtualenv with the wheel installed (dependencies from constraints.txt): its
    python. Installed by uv (a test dependency), which installs a wheel as pip does in a
    fraction of the time: the wheel is what is tested here, not the installer."""
    uv = _uv()
    venv = tmp_path_factory.mktemp("venv") / "hub"
    _run([uv, "venv", "-q", "--python", sys.executable, str(venv)], cwd=venv.parent,
         env=_clean_env(), timeout=120)  # fmt: skip
    python = venv / "bin" / "python"
    _run(
        [uv, "pip", "install", "-q", "--python", str(python), "-c", str(CONSTRAINTS), str(wheel)],
        cwd=venv.parent, env=_clean_env(), timeout=600,
    )  # fmt: skip
    return python


@pytest.fixture
def elsewhere(tmp_path: Path) -> Path:
    """A working directory away from the checkout: nothing of it is importable from there."""
    where = tmp_path / "elsewhere"
    where.mkdir()
    return where


@pytest.mark.slow
def test_the_installed_wheel_finds_its_policy_and_only_pycasbin(
    installed: Path, elsewhere: Path
) -> None:
    probe = (
        "import importlib.metadata as m, hub\n"
        "from hub.access.policy import default_policy_dir\n"
        "print(hub.__file__)\n"
        "print(default_policy_dir())\n"
        "print(m.packages_distributions()['casbin'])\n"
    )
    out = _run([str(installed), "-c", probe], cwd=elsewhere, env=_clean_env(), timeout=60)
    module, policy, casbin = out.splitlines()
    venv = installed.parent.parent
    assert Path(module).is_relative_to(venv)
    assert Path(policy).is_relative_to(venv)
    assert Path(policy).name == "policies"
    assert (Path(policy) / "model.conf").is_file()
    assert casbin == "['pycasbin']"


@pytest.mark.slow
def test_the_installed_wheel_serves_the_readme_example(
    installed: Path, elsewhere: Path, tmp_path: Path
) -> None:
    """``python -m hub serve`` from another directory, the demo world and the shipped policy;
    ``python -m hub token``; the README's search for Reyes finds him in three agencies."""
    port = free_port()
    env = _clean_env(HUB_VAR_DIR=str(tmp_path / "var"), HUB_PORT=str(port))
    log = tmp_path / "serve.log"
    with log.open("wb") as out:
        server = subprocess.Popen(
            [str(installed), "-m", "hub", "serve"],
            cwd=elsewhere, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
    try:
        _wait_healthy(server, f"http://127.0.0.1:{port}/healthz", log, within_s=60)
        token = _run(
            [str(installed), "-m", "hub", "token", "--user", "analyst1", "--agency", "CA0990000",
             "--roles", "analyst"],
            cwd=elsewhere, env=env, timeout=60,
        ).strip()  # fmt: skip
        answer = _http(
            f"http://127.0.0.1:{port}/graphql",
            {"query": SEARCH},
            {
                "Authorization": f"Bearer {token}",
                "X-Purpose": "C",
                "X-Case-Number": "26-001234",
                "Content-Type": "application/json",
            },
        )
    finally:
        _stop(server)
    hits = answer["data"]["search"]["hits"]
    reyes = {
        h["provenance"]["agency"]["ori"]
        for h in hits
        if h["__typename"] == "Person" and h["name"]["surname"] == "Reyes"
    }
    assert reyes == REYES_AGENCIES, json.dumps(answer)[:3000]


def _wait_healthy(server: subprocess.Popen[bytes], url: str, log: Path, within_s: float) -> None:
    deadline = time.monotonic() + within_s
    while time.monotonic() < deadline:
        if server.poll() is not None:
            pytest.fail(f"hub serve exited ({server.returncode}):\n{log.read_text()[-3000:]}")
        try:
            _http(url)
            return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            time.sleep(0.2)
    pytest.fail(f"hub serve did not answer {url} within {within_s} s:\n{log.read_text()[-3000:]}")


def _stop(server: subprocess.Popen[bytes]) -> None:
    """SIGTERM to the server's own process group (by its id), SIGKILL if it lingers."""
    if server.poll() is None:
        os.killpg(server.pid, signal.SIGTERM)
        try:
            server.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait(timeout=15)


# -- the lowest versions ---------------------------------------------------------------------------


@pytest.mark.slow
def test_the_lowest_allowed_versions_pass_the_core_of_the_suite(tmp_path: Path) -> None:
    """pyproject.toml's lower bounds (constraints-lowest.txt), installed together into a fresh
    virtualenv with this checkout (editable), run LOWEST_SUBSET."""
    uv = _uv()
    venv = tmp_path / "lowest"
    env = _clean_env(redis=True)
    _run([uv, "venv", "-q", "--python", sys.executable, str(venv)], cwd=tmp_path, env=env,
         timeout=120)  # fmt: skip
    python = venv / "bin" / "python"
    _run(
        [uv, "pip", "install", "-q", "--python", str(python), "-c", str(LOWEST), "-e", str(ROOT),
         "pytest", "pytest-asyncio", "pytest-xdist", "hypothesis"],
        cwd=tmp_path, env=env, timeout=600,
    )  # fmt: skip
    versions = _run(
        [str(python), "-c",
         "import importlib.metadata as m, json; "
         "print(json.dumps({d.metadata['Name']: d.version for d in m.distributions()}))"],
        cwd=tmp_path, env=env, timeout=60,
    )  # fmt: skip
    got = {canonicalize_name(k): Version(v) for k, v in json.loads(versions).items()}
    lowest = _pins(LOWEST)
    runtime = [canonicalize_name(r.name) for r in _declared() if _applies(r, set())]
    assert {k: got.get(k) for k in runtime} == {k: lowest[k] for k in runtime}
    done = subprocess.run(
        [str(python), "-m", "pytest", "-q", "-x", "-p", "no:cacheprovider", *LOWEST_SUBSET],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout[-5000:] + done.stderr[-3000:]
