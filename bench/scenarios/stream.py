"""stream: one slow source; time to the first hit of a streaming search vs time to its last
payload, and vs the one answer of ``search``, measured in one run.

The demo world's seven systems answer in L ms, except one RMS that answers in S ms (under its
timeout). Each sample is one ``searchStream`` over a WebSocket (graphql-transport-ws: the first
payload that carries a hit, and the last, ``done``) and one ``search`` POST for the same text,
their order alternating. The hub's source cache is off, so every sample asks the vendors.

Time to complete cannot beat S: the stream's gain is its first hit, which arrives after the
fast sources, not after the slow one.
"""

from __future__ import annotations

import json
import time
from typing import Any

import aiohttp

from bench.context import BenchContext
from bench.hubs import SEARCH_QUERY, HubVariant, RunningHub, hub_settings, serve_hub
from bench.measure import Stats, ratio
from bench.report import Column, ScenarioResult, Table
from bench.vendors import VendorProcess, WorldPlan

NAME = "stream"
TITLE = "streaming search with one slow source: time to first hit / time to complete"
LATENCY_MS = 20
SLOW_MS = 1000
SLOW_SOURCE = "harbor-rms"
TEXT = "Reyes"
STREAM_QUERY = (
    "subscription Stream($text: String!) { searchStream(text: $text) {"
    " done source { source status } hits { __typename ... on Person { id } } } }"
)


async def _slow_down(session: aiohttp.ClientSession, source: dict[str, Any], slow_ms: int) -> None:
    """The vendor simulator's fault: every answer of this source S ms late."""
    fault = {"kind": "latency", "path": "", "delay_ms": slow_ms}
    async with session.post(
        f"{source['url']}/_sim/faults", json=fault, headers={"X-Sim-Admin": source["api_key"]}
    ) as resp:
        resp.raise_for_status()


async def _stream_once(hub: RunningHub, ws: aiohttp.ClientWebSocketResponse, n: int) -> tuple[
    float, float
]:  # fmt: skip
    """(seconds to the first payload with a hit, seconds to the last payload)."""
    started = time.perf_counter()
    first_hit: float | None = None
    done = 0.0
    await ws.send_json(
        {"type": "subscribe", "id": str(n), "payload": {"query": STREAM_QUERY,
                                                          "variables": {"text": TEXT}}}
    )  # fmt: skip
    while True:
        message = json.loads((await ws.receive(timeout=30)).data)
        if message["type"] == "next":
            data = message["payload"]["data"]["searchStream"]
            if first_hit is None and data["hits"]:
                first_hit = time.perf_counter() - started
            if data["done"]:
                done = time.perf_counter() - started
        elif message["type"] == "complete":
            break
        else:
            raise RuntimeError(f"hub {hub.variant.label} refused the stream: {message}")
    if first_hit is None:
        raise RuntimeError(f"no hit for {TEXT!r} in the stream")
    return first_hit, done


async def run(ctx: BenchContext) -> ScenarioResult:
    samples = ctx.pick(8, 40, tiny=2)
    slow_ms = ctx.pick(SLOW_MS, SLOW_MS, tiny=200)  # smoke tests: the shape, not the figure
    result = ScenarioResult(
        NAME,
        TITLE,
        settings={"samples": samples, "latency_ms": LATENCY_MS, "slow_ms": slow_ms,
                  "slow_source": SLOW_SOURCE},
    )  # fmt: skip
    table = Table(
        f"the demo world's 7 systems at L = {LATENCY_MS} ms, {SLOW_SOURCE} at S = {slow_ms} ms; "
        f"search {TEXT!r}, policies and audit on, no source cache",
        [
            Column("measure"),
            Column("p50", "ms"),
            Column("p99", "ms"),
            Column("p50 / stream complete", "ratio"),
        ],
    )
    result.tables.append(table)
    first: list[float] = []
    complete: list[float] = []
    search: list[float] = []
    plan = WorldPlan(shape="demo", size=ctx.pick(2000, 2000, tiny=400), latency_ms=LATENCY_MS)
    async with await VendorProcess.start(plan) as vendors:
        slow = next(s for s in vendors.info.sources if s["name"] == SLOW_SOURCE)
        await _slow_down(ctx.session, slow, slow_ms)
        variant = HubVariant("stream")
        settings = hub_settings(
            ctx.scratch("stream"),
            vendors.info.source_configs(timeout_ms=slow_ms + 1500),
            vendors.info.agencies(),
            variant,
        )
        async with (
            serve_hub(settings, variant, ctx.session) as hub,
            ctx.session.ws_connect(
                hub.url.replace("http://", "ws://") + "/graphql",
                protocols=("graphql-transport-ws",),
            ) as ws,
        ):
            await ws.send_json(
                {"type": "connection_init",
                 "payload": {"Authorization": f"Bearer {hub.token}", "X-Purpose": "C"}}
            )  # fmt: skip
            ack = json.loads((await ws.receive(timeout=30)).data)
            if ack.get("type") != "connection_ack":
                raise RuntimeError(f"the hub refused the WebSocket: {ack}")
            ctx.progress(f"stream: {samples} samples, stream and search interleaved")
            for n in range(samples):
                order = ("stream", "search") if n % 2 == 0 else ("search", "stream")
                for which in order:
                    if which == "stream":
                        hit, done = await _stream_once(hub, ws, n)
                        first.append(hit)
                        complete.append(done)
                    else:
                        started = time.perf_counter()
                        await hub.post(SEARCH_QUERY, {"text": TEXT})
                        search.append(time.perf_counter() - started)
    stats = {
        "stream: first hit": Stats(tuple(first)),
        "stream: complete (done)": Stats(tuple(complete)),
        "search: one answer": Stats(tuple(search)),
    }
    whole = stats["stream: complete (done)"].median
    for label, s in stats.items():
        table.add(label, s.median * 1000, s.p99 * 1000, ratio(s.median, whole))
    result.notes.append(
        "time to first hit / time to complete is the figure (p50 ratio of the first row); "
        f"both are bounded below by the sources: the fast ones (L) and {SLOW_SOURCE} (S)"
    )
    return result
