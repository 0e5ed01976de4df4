"""The hub's logs: one JSON object per line (``json``) or uvicorn's text (``text``), each line of
a request carrying its ids, and never CJI.

``hub serve --log-format json|text`` (default: json in production mode, text otherwise) hands
uvicorn ``log_config(fmt)``: uvicorn's loggers, the hub's own (``hub.*``, INFO) and the root
logger (WARNING: what other libraries say) all go through the one formatter.

A JSON line::

    {"time": "2026-05-04T10:21:07.123Z", "level": "INFO", "logger": "uvicorn.access",
     "message": "127.0.0.1:51234 - \\"POST /graphql HTTP/1.1\\" 200", "pid": 4242,
     "request_id": "6f1c…", "trace_id": "4bf92f35…", "client_addr": "127.0.0.1:51234",
     "method": "POST", "path": "/graphql", "status": 200}

``request_id`` and ``trace_id`` appear on every line logged while a request is served (the edge
binds them: ``bind_request``, ``bind_trace``; inside an audited operation the trace id is also
the current span's). Fields a log call passes in ``extra`` are added as they are (the start-up
line passes what was loaded).

What keeps CJI out: the hub's log calls name sources, agencies, codes and counts, never
criteria, names, plates or record ids (keep it so: a test searches for a distinctive name and
reads every line); uvicorn's access line loses the query string (``DropQueryString``: a client
may put a query there), in both formats. Exception tracebacks are logged as Python formats them
(operators need them); the hub's own exceptions carry no CJI in their messages.
"""

from __future__ import annotations

import copy
import json
import logging
import os
import time
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any, Literal

from opentelemetry import trace
from uvicorn.logging import AccessFormatter, DefaultFormatter

LogFormat = Literal["json", "text"]
LOG_FORMATS: tuple[LogFormat, ...] = ("json", "text")


@dataclass(slots=True)
class _Ids:
    request_id: str | None = None
    trace_id: str | None = None


# The request being served in this task (uvicorn serves each request in a task of its own, so
# a request's ids never leak into another's lines).
_request_ids: ContextVar[_Ids | None] = ContextVar("hub_log_request_ids", default=None)


def bind_request(request_id: str) -> None:
    """Lines logged from here on in this request carry ``request_id``."""
    _request_ids.set(_Ids(request_id=request_id))


def bind_trace(trace_id: str) -> None:
    """Lines logged from here on in this request carry ``trace_id`` (the audit entry's)."""
    ids = _request_ids.get()
    if ids is None:
        _request_ids.set(_Ids(trace_id=trace_id))
    else:
        ids.trace_id = trace_id


def current_ids() -> dict[str, str]:
    """The ids of the request being served: ``request_id``, ``trace_id`` (either may be absent)."""
    out: dict[str, str] = {}
    ids = _request_ids.get()
    if ids is not None and ids.request_id:
        out["request_id"] = ids.request_id
    if ids is not None and ids.trace_id:
        out["trace_id"] = ids.trace_id
    else:
        span = trace.get_current_span().get_span_context()
        if span.is_valid:
            out["trace_id"] = format(span.trace_id, "032x")
    return out


# What every LogRecord has: anything else on a record came from a log call's ``extra``.
_STANDARD = frozenset(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {
    "message",
    "asctime",
    "color_message",  # uvicorn's coloured copy of the message
    "taskName",
}


class DropQueryString(logging.Filter):
    """uvicorn's access line without the query string: a client may send search criteria there
    (``GET /graphql?query=…``), and nothing of a request's content belongs in a log."""

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args
        if isinstance(args, tuple) and len(args) == 5 and isinstance(args[2], str):
            path = args[2]
            if "?" in path:
                record.args = (args[0], args[1], path.split("?", 1)[0], args[3], args[4])
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time (UTC, ms), level, logger, message, pid, the request's ids,
    the log call's ``extra`` fields; ``exception`` holds a traceback."""

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "time": _utc(record.created),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "pid": record.process or os.getpid(),
        }
        out.update(current_ids())
        if record.name == "uvicorn.access":
            out.update(_access_fields(record))
        for key, value in record.__dict__.items():
            if key not in _STANDARD and not key.startswith("_") and key not in out:
                out[key] = value
        if record.exc_info:
            out["exception"] = self.formatException(record.exc_info)
        elif record.exc_text:
            out["exception"] = record.exc_text
        if record.stack_info:
            out["stack"] = self.formatStack(record.stack_info)
        return json.dumps(out, default=str)


def _utc(created: float) -> str:
    seconds = int(created)
    millis = int((created - seconds) * 1000)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds)) + f".{millis:03d}Z"


def _access_fields(record: logging.LogRecord) -> dict[str, Any]:
    args = record.args
    if not isinstance(args, tuple) or len(args) != 5:
        return {}
    client, method, path, _version, status = args
    return {"client_addr": client, "method": method, "path": path, "status": status}


def _with_ids(line: str) -> str:
    ids = current_ids()
    if not ids:
        return line
    return line + "".join(f" {key}={value}" for key, value in ids.items())


class TextFormatter(DefaultFormatter):
    """uvicorn's text line, and the request's ids after it when there is a request."""

    def format(self, record: logging.LogRecord) -> str:
        return _with_ids(super().format(record))


class TextAccessFormatter(AccessFormatter):
    def format(self, record: logging.LogRecord) -> str:
        return _with_ids(super().format(record))


def default_log_format(mode: str) -> LogFormat:
    return "json" if mode == "production" else "text"


def log_config(fmt: LogFormat = "text", level: str = "INFO") -> dict[str, Any]:
    """The ``logging.config.dictConfig`` for ``hub serve``: uvicorn's loggers, the hub's
    (``hub.*`` at ``level``) and the root logger (WARNING), all in format ``fmt``."""
    from uvicorn.config import LOGGING_CONFIG

    config = copy.deepcopy(LOGGING_CONFIG)
    if fmt == "json":
        config["formatters"] = {
            "default": {"()": f"{__name__}.JsonFormatter"},
            "access": {"()": f"{__name__}.JsonFormatter"},
        }
    else:
        config["formatters"]["default"]["()"] = f"{__name__}.TextFormatter"
        config["formatters"]["access"]["()"] = f"{__name__}.TextAccessFormatter"
    config["filters"] = {"drop_query_string": {"()": f"{__name__}.DropQueryString"}}
    config["handlers"]["access"]["filters"] = ["drop_query_string"]
    config["loggers"]["hub"] = {"handlers": ["default"], "level": level, "propagate": False}
    config["root"] = {"handlers": ["default"], "level": "WARNING"}
    return config
