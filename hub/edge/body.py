"""The request body: read within its size limit, then parsed once, before any GraphQL runs.

``read_body``: an ``application/json`` POST (a browser cannot forge one across origins without
a preflight the hub never grants) of at most ``limits.max_body_bytes``, read once. ``parse_body``:
UTF-8, JSON nesting at most ``MAX_JSON_DEPTH`` (checked on the raw bytes before anything
recurses), one operation (no batches), and the envelope's members of the right types. Each
refusal is an error of ``hub.errors`` that says what is wrong with the body.

``encode_response``: a GraphQL response body as compact JSON bytes (msgspec: a 1,000-record
answer is encoded several times faster than by ``json.dumps``). The request body keeps the
standard library's parser: a request is a few hundred bytes, and its errors say line and column.
"""

from __future__ import annotations

import functools
import json
import re
from typing import Any, NoReturn

import msgspec
from starlette.requests import Request

from hub.errors import BodyTooLarge, QueryRejected, RequestError, UnsupportedMediaType

# The deepest a request body's JSON may nest (objects and arrays, the envelope included).
MAX_JSON_DEPTH = 64


async def read_body(request: Request, limit: int) -> bytes:
    """The body of a JSON POST; UnsupportedMediaType (415) or BodyTooLarge (413) otherwise."""
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type != "application/json":
        raise UnsupportedMediaType("GraphQL requests must be POSTed as application/json")
    too_large = BodyTooLarge(f"request body over {limit} bytes")
    declared = request.headers.get("content-length")
    if declared is not None and (not declared.isdigit() or int(declared) > limit):
        raise too_large
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            raise too_large
    return bytes(body)


# A JSON string (escapes included), to be skipped when counting brackets. A string left open
# runs to the end of the body (the parser stops there): every match attempt succeeds, so one
# pass is linear, where retrying from each quote of '"\\"\\"\\"...' would be quadratic.
_JSON_STRING = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*(?:"|\\?\Z)', re.DOTALL)
# Both kinds of bracket as one, everything else deleted: b'{"a": [1, {}]}' -> b"[[[]]]".
_ONE_BRACKET = bytes.maketrans(b"{}", b"[]")
_NOT_BRACKETS = bytes(b for b in range(256) if b not in b"[]{}")
# A \uD800-\uDFFF escape: a surrogate, which is only valid as one half of a pair.
_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F]")


@functools.cache
def _whole_groups(limit: int) -> re.Pattern[bytes]:
    """Bracket groups ("[[][]]", brackets only) nested at most ``limit`` deep, one after the
    other. Each group matches one way or not at all, so a match, or its failure, is linear."""
    group = rb"\[\]"
    for _ in range(limit - 1):
        group = rb"\[(?:" + group + rb")*\]"
    return re.compile(rb"(?:" + group + rb")*")


def check_nesting(body: bytes, limit: int = MAX_JSON_DEPTH) -> None:
    """QueryRejected if ``body``'s JSON nests deeper than ``limit``, before any parser recurses
    into it; RequestError if its brackets do not pair up (it is not JSON then). C speed, no
    recursion: one regex pass drops the strings, one translate keeps the brackets, one regex
    match takes whole groups at most ``limit`` deep for as long as there are any."""
    brackets = _JSON_STRING.sub(b"", body).translate(_ONE_BRACKET, _NOT_BRACKETS)
    if brackets.count(b"[") <= limit:
        return  # no deeper than its number of opening brackets; the parser judges the rest
    found = _whole_groups(limit).match(brackets)  # "(...)*" matches, if only the empty string
    stop = found.end() if found is not None else 0
    if stop == len(brackets):
        return
    # What stopped the match: a "]" with nothing open, or a group that never closes (brackets
    # that do not pair up: not JSON), or else a group that goes deeper than ``limit``.
    if brackets[stop] == ord("]") or 2 * brackets.count(b"[") != len(brackets):
        raise RequestError("the request body is not JSON: its brackets do not pair up")
    raise QueryRejected(
        f"the request body nests JSON deeper than {limit} levels; nothing was executed"
    )


def _not_json(constant: str) -> NoReturn:
    raise RequestError(f"the request body is not JSON: {constant} is not a JSON value")


def _lone_surrogate(value: object) -> bool:
    """Whether a parsed JSON value holds a string that is not Unicode (an unpaired surrogate
    escape): it could not be hashed, audited or answered. Nesting is already bounded."""
    if isinstance(value, str):
        return any("\ud800" <= c <= "\udfff" for c in value)
    if isinstance(value, dict):
        return any(_lone_surrogate(k) or _lone_surrogate(v) for k, v in value.items())
    if isinstance(value, list):
        return any(_lone_surrogate(v) for v in value)
    return False


def parse_body(body: bytes, max_depth: int = MAX_JSON_DEPTH) -> dict[str, Any]:
    """A GraphQL-over-HTTP request body as its JSON object, parsed once; RequestError (400
    BAD_REQUEST) or QueryRejected (400 QUERY_REJECTED, nesting) with a message saying what is
    wrong with it."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise RequestError(
            f"the request body is not UTF-8 (an invalid byte at offset {exc.start})"
        ) from exc
    check_nesting(body, max_depth)
    try:
        payload = json.loads(text, parse_constant=_not_json)
    except json.JSONDecodeError as exc:
        raise RequestError(
            f"the request body is not JSON: {exc.msg} (line {exc.lineno}, column {exc.colno})"
        ) from exc
    except RecursionError as exc:  # not reached: check_nesting bounds the depth
        raise QueryRejected("the request body nests JSON too deeply") from exc
    if _SURROGATE_ESCAPE.search(body) and _lone_surrogate(payload):
        raise RequestError("the request body is not JSON text: it escapes a lone surrogate")
    if isinstance(payload, list):
        raise RequestError("batched requests are not supported: send one operation per request")
    if not isinstance(payload, dict):
        raise RequestError(
            'the request body must be a JSON object: {"query": "...", "variables": {...}}'
        )
    for key, kind, types in (
        ("query", "a string", str),
        ("operationName", "a string", str),
        ("variables", "an object", dict),
        ("extensions", "an object", dict),
    ):
        if payload.get(key) is not None and not isinstance(payload[key], types):
            raise RequestError(f"the request's {key!r} must be {kind} or null")
    return payload


# Keys in the order the executor made them (GraphQL's response order), UTF-8 (the media type's
# encoding: RFC 8259 8.1), NaN and Infinity as null (msgspec never writes them as tokens; the
# schema's Float refuses them before this anyway).
_RESPONSE_ENCODER = msgspec.json.Encoder()


def encode_response(data: object) -> bytes:
    """``data``, a response of plain JSON values, as compact JSON bytes."""
    try:
        return _RESPONSE_ENCODER.encode(data)
    except UnicodeEncodeError:
        # A lone surrogate in some vendor's string cannot be UTF-8: escaped as \uD8xx it is
        # still valid JSON text, as json.dumps writes it. Never NaN (allow_nan=False).
        return json.dumps(data, separators=(",", ":"), allow_nan=False).encode("ascii")
