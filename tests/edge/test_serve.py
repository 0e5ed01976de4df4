"""``hub serve`` as an operator runs it: behind a proxy (the audit records the client, not the
proxy, and only when the proxy is trusted), with several worker processes (one audit chain, one
set of metrics), and what it refuses before it starts."""

from __future__ import annotations

import json
import os
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from click.testing import CliRunner, Result
from prometheus_client.parser import text_string_to_metric_families

from hub import cli
from hub.audit import open_audit_log, verify_log
from hub.audit.entry import decode_entry
from hub.edge.metrics import MULTIPROC_ENV
from hub.settings import AuthSettings, LimitSettings
from hub.trust.identity import load_or_create_demo_key, mint_token
from tests.hub_process import HubProcess
from tests.ports import free_port
from tests.redis_server import drop_prefix, shared_url, unique_prefix

SEARCH = """query($text: String!) { search(text: $text, kinds: [PERSON]) {
  hits { __typename } sources { source status } } }"""
CLIENT = "203.0.113.7"  # what X-Forwarded-For says (RFC 5737: documentation addresses)


def _token(var_dir: Path) -> str:
    key = load_or_create_demo_key(var_dir / "demo-signing-key.pem")
    return mint_token(key, AuthSettings(), user="analyst1", agency="CA0990000", state="CA",
                      roles=["analyst"])  # fmt: skip


async def _search(
    session: aiohttp.ClientSession, url: str, token: str, **headers: str
) -> aiohttp.ClientResponse:
    async with session.post(
        f"{url}/graphql",
        json={"query": SEARCH, "variables": {"text": "Jordan Reyes"}},
        headers={"Authorization": f"Bearer {token}", "X-Purpose": "C", **headers},
    ) as resp:
        assert resp.status == 200, await resp.text()
        return resp


async def _start(
    name: str, args: list[str], directory: Path, env: dict[str, str] | None = None
) -> HubProcess:
    directory.mkdir(parents=True, exist_ok=True)  # noqa: ASYNC240 (test set-up)
    port = free_port()
    return await HubProcess.start(
        name,
        ["--port", str(port), *args],
        url=f"http://127.0.0.1:{port}",
        cwd=directory,
        env={"HUB_VAR_DIR": str(directory / "var"), "HUB_DEMO_SIZE": "300", **(env or {})},
        logs=directory,
    )


# -- the client behind a proxy ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "audited"),
    [
        # default: X-Forwarded-For is anyone's to write, so it is not read
        ([], "127.0.0.1"),
        # the proxy (here: loopback, where the test connects from) is trusted
        (["--proxy-headers", "--forwarded-allow-ips", "127.0.0.1"], CLIENT),
        # proxy headers on, but this peer is not a trusted proxy: a forged header
        (["--proxy-headers", "--forwarded-allow-ips", "192.0.2.1"], "127.0.0.1"),
    ],
    ids=["no-proxy-headers", "trusted-proxy", "untrusted-peer"],
)
async def test_the_audit_records_the_client_only_through_a_trusted_proxy(
    tmp_path: Path, args: list[str], audited: str
) -> None:
    hub = await _start("hub", args, tmp_path)
    try:
        async with aiohttp.ClientSession() as session:
            await hub.ready(session)
            resp = await _search(session, hub.url, _token(tmp_path / "var"),
                                 **{"X-Forwarded-For": CLIENT})  # fmt: skip
            request_id = resp.headers["X-Request-Id"]
    finally:
        await hub.stop()
    lines = (tmp_path / "var" / "audit" / "audit.jsonl").read_bytes().splitlines()
    (entry,) = [e for e in map(decode_entry, lines) if e.request_id == request_id]
    assert entry.client_address == audited


# -- several workers ----------------------------------------------------------------------------


@pytest.fixture
async def redis_audit() -> AsyncIterator[str]:
    url = shared_url()
    prefix = unique_prefix("serve-workers")
    yield f"{url}#{prefix}:audit"
    await drop_prefix(url, prefix)


def _samples(text: str) -> dict[str, float]:
    out: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out[s.name] = out.get(s.name, 0.0) + s.value
    return out


async def test_two_workers_keep_one_audit_chain_and_one_set_of_metrics(
    tmp_path: Path, redis_audit: str
) -> None:
    searches = 10
    hub = await _start(
        "workers",
        ["--workers", "2", "--log-format", "json", "--proxy-headers",
         "--forwarded-allow-ips", "127.0.0.1"],
        tmp_path, env={"HUB_AUDIT_LOG": redis_audit},
    )  # fmt: skip
    try:
        async with aiohttp.ClientSession() as session:
            await hub.ready(session)
            token = _token(tmp_path / "var")
            # New connections each, spread over the workers by the kernel.
            for i in range(searches):
                async with aiohttp.ClientSession() as fresh:
                    await _search(fresh, hub.url, token, **{"X-Forwarded-For": f"203.0.113.{i}"})
            # Any worker's scrape counts every worker's requests.
            totals = []
            for _ in range(4):
                async with (
                    aiohttp.ClientSession() as fresh,
                    fresh.get(f"{hub.url}/metrics") as resp,
                ):
                    assert resp.status == 200
                    totals.append(_samples(await resp.text()))
        assert {t["hub_requests_total"] for t in totals} == {searches}
        assert {t["hub_audit_append_seconds_count"] for t in totals} == {searches}
        assert list((tmp_path / "var" / "metrics").glob("*.db"))
    finally:
        await hub.stop()

    entries = [json.loads(line) for line in hub.log.read_text().splitlines()]
    started = {e["pid"] for e in entries if e["message"].startswith("hub started")}
    assert len(started) == 2  # each worker says what it loaded
    served = {e["pid"] for e in entries if e.get("path") == "/graphql"}
    assert served <= started
    # without Redis for shared state: said, once, by the supervisor
    (warning,) = [e for e in entries if e["level"] == "WARNING" and "workers" in e["message"]]
    assert "not shared" in warning["message"]

    log = open_audit_log(redis_audit)
    try:
        report = await verify_log(log)
        clients = [decode_entry(raw.line).client_address async for raw in log.scan()]
    finally:
        await log.close()
    assert report.ok, report.describe()
    assert sorted(clients) == sorted(f"203.0.113.{i}" for i in range(searches))


# -- refused before it starts, and what uvicorn is handed ----------------------------------------


@pytest.fixture
def no_uvicorn(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> list[dict[str, Any]]:
    import uvicorn

    for name in list(os.environ):
        if name.startswith("HUB_") or name in ("REDIS_URL", "FORWARDED_ALLOW_IPS"):
            monkeypatch.delenv(name)
    # serve sets these for its workers: restored after the test
    monkeypatch.setenv(MULTIPROC_ENV, "")  # (set, so that monkeypatch puts it back)
    monkeypatch.setenv("HUB_CONFIG", "")
    monkeypatch.chdir(tmp_path)
    calls: list[dict[str, Any]] = []
    monkeypatch.setattr(uvicorn, "run", lambda app, **kw: calls.append({"app": app, **kw}))
    return calls


def _invoke(*args: str, env: dict[str, str] | None = None) -> Result:
    return CliRunner().invoke(cli.main, ["serve", *args], env=env)


def test_one_worker_believes_no_forwarded_header_by_default(
    no_uvicorn: list[dict[str, Any]],
) -> None:
    result = _invoke()
    assert result.exit_code == 0, result.output
    (call,) = no_uvicorn
    assert isinstance(call["app"], cli.StartupReport)
    assert (call["workers"], call["factory"], call["proxy_headers"]) == (1, False, False)
    assert call["log_config"]["formatters"]["default"]["()"].endswith("TextFormatter")


def test_proxy_headers_trust_loopback_unless_told_which_proxy(
    no_uvicorn: list[dict[str, Any]],
) -> None:
    assert _invoke("--proxy-headers").exit_code == 0
    assert _invoke("--proxy-headers", "--forwarded-allow-ips", "10.0.0.0/8").exit_code == 0
    assert [(c["proxy_headers"], c["forwarded_allow_ips"]) for c in no_uvicorn] == [
        (True, "127.0.0.1"),
        (True, "10.0.0.0/8"),
    ]


def test_a_trusted_proxy_without_proxy_headers_is_a_mistake_said(
    no_uvicorn: list[dict[str, Any]],
) -> None:
    result = _invoke("--forwarded-allow-ips", "10.0.0.0/8")
    assert result.exit_code == 2
    assert "--forwarded-allow-ips is only read with --proxy-headers" in result.stderr
    # From the environment (uvicorn's variable): started, with a warning.
    result = _invoke(env={"FORWARDED_ALLOW_IPS": "*"})
    assert result.exit_code == 0, result.output
    assert "X-Forwarded-For is ignored" in result.stderr
    assert no_uvicorn[-1]["proxy_headers"] is False
    result = _invoke(env={"FORWARDED_ALLOW_IPS": "*", "HUB_PROXY_HEADERS": "1"})
    assert (no_uvicorn[-1]["proxy_headers"], no_uvicorn[-1]["forwarded_allow_ips"]) == (True, "*")


def test_several_workers_need_an_audit_log_they_can_share(
    no_uvicorn: list[dict[str, Any]],
) -> None:
    result = _invoke("--workers", "2")
    assert result.exit_code == 1
    (line,) = result.stderr.splitlines()
    assert line.startswith("Error: --workers 2 needs an audit log every worker appends to")
    assert not no_uvicorn


def test_several_workers_are_uvicorns_by_import_string(
    no_uvicorn: list[dict[str, Any]], tmp_path: Path
) -> None:
    config = tmp_path / "hub.toml"
    config.write_text('mode = "demo"\naudit_log = "redis://127.0.0.1:6379/0#x:audit"\n')
    result = _invoke("--config", "hub.toml", "--workers", "3", "--log-format", "json")
    assert result.exit_code == 0, result.output
    (call,) = no_uvicorn
    assert (call["app"], call["factory"], call["workers"]) == ("hub.cli:worker_app", True, 3)
    # the workers read what the supervisor checked, and count into one directory
    assert os.environ["HUB_CONFIG"] == str(config)
    assert os.environ[MULTIPROC_ENV] == str(tmp_path / "var" / "metrics")
    # said in JSON, like everything the hub logs in that format
    warning = json.loads(result.stderr.splitlines()[0])
    assert warning["level"] == "WARNING"
    assert "3 workers without Redis" in warning["message"]
    # a worker's app, as uvicorn makes it in each worker process
    assert isinstance(cli.worker_app(), cli.StartupReport)


def test_json_is_the_default_in_production_mode(
    no_uvicorn: list[dict[str, Any]], tmp_path: Path
) -> None:
    (tmp_path / "hub.toml").write_text(
        'mode = "production"\n[auth]\nissuer = "https://idp.example.org"\naudience = "hub"\n'
        'jwks_url = "https://idp.example.org/jwks.json"\n'
    )
    result = _invoke("--config", "hub.toml")
    assert result.exit_code == 0, result.output
    formatters = no_uvicorn[0]["log_config"]["formatters"]
    assert {f["()"] for f in formatters.values()} == {"hub.edge.logging.JsonFormatter"}


# -- the WebSocket's message limit -----------------------------------------------------------------


async def test_an_oversized_websocket_message_is_refused_before_it_is_read_whole(
    tmp_path: Path,
) -> None:
    """`hub serve` gives uvicorn the hub's own message limit: a message over it is refused by
    the WebSocket protocol layer (1009) as it arrives, not buffered whole (uvicorn's default
    would take 16 MiB) for the hub's own check to refuse. A message within it is answered."""
    hub = await _start("ws-limit", [], tmp_path / "ws")
    limit = LimitSettings().ws_max_message_bytes  # no config: the defaults
    try:
        async with aiohttp.ClientSession() as session:
            await hub.ready(session)
            url = f"{hub.url.replace('http', 'ws', 1)}/graphql"
            async with session.ws_connect(url, protocols=("graphql-transport-ws",)) as ws:
                # within the limit: the hub reads it (a ping is answered with a pong)
                await ws.send_str(json.dumps({"type": "ping", "payload": {"x": "y" * 1000}}))
                answer = await ws.receive(timeout=10)
                assert json.loads(answer.data)["type"] == "pong"
                await ws.send_str(json.dumps({"type": "ping", "payload": {"x": "y" * 4 * limit}}))
                closed = await ws.receive(timeout=10)
            assert closed.type is aiohttp.WSMsgType.CLOSE
            assert ws.close_code == 1009
            # not the hub's own refusal ("message over N bytes"), which reads the message first
            assert "message over" not in (closed.extra or "")
    finally:
        await hub.stop()
