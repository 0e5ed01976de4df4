"""The transparency report: counts from the trail, small cells suppressed so that no total
gives one away, no CJI in any form; HTML, CSV and PDF written."""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Any

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hub.audit import FileAuditLog
from hub.oversight.transparency import (
    SUPPRESSED,
    WITHHELD,
    Table,
    count_year,
    read_year,
    suppress,
    to_csv,
    to_html,
    write_report,
)
from tests.oversight.conftest import DEMO_KINDS, Trail

pytestmark = pytest.mark.asyncio(loop_scope="module")
AGENCIES = {"CA0990000": "Marin Valley Sheriff's Office", "WA0990100": "Cascade City PD"}


def lines_of(t: Table) -> list[list[tuple[str, str]]]:
    rows, cols = t.all_rows, t.all_columns
    return [[(r, c) for c in cols] for r in rows] + [[(r, c) for r in rows] for c in cols]


@settings(max_examples=150, deadline=None)
@given(
    st.integers(1, 5).flatmap(
        lambda n: st.integers(1, 4).flatmap(
            lambda m: st.lists(
                st.lists(st.sampled_from([0, 1, 3, 9, 10, 12, 50, 400]), min_size=m, max_size=m),
                min_size=n,
                max_size=n,
            )
        )
    )
)
async def test_no_total_reveals_a_suppressed_cell(grid: list[list[int]]) -> None:
    rows = [f"r{i}" for i in range(len(grid))]
    cols = [f"c{j}" for j in range(len(grid[0]))]
    values = {(rows[i], cols[j]): v for i, line in enumerate(grid) for j, v in enumerate(line)}
    t = suppress(Table("t", "t", rows, cols, values))
    for r in t.all_rows:
        for c in t.all_columns:
            v = t.value(r, c)
            if 0 < v < 10:
                assert t.cell(r, c) == SUPPRESSED
            elif (r, c) not in t.hidden:
                assert t.cell(r, c) == f"{v:,}"
            else:
                assert t.cell(r, c) == WITHHELD
    for line in lines_of(t):
        if len(line) > 1:
            # Never exactly one unknown in a row or column that sums to its total.
            assert sum(cell in t.hidden for cell in line) != 1, (grid, sorted(t.hidden))


async def test_the_year_counted_suppressed_and_rendered(seeded: Trail, tmp_path: Path) -> None:
    async with FileAuditLog(seeded.directory, fsync="never") as log:
        entries = await read_year(log, 2026)
    report = count_year(entries, 2026, AGENCIES, DEMO_KINDS)
    assert report.operations == len(entries) == seeded.history.entries
    purpose = report.table("purpose")
    assert purpose.cell("J Criminal justice employment", "Operations") == SUPPRESSED
    assert WITHHELD in {purpose.cell(r, "Operations") for r in purpose.rows}
    assert purpose.cell("Total", "Operations") == f"{report.operations:,}"
    kinds = report.table("source_kind")
    assert set(kinds.rows) == {"ALPR", "RMS"}
    alerts = report.table("alerts")
    assert alerts.cell("Hot-list alerts", "Count") == "0"
    assert "no hot-list alerts" in alerts.note

    png = tmp_path / "first.png"
    paths = write_report(report, tmp_path / "out", "Transparency report", png=png)
    html_path, csv_path, pdf_path, png_path = paths
    assert pdf_path.read_bytes().startswith(b"%PDF")
    assert png_path.read_bytes().startswith(b"\x89PNG")
    text = html_path.read_text() + csv_path.read_text()
    assert "<svg" in html_path.read_text()
    rows = list(csv.DictReader(io.StringIO(csv_path.read_text())))
    assert {"year", "table", "row", "column", "value"} == set(rows[0])
    # No CJI, no person: nothing of any entry's criteria, case, records, users or addresses.
    for e in entries:
        for value in msgspec.to_builtins(e.criteria or {}).values():
            if isinstance(value, str) and len(value) > 3:
                assert value not in text
        for needle in (e.case_number, e.user, e.client_address, *(r.id for r in e.records)):
            if needle:
                assert needle not in text


async def test_alerts_are_counted_when_the_trail_has_them(seeded: Trail) -> None:
    async with FileAuditLog(seeded.directory, fsync="never") as log:
        entries = await read_year(log, 2026)
    alerts = [
        msgspec.structs.replace(e, operation="hotListAlert", seq=10**6 + i)
        for i, e in enumerate(entries[:12])
    ]
    report = count_year([*entries, *alerts], 2026, AGENCIES, DEMO_KINDS)
    assert report.table("alerts").cell("Hot-list alerts", "Count") == "12"
    assert report.operations == len(entries)
    # A year with nothing in it renders, saying so.
    empty = count_year(entries, 2025, AGENCIES, DEMO_KINDS)
    assert empty.operations == 0
    assert "None recorded." in to_html(empty, "t")
    assert to_csv(empty).startswith("year,table,row,column,value")


async def test_a_streams_payload_entries_are_not_operations_of_their_own(seeded: Trail) -> None:
    async with FileAuditLog(seeded.directory, fsync="never") as log:
        entries = await read_year(log, 2026)
    streamed: list[Any] = []
    for i, e in enumerate(entries):
        if i % 4 == 0:  # a stream: one entry per payload before the operation's own
            streamed += [msgspec.structs.replace(e, part=n, sources=()) for n in (1, 2, 3)]
        streamed.append(e)
    plain = count_year(entries, 2026, AGENCIES, DEMO_KINDS)
    assert count_year(streamed, 2026, AGENCIES, DEMO_KINDS) == plain
