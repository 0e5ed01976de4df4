"""Ports for the servers a test starts as processes of their own.

A port the kernel hands out for ``bind(0)`` comes from its ephemeral range, the range it also
draws the local port of every outgoing connection from. Between the test releasing such a port
and the server binding it, any client on the machine (a vendor call, a Redis connection, another
worker's test) may take it, and the server exits with "address already in use": CI failed on
exactly that once. These ports come from below the ephemeral range, where the kernel never hands
out a port on its own. Each xdist worker draws from a slice of its own, at random, so that two
workers of one run, or a nested run, seldom try the same port; a port is checked free before it
is handed out, and never handed out twice by one process.
"""

from __future__ import annotations

import os
import random
import socket
from pathlib import Path

_FLOOR = 20_000
_SLICES = 8
_given: set[int] = set()


def _ephemeral_start() -> int:
    try:
        low = int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 32_768
    return low if low > _FLOOR + 2 * _SLICES * 100 else 32_768


def _worker() -> int:
    name = os.environ.get("PYTEST_XDIST_WORKER", "gw0")
    digits = name.removeprefix("gw")
    return int(digits) if digits.isdigit() else 0


def _is_free(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def free_port() -> int:
    """A free TCP port on 127.0.0.1 that no outgoing connection can take before the server
    binds it."""
    top = _ephemeral_start()
    width = (top - _FLOOR) // _SLICES
    start = _FLOOR + (_worker() % _SLICES) * width
    candidates = list(range(start, start + width))
    random.SystemRandom().shuffle(candidates)
    for port in candidates:
        if port not in _given and _is_free(port):
            _given.add(port)
            return port
    raise RuntimeError(f"no free port in {start}-{start + width - 1}")
