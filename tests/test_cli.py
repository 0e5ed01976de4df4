"""The operator's commands: ``hub serve`` refuses a bad start in one line, says what it loaded,
and ``hub token`` mints only tokens the hub it sits next to accepts."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import shutil
import subprocess
import sys
import time
import urllib.request
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import jwt
import pytest
from click.testing import CliRunner, Result
from starlette.applications import Starlette

from hub import cli
from hub.access.catalogue import ROLES
from hub.access.policy import default_policy_dir
from hub.edge.app import build_verifier
from hub.errors import ConfigError
from hub.settings import load_settings
from tests.ports import free_port

HUB = Path(sys.executable).parent / "hub"

SOURCE = """
mode = "dev"
[agencies.CA0990000]
name = "Marin Valley Sheriff's Office"
state = "CA"
[sources.marin-rms]
kind = "northwind-rms"
agency = "CA0990000"
url = "https://rms.example.org"
timeout_ms = 900
"""


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No setting from the developer's shell, and a working directory of the test's own."""
    for name in list(os.environ):
        if name.startswith("HUB_") or name == "REDIS_URL":
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)


@pytest.fixture
def no_uvicorn(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    """uvicorn.run replaced: records what it would have served."""
    import uvicorn

    calls: list[dict[str, Any]] = []

    def run(app: object, **kwargs: Any) -> None:
        calls.append({"app": app, **kwargs})

    monkeypatch.setattr(uvicorn, "run", run)
    return calls


def _invoke(*args: str, env: dict[str, str] | None = None) -> Result:
    return CliRunner().invoke(cli.main, list(args), env=env)


def _one_error_line(result: Result) -> str:
    """The refusal: exit status 1, exactly one line on stderr, no traceback."""
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output
    assert not isinstance(result.exception, Exception) or isinstance(
        result.exception, SystemExit
    ), result.exception
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    return lines[0]


def _write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


# -- hub serve: refused before uvicorn starts -------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("[limts]\nmax_depth = 5\n", "unknown key [limts] — did you mean [limits]?"),
        ('prot = 8001\nmode = "dev"\n', "unknown key prot — did you mean port?"),
        ('mdoe = "dev"\n', "unknown key mdoe — did you mean mode?"),
        (
            SOURCE.replace("timeout_ms", "tiemout_ms"),
            "sources.marin-rms.tiemout_ms: unknown key — did you mean timeout_ms?",
        ),
        ('mode = "dev"\nport = 70000\n', "port must be a whole number from 1 to 65535"),
        (SOURCE.replace("= 900", "= -5"), "sources.marin-rms.timeout_ms must be a whole number"),
        (
            SOURCE.replace('"northwind-rms"', '"northwnd-rms"'),
            "sources.marin-rms.kind: no adapter 'northwnd-rms' is installed",
        ),
        (SOURCE + 'api_key = "${MARIN_RMS_KEY}"\n', "refers to ${MARIN_RMS_KEY}, which is not set"),
        (SOURCE + 'page_size = "lots"\n', "page_size must be a whole number from 1 to"),
        ("this is not toml", "hub.toml: not valid TOML"),
    ],
)
def test_serve_refuses_a_bad_config_in_one_line(
    tmp_path: Path, no_uvicorn: list[dict[str, Any]], text: str, expected: str
) -> None:
    config = _write(tmp_path / "hub.toml", text)
    line = _one_error_line(_invoke("serve", "--config", str(config)))
    assert expected in line
    assert line.startswith(f"Error: {config}")
    assert not no_uvicorn  # never got as far as listening


def test_an_unknown_adapter_kind_says_which_are_installed(
    tmp_path: Path, no_uvicorn: list[dict[str, Any]]
) -> None:
    config = _write(tmp_path / "hub.toml", SOURCE.replace('"northwind-rms"', '"northwnd-rms"'))
    line = _one_error_line(_invoke("serve", "--config", str(config)))
    assert "installed: " in line
    assert "keystone-rms" in line
    assert line.endswith("did you mean 'northwind-rms'?")


def test_environment_overrides_are_checked_like_the_file(
    no_uvicorn: list[dict[str, Any]],
) -> None:
    line = _one_error_line(_invoke("serve", env={"HUB_PORT": "80800"}))
    assert line == "Error: HUB_PORT must be a whole number from 1 to 65535, not '80800'"
    line = _one_error_line(_invoke("serve", env={"HUB_MODE": "mdoe"}))
    assert "HUB_MODE must be one of demo, dev, production, not 'mdoe'" in line
    assert _invoke("serve", "--port", "0").exit_code == 2  # click: not in 1..65535
    assert not no_uvicorn


def test_a_missing_policy_directory_is_one_line(
    tmp_path: Path, no_uvicorn: list[dict[str, Any]]
) -> None:
    missing = tmp_path / "no-such-policies"
    line = _one_error_line(_invoke("serve", env={"HUB_POLICY_DIR": str(missing)}))
    assert line == (
        f"Error: policy directory {missing} does not exist (policy_dir, $HUB_POLICY_DIR)"
    )
    assert not no_uvicorn


def test_a_policy_file_that_does_not_load_is_one_line(
    tmp_path: Path, no_uvicorn: list[dict[str, Any]]
) -> None:
    policies = tmp_path / "policies"
    shutil.copytree(default_policy_dir(), policies)
    with (policies / "agencies.yaml").open("a", encoding="utf-8") as out:
        out.write("\n  XX: [unclosed\n")
    line = _one_error_line(_invoke("serve", env={"HUB_POLICY_DIR": str(policies)}))
    assert line.startswith(f"Error: policy {policies}: agencies.yaml")
    assert not no_uvicorn


def test_serve_with_no_config_starts_the_demo(
    tmp_path: Path, no_uvicorn: list[dict[str, Any]]
) -> None:
    result = _invoke("serve")
    assert result.exit_code == 0, result.output
    (call,) = no_uvicorn
    assert isinstance(call["app"], cli.StartupReport)
    assert (call["host"], call["port"]) == ("127.0.0.1", 8000)
    # the hub's own loggers are shown at INFO, through uvicorn's handler
    assert call["log_config"]["loggers"]["hub"]["level"] == "INFO"
    # the key tokens are verified with exists before the hub listens: hub token finds it
    assert (tmp_path / "var" / "demo-signing-key.pem").exists()
    assert "hub token --user analyst1" in result.stderr


# -- what the running hub says ------------------------------------------------------------------


async def _lifespan(app: cli.StartupReport) -> list[dict[str, Any]]:
    """Drive the ASGI lifespan through startup: the messages the server receives."""
    sent: list[dict[str, Any]] = []
    inbox: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    await inbox.put({"type": "lifespan.startup"})

    async def receive() -> dict[str, Any]:
        return await inbox.get()

    async def send(message: Any) -> None:
        sent.append(message)
        if message["type"] == "lifespan.startup.complete":
            await inbox.put({"type": "lifespan.shutdown"})

    # Starlette re-raises a failure after reporting it; uvicorn then exits.
    with contextlib.suppress(ConfigError):
        await app({"type": "lifespan", "asgi": {"version": "3.0"}, "state": {}}, receive, send)
    return sent


async def test_the_startup_summary_is_logged_at_info(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    settings = load_settings(None, env={"HUB_VAR_DIR": str(tmp_path / "var")})
    runtime = SimpleNamespace(
        settings=settings,
        services=SimpleNamespace(
            adapters=[SimpleNamespace(name="marin-rms"), SimpleNamespace(name="cascade-cad")],
            gate=SimpleNamespace(version="0123abcd"),
        ),
    )

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        app.state.hub = runtime
        yield

    with caplog.at_level(logging.INFO, logger="hub"):
        sent = await _lifespan(cli.StartupReport(Starlette(lifespan=lifespan)))
    assert sent[0] == {"type": "lifespan.startup.complete"}
    (record,) = [r for r in caplog.records if r.name == "hub.cli"]
    assert record.levelno == logging.INFO
    message = record.getMessage()
    assert message.startswith("hub started: mode demo; 2 sources (marin-rms, cascade-cad); ")
    assert f"policy {default_policy_dir().absolute()} version 0123abcd" in message
    assert f"audit log {(tmp_path / 'var' / 'audit').absolute()}" in message
    assert "Redis no" in message
    assert str((tmp_path / "var" / "demo-signing-key.pem").absolute()) in message


async def test_a_failure_inside_the_lifespan_reaches_uvicorn_as_one_line() -> None:
    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        raise ConfigError("a shared cache needs cache.key (HUB_CACHE_KEY) in production")
        yield

    sent = await _lifespan(cli.StartupReport(Starlette(lifespan=lifespan)))
    assert sent == [
        {
            "type": "lifespan.startup.failed",
            "message": "hub: a shared cache needs cache.key (HUB_CACHE_KEY) in production",
        }
    ]


def test_the_summary_never_shows_a_password() -> None:
    assert cli._location("redis://:s3cret@redis.example:6379/0#hub:audit") == (
        "redis://redis.example:6379/0#hub:audit"
    )


# -- hub token ------------------------------------------------------------------------------------


@pytest.fixture
def served_key(tmp_path: Path, no_uvicorn: list[dict[str, Any]]) -> Path:
    """The key a `hub serve` in this directory made when it started."""
    assert _invoke("serve").exit_code == 0
    return tmp_path / "var" / "demo-signing-key.pem"


def _claims(token: str) -> dict[str, Any]:
    claims: dict[str, Any] = jwt.decode(token, options={"verify_signature": False})
    return claims


def test_token_mints_what_the_hub_next_to_it_accepts(tmp_path: Path, served_key: Path) -> None:
    result = _invoke("token", "--user", "analyst1", "--agency", "ca0990000", "--roles", "analyst")
    assert result.exit_code == 0, result.output
    assert result.stderr == ""
    token = result.stdout.strip()
    verifier = build_verifier(load_settings(None, env={}))  # what `hub serve` here verifies with
    subject = asyncio.run(verifier.verify(token))
    assert (subject.user_id, subject.ori, subject.state) == ("analyst1", "CA0990000", "CA")
    assert subject.roles == {"analyst"}


def test_token_refuses_a_role_the_hub_does_not_know(served_key: Path) -> None:
    result = _invoke("token", "--user", "u", "--agency", "CA0990000", "--roles", "analyst,analsyt")
    line = _one_error_line(result)
    assert "role 'analsyt' is not one the hub knows — did you mean 'analyst'?" in line
    assert ", ".join(ROLES) in line
    assert "--force" in line
    assert result.stdout == ""


def test_token_refuses_an_agency_that_is_not_a_participant(served_key: Path) -> None:
    result = _invoke("token", "--user", "u", "--agency", "TX0990000", "--roles", "analyst")
    line = _one_error_line(result)
    assert f"agency TX0990000 is not a participant of the policy in {default_policy_dir()}" in line
    assert result.stdout == ""


def test_force_mints_it_anyway_and_says_what_is_wrong(served_key: Path) -> None:
    result = _invoke(
        "token", "--user", "u", "--agency", "TX0990000", "--roles", "wizard", "--force"
    )
    assert result.exit_code == 0, result.output
    claims = _claims(result.stdout.strip())
    assert (claims["ori"], claims["roles"]) == ("TX0990000", ["wizard"])
    assert "role 'wizard' is not one the hub knows" in result.stderr
    assert "agency TX0990000 is not a participant" in result.stderr


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["--agency", "TX99", "--roles", "analyst"], "--agency 'TX99' is not an ORI"),
        (["--agency", "CA0990000", "--roles", " , "], "--roles names no role"),
        (["--agency", "CA0990000", "--roles", "analyst", "--state", "Cal"], "two-letter"),
    ],
)
def test_token_refuses_what_no_hub_accepts_even_with_force(
    served_key: Path, args: list[str], expected: str
) -> None:
    line = _one_error_line(_invoke("token", "--user", "u", *args, "--force"))
    assert expected in line


def test_token_help_lists_the_roles_and_the_key_rule() -> None:
    result = _invoke("token", "--help")
    assert result.exit_code == 0
    text = " ".join(result.output.split())
    for role in ROLES:
        assert role in text
    assert "VAR_DIR/demo-signing-key.pem" in text
    assert "$HUB_VAR_DIR, else var_dir in the config" in text
    assert "--create-key" in text


def test_token_without_the_hubs_key_makes_none(tmp_path: Path) -> None:
    """Run elsewhere than `hub serve`, it used to make a key of its own, quietly."""
    result = _invoke("token", "--user", "u", "--agency", "CA0990000", "--roles", "analyst")
    line = _one_error_line(result)
    key = tmp_path / "var" / "demo-signing-key.pem"
    assert f"no signing key at {key}" in line
    assert "--create-key" in line
    assert not key.exists()
    assert result.stdout == ""


def test_create_key_makes_the_key_serve_then_uses(tmp_path: Path) -> None:
    var_dir = tmp_path / "east" / "var"
    env = {"HUB_VAR_DIR": str(var_dir)}
    result = _invoke(
        "token", "--user", "svc", "--agency", "WA0990100", "--roles", "partner-hub",
        "--create-key", env=env,
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    key = var_dir / "demo-signing-key.pem"
    assert result.stderr.strip() == (
        f"hub token: made a new signing key {key}; a hub serve with this var_dir "
        f"($HUB_VAR_DIR = {var_dir}) will accept its tokens"
    )
    settings = load_settings(None, env=env)
    assert settings.demo_key_path == key
    subject = asyncio.run(build_verifier(settings).verify(result.stdout.strip()))
    assert subject.roles == {"partner-hub"}
    # The key exists now: a second token says nothing more.
    again = _invoke("token", "--user", "u", "--agency", "WA0990100", "--roles", "analyst",
                    env=env)  # fmt: skip
    assert again.exit_code == 0
    assert again.stderr == ""


def test_token_and_serve_read_var_dir_from_the_same_config(
    tmp_path: Path, no_uvicorn: list[dict[str, Any]]
) -> None:
    config = _write(tmp_path / "hub.toml", 'mode = "dev"\nvar_dir = "west/var"\n')
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    assert _invoke("serve", "--config", str(config)).exit_code == 0
    key = tmp_path / "west" / "var" / "demo-signing-key.pem"
    assert key.exists()
    args = ("token", "--user", "u", "--agency", "CA0990000", "--roles", "analyst")
    by_option = _invoke(*args, "--config", str(config))
    by_env = _invoke(*args, env={"HUB_CONFIG": str(config)})
    assert by_option.exit_code == by_env.exit_code == 0
    verifier = build_verifier(load_settings(config, env={}))
    for result in (by_option, by_env):
        asyncio.run(verifier.verify(result.stdout.strip()))
    # From another directory the relative var_dir is another directory: refused, not made.
    os.chdir(elsewhere)
    refused = _invoke(*args, "--config", str(config))
    assert refused.exit_code == 1
    assert f"no signing key at {elsewhere / 'west' / 'var' / 'demo-signing-key.pem'}" in (
        refused.stderr
    )
    assert f"var_dir = west/var in {config}" in refused.stderr


def test_token_refuses_when_an_identity_provider_issues_them(tmp_path: Path) -> None:
    config = _write(
        tmp_path / "hub.toml", '[auth]\njwks_url = "https://idp.example.org/jwks.json"\n'
    )
    line = _one_error_line(
        _invoke("token", "--config", str(config), "--user", "u", "--agency", "CA0990000",
                "--roles", "analyst")
    )  # fmt: skip
    assert "identity provider" in line


# -- the real command, as an operator runs it -----------------------------------------------------


def _run_hub(
    *args: str, cwd: Path, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("HUB_")}
    return subprocess.run([str(HUB), *args], cwd=cwd, capture_output=True, text=True,
                          timeout=120, env={**clean, **(env or {})})  # fmt: skip


def test_hub_serve_with_a_bad_config_prints_one_line_and_exits(tmp_path: Path) -> None:
    _write(tmp_path / "hub.toml", 'mode = "dev"\n[limits]\nmax_depth = 8\n[limts]\nmax_cost = 9\n')
    done = _run_hub("serve", "--config", "hub.toml", cwd=tmp_path)
    assert done.returncode != 0
    assert "Traceback" not in done.stderr + done.stdout
    assert done.stderr.splitlines() == [
        "Error: hub.toml: unknown key [limts] — did you mean [limits]?"
    ]


def test_hub_serve_with_an_unknown_adapter_prints_one_line_and_exits(tmp_path: Path) -> None:
    _write(tmp_path / "hub.toml", SOURCE.replace('"northwind-rms"', '"acme-rms"'))
    done = _run_hub("serve", "--config", "hub.toml", cwd=tmp_path)
    assert done.returncode != 0
    assert "Traceback" not in done.stderr + done.stdout
    (line,) = done.stderr.splitlines()
    assert line.startswith("Error: hub.toml: sources.marin-rms.kind: no adapter 'acme-rms'")


@pytest.fixture
def demo_hub(tmp_path: Path) -> Iterator[tuple[str, subprocess.Popen[str], Path]]:
    """`hub serve` with no config, as the README starts it: (url, process, its log)."""
    port = free_port()
    log = tmp_path / "serve.log"
    clean = {k: v for k, v in os.environ.items() if not k.startswith("HUB_")}
    with log.open("w") as out:
        process = subprocess.Popen(
            [str(HUB), "serve", "--port", str(port)], cwd=tmp_path, stdout=out,
            stderr=subprocess.STDOUT, text=True, env={**clean, "HUB_DEMO_SIZE": "300"},
        )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            assert process.poll() is None, log.read_text()
            try:
                with urllib.request.urlopen(f"{url}/healthz", timeout=2) as resp:
                    if resp.status == 200:
                        break
            except OSError:
                pass
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.2)
        yield url, process, log
    finally:
        process.terminate()
        try:
            process.wait(15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def test_the_readme_demo_serve_then_token(
    tmp_path: Path, demo_hub: tuple[str, subprocess.Popen[str], Path]
) -> None:
    url, _, log = demo_hub
    minted = _run_hub(
        "token", "--user", "analyst1", "--agency", "CA0990000", "--roles", "analyst",
        cwd=tmp_path,
    )  # fmt: skip
    assert minted.returncode == 0, minted.stderr
    request = urllib.request.Request(
        f"{url}/graphql",
        data=json.dumps(
            {"query": '{ search(text: "Reyes") { sources { source status } } }'}
        ).encode(),
        headers={
            "Authorization": f"Bearer {minted.stdout.strip()}",
            "X-Purpose": "C",
            "X-Case-Number": "26-001234",
            "Content-Type": "application/json",
        },
    )
    with urllib.request.urlopen(request, timeout=30) as resp:
        body = json.loads(resp.read())
    assert resp.status == 200
    assert len(body["data"]["search"]["sources"]) == 7
    # What it loaded, one INFO line, through the logging module.
    summary = [line for line in log.read_text().splitlines() if "hub started:" in line]
    assert len(summary) == 1, log.read_text()
    assert summary[0].startswith("INFO:")
    assert "mode demo; 7 sources (marin-rms, " in summary[0]
    assert f"policy {default_policy_dir()} version " in summary[0]
    assert "Redis no" in summary[0]
    # From another directory, hub token makes no key of its own (the hub would reject it).
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    refused = _run_hub(
        "token", "--user", "analyst1", "--agency", "CA0990000", "--roles", "analyst",
        cwd=elsewhere,
    )  # fmt: skip
    assert refused.returncode == 1
    assert refused.stdout == ""
    assert "no signing key at" in refused.stderr
    assert not (elsewhere / "var").exists()
