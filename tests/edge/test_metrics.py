"""GET /metrics: the counters move with what the hub does, no label value holds what anyone
asked, and who may scrape (a token, or demo/dev mode)."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families
from starlette.requests import Request

from hub.demo.world import REYES_PLATE
from hub.edge.metrics import HubMetrics
from hub.settings import Settings
from tests.adapters.conformance import small_world
from tests.conftest import HubServer, demo_settings, running_hub

SEARCH = """query($text: String!) { search(text: $text) {
  hits { __typename ... on Person { name { surname } } }
  sources { source status } } }"""
PLATE_READS = """query($plate: String!) { plateReads(plate: $plate) { plate { number } } }"""

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


async def scrape(hub: HubServer, **headers: str) -> tuple[int, str]:
    async with hub.session.get(f"{hub.url}/metrics", headers=headers) as resp:
        return resp.status, await resp.text()


def samples(text: str) -> Samples:
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def value(found: Samples, name: str, **labels: str) -> float:
    return found.get((name, tuple(sorted(labels.items()))), 0.0)


def total(found: Samples, name: str, **labels: str) -> float:
    """The sum over every sample of ``name`` whose labels include ``labels``."""
    return sum(
        v for (n, have), v in found.items() if n == name and set(labels.items()) <= set(have)
    )


@pytest.fixture
async def hub(tmp_path: Path) -> AsyncIterator[HubServer]:
    async with running_hub(demo_settings(tmp_path), world=small_world()) as server:
        yield server


async def test_a_search_moves_the_counters_and_no_label_holds_what_was_asked(
    hub: HubServer,
) -> None:
    status, before_text = await scrape(hub)
    assert status == 200
    before = samples(before_text)
    token = hub.token(user="analyst-7731")
    for _ in range(2):  # the second answered from the source cache
        status, body = await hub.post(
            SEARCH, {"text": "Jordan Reyes"}, token=token,
            headers={"X-Case-Number": "26-990077"},
        )  # fmt: skip
        assert status == 200, body
    status, body = await hub.post(
        PLATE_READS, {"plate": REYES_PLATE.number}, token=token,
        headers={"X-Case-Number": "26-990077"},
    )  # fmt: skip
    assert status == 200, body
    status, text = await scrape(hub)
    assert status == 200
    after = samples(text)

    def moved(name: str, **labels: str) -> float:
        return total(after, name, **labels) - total(before, name, **labels)

    # OK, or PARTIAL where the policy withheld a field
    assert moved("hub_requests_total", status="200") == 3
    assert moved("hub_request_duration_seconds_count") == 3
    assert moved("hub_source_requests_total", source="marin-rms", agency="CA0990000") >= 2
    assert moved("hub_source_requests_total", source="marin-rms", status="OK") >= 1
    assert moved("hub_source_latency_seconds_count", source="marin-rms") >= 1
    assert moved("hub_source_cache_requests_total", source="marin-rms", result="miss") >= 1
    assert moved("hub_source_cache_requests_total", source="marin-rms", result="hit") >= 1
    assert moved("hub_audit_append_seconds_count") == 3
    assert value(after, "hub_source_breaker_state", source="marin-rms", agency="CA0990000") == 0

    # Nothing anyone asked, nor who asked, is a label value.
    labels = {v for (_, have), _ in after.items() for _, v in have}
    forbidden = ("reyes", "jordan", REYES_PLATE.number.lower(), "analyst-7731", "26-990077")
    assert not [v for v in labels if any(f in v.lower() for f in forbidden)]
    assert not [line for line in text.lower().splitlines() if any(f in line for f in forbidden)]


async def test_a_rate_limit_refusal_is_counted(tmp_path: Path) -> None:
    settings = demo_settings(tmp_path)
    settings = dataclasses.replace(
        settings, resilience=dataclasses.replace(settings.resilience, user_per_minute=1)
    )
    async with running_hub(settings, world=small_world()) as hub:
        token = hub.token()
        assert (await hub.post(SEARCH, {"text": "Reyes"}, token=token))[0] == 200
        status, _ = await hub.post(SEARCH, {"text": "Reyes"}, token=token)
        assert status == 429
        found = samples((await scrape(hub))[1])
    assert value(found, "hub_rate_limit_refusals_total", limited_by="user") == 1
    assert (
        value(found, "hub_requests_total", outcome="REFUSED", code="RATE_LIMITED", status="429")
        == 1
    )


async def test_refusals_before_the_token_are_counted_by_code(hub: HubServer) -> None:
    status, _ = await hub.post(SEARCH, {"text": "Reyes"})  # no token
    assert status == 401
    found = samples((await scrape(hub))[1])
    assert (
        value(found, "hub_requests_total", outcome="REFUSED", code="UNAUTHENTICATED", status="401")
        == 1
    )


async def test_the_breaker_gauge_reads_each_sources_breaker(hub: HubServer) -> None:
    breaker = hub.runtime.services.breaker
    assert breaker is not None
    for _ in range(breaker.settings.failures):
        await breaker.record("harbor-cad", ok=False)
    found = samples((await scrape(hub))[1])
    assert value(found, "hub_source_breaker_state", source="harbor-cad", agency="OR0990200") == 2
    assert value(found, "hub_source_breaker_state", source="marin-rms", agency="CA0990000") == 0


# -- who may scrape -----------------------------------------------------------------------------


def _request(authorization: str | None = None) -> Request:
    headers = [(b"authorization", authorization.encode())] if authorization else []
    app = SimpleNamespace(state=SimpleNamespace())
    return Request({"type": "http", "method": "GET", "path": "/metrics", "headers": headers,
                    "app": app, "query_string": b""})  # fmt: skip


def _settings(mode: str) -> Any:
    return SimpleNamespace(mode=mode)


@pytest.mark.parametrize(
    ("mode", "env", "authorization", "expected"),
    [
        # no token configured: open in demo and dev, closed in production
        ("demo", {}, None, 200),
        ("dev", {}, None, 200),
        ("production", {}, None, 403),
        ("production", {}, "Bearer anything", 403),
        # a token configured: only that token, in every mode
        ("production", {"HUB_METRICS_TOKEN": "s3cret-scrape"}, None, 401),
        ("production", {"HUB_METRICS_TOKEN": "s3cret-scrape"}, "Bearer wrong", 401),
        ("production", {"HUB_METRICS_TOKEN": "s3cret-scrape"}, "Basic s3cret-scrape", 401),
        ("production", {"HUB_METRICS_TOKEN": "s3cret-scrape"}, "Bearer s3cret-scrape", 200),
        ("demo", {"HUB_METRICS_TOKEN": "s3cret-scrape"}, None, 401),
        ("demo", {"HUB_METRICS_TOKEN": "s3cret-scrape"}, "Bearer s3cret-scrape", 200),
    ],
)
async def test_who_may_scrape(
    mode: str, env: dict[str, str], authorization: str | None, expected: int
) -> None:
    settings: Settings = _settings(mode)
    metrics = HubMetrics.from_environment(settings, env)
    response = await metrics.endpoint(_request(authorization))
    assert response.status_code == expected
    if expected == 200:
        assert b"hub_requests_total" in response.body or b"# HELP hub_requests" in response.body
    if expected == 403:
        assert b"HUB_METRICS_TOKEN" in response.body
    if expected == 401:
        assert response.headers["WWW-Authenticate"].startswith("Bearer")
