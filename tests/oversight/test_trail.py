"""The trail an auditor reads over a window: all of it, or a refusal; never its newest part."""

from __future__ import annotations

import pytest

from hub.audit import FileAuditLog
from hub.demo.history import MARIN
from hub.errors import QueryRejected
from hub.oversight.trail import scoped_entries
from tests.oversight.conftest import Trail

pytestmark = pytest.mark.asyncio(loop_scope="module")


async def test_a_window_past_the_bound_is_refused_not_read_in_part(seeded: Trail) -> None:
    h = seeded.history
    async with FileAuditLog(seeded.directory, fsync="never") as log:
        every = await scoped_entries(log, MARIN, h.window_start, h.end)
        assert len(every) > 1000  # more than one page of the audit query
        assert [e.seq for e in every] == sorted(e.seq for e in every)
        # Exactly at the bound: all of it.
        again = await scoped_entries(log, MARIN, h.window_start, h.end, max_entries=len(every))
        assert [e.seq for e in again] == [e.seq for e in every]
        # One below it: refused, with what to do; so too when the first page alone is over.
        for bound in (len(every) - 1, 10):
            with pytest.raises(QueryRejected, match="shorter"):
                await scoped_entries(log, MARIN, h.window_start, h.end, max_entries=bound)
