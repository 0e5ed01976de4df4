"""What every simulated vendor system shares: a real aiohttp server, injectable faults and a log
of the requests it received.

A vendor simulator subclasses ``Simulator``, declares its routes and its auth check, and renders
canonical records (``hub.model``) in its own wire format. Faults and the request log are reachable
in-process (``add_fault``, ``requests``) and over HTTP, so tests and benchmarks that run the
simulator in another process can use them too:

    POST   /_sim/faults    {"kind": "timeout", "path": "^/api/", "delay_ms": 0, "times": null}
    DELETE /_sim/faults
    GET    /_sim/requests  [{"method", "path", "query", "started_ns", "finished_ns", "status"}]
    DELETE /_sim/requests

The admin routes need the simulator's API key in ``X-Sim-Admin`` and are never faulted or logged.
"""

from __future__ import annotations

import abc
import asyncio
import enum
import re
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import asdict, dataclass

from aiohttp import web

from hub.demo.index import RecordIndex
from hub.model import Agency, Record

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class FaultKind(enum.StrEnum):
    LATENCY = "latency"  # answer normally after delay_ms
    TIMEOUT = "timeout"  # never answer in time (hang for delay_ms, default 30 s, then 504)
    ERROR_500 = "error500"  # HTTP 500 with the vendor's error body
    MALFORMED = "malformed"  # HTTP 200 with a body that is not the vendor's format
    TRUNCATED = "truncated"  # the real body, cut off half-way (connection closed early)
    DRIP = "drip"  # the real body, a few bytes at a time, delay_ms between chunks
    SET_COOKIE = "set_cookie"  # answer normally, setting a session cookie (Set-Cookie)


@dataclass(slots=True)
class Fault:
    kind: FaultKind
    path: str = ""  # regex searched in the request path; "" matches every request
    delay_ms: float = 0.0
    times: int | None = None  # how many requests it hits; None: until cleared

    def matches(self, path: str) -> bool:
        return (self.times is None or self.times > 0) and re.search(self.path, path) is not None


@dataclass(slots=True)
class RequestLogEntry:
    method: str
    path: str
    query: str
    body: str
    # time.monotonic_ns(): one clock for every process on the machine.
    started_ns: int
    finished_ns: int | None = None
    status: int | None = None
    fault: str | None = None
    carried_cookie: bool = False  # the request sent a Cookie header


MAX_LOG = 100_000
TIMEOUT_DEFAULT_MS = 30_000
DRIP_CHUNK = 16


class Simulator(abc.ABC):
    """One simulated vendor system serving one agency's records."""

    vendor: str  # e.g. "Northwind"
    kind: str  # the adapter kind that speaks this protocol, e.g. "northwind-rms"

    def __init__(
        self,
        *,
        system_name: str,
        agency: Agency,
        records: Sequence[Record],
        api_key: str,
        latency_ms: float = 0.0,
    ) -> None:
        self.system_name = system_name
        self.agency = agency
        self.records = list(records)
        # Every vendor finds records the same way; each renders them in its own format.
        self.index = RecordIndex(self.records)
        self.api_key = api_key
        self.latency_ms = latency_ms
        self.faults: list[Fault] = []
        self.requests: list[RequestLogEntry] = []
        self._runner: web.AppRunner | None = None
        self.url = ""

    # -- what a vendor defines -------------------------------------------------------------

    @abc.abstractmethod
    def routes(self) -> list[web.RouteDef]:
        """The vendor's own endpoints."""

    @abc.abstractmethod
    def authorized(self, request: web.Request) -> bool:
        """Whether the request carries this vendor's credentials (``self.api_key``)."""

    def error_body(self, status: int) -> tuple[bytes, str]:
        """The vendor's error body and content type for HTTP ``status``."""
        return (b'{"error": "internal server error"}', "application/json")

    def malformed_body(self) -> tuple[bytes, str]:
        return (b'{"results": [{"id": 1, "name": ', "application/json")

    # -- records that reach the system after start ---------------------------------------------

    def add_records(self, records: Sequence[Record]) -> None:
        """New records (or new versions: sealed since) reach the system: found from now on."""
        for record in records:
            self.index.add(record)
        self.records_changed()

    def records_changed(self) -> None:  # noqa: B027 - optional hook
        """Drop whatever a vendor keeps of earlier answers (Northwind's recent searches)."""

    # -- faults and the request log ------------------------------------------------------------

    def add_fault(
        self, kind: FaultKind | str, path: str = "", delay_ms: float = 0.0, times: int | None = None
    ) -> Fault:
        fault = Fault(FaultKind(kind), path, delay_ms, times)
        self.faults.append(fault)
        return fault

    def clear_faults(self) -> None:
        self.faults.clear()

    def clear_requests(self) -> None:
        self.requests.clear()

    def _take_fault(self, path: str) -> Fault | None:
        for fault in self.faults:
            if fault.matches(path):
                if fault.times is not None:
                    fault.times -= 1
                return fault
        return None

    # -- the server ----------------------------------------------------------------------------

    def make_app(self) -> web.Application:
        app = web.Application(middlewares=[self._middleware], client_max_size=1024 * 1024)
        app.add_routes(self.routes())
        app.add_routes(
            [
                web.post("/_sim/faults", self._admin_add_fault),
                web.delete("/_sim/faults", self._admin_clear_faults),
                web.get("/_sim/requests", self._admin_requests),
                web.delete("/_sim/requests", self._admin_clear_requests),
            ]
        )
        return app

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> str:
        self._runner = web.AppRunner(self.make_app(), access_log=None, shutdown_timeout=0.5)
        await self._runner.setup()
        site = web.TCPSite(self._runner, host, port)
        await site.start()
        # The port bound (port 0: the system's choice), from aiohttp's public view: under
        # uvloop the server is no asyncio.base_events.Server.
        bound_port = self._runner.addresses[0][1]
        self.url = f"http://{host}:{bound_port}"
        return self.url

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    @web.middleware
    async def _middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.path.startswith("/_sim/"):
            if request.headers.get("X-Sim-Admin") != self.api_key:
                return web.json_response({"error": "admin key required"}, status=401)
            return await handler(request)
        body = await request.text() if request.can_read_body else ""
        entry = RequestLogEntry(
            request.method, request.path, request.query_string, body[:4096], time.monotonic_ns()
        )
        entry.carried_cookie = "Cookie" in request.headers
        if len(self.requests) < MAX_LOG:
            self.requests.append(entry)
        try:
            response = await self._answer(request, handler, entry)
            entry.status = response.status
            return response
        finally:
            entry.finished_ns = time.monotonic_ns()

    async def _answer(
        self, request: web.Request, handler: Handler, entry: RequestLogEntry
    ) -> web.StreamResponse:
        fault = self._take_fault(request.path)
        entry.fault = fault.kind.value if fault else None
        if self.latency_ms:
            await asyncio.sleep(self.latency_ms / 1000)
        if fault is not None and fault.kind is FaultKind.LATENCY:
            await asyncio.sleep(fault.delay_ms / 1000)
        if fault is not None and fault.kind is FaultKind.TIMEOUT:
            await asyncio.sleep((fault.delay_ms or TIMEOUT_DEFAULT_MS) / 1000)
            return web.Response(status=504)
        if not self.authorized(request):
            body, ctype = self.error_body(401)
            return web.Response(status=401, body=body, content_type=ctype)
        if fault is not None and fault.kind is FaultKind.ERROR_500:
            body, ctype = self.error_body(500)
            return web.Response(status=500, body=body, content_type=ctype)
        if fault is not None and fault.kind is FaultKind.MALFORMED:
            body, ctype = self.malformed_body()
            return web.Response(status=200, body=body, content_type=ctype)
        response = await handler(request)
        if fault is not None and fault.kind is FaultKind.SET_COOKIE:
            response.set_cookie("VENDORSESSION", "s3ss10n", path="/")
        if (
            fault is None
            or fault.kind not in (FaultKind.TRUNCATED, FaultKind.DRIP)
            or not isinstance(response, web.Response)
            or response.body is None
        ):
            return response
        payload = (
            response.body if isinstance(response.body, bytes) else (response.text or "").encode()
        )
        stream = web.StreamResponse(status=response.status)
        stream.content_type = response.content_type
        stream.content_length = len(payload)
        await stream.prepare(request)
        if fault.kind is FaultKind.TRUNCATED:
            await stream.write(payload[: len(payload) // 2])
            # Close the connection with the body short of its Content-Length.
            if request.transport is not None:
                request.transport.close()
            return stream
        for start in range(0, len(payload), DRIP_CHUNK):
            await stream.write(payload[start : start + DRIP_CHUNK])
            await asyncio.sleep(fault.delay_ms / 1000)
        await stream.write_eof()
        return stream

    # -- admin routes ---------------------------------------------------------------------------

    async def _admin_add_fault(self, request: web.Request) -> web.Response:
        spec = await request.json()
        try:
            fault = self.add_fault(
                spec["kind"],
                spec.get("path", ""),
                float(spec.get("delay_ms", 0)),
                spec.get("times"),
            )
        except (KeyError, ValueError, TypeError) as exc:
            return web.json_response({"error": f"bad fault: {exc}"}, status=400)
        return web.json_response({"kind": fault.kind.value, "path": fault.path}, status=201)

    async def _admin_clear_faults(self, request: web.Request) -> web.Response:
        self.clear_faults()
        return web.Response(status=204)

    async def _admin_requests(self, request: web.Request) -> web.Response:
        return web.json_response([asdict(e) for e in self.requests])

    async def _admin_clear_requests(self, request: web.Request) -> web.Response:
        self.clear_requests()
        return web.Response(status=204)
