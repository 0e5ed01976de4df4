"""The hub's logs (``hub.edge.logging``): JSON lines with the request's ids, uvicorn's text, the
start-up line in both, and never CJI: a real ``hub serve`` is searched for a distinctive name
and a plate, and no line of what it wrote holds either."""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from opentelemetry.sdk.trace import TracerProvider

from hub.demo.world import REYES_PLATE
from hub.edge.logging import (
    DropQueryString,
    JsonFormatter,
    TextFormatter,
    bind_request,
    bind_trace,
    current_ids,
    log_config,
)
from hub.settings import AuthSettings
from hub.trust.identity import load_or_create_demo_key, mint_token
from tests.hub_process import HubProcess
from tests.ports import free_port

SEARCH = """query($text: String!) { search(text: $text) {
  hits { __typename ... on Person { name { surname } } } sources { source status } } }"""
VEHICLES = """query($text: String!) { search(text: $text, kinds: [VEHICLE]) {
  hits { __typename ... on Vehicle { plate { number } } } } }"""


def _record(name: str = "hub.test", msg: str = "hello %s", args: Any = ("there",)) -> Any:
    return logging.LogRecord(name, logging.INFO, __file__, 1, msg, args, None)


def test_a_json_line_has_the_fields_and_the_extras() -> None:
    record = _record()
    record.sources = ["marin-rms"]
    line = JsonFormatter().format(record)
    assert "\n" not in line
    out = json.loads(line)
    assert out["level"] == "INFO"
    assert out["logger"] == "hub.test"
    assert out["message"] == "hello there"
    assert out["time"].endswith("Z")
    assert out["sources"] == ["marin-rms"]
    assert "request_id" not in out
    assert "trace_id" not in out


def test_an_exception_stays_on_one_line() -> None:
    try:
        raise ValueError("boom")
    except ValueError:
        import sys

        record = logging.LogRecord("hub.test", logging.ERROR, __file__, 1, "failed", (),
                                   sys.exc_info())  # fmt: skip
    line = JsonFormatter().format(record)
    assert "\n" not in line
    assert "ValueError: boom" in json.loads(line)["exception"]


async def test_lines_of_a_request_carry_its_ids() -> None:
    async def request() -> tuple[dict[str, str], dict[str, str]]:
        bind_request("req-1")
        before = current_ids()
        bind_trace("4bf92f3577b34da6a3ce929d0e0e4736")
        return before, current_ids()

    import asyncio

    before, after = await asyncio.create_task(request())
    assert before == {"request_id": "req-1"}
    assert after == {"request_id": "req-1", "trace_id": "4bf92f3577b34da6a3ce929d0e0e4736"}
    assert current_ids() == {}  # another task: another request's ids never leak here
    # Inside an operation's span, before the edge binds it, the trace id is the span's.
    provider = TracerProvider()
    with provider.get_tracer("t").start_as_current_span("op") as span:
        assert current_ids()["trace_id"] == format(span.get_span_context().trace_id, "032x")
    provider.shutdown()


def test_text_lines_end_with_the_ids_in_a_request() -> None:
    formatter = TextFormatter("%(levelprefix)s %(message)s", use_colors=False)
    assert formatter.format(_record()) == "INFO:     hello there"


def test_the_access_line_loses_the_query_string() -> None:
    record = _record("uvicorn.access", '%s - "%s %s HTTP/%s" %d',
                     ("127.0.0.1:5000", "GET", "/graphql?query=Reyes", "1.1", 405))  # fmt: skip
    assert DropQueryString().filter(record)
    out = json.loads(JsonFormatter().format(record))
    assert out["path"] == "/graphql"
    assert "Reyes" not in json.dumps(out)


def test_the_config_names_every_logger_and_one_formatter_per_format() -> None:
    for fmt in ("json", "text"):
        config = log_config(fmt)  # type: ignore[arg-type]
        assert config["loggers"]["hub"]["level"] == "INFO"
        assert config["root"]["level"] == "WARNING"
        assert config["handlers"]["access"]["filters"] == ["drop_query_string"]
    json_config = log_config("json")
    assert {f["()"] for f in json_config["formatters"].values()} == {
        "hub.edge.logging.JsonFormatter"
    }


# -- a real hub serve ---------------------------------------------------------------------------

DISTINCTIVE = "Quillfeather"


@pytest.fixture(params=["json", "text"])
async def served(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[HubProcess]:
    port = free_port()
    process = await HubProcess.start(
        f"hub-{request.param}",
        ["--port", str(port), "--log-format", request.param],
        url=f"http://127.0.0.1:{port}",
        cwd=tmp_path,
        env={"HUB_VAR_DIR": str(tmp_path / "var"), "HUB_DEMO_SIZE": "300"},
        logs=tmp_path,
    )
    try:
        async with aiohttp.ClientSession() as session:
            await process.ready(session)
        yield process
    finally:
        await process.stop()


async def test_a_search_for_a_distinctive_name_writes_no_line_holding_it(
    served: HubProcess, tmp_path: Path
) -> None:
    key = load_or_create_demo_key(tmp_path / "var" / "demo-signing-key.pem")
    token = mint_token(key, AuthSettings(), user="analyst1", agency="CA0990000", state="CA",
                       roles=["analyst"])  # fmt: skip
    headers = {"Authorization": f"Bearer {token}", "X-Purpose": "C",
               "X-Case-Number": "26-004321"}  # fmt: skip
    answered: list[tuple[str, str]] = []
    async with aiohttp.ClientSession() as session:
        for query, text in ((SEARCH, f"Jordan {DISTINCTIVE}"), (SEARCH, "Jordan Reyes"),
                            (VEHICLES, REYES_PLATE.number)):  # fmt: skip
            async with session.post(
                f"{served.url}/graphql",
                headers=headers,
                json={"query": query, "variables": {"text": text}},
            ) as resp:
                assert resp.status == 200, await resp.text()
                answered.append((resp.headers["X-Request-Id"], resp.headers["X-Trace-Id"]))
        # A refusal (no purpose), and criteria sent where they do not belong (a GET's query).
        no_purpose = {k: v for k, v in headers.items() if k != "X-Purpose"}
        async with session.post(
            f"{served.url}/graphql",
            headers=no_purpose,
            json={"query": SEARCH, "variables": {"text": DISTINCTIVE}},
        ) as resp:
            body = await resp.json()
            assert body["errors"][0]["extensions"]["code"] == "PURPOSE_REQUIRED"
        async with session.get(
            f"{served.url}/graphql",
            params={"query": f'{{ search(text: "{DISTINCTIVE}") {{ hits {{ __typename }} }} }}'},
        ) as resp:
            assert resp.status == 405
    await served.stop()  # every line written
    text = served.log.read_text()
    assert "hub started: mode demo" in text  # the start-up line, in either format
    for forbidden in (DISTINCTIVE, "Reyes", REYES_PLATE.number, "26-004321"):
        assert forbidden.lower() not in text.lower(), [
            line for line in text.splitlines() if forbidden.lower() in line.lower()
        ]
    lines = text.splitlines()
    if served.name.endswith("json"):
        entries = [json.loads(line) for line in lines]  # every line one JSON object
        (started,) = [e for e in entries if e["message"].startswith("hub started")]
        assert started["sources"]
        assert started["policy_version"]
        assert started["audit_log"]
        assert started["redis"] is None
        access = [e for e in entries if e["logger"] == "uvicorn.access"
                  and e.get("method") == "POST"]  # fmt: skip
        for request_id, trace_id in answered:
            (line,) = [e for e in access if e.get("request_id") == request_id]
            assert line["trace_id"] == trace_id
            assert (line["path"], line["status"]) == ("/graphql", 200)
    else:
        for request_id, trace_id in answered:
            assert any(f"request_id={request_id} trace_id={trace_id}" in line for line in lines)
