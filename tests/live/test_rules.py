"""policies/live.yaml and the hot-list file: what they allow, and clear errors for bad files."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from hub.access.policy import default_policy_dir
from hub.errors import AccessDenied, ConfigError, InvalidInput
from hub.live.rules import HotLists, LiveRules, Reloading

NOW = datetime(2026, 12, 6, tzinfo=UTC)
KNOWN = {"CA0990000", "WA0990100", "OR0990200", "NV0990000"}


def test_the_shipped_rules_bound_watches_by_purpose_and_role() -> None:
    rules = LiveRules.parse(default_policy_dir() / "live.yaml", KNOWN.__contains__)
    assert rules.latest_expiry("C", frozenset({"analyst"}), NOW) == NOW + timedelta(days=90)
    # the strictest of the purpose and every role with a limit
    assert rules.latest_expiry("C", frozenset({"patrol", "detective"}), NOW) == NOW + timedelta(
        days=14
    )
    with pytest.raises(AccessDenied):
        rules.latest_expiry("J", frozenset({"records"}), NOW)  # not listed: denied
    with pytest.raises(InvalidInput):
        rules.check_until("C", frozenset({"analyst"}), NOW, NOW - timedelta(seconds=1))
    # deconfliction: both must allow
    assert rules.may_deconflict("CA0990000", "WA0990100")
    assert not rules.may_deconflict("CA0990000", "OR0990200")  # Harbor Falls consents to none
    assert not rules.may_deconflict("NV0990000", "WA0990100")  # Sierra allows Marin only
    assert not rules.may_deconflict("WA0990100", "WA0990100")


def test_no_file_allows_nothing(tmp_path: Path) -> None:
    rules = LiveRules.parse(tmp_path / "live.yaml")
    with pytest.raises(AccessDenied):
        rules.latest_expiry("C", frozenset({"analyst"}), NOW)
    assert not rules.may_deconflict("CA0990000", "WA0990100")


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("watch_expiry: {purposes: {Q: 3}}", "watch_expiry.purposes.Q: unknown purpose"),
        ("watch_expiry: {purposes: {C: 0}}", "at least 1"),
        ("watch_expiry: {roles: {chief: 3}}", "watch_expiry.roles.chief: unknown role"),
        ("deconfliction: {XX0000000: {share_with: ['*'], contact: x}}", "does not know"),
        ("deconfliction: {CA0990000: {share_with: [ZZ1]}}", "not a known agency"),
        ("deconfliction: {CA0990000: {share_with: ['*']}}", "contact"),
        ("watch_expiri: {}", "unknown key 'watch_expiri'"),
        ("[1, 2]", "mapping at the top level"),
    ],
)
def test_a_bad_rules_file_is_refused_naming_the_key(tmp_path: Path, text: str, says: str) -> None:
    path = tmp_path / "live.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=says):
        LiveRules.parse(path, KNOWN.__contains__)


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("CA0990000: [{plate: AB1, reason: STOLEN}]", r"\[0\]\.reason: one of STOLEN_VEHICLE"),
        ("CA0990000: [{plate: '', reason: GANG}]", "plate: 1 to 10"),
        ("CA0990000: [{plate: AB1, reason: GANG, state: CAL}]", "state: two letters"),
        ("CA0990000: [{plate: AB1, reason: GANG, colour: red}]", "reference only"),
        ("XX0000000: [{plate: AB1, reason: GANG}]", "does not know"),
    ],
)
def test_a_bad_hot_list_is_refused_naming_the_entry(tmp_path: Path, text: str, says: str) -> None:
    path = tmp_path / "hot.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=says):
        HotLists.parse(path, KNOWN.__contains__)


def test_a_hot_list_that_no_longer_loads_keeps_the_previous_one(tmp_path: Path) -> None:
    path = tmp_path / "hot.yaml"
    path.write_text("WA0990100: [{plate: 'ab-12 3', reason: AMBER_ALERT}]")
    lists = Reloading(path, lambda: HotLists.parse(path, KNOWN.__contains__))
    assert [e.reason for e in lists.current().entries_for("AB123")] == ["AMBER_ALERT"]
    path.write_text("WA0990100: [{plate: AB123, reason: NOT_A_CODE}]  # a bad edit")
    assert [e.reason for e in lists.current().entries_for("AB123")] == ["AMBER_ALERT"]
    path.write_text("WA0990100: [{plate: AB123, reason: GANG}, {plate: Z9, reason: GANG}]\n")
    assert [e.reason for e in lists.current().entries_for("ab 123")] == ["GANG"]


def test_the_live_table_of_hub_toml(tmp_path: Path) -> None:
    from hub.settings import load_settings

    config = tmp_path / "hub.toml"
    config.write_text('mode = "dev"\n[live]\nhot_lists = "h.yaml"\nrequery_s = 30\n')
    live = load_settings(config, env={}).live
    assert (live.hot_lists, live.requery_s, live.claim_idle_ms) == (Path("h.yaml"), 30.0, 5000)
    config.write_text('mode = "dev"\n[live]\nrequery = 30\n')
    with pytest.raises(ConfigError, match=r"live\.requery.*requery_s"):
        load_settings(config, env={})
    config.write_text('mode = "dev"\n[live]\nclaim_idle_ms = 5\n')
    with pytest.raises(ConfigError, match="claim_idle_ms"):
        load_settings(config, env={})
