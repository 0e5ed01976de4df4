"""`hub audit demo-history`, `hub audit review` and `hub report transparency`, as run."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

from click.testing import CliRunner

from hub.cli import main


def test_history_review_and_report(tmp_path: Path) -> None:
    runner = CliRunner()
    log = tmp_path / "audit"
    made = runner.invoke(main, ["audit", "demo-history", "--log", str(log), "--days", "30"])
    assert made.exit_code == 0, made.output
    assert "seeded: AFTER_AGREEMENT_ENDED" in made.output
    again = runner.invoke(main, ["audit", "demo-history", "--log", str(log)])
    assert again.exit_code != 0
    assert "already holds an audit log" in again.output

    since = (datetime.now(UTC) - timedelta(days=15)).strftime("%Y-%m-%d")
    args = ["audit", "review", "--log", str(log), "--agency", "wa0990100", "--since", since]
    text = runner.invoke(main, args)
    assert text.exit_code == 0, text.output
    assert "PURPOSE_OUTSIDE_AGREEMENT: wa-analyst-bgcheck" in text.output
    assert "entries #" in text.output
    as_json = runner.invoke(main, [*args, "--json"])
    report = json.loads(as_json.output)
    assert report["reader"] == "WA0990100"
    assert {f["kind"] for f in report["findings"]} >= {"OUT_OF_STATE_ALPR"}

    bad = runner.invoke(main, ["audit", "review", "--log", str(log), "--agency", "nope",
                               "--since", since])  # fmt: skip
    assert bad.exit_code != 0
    assert "ORI" in bad.output
    missing = runner.invoke(main, ["audit", "review", "--log", str(tmp_path / "none"),
                                   "--agency", "WA0990100", "--since", since])  # fmt: skip
    assert "no audit log" in missing.output

    year = str(datetime.now(UTC).year)
    out = tmp_path / "report"
    made = runner.invoke(
        main, ["report", "transparency", "--log", str(log), "--year", year, "--out", str(out)]
    )
    assert made.exit_code == 0, made.output
    names = sorted(p.name for p in out.iterdir())
    assert names == [f"transparency-{year}.{ext}" for ext in ("csv", "html", "pdf")]
