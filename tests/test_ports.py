"""The test helper that hands out ports for servers started as processes."""

from __future__ import annotations

import socket

from tests import ports


def test_ports_come_from_below_the_kernels_ephemeral_range_free_and_never_twice() -> None:
    given = [ports.free_port() for _ in range(50)]
    assert len(set(given)) == len(given)
    top = ports._ephemeral_start()
    assert all(20_000 <= port < top for port in given)
    for port in given:
        with socket.socket() as s:
            s.bind(("127.0.0.1", port))


def test_a_port_in_use_is_not_handed_out() -> None:
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        taken = holder.getsockname()[1]
        assert not ports._is_free(taken)
