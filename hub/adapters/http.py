"""HTTP to vendors: one place that turns aiohttp and parser failures into the error tree."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Mapping
from typing import Any, TypeVar
from xml.etree.ElementTree import Element, ParseError

import aiohttp
import defusedxml.ElementTree as SafeET
import msgspec
from defusedxml import DefusedXmlException

from hub.errors import (
    SourceAuthError,
    SourceError,
    SourceProtocolError,
    SourceUnavailable,
)

# A vendor answer larger than this is refused rather than buffered (bounded everything).
MAX_BODY_BYTES = 64 * 1024 * 1024

T = TypeVar("T")


async def request_bytes(
    source: str,
    session: aiohttp.ClientSession,
    method: str,
    url: str,
    *,
    headers: Mapping[str, str] | None = None,
    params: Mapping[str, str] | None = None,
    data: bytes | str | None = None,
    not_found_ok: bool = False,
) -> bytes | None:
    """The body of a successful answer; None for a 404 when ``not_found_ok``.

    Raises SourceAuthError (401/403), SourceUnavailable (5xx, refused, reset),
    SourceProtocolError (other 4xx, truncated or oversized body), SourceError (anything else).
    """
    try:
        async with session.request(method, url, headers=headers, params=params, data=data) as resp:
            if resp.status in (401, 403):
                raise SourceAuthError(
                    source, f"vendor refused the hub's credentials ({resp.status})"
                )
            if resp.status == 404 and not_found_ok:
                return None
            if resp.status >= 500:
                raise SourceUnavailable(source, f"vendor answered HTTP {resp.status}")
            if resp.status >= 400:
                raise SourceProtocolError(
                    source, f"vendor rejected the request (HTTP {resp.status})"
                )
            if resp.content_length is not None and resp.content_length > MAX_BODY_BYTES:
                raise SourceProtocolError(source, "vendor answer too large")
            # StreamReader.read(n) returns whatever has arrived, not n bytes: read to the end.
            body = bytearray()
            async for chunk in resp.content.iter_any():
                body += chunk
                if len(body) > MAX_BODY_BYTES:
                    raise SourceProtocolError(source, "vendor answer too large")
            if resp.content_length is not None and len(body) != resp.content_length:
                raise SourceProtocolError(source, "vendor answer truncated")
            return bytes(body)
    except SourceError:
        raise
    except asyncio.CancelledError:
        raise
    except aiohttp.ClientPayloadError as exc:
        raise SourceProtocolError(source, "vendor answer truncated") from exc
    except (aiohttp.ClientConnectionError, OSError) as exc:
        raise SourceUnavailable(source, "vendor unreachable") from exc
    except aiohttp.ClientError as exc:
        raise SourceError(source, f"vendor request failed ({type(exc).__name__})") from exc


def decode_json(source: str, body: bytes) -> Any:
    try:
        return json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise SourceProtocolError(source, "vendor answer is not valid JSON") from exc


def parse_xml(source: str, body: bytes) -> Element:
    try:
        root: Element = SafeET.fromstring(body)
    except (ParseError, DefusedXmlException, ValueError) as exc:
        raise SourceProtocolError(source, "vendor answer is not valid XML") from exc
    return root


def convert_wire(source: str, obj: Any, wire_type: type[T], what: str = "vendor answer") -> T:
    """Decoded JSON as the vendor's wire form (a msgspec struct); ``what`` names it in the error."""
    try:
        return msgspec.convert(obj, wire_type)
    except msgspec.ValidationError as exc:
        raise _wrong_shape(source, what, exc) from exc


def decode_wire(source: str, body: bytes, wire_type: type[T], what: str = "vendor answer") -> T:
    """A JSON body decoded straight into the vendor's wire form (a msgspec struct)."""
    try:
        return msgspec.json.decode(body, type=wire_type)
    except msgspec.ValidationError as exc:
        raise _wrong_shape(source, what, exc) from exc
    except msgspec.DecodeError as exc:
        raise SourceProtocolError(source, f"{what} is not valid JSON") from exc


def _wrong_shape(source: str, what: str, exc: msgspec.ValidationError) -> SourceProtocolError:
    # msgspec's message ends with the JSON path of the bad value: only the path is kept, never
    # the rest (it may quote the value, possibly CJI).
    _, at, where = str(exc).rpartition(" - at ")
    return SourceProtocolError(source, f"{what} has the wrong shape at {where if at else '$'}")
