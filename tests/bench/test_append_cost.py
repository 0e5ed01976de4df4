from __future__ import annotations

from pathlib import Path

from bench.append_cost import measure_append, sample_entry
from hub.audit.chain import verify_file
from hub.audit.file_log import FileAuditLog


async def test_measure_append_appends_exactly_n_and_times_them(tmp_path: Path) -> None:
    async with FileAuditLog(tmp_path, fsync="never") as log:
        cost = await measure_append(log, 50, concurrency=8, records=3)
    assert cost.appends == 50
    assert cost.us_per_append > 0
    report = verify_file(tmp_path)
    assert report.ok
    assert report.head_seq == 50
    assert len(sample_entry(7).records) == 7
