"""GraphiQL in a real browser, with no network but the hub: headless Chromium (Debian's
``chromium``, driven by pip's ``playwright`` through ``executable_path``) loads the hub's page over
real HTTP, every request to another host is aborted and recorded (none may even be attempted),
a token is pasted into the headers editor, the README's worked example runs, and the result pane
shows Jordan Reyes from three agencies. Where the token may be kept: the tab's sessionStorage in
demo mode, nowhere in dev mode, never localStorage.

A screenshot is saved as ``graphiql.png`` in ``$HUB_SCREENSHOT_DIR`` (default: the test's tmp
dir). Without Chromium or playwright the tests skip, saying which; under CI (``CI=true``) they
fail instead. ``HUB_CHROMIUM`` names another Chromium binary.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import os
import shutil
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from tests.adapters.conformance import small_world
from tests.conftest import HubServer, demo_settings, running_hub

THREE_AGENCIES = {"CA0990000", "WA0990100", "OR0990200"}
RESULT = ".graphiql-response .CodeMirror"
HEADERS = ".graphiql-editor-tool .graphiql-editor:not(.hidden) .CodeMirror"
TEMPLATE = {"Authorization": "Bearer <token>", "X-Purpose": "C", "X-Case-Number": "26-001234"}


@pytest.fixture
def chromium() -> str:
    """Chromium's path, or skip (fail under CI) saying what is missing; before the hub starts."""
    missing = None
    path = os.environ.get("HUB_CHROMIUM") or shutil.which("chromium")
    try:
        import playwright.async_api  # noqa: F401
    except ImportError:
        missing = "pip's playwright is not installed (pip install -c constraints.txt playwright)"
    if path is None:
        missing = "Chromium is not installed (apt-get install chromium), nor named by HUB_CHROMIUM"
    if missing is not None:
        if os.environ.get("CI") == "true":
            pytest.fail(f"GraphiQL browser test cannot run under CI: {missing}")
        pytest.skip(missing)
    assert path is not None
    return path


def _value(selector: str) -> str:
    """A JavaScript function: the whole text of the CodeMirror editor at ``selector`` (the DOM
    holds only the lines in view)."""
    return f"() => document.querySelector({json.dumps(selector)}).CodeMirror.getValue()"


@dataclass
class Browser:
    """A page of headless Chromium that reaches the hub's origin and nothing else."""

    page: Any  # playwright.async_api.Page
    origin: str
    requested: list[str] = field(default_factory=list)
    foreign: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    def check(self) -> None:
        assert self.foreign == [], f"requests to another host: {self.foreign}"
        assert self.requested, "the browser requested nothing"
        host = urlsplit(self.origin).netloc
        outside = [u for u in self.requested if urlsplit(u).netloc != host]
        assert outside == [], outside
        assert self.problems == [], self.problems

    async def shows(self, selector: str, text: str, timeout_s: float = 30) -> None:
        """Wait until the editor at ``selector`` holds ``text``. (Polled from here: playwright's
        wait_for_function evaluates a string, which this page's CSP refuses in some versions.)"""
        probe = (
            f"() => {{ try {{ return ({_value(selector)})().includes({json.dumps(text)}); }}"
            " catch (e) { return false; } }"
        )
        deadline = time.monotonic() + timeout_s
        while not await self.page.evaluate(probe):
            assert time.monotonic() < deadline, f"{selector} never showed {text!r}"
            await asyncio.sleep(0.05)

    async def open_graphiql(self) -> None:
        await self.page.goto(f"{self.origin}/graphql")
        await self.page.wait_for_selector(".graphiql-container")
        # Before any token: the headers template, and the page says what to put in it.
        await self.shows(RESULT, "No token yet")
        assert json.loads(await self.page.evaluate(_value(HEADERS))) == TEMPLATE

    async def paste_token(self, token: str) -> None:
        """Select "<token>" in the headers editor and paste the token over it."""
        await self.page.click(HEADERS)
        await self.page.evaluate(
            """(selector) => {
                const cm = document.querySelector(selector).CodeMirror;
                const lines = cm.getValue().split('\\n');
                const line = lines.findIndex(l => l.includes('<token>'));
                const ch = lines[line].indexOf('<token>');
                cm.setSelection({line, ch}, {line, ch: ch + '<token>'.length});
            }""",
            HEADERS,
        )
        await self.page.keyboard.insert_text(token)
        # Back to the start of the line (smart Home: twice), for the picture.
        await self.page.keyboard.press("Home")
        await self.page.keyboard.press("Home")
        headers = json.loads(await self.page.evaluate(_value(HEADERS)))
        assert headers == {**TEMPLATE, "Authorization": f"Bearer {token}"}

    async def run_worked_example(self) -> dict[str, Any]:
        await self.page.click(".graphiql-execute-button")
        await self.shows(RESULT, '"search"')
        result: dict[str, Any] = json.loads(await self.page.evaluate(_value(RESULT)))
        people = [h for h in result["data"]["search"]["hits"] if h["__typename"] == "Person"]
        reyes = {p["provenance"]["agency"]["ori"] for p in people
                 if p["name"]["surname"] == "Reyes"}  # fmt: skip
        assert reyes == THREE_AGENCIES, result
        assert "Reyes" in await self.page.inner_text(".graphiql-response")
        return result

    async def stored(self) -> tuple[int, str]:
        """How many keys localStorage holds, and all of sessionStorage as text."""
        local = await self.page.evaluate("() => window.localStorage.length")
        session = await self.page.evaluate("() => JSON.stringify(window.sessionStorage)")
        return local, session


@contextlib.asynccontextmanager
async def _browser(chromium: str, origin: str) -> AsyncIterator[Browser]:
    from playwright.async_api import ConsoleMessage, Request, Route, async_playwright

    async with async_playwright() as pw:
        launched = await pw.chromium.launch(
            executable_path=chromium,
            headless=True,
            # Beneath the routing: a name other than the hub's address does not even resolve.
            args=["--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1"],
        )
        try:
            # Tall enough for the picture to show the four Reyes hits of three agencies.
            context = await launched.new_context(
                viewport={"width": 1400, "height": 1800}, service_workers="block"
            )
            context.set_default_timeout(30_000)
            page = await context.new_page()
            opened = Browser(page, origin)

            async def only_the_hub(route: Route) -> None:
                url = route.request.url
                if url == origin or url.startswith(origin + "/"):
                    await route.continue_()
                else:
                    opened.foreign.append(url)
                    await route.abort("blockedbyclient")

            def seen(request: Request) -> None:
                opened.requested.append(request.url)

            def console(message: ConsoleMessage) -> None:
                if message.type == "error":
                    opened.problems.append(f"console: {message.text}")

            await context.route("**/*", only_the_hub)
            context.on("request", seen)
            page.on("websocket", lambda ws: opened.foreign.append(ws.url))
            page.on("pageerror", lambda exc: opened.problems.append(f"page error: {exc}"))
            page.on("console", console)
            # What the page's Content-Security-Policy blocks, as the page sees it.
            await context.add_init_script(
                "window.__csp = []; document.addEventListener('securitypolicyviolation', e =>"
                " window.__csp.push([e.violatedDirective, e.blockedURI, e.sourceFile,"
                " e.lineNumber].join(' ')));"
            )
            yield opened
        finally:
            await launched.close()


@pytest.fixture
async def browser(chromium: str, hub: HubServer) -> AsyncIterator[Browser]:
    async with _browser(chromium, hub.url) as opened:
        yield opened


async def test_graphiql_runs_the_worked_example_offline(
    browser: Browser, hub: HubServer, tmp_path: Path
) -> None:
    page = browser.page
    started = time.monotonic()
    await browser.open_graphiql()
    loaded = time.monotonic() - started

    token = hub.token("CA0990000", ("analyst",), user="analyst1")
    await browser.paste_token(token)
    await browser.run_worked_example()
    ran = time.monotonic() - started
    shots = Path(os.environ.get("HUB_SCREENSHOT_DIR") or tmp_path)
    # caret="initial": playwright would hide the caret with a <style> of its own, which the CSP
    # (rightly) refuses. The path's directory is made if need be.
    await page.screenshot(path=str(shots / "graphiql.png"), caret="initial")

    # The token re-fetched the schema: the docs know the hub's types.
    await page.click("button[aria-label='Show Documentation Explorer']")
    await page.wait_for_selector(".graphiql-doc-explorer >> text=Root Types")
    # A dialog inserts GraphiQL's one <style>, which the CSP allows by its hash.
    await page.click("button[aria-label='Open settings dialog']")
    await page.wait_for_selector("[role=dialog]")
    await page.keyboard.press("Escape")

    # Demo mode: the headers, token and all, are kept in this tab's sessionStorage; never in
    # localStorage.
    local, session = await browser.stored()
    assert local == 0
    assert token in session
    assert await page.evaluate("() => window.__csp") == []
    browser.check()
    print(f"GraphiQL: page ready {loaded:.1f}s, worked example shown {ran:.1f}s after start")


async def test_dev_mode_keeps_no_token(chromium: str, tmp_path: Path) -> None:
    settings = dataclasses.replace(demo_settings(tmp_path), mode="dev")
    async with (
        running_hub(settings, world=small_world()) as hub,
        _browser(chromium, hub.url) as browser,
    ):
        await browser.open_graphiql()
        token = hub.token()
        await browser.paste_token(token)
        await browser.run_worked_example()
        local, session = await browser.stored()
        assert local == 0
        assert token not in session  # nor in the history GraphiQL keeps of each run
        assert "graphiql:queries" in session
        await browser.page.reload()
        await browser.open_graphiql()  # the template again, no token
        browser.check()
