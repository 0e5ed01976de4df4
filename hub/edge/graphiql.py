"""GraphiQL, served by the hub itself: a browser that reaches nothing but the hub gets the IDE.

The page is the hub's own template (``static/graphiql/index.html``); its scripts and styles are
GraphiQL 3, React and ReactDOM, vendored from the npm registry into ``static/graphiql/`` (npm's
bytes, unmodified; versions, tarball integrity and each file's sha256 in ``vendor.json`` there;
``tools/vendor_graphiql.py`` fetches them again), and the hub's own ``hub-graphiql.js`` and
``hub-graphiql.css``. Nothing on the page refers to another host.

Served only where introspection is on (demo and dev; never in production):

- ``GET /graphql`` from a browser (``Accept: text/html``): the page (``GraphiQL.page``), with a
  Content-Security-Policy that lets it load nothing but the hub's own files (``CSP``).
- ``GET /graphiql/{digest}/{path}``: an asset. ``digest`` is the start of the file's sha256, so
  a URL names one content for good: cached for a year (``immutable``), gzip when the browser
  takes it; another digest is a 404. The page refers to its assets, and sends its requests,
  relative to its own URL: it works the same behind a proxy that serves the hub under a path.

What the page sets up (``hub-graphiql.js`` reads it from the page, ``page_config``): requests go
to the hub's own ``/graphql`` and nowhere else; the query editor opens on the README's worked
example; the headers editor on a template of what the hub asks for (a bearer token, the purpose,
a case number). GraphiQL keeps its tabs in the tab's ``sessionStorage`` — never in
``localStorage``, so a token pasted into the headers does not outlive the tab — and keeps the
headers there too only in demo mode (dev: not at all).
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import json
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from hub.settings import Settings

# Relative to the page's URL (/graphql).
ASSET_PREFIX = "graphiql"
ENDPOINT = "graphql"

# The one <style> element GraphiQL inserts, while a dialog (settings, short keys) is open: the
# scroll lock of react-remove-scroll-bar, its sizes all 0px on this page (hub-graphiql.css: the
# page never scrolls). Allowed by its hash, so styles need no 'unsafe-inline'; should a browser
# make it otherwise, it is blocked, and nothing on this page changes.
DIALOG_SCROLL_LOCK = "'sha256-Y/huXlwoYkVyQlxwSVcCi1RCDGDCSVBzDt0hYP9qlTc='"
# Only the hub's own origin. GraphiQL's stylesheet embeds its fonts and a few images as data:
# URLs (font-src, img-src). GraphiQL and CodeMirror set element styles from script (CSSOM, which
# CSP does not govern); no script is inline (the page's settings are a JSON data block).
CSP = "; ".join(
    (
        "default-src 'none'",
        "script-src 'self'",
        f"style-src 'self' {DIALOG_SCROLL_LOCK}",
        "img-src 'self' data:",
        "font-src 'self' data:",
        "connect-src 'self'",
        "base-uri 'none'",
        "form-action 'none'",
        "frame-ancestors 'none'",
    )
)

PAGE_HEADERS = {
    "Content-Security-Policy": CSP,
    # The page is rendered from the settings at start; nothing to gain from a cached copy.
    "Cache-Control": "no-store",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
}
ASSET_CACHE = "public, max-age=31536000, immutable"

# The README's worked example, as a named operation (a test holds the two equal).
DEFAULT_QUERY = """\
# The README's worked example: Jordan Reyes, in the
# records of three agencies.
#
# Each request needs a token and a purpose: put a token
# in the Authorization header (Headers, below), then run
# (Ctrl-Enter). Get one in a terminal, as hub serve said:
#   hub token --user analyst1 --agency CA0990000 --roles analyst

query WorkedExample {
  search(text: "Reyes") {
    hits {
      __typename
      ... on Person {
        name { given middle surname }
        dateOfBirth
        ssn
        provenance { agency { ori } system { name } }
      }
      ... on RecordPointer { kind owner { ori name } contact }
    }
    sources { source status count latencyMs message }
  }
}
"""

TOKEN_PLACEHOLDER = "Bearer <token>"  # noqa: S105 - what the user replaces, not a secret
DEFAULT_HEADERS: dict[str, str] = {
    "Authorization": TOKEN_PLACEHOLDER,
    "X-Purpose": "C",
    "X-Case-Number": "26-001234",
}

# Served under /graphiql/, in the order the page loads them; each package's LICENSE as well.
STYLES = ("graphiql/graphiql.min.css", "hub-graphiql.css")
SCRIPTS = (
    "react/react.production.min.js",
    "react-dom/react-dom.production.min.js",
    "graphiql/graphiql.min.js",
    "hub-graphiql.js",
)
LICENSES = ("graphiql/LICENSE", "react/LICENSE", "react-dom/LICENSE")
_TYPES = {
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    "LICENSE": "text/plain; charset=utf-8",
}


@dataclass(frozen=True)
class Asset:
    path: str  # under static/graphiql/, as in SCRIPTS
    body: bytes
    media_type: str
    sha256: str
    integrity: str  # subresource integrity (sha384)

    @property
    def key(self) -> str:
        return f"{self.sha256[:16]}/{self.path}"

    @property
    def href(self) -> str:
        """As the page refers to it (relative to /graphql)."""
        return f"{ASSET_PREFIX}/{self.key}"

    @property
    def url(self) -> str:
        return f"/{self.href}"

    @property
    def etag(self) -> str:
        return f'"{self.sha256[:32]}"'


def _media_type(path: str) -> str:
    for suffix, media_type in _TYPES.items():
        if path.endswith(suffix):
            return media_type
    raise ValueError(f"no content type for {path}")


@cache
def load_assets() -> dict[str, Asset]:
    """Every file the page uses (read once per process: they are package data)."""
    root = resources.files("hub.edge") / "static" / "graphiql"
    assets: dict[str, Asset] = {}
    for path in (*STYLES, *SCRIPTS, *LICENSES):
        body = root.joinpath(*path.split("/")).read_bytes()
        assets[path] = Asset(
            path=path,
            body=body,
            media_type=_media_type(path),
            sha256=hashlib.sha256(body).hexdigest(),
            integrity="sha384-" + base64.b64encode(hashlib.sha384(body).digest()).decode(),
        )
    return assets


@cache
def _template() -> str:
    return (resources.files("hub.edge") / "static" / "graphiql" / "index.html").read_text(
        encoding="utf-8"
    )


_gzipped: dict[str, bytes] = {}


def _gzip(asset: Asset) -> bytes:
    # mtime=0: the same bytes every time, whatever the clock.
    return gzip.compress(asset.body, compresslevel=6, mtime=0)


def _accepts_gzip(accept_encoding: str) -> bool:
    """gzip (or ``*``) is listed and not refused (``q=0``)."""
    for part in accept_encoding.lower().split(","):
        coding, *params = (p.strip() for p in part.split(";"))
        if coding in ("gzip", "*"):
            for param in params:
                name, _, value = param.partition("=")
                if name.strip() == "q":
                    try:
                        return float(value) > 0
                    except ValueError:
                        return False
            return True
    return False


def page_config(settings: Settings) -> dict[str, Any]:
    """What ``hub-graphiql.js`` reads from the page."""
    return {
        "endpoint": ENDPOINT,
        "defaultQuery": DEFAULT_QUERY,
        "defaultHeaders": json.dumps(DEFAULT_HEADERS, indent=2),
        "tokenPlaceholder": TOKEN_PLACEHOLDER,
        # sessionStorage either way; headers (the token) kept there only for the demo.
        "persistHeaders": settings.mode == "demo",
    }


def _html(text: str) -> str:
    return text.replace("&", "&amp;").replace('"', "&quot;").replace("<", "&lt;")


def render_page(settings: Settings) -> str:
    assets = load_assets()
    styles = "\n".join(
        f'<link rel="stylesheet" href="{a.href}" integrity="{a.integrity}">'
        for a in (assets[p] for p in STYLES)
    )
    licenses = "\n".join(f'<link rel="license" href="{assets[p].href}">' for p in LICENSES)
    scripts = "\n".join(
        f'<script src="{a.href}" integrity="{a.integrity}"></script>'
        for a in (assets[p] for p in SCRIPTS)
    )
    # A data block, not a script: CSP has nothing to allow. "<" escaped: no "</script>" in it.
    config = json.dumps(page_config(settings), indent=1).replace("<", "\\u003c")
    return (
        _template()
        .replace("{{styles}}", styles)
        .replace("{{licenses}}", licenses)
        .replace("{{scripts}}", scripts)
        .replace("{{config}}", config)
        .replace("{{title}}", _html(f"GraphiQL — {settings.hub_id} ({settings.mode})"))
    )


class GraphiQL:
    """The page and its assets, for ``create_app`` (only where introspection is on)."""

    def __init__(self, settings: Settings) -> None:
        self.body = render_page(settings).encode()
        self.assets = {a.key: a for a in load_assets().values()}

    def page(self) -> Response:
        return Response(self.body, media_type="text/html", headers=PAGE_HEADERS)

    async def asset(self, request: Request) -> Response:
        key = f"{request.path_params['digest']}/{request.path_params['path']}"
        asset = self.assets.get(key)
        if asset is None:
            return Response("not found", status_code=404, media_type="text/plain")
        headers = {
            "Cache-Control": ASSET_CACHE,
            "ETag": asset.etag,
            "Vary": "Accept-Encoding",
            "X-Content-Type-Options": "nosniff",
            "Cross-Origin-Resource-Policy": "same-origin",
        }
        if asset.etag in request.headers.get("if-none-match", ""):
            return Response(status_code=304, headers=headers)
        body = asset.body
        if _accepts_gzip(request.headers.get("accept-encoding", "")) and len(body) > 1024:
            if asset.path not in _gzipped:
                # Once per process and asset, off the event loop (graphiql.min.js is 3.5 MB).
                _gzipped[asset.path] = await run_in_threadpool(_gzip, asset)
            body = _gzipped[asset.path]
            headers["Content-Encoding"] = "gzip"
        return Response(body, media_type=asset.media_type, headers=headers)

    def routes(self) -> list[BaseRoute]:
        return [Route(f"/{ASSET_PREFIX}/{{digest}}/{{path:path}}", self.asset, methods=["GET"])]
