"""The annual transparency report: what the hub was used for, in counts the public may read.

``hub report transparency --year Y`` reads the year's audit trail (``AuditLog.scan``), counts
and writes one report in three forms: HTML (charts inline as SVG), CSV (every published cell)
and PDF (matplotlib's PDF backend: no browser, no system library).

What is counted: operations that read records (reading the trail itself is not counted), by
purpose, by requesting agency, by requesting x owning agency (operations that returned at least
one of the owner's records, in full or as a pointer), source calls by kind of system, by month;
denials (operations refused, and sources policy forbade asking), pointers shown, and hot-list
alerts (operations ``hotListAlert*`` where the trail has them).

No CJI and no person: no names, plates, criteria, case numbers, record ids or user ids; only
purpose codes, agency ORIs and names, kinds of system and counts.

Small counts are suppressed, not noised: a cell of 1 to 9 reads "<10" (primary suppression),
and in every table with totals, a row or column left with exactly one suppressed cell has its
next smallest cell suppressed too (complementary suppression), so no total minus the cells
shown gives a suppressed one. Why not differential privacy (OpenDP): these are counts of
government activity that the public and the agencies' own auditors reconcile against the trail;
noise would make every published figure disagree with the record, and a yearly release would need
a privacy budget across years. Suppression is what the justice statistics agencies publish with.
Its limit, said plainly: it protects one report; two reports over overlapping periods could be
differenced, so the command makes calendar years only.
"""

from __future__ import annotations

import csv
import html
import io
import textwrap
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import msgspec

from hub.access.purposes import PURPOSES
from hub.audit import AuditLog, SealedEntry
from hub.audit.entry import decode_entry, whole_operations
from hub.errors import InvalidId
from hub.model import EntityKind, SourceKind, parse_id

THRESHOLD = 10  # counts 1..THRESHOLD-1 are suppressed
SUPPRESSED = f"<{THRESHOLD}"
# A cell hidden so that a total cannot give away a small one: its value may be any size.
WITHHELD = "(s)"
_READS_TRAIL = frozenset({"auditEvents", "auditReview"})
_ALERT_PREFIX = "hotListAlert"
_ASKED = frozenset({"OK", "NO_HIT", "TIMEOUT", "ERROR"})
_DENIED_SOURCES = "Sources policy forbade asking (DENIED)"
_POINTERS = "Pointers shown (record exists; ask its owner)"
_POINTER_OPS = "Operations answered with a pointer"
MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


@dataclass
class Table:
    """A published table: rows x columns of counts, with totals, and which cells are hidden."""

    key: str
    title: str
    rows: list[str]
    columns: list[str]
    values: dict[tuple[str, str], int]
    note: str = ""
    with_totals: bool = True
    hidden: set[tuple[str, str]] = field(default_factory=set)
    # Of the hidden cells, those hidden only to protect another (complementary suppression).
    secondary: set[tuple[str, str]] = field(default_factory=set)

    def cell(self, row: str, column: str) -> str:
        if (row, column) in self.secondary:
            return WITHHELD
        if (row, column) in self.hidden:
            return SUPPRESSED
        return f"{self.value(row, column):,}"

    def value(self, row: str, column: str) -> int:
        if row == "Total" and column == "Total":
            return sum(self.values.values())
        if row == "Total":
            return sum(v for (_, c), v in self.values.items() if c == column)
        if column == "Total":
            return sum(v for (r, _), v in self.values.items() if r == row)
        return self.values.get((row, column), 0)

    @property
    def all_rows(self) -> list[str]:
        return [*self.rows, "Total"] if self.with_totals and len(self.rows) > 1 else self.rows

    @property
    def all_columns(self) -> list[str]:
        many = self.with_totals and len(self.columns) > 1
        return [*self.columns, "Total"] if many else self.columns


def suppress(table: Table) -> Table:
    """Primary suppression of 1..9, then complementary suppression until no row or column
    (with its total) holds exactly one hidden cell. Totals count as cells of their lines."""
    rows, columns = table.all_rows, table.all_columns
    hidden = {(r, c) for r in rows for c in columns if 0 < table.value(r, c) < THRESHOLD}
    lines = [[(r, c) for c in columns] for r in rows] + [[(r, c) for r in rows] for c in columns]
    changed = True
    while changed:
        changed = False
        for line in lines:
            if len(line) < 2:
                continue
            if sum(cell in hidden for cell in line) != 1:
                continue
            # Hide the smallest other nonzero cell of the line (a zero tells nothing hidden:
            # a suppressed cell is never zero).
            candidates = [cell for cell in line if cell not in hidden and table.value(*cell) > 0]
            if not candidates:
                continue
            chosen = min(candidates, key=lambda cell: (table.value(*cell), cell))
            hidden.add(chosen)
            table.secondary.add(chosen)
            changed = True
    table.hidden = hidden
    return table


@dataclass
class Report:
    year: int
    generated: str
    operations: int
    tables: list[Table]
    notes: list[str]

    def table(self, key: str) -> Table:
        return next(t for t in self.tables if t.key == key)


def count_year(
    entries: Sequence[SealedEntry],
    year: int,
    agencies: Mapping[str, str],
    source_kinds: Mapping[str, SourceKind],
) -> Report:
    """The report over the year's entries. ``agencies``: ORI -> name; ``source_kinds``: the
    configured sources' kinds (a source not configured any more is told by its records)."""
    # A stream is one operation, not one per payload.
    ops = [
        e
        for e in whole_operations(entries)
        if e.at[:4] == str(year) and e.operation not in _READS_TRAIL
    ]
    reads = [e for e in ops if not e.operation.startswith(_ALERT_PREFIX)]
    alerts = [e for e in ops if e.operation.startswith(_ALERT_PREFIX)]

    def name(ori: str) -> str:
        # The ORI first: a label cut short to fit a page still says which agency.
        return f"{ori} {agencies[ori]}" if ori in agencies else ori

    by_purpose: Counter[tuple[str, str]] = Counter()
    by_agency: Counter[tuple[str, str]] = Counter()
    cross: Counter[tuple[str, str]] = Counter()
    kinds: Counter[tuple[str, str]] = Counter()
    months: Counter[tuple[str, str]] = Counter()
    outcomes: Counter[tuple[str, str]] = Counter()
    for e in reads:
        purpose = e.purpose or "(none stated)"
        by_purpose[(purpose, "Operations")] += 1
        by_agency[(name(e.agency), "Operations")] += 1
        months[(MONTHS[int(e.at[5:7]) - 1], "Operations")] += 1
        for owner in sorted({r.owner for r in e.records}):
            cross[(name(e.agency), name(owner))] += 1
        for s in e.sources:
            if s.status in _ASKED:
                kinds[(_source_kind(s.source, s.agency, e, source_kinds), "Source calls")] += 1
            if s.status == "DENIED":
                outcomes[(_DENIED_SOURCES, "Count")] += 1
        if e.outcome == "REFUSED":
            outcomes[(f"Operations refused ({e.error_code or 'no code'})", "Count")] += 1
        pointers = sum(1 for r in e.records if r.visibility == "POINTER")
        if pointers:
            outcomes[(_POINTERS, "Count")] += pointers
            outcomes[(_POINTER_OPS, "Count")] += 1
    for fixed in (_DENIED_SOURCES, _POINTERS, _POINTER_OPS):
        outcomes[(fixed, "Count")] += 0
    purposes = sorted({p for p, _ in by_purpose})
    tables = [
        Table("purpose", "Operations by purpose of use",
              [f"{p} {PURPOSES[p].title}" if p in PURPOSES else p for p in purposes],
              ["Operations"],
              {(f"{p} {PURPOSES[p].title}" if p in PURPOSES else p, c): v
               for (p, c), v in by_purpose.items()}),
        Table("requester", "Operations by requesting agency", sorted({r for r, _ in by_agency}),
              ["Operations"], dict(by_agency)),
        Table("requester_owner", "Operations that returned an owner's records, by requesting "
              "(rows) and owning (columns) agency", sorted({r for r, _ in cross}),
              sorted({c for _, c in cross}), dict(cross),
              note="An operation that returned records of several owners counts once under "
              "each, so the totals exceed the number of operations."),
        Table("source_kind", "Source calls by kind of system", sorted({k for k, _ in kinds}),
              ["Source calls"], dict(kinds),
              note="RMS: records management; CAD: computer-aided dispatch; ALPR: automated "
              "licence-plate readers; HUB: partner hubs."),
        Table("month", "Operations by month", [m for m in MONTHS if (m, "Operations") in months],
              ["Operations"], dict(months)),
        Table("outcomes", "Denials and pointers", sorted({r for r, _ in outcomes}), ["Count"],
              dict(outcomes), with_totals=False,
              note="A pointer tells the requester only that the owner holds a record and whom "
              "to ask."),
        Table("alerts", "Hot-list alerts", ["Hot-list alerts"], ["Count"],
              {("Hot-list alerts", "Count"): len(alerts)}, with_totals=False,
              note="" if alerts else "The trail of this year records no hot-list alerts (the "
              "hub records them as operations hotListAlert*); 0 is shown."),
    ]  # fmt: skip
    return Report(
        year=year,
        generated=datetime.now(UTC).strftime("%Y-%m-%d"),
        operations=len(reads),
        tables=[suppress(t) for t in tables],
        notes=[
            f'Counts from 1 to {THRESHOLD - 1} are shown as "{SUPPRESSED}". Where a total '
            "would reveal such a count, another cell of its row or column is withheld too, "
            f'shown as "{WITHHELD}" (it may hold any count).',
            "No names, plates, search criteria, case numbers, record or user identifiers are "
            "published. Reading the audit trail (auditors) is not counted.",
        ],
    )


def _source_kind(source: str, agency: str, e: SealedEntry, kinds: Mapping[str, SourceKind]) -> str:
    kind = kinds.get(source)
    if kind is not None:
        return kind.value
    found: set[EntityKind] = set()
    for r in e.records:
        try:
            ref = parse_id(r.id)
        except InvalidId:
            continue
        if ref.source == source:
            found.add(ref.kind)
    if found == {EntityKind.PLATE_READ}:
        return SourceKind.ALPR.value
    return "other"


async def read_year(log: AuditLog, year: int) -> list[SealedEntry]:
    since = datetime(year, 1, 1, tzinfo=UTC)
    until = datetime(year + 1, 1, 1, tzinfo=UTC)
    out = []
    async for raw in log.scan(since=since, until=until):
        try:
            entry = decode_entry(raw.line)
        except msgspec.DecodeError:
            continue  # not an entry: `hub audit verify` names it
        if entry.at[:4] == str(year):
            out.append(entry)
    return out


# -- rendering ---------------------------------------------------------------------------------


def to_csv(report: Report) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["year", "table", "row", "column", "value"])
    for t in report.tables:
        for r in t.all_rows:
            for c in t.all_columns:
                writer.writerow([report.year, t.key, r, c, t.cell(r, c).replace(",", "")])
    return out.getvalue()


def _bar_chart(table: Table, title: str, column: str) -> Any:
    """A horizontal bar chart of one column; a suppressed cell is drawn as an empty bar
    labelled "<10", never as its value."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    rows = table.rows
    fig = Figure(figsize=(7.0, 0.45 * max(len(rows), 2) + 1.0))
    ax = fig.add_subplot()
    shown = [0 if (r, column) in table.hidden else table.value(r, column) for r in rows]
    bars = ax.barh(range(len(rows)), shown, color="#2f5d8a")
    top = max(shown, default=0) or 1
    for i, (bar, r) in enumerate(zip(bars, rows, strict=True)):
        text = table.cell(r, column)
        ax.text(bar.get_width() + top * 0.01, i, text, va="center", fontsize=8)
    ax.set_yticks(range(len(rows)), [r if len(r) <= 42 else r[:40] + "…" for r in rows], fontsize=8)
    ax.invert_yaxis()
    ax.set_xlim(0, top * 1.15)
    ax.set_title(title, fontsize=10, loc="left")
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)
    fig.tight_layout()
    return fig


def _svg(fig: Any) -> str:
    buffer = io.StringIO()
    fig.savefig(buffer, format="svg")
    text = buffer.getvalue()
    return text[text.index("<svg") :]


_CHARTS = (("purpose", "Operations"), ("source_kind", "Source calls"), ("month", "Operations"))

_CSS = """
body { font-family: system-ui, sans-serif; max-width: 60rem; margin: 2rem auto; color: #1b1b1b; }
h1 { font-size: 1.6rem; margin-bottom: .2rem; } h2 { font-size: 1.15rem; margin-top: 2rem; }
table { border-collapse: collapse; margin: .5rem 0; font-size: .9rem; }
th, td { border: 1px solid #c8c8c8; padding: .25rem .6rem; text-align: right; }
th:first-child, td:first-child { text-align: left; } thead th { background: #eef2f6; }
.note { color: #555; font-size: .85rem; } .key { font-size: 1.1rem; }
svg { max-width: 100%; height: auto; }
"""


def to_html(report: Report, title: str) -> str:
    parts = [
        "<!doctype html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>{html.escape(title)} {report.year}</title><style>{_CSS}</style></head><body>",
        f"<h1>{html.escape(title)} — {report.year}</h1>",
        f'<p class="note">Generated {report.generated} from the hub\'s audit trail.</p>',
        f'<p class="key">Operations that read records: <strong>'
        f"{_published(report.operations)}</strong></p>",
    ]
    for note in report.notes:
        parts.append(f'<p class="note">{html.escape(note)}</p>')
    charts = {key: column for key, column in _CHARTS}
    for t in report.tables:
        parts.append(f"<h2>{html.escape(t.title)}</h2>")
        if t.key in charts and t.rows:
            parts.append(_svg(_bar_chart(t, t.title, charts[t.key])))
        if not t.rows:
            parts.append("<p>None recorded.</p>")
            continue
        parts.append("<table><thead><tr><th></th>")
        parts += [f"<th>{html.escape(c)}</th>" for c in t.all_columns]
        parts.append("</tr></thead><tbody>")
        for r in t.all_rows:
            cells = "".join(f"<td>{html.escape(t.cell(r, c))}</td>" for c in t.all_columns)
            parts.append(f"<tr><th>{html.escape(r)}</th>{cells}</tr>")
        parts.append("</tbody></table>")
        if t.note:
            parts.append(f'<p class="note">{html.escape(t.note)}</p>')
    parts.append("</body></html>")
    return "\n".join(parts)


def _published(n: int) -> str:
    return SUPPRESSED if 0 < n < THRESHOLD else f"{n:,}"


def _first_page(report: Report, title: str) -> Any:
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    fig = Figure(figsize=(8.27, 11.69))  # A4
    fig.text(0.08, 0.95, f"{title} — {report.year}", fontsize=18, weight="bold")
    fig.text(0.08, 0.925, f"Generated {report.generated} from the hub's audit trail.", fontsize=9)
    fig.text(0.08, 0.895, f"Operations that read records: {_published(report.operations)}",
             fontsize=12)  # fmt: skip
    y = 0.87
    for note in report.notes:
        fig.text(0.08, y, textwrap.fill(note, 120), fontsize=7.5, color="#444", va="top")
        y -= 0.03
    # (left, bottom, width, height) of each chart: months, purposes, kinds of system.
    boxes = {"month": (0.36, 0.53, 0.56, 0.25), "purpose": (0.36, 0.29, 0.56, 0.17),
             "source_kind": (0.36, 0.08, 0.56, 0.12)}  # fmt: skip
    for key, column in _CHARTS:
        t = report.table(key)
        ax = fig.add_axes(boxes[key])
        rows = t.rows
        shown = [0 if (r, column) in t.hidden else t.value(r, column) for r in rows]
        ax.barh(range(len(rows)), shown, color="#2f5d8a")
        top = max(shown, default=0) or 1
        for i, r in enumerate(rows):
            ax.text(shown[i] + top * 0.01, i, t.cell(r, column), va="center", fontsize=7)
        ax.set_yticks(range(len(rows)), [r[:38] for r in rows], fontsize=7)
        ax.invert_yaxis()
        ax.set_xlim(0, top * 1.2)
        ax.set_title(t.title, fontsize=9, loc="left")
        for side in ("top", "right"):
            ax.spines[side].set_visible(False)
    return fig


def _table_page(report: Report, tables: Sequence[Table]) -> Any:
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    fig = Figure(figsize=(8.27, 11.69))
    y = 0.95
    for t in tables:
        fig.text(0.06, y, t.title, fontsize=10, weight="bold")
        y -= 0.01
        if not t.rows:
            y -= 0.02
            fig.text(0.06, y, "None recorded.", fontsize=7.5)
            y -= 0.03
            continue
        cols = t.all_columns
        height = 0.022 * (len(t.all_rows) + 1)
        ax = fig.add_axes((0.06, y - height, 0.88, height))
        ax.axis("off")
        grid = ax.table(
            cellText=[[r[:40], *(t.cell(r, c) for c in cols)] for r in t.all_rows],
            colLabels=["", *(c[:18] for c in cols)],
            loc="upper left",
            cellLoc="right",
        )
        grid.auto_set_font_size(False)
        grid.set_fontsize(6.5 if len(cols) > 4 else 7.5)
        y -= height + 0.015
        if t.note:
            fig.text(0.06, y, t.note, fontsize=6.5, color="#444", wrap=True)
            y -= 0.025
        y -= 0.02
    return fig


def write_report(
    report: Report, out_dir: Path, title: str, *, png: Path | None = None
) -> list[Path]:
    """transparency-YEAR.html, .csv and .pdf in ``out_dir`` (and the first page as ``png``)."""
    from matplotlib.backends.backend_pdf import PdfPages

    out_dir.mkdir(parents=True, exist_ok=True)
    stem = out_dir / f"transparency-{report.year}"
    paths = [stem.with_suffix(".html"), stem.with_suffix(".csv"), stem.with_suffix(".pdf")]
    paths[0].write_text(to_html(report, title), encoding="utf-8")
    paths[1].write_text(to_csv(report), encoding="utf-8")
    first = _first_page(report, title)
    pages = [first]
    tables = report.tables
    pages.append(_table_page(report, [t for t in tables if t.key != "requester_owner"]))
    pages.append(_table_page(report, [t for t in tables if t.key == "requester_owner"]))
    with PdfPages(paths[2], metadata={"Title": f"{title} {report.year}"}) as pdf:
        for page in pages:
            pdf.savefig(page)
    if png is not None:
        # The PDF's first page, drawn again by the same figure at 110 dpi.
        png.parent.mkdir(parents=True, exist_ok=True)
        first.savefig(png, dpi=110, facecolor="white")
        paths.append(png)
    return paths
