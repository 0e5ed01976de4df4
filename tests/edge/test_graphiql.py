"""GraphiQL served by the hub itself (``hub.edge.graphiql``): the page and each asset with their
content types and caching headers, nothing that refers to another host, the vendored files
exactly as vendor.json records them, and no IDE in production mode."""

from __future__ import annotations

import base64
import bisect
import dataclasses
import glob
import gzip
import hashlib
import json
import re
import tomllib
from html.parser import HTMLParser
from pathlib import Path

from graphql import OperationDefinitionNode, parse, print_ast

from hub.edge.graphiql import (
    ASSET_CACHE,
    CSP,
    DEFAULT_HEADERS,
    DEFAULT_QUERY,
    LICENSES,
    SCRIPTS,
    STYLES,
    TOKEN_PLACEHOLDER,
    load_assets,
    page_config,
    render_page,
)
from tests.adapters.conformance import small_world
from tests.conftest import HubServer, demo_settings, running_hub

ROOT = Path(__file__).resolve().parents[2]
STATIC = ROOT / "hub" / "edge" / "static" / "graphiql"
VENDOR = json.loads((STATIC / "vendor.json").read_text(encoding="utf-8"))["packages"]
HUB_OWN = ("index.html", "hub-graphiql.js", "hub-graphiql.css")

CONTENT_TYPES = {
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    "LICENSE": "text/plain; charset=utf-8",
}

# What the vendored scripts hold as a URL outside a comment. None is ever loaded: the page's CSP
# allows no other host, and tests/edge/test_graphiql_browser.py sees no request leave the hub.
INERT_URLS = {
    # XML namespace names, given to createElementNS / xmlns: identifiers, never fetched.
    "http://www.w3.org/2000/svg": "namespace",
    "http://www.w3.org/1999/xhtml": "namespace",
    "http://www.w3.org/1999/xlink": "namespace",
    "http://www.w3.org/1998/Math/MathML": "namespace",
    "http://www.w3.org/XML/1998/namespace": "namespace",
    # The "$schema" identifier of the JSON schema GraphiQL builds for the variables editor.
    "http://json-schema.org/draft-04/schema": "identifier",
    # Text of error and warning messages (React's production error codes, development warnings).
    "https://reactjs.org/docs/error-decoder.html?invariant=": "message",
    "https://reactjs.org/link/special-props": "message",
    "https://reactjs.org/link/strict-mode-string-ref": "message",
    "https://reactjs.org/link/warning-keys": "message",
    "https://radix-ui.com/primitives/docs/components/${titleWarningContext.docsSlug}": "message",
    "https://www.framer.com/docs/guide-upgrade/##shared-layout-animations": "message",
    "https://yarnpkg.com/en/docs/selective-version-resolutions": "message",
    "https://github.com/graphql/graphiql/blob/master/examples/graphiql-cdn/index.html"
    "#L49": "message",
    # Links a person may follow (the short-keys dialog; descriptions of built-in GraphQL types and
    # directives): navigation on a click, never a request of the page.
    "https://codemirror.net/5/doc/manual.html#keymaps": "link",
    "https://github.com/graphql/graphiql": "link",
    "https://en.wikipedia.org/wiki/IEEE_floating_point": "link",
    "https://commonmark.org/": "link",
    # markdown-it's linkify: the scheme it puts before a bare "www." link in a description.
    "http://": "link",
}

_URL = re.compile(r"https?://[^\s\"'`)<>\\]*")
_WORD = re.compile(r"[A-Za-z_$][\w$]*")
_NUMBER = re.compile(r"\d[\w.]*")
# After one of these (or nothing) a "/" starts a regular expression; otherwise it divides.
_BEFORE_REGEX = set("(,=:[!&|?{};+-*%<>~^") | {
    "", "return", "typeof", "case", "do", "else", "in", "of", "new", "delete", "void", "throw",
    "yield", "await", "instanceof",
}  # fmt: skip


def _js_spans(text: str) -> list[tuple[int, int, str]]:
    """(start, end, kind) of every comment, string (template literals too) and regular
    expression of a script: a lexer just good enough to tell where a URL stands."""
    spans: list[tuple[int, int, str]] = []
    templates: list[int] = []  # brace depth inside each open ${ ... }
    last = ""
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        if text.startswith("//", i):
            j = text.find("\n", i)
            j = n if j < 0 else j
            spans.append((i, j, "comment"))
            i = j
        elif text.startswith("/*", i):
            j = text.find("*/", i + 2)
            j = n if j < 0 else j + 2
            spans.append((i, j, "comment"))
            i = j
        elif c in "'\"":
            j = i + 1
            while text[j] != c:
                assert text[j] != "\n", f"unterminated string at {i}"
                j += 2 if text[j] == "\\" else 1
            spans.append((i, j + 1, "string"))
            i, last = j + 1, "a"
        elif c == "`" or (c == "}" and templates and templates[-1] == 0):
            if c == "}":
                templates.pop()
            j = i + 1
            while text[j] != "`" and not text.startswith("${", j):
                j += 2 if text[j] == "\\" else 1
            spans.append((i, j + 1, "string"))
            if text[j] == "$":
                templates.append(0)
                i, last = j + 2, "{"
            else:
                i, last = j + 1, "a"
        elif c == "/" and last in _BEFORE_REGEX:
            j, in_class = i + 1, False
            while in_class or text[j] != "/":
                assert text[j] != "\n", f"unterminated regular expression at {i}"
                if text[j] == "\\":
                    j += 1
                elif text[j] in "[]":
                    in_class = text[j] == "["
                j += 1
            spans.append((i, j + 1, "regex"))
            i, last = j + 1, "a"
        elif c.isspace():
            i += 1
        elif m := _WORD.match(text, i):
            i, last = m.end(), m.group()
        elif m := _NUMBER.match(text, i):
            i, last = m.end(), "0"
        else:
            if templates and c in "{}":
                templates[-1] += 1 if c == "{" else -1
            i, last = i + 1, c
    return spans


def _urls_outside_comments(text: str) -> set[str]:
    spans = _js_spans(text)
    starts = [s for s, _, _ in spans]
    found: set[str] = set()
    for match in _URL.finditer(text):
        k = bisect.bisect_right(starts, match.start()) - 1
        in_comment = k >= 0 and spans[k][2] == "comment" and match.start() < spans[k][1]
        if not in_comment:
            found.add(match.group())
    return found


def _code(text: str) -> str:
    """A script without its comments."""
    comments = [(s, e) for s, e, kind in _js_spans(text) if kind == "comment"]
    ends = [0] + [e for _, e in comments]
    starts = [s for s, _ in comments] + [len(text)]
    return "".join(text[a:b] for a, b in zip(ends, starts, strict=True))


class _Links(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.links: list[tuple[str, str, dict[str, str | None]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        named = dict(attrs)
        for attr in ("src", "href"):
            if attr in named:
                self.links.append((tag, named[attr] or "", named))


def _links(html: str) -> list[tuple[str, str, dict[str, str | None]]]:
    parser = _Links()
    parser.feed(html)
    return parser.links


def _config(html: str) -> dict[str, object]:
    match = re.search(
        r'<script id="hub-graphiql-config" type="application/json">(.*?)</script>', html, re.S
    )
    assert match is not None
    config: dict[str, object] = json.loads(match.group(1))
    return config


def _content_type(path: str) -> str:
    return next(t for suffix, t in CONTENT_TYPES.items() if path.endswith(suffix))


# -- served over HTTP -----------------------------------------------------------------------------


async def test_page_and_assets_are_served_with_types_and_caching(hub: HubServer) -> None:
    async with hub.session.get(f"{hub.url}/graphql", headers={"Accept": "text/html"}) as resp:
        assert resp.status == 200
        assert resp.headers["Content-Type"] == "text/html; charset=utf-8"
        assert resp.headers["Content-Security-Policy"] == CSP
        assert resp.headers["Cache-Control"] == "no-store"
        assert resp.headers["X-Content-Type-Options"] == "nosniff"
        assert resp.headers["Referrer-Policy"] == "no-referrer"
        html = await resp.text()
    links = _links(html)
    urls = [url for _, url, _ in links if url != "data:,"]
    expected = {p: a.href for p, a in load_assets().items()}
    assert sorted(urls) == sorted(expected.values())
    # scripts in order: React, ReactDOM, GraphiQL, then the hub's
    assert [u for tag, u, _ in links if tag == "script"] == [expected[p] for p in SCRIPTS]
    for tag, url, attrs in links:
        if url == "data:,":
            continue
        path = url.split("/", 2)[2]
        async with hub.session.get(
            f"{hub.url}/{url}", headers={"Accept-Encoding": "identity"}
        ) as resp:
            assert resp.status == 200, url
            assert resp.headers["Content-Type"] == _content_type(path), url
            assert resp.headers["Cache-Control"] == ASSET_CACHE
            assert resp.headers["X-Content-Type-Options"] == "nosniff"
            assert "Content-Encoding" not in resp.headers
            etag = resp.headers["ETag"]
            body = await resp.read()
        assert hashlib.sha256(body).hexdigest().startswith(url.split("/")[1])
        if tag in ("script", "link") and "integrity" in attrs:
            digest = base64.b64encode(hashlib.sha384(body).digest()).decode()
            assert attrs["integrity"] == f"sha384-{digest}"
        async with hub.session.get(f"{hub.url}/{url}", headers={"If-None-Match": etag}) as resp:
            assert resp.status == 304
            assert await resp.read() == b""
    # every script and stylesheet carries its subresource integrity
    assert set(STYLES + SCRIPTS) <= {
        p for p, a in load_assets().items() if f'integrity="{a.integrity}"' in html
    }


async def test_assets_are_gzipped_for_a_browser_that_takes_it(hub: HubServer) -> None:
    asset = load_assets()["graphiql/graphiql.min.js"]
    for accept in ("gzip, deflate, br", "br;q=1, gzip;q=0"):
        async with hub.session.get(
            f"{hub.url}{asset.url}", headers={"Accept-Encoding": accept}, auto_decompress=False
        ) as resp:
            assert resp.status == 200
            assert resp.headers["Vary"] == "Accept-Encoding"
            raw = await resp.read()
        if accept.startswith("gzip"):
            assert resp.headers["Content-Encoding"] == "gzip"
            assert len(raw) < len(asset.body) / 3
            assert gzip.decompress(raw) == asset.body
        else:
            assert "Content-Encoding" not in resp.headers
            assert raw == asset.body


async def test_only_the_named_contents_are_served(hub: HubServer) -> None:
    asset = load_assets()["hub-graphiql.js"]
    digest = asset.url.split("/")[2]
    for path in (
        asset.url.replace(digest, "0" * 16),  # another content: gone for good
        f"/graphiql/{digest}/vendor.json",
        f"/graphiql/{digest}/index.html",
        f"/graphiql/{digest}/..%2F..%2Fgraphiql.py",
        "/graphiql/",
    ):
        async with hub.session.get(f"{hub.url}{path}") as resp:
            assert resp.status == 404, path


async def test_production_serves_no_ide(tmp_path: Path) -> None:
    settings = dataclasses.replace(demo_settings(tmp_path), mode="production")
    async with running_hub(settings, world=small_world()) as production:
        async with production.session.get(
            f"{production.url}/graphql", headers={"Accept": "text/html"}
        ) as resp:
            assert resp.status == 405
            assert "graphiql" not in (await resp.text()).lower()
        for asset in load_assets().values():
            async with production.session.get(f"{production.url}{asset.url}") as resp:
                assert resp.status == 404, asset.url


# -- what the page refers to ----------------------------------------------------------------------


def test_nothing_refers_to_another_host(tmp_path: Path) -> None:
    html = render_page(demo_settings(tmp_path))
    # The page and the hub's own files: no URL of any host, no protocol-relative reference.
    for name, text in [("page", html)] + [
        (own, (STATIC / own).read_text(encoding="utf-8")) for own in HUB_OWN
    ]:
        assert not re.search(r"https?:", text, re.I), name
        assert not re.search(r"""(["'(=]\s*)//""", text), name
    for tag, url, _ in _links(html):
        assert url == "data:," or re.fullmatch(r"graphiql/[0-9a-f]{16}/[\w./-]+", url), (tag, url)
    assert _config(html)["endpoint"] == "graphql"  # the page's own URL
    # GraphiQL's stylesheet: its fonts and images are data: URLs, and it imports nothing.
    css = (STATIC / "graphiql" / "graphiql.min.css").read_text(encoding="utf-8")
    assert not re.search(r"https?:|@import", css, re.I)
    assert all(u.startswith("data:") for u in re.findall(r"url\(\s*['\"]?([^'\")]*)", css))
    # The vendored scripts: URLs in comments (licences, source notes) are inert; any other must be
    # one of INERT_URLS, and each of those still occurs (the list stays the current one).
    found: set[str] = set()
    for path in SCRIPTS:
        if path not in ("hub-graphiql.js",):
            found |= _urls_outside_comments((STATIC / path).read_text(encoding="utf-8"))
    assert found - INERT_URLS.keys() == set()
    assert INERT_URLS.keys() - found == set()


def test_the_lexer_tells_comments_from_strings() -> None:
    text = (
        "// http://a.example/x\n"
        "var s = 'http://b.example/y', r = /https?:\\/\\/[/]/g, t = `${'http://c.example'}`;\n"
        "x = a / b; /* http://d.example */ u = `http://e.example/${1}/`;\n"
    )
    assert _urls_outside_comments(text) == {"http://b.example/y", "http://c.example",
                                            "http://e.example/${1}/"}  # fmt: skip


def test_csp_allows_only_the_hub(tmp_path: Path) -> None:
    directives = {name: sources for name, *sources in (d.split() for d in CSP.split(";"))}
    assert directives["default-src"] == ["'none'"]
    assert directives["frame-ancestors"] == ["'none'"]
    for name, sources in directives.items():
        for source in sources:
            allowed = {"'self'", "'none'"}
            if name in ("img-src", "font-src"):
                allowed.add("data:")  # GraphiQL's stylesheet embeds them
            if name == "style-src" and source.startswith("'sha256-"):
                continue  # the one <style> GraphiQL's dialogs insert (hub.edge.graphiql)
            assert source in allowed, (name, source)
    assert "unsafe" not in CSP


# -- the page's settings --------------------------------------------------------------------------


def test_headers_template_and_storage_by_mode(tmp_path: Path) -> None:
    demo = demo_settings(tmp_path)
    config = _config(render_page(demo))
    assert config == json.loads(json.dumps(page_config(demo)))
    assert json.loads(str(config["defaultHeaders"])) == {
        "Authorization": "Bearer <token>", "X-Purpose": "C", "X-Case-Number": "26-001234",
    }  # fmt: skip
    assert DEFAULT_HEADERS["Authorization"] == TOKEN_PLACEHOLDER
    # Headers (the token) kept, in the tab's sessionStorage, only in the demo.
    assert config["persistHeaders"] is True
    dev = dataclasses.replace(demo, mode="dev")
    assert _config(render_page(dev))["persistHeaders"] is False
    script = _code((STATIC / "hub-graphiql.js").read_text(encoding="utf-8"))
    assert "localStorage" not in script
    assert "storage: storage" in script
    assert "window.sessionStorage" in script


def test_default_query_is_the_readme_worked_example() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme.split("## A worked example", 1)[1]
    body = re.search(r"-d '(\{\"query\".*?\})'", section)
    assert body is not None
    [example] = parse(json.loads(body.group(1))["query"]).definitions
    [ours] = parse(DEFAULT_QUERY).definitions
    assert isinstance(example, OperationDefinitionNode)
    assert isinstance(ours, OperationDefinitionNode)
    assert ours.name is not None
    assert ours.name.value == "WorkedExample"
    if example.name is not None:  # the README may name it too: then by the same name
        assert example.name.value == ours.name.value
    assert print_ast(ours.selection_set) == print_ast(example.selection_set)


# -- the vendored files ---------------------------------------------------------------------------


def test_vendored_files_are_npm_s_as_recorded() -> None:
    assert {p: s["version"] for p, s in VENDOR.items()} == {
        "graphiql": "3.8.3", "react": "18.3.1", "react-dom": "18.3.1",
    }  # fmt: skip
    for package, spec in VENDOR.items():
        assert spec["license"] == "MIT"
        assert spec["integrity"].startswith("sha512-")
        for file, sha256 in spec["files"].items():
            path = STATIC / package / Path(file).name
            assert hashlib.sha256(path.read_bytes()).hexdigest() == sha256, path
        licence = (STATIC / package / "LICENSE").read_text(encoding="utf-8")
        assert licence.startswith("MIT License")
        assert "Permission is hereby granted" in licence
    served = {p for p in (*STYLES, *SCRIPTS, *LICENSES) if p.split("/")[0] in VENDOR}
    recorded = {f"{p}/{Path(f).name}" for p, s in VENDOR.items() for f in s["files"]}
    assert served == recorded


def test_package_data_ships_every_file_the_page_needs() -> None:
    patterns = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"][
        "package-data"
    ]["hub"]
    shipped = {
        Path(f).as_posix()
        for pattern in patterns
        for f in glob.glob(pattern, root_dir=ROOT / "hub", recursive=True)
        if (ROOT / "hub" / f).is_file()
    }
    needed = {f"edge/static/graphiql/{p}" for p in (*STYLES, *SCRIPTS, *LICENSES)}
    assert needed | {"edge/static/graphiql/index.html", "edge/static/graphiql/vendor.json"} <= (
        shipped
    )
