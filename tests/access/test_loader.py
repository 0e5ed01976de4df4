"""Policy files are checked when loaded: a typo is an error naming the file and line."""

from __future__ import annotations

import pathlib
import shutil

import pytest

from hub.access.loader import content_version, load_policy_data
from hub.access.policy import AccessPolicy, default_policy_dir
from hub.errors import ConfigError
from resolvers.catalogue import CATALOGUE


@pytest.fixture
def policy_dir(tmp_path: pathlib.Path) -> pathlib.Path:
    target = tmp_path / "policies"
    shutil.copytree(default_policy_dir(), target)
    return target


def _append(path: pathlib.Path, text: str) -> None:
    path.write_text(path.read_text(encoding="utf-8") + text, encoding="utf-8")


def test_the_repository_policy_loads() -> None:
    data = load_policy_data(default_policy_dir(), CATALOGUE)
    assert len(data.version) == 16
    ids = {r.id for r in data.rules}
    assert {"hub.patrol", "law.sealed", "agreement.MVSO-CCPD-2024"} <= ids
    assert data.groups["pacific-northwest"] == frozenset({"WA0990100", "OR0990200"})
    assert data.agencies["CA0990000"].retention_days


@pytest.mark.parametrize(
    ("file", "line", "message"),
    [
        ("hub-rules.csv", "p, patroll, C, *, read, allow, x", "unknown role"),
        ("hub-rules.csv", "p, patrol, Q, *, read, allow, x", "unknown purpose"),
        ("hub-rules.csv", "p, patrol, C, Person.SSN, read, allow, x", "names no type"),
        ("hub-rules.csv", "p, patrol, C, *, write, allow, x", "unknown action"),
        ("hub-rules.csv", "p, patrol, C, *, read, maybe, x", "effect must be allow or deny"),
        ("hub-rules.csv", "p, patrol, C, *, read, allow", "6 columns"),
        ("hub-rules.csv", "p, patrol, C, *, read, allow, bad id!", "rule id"),
        ("owner-rules.csv", "p2, CA0990000, *, *, *, secret, *, see, deny, x", "legal tag"),
        ("owner-rules.csv", "p2, CA0990000, nobody, *, *, *, *, see, deny, x", "requester"),
        ("owner-rules.csv", "p2, Marin, *, *, *, *, *, see, deny, x", "unknown owner"),
        ("owner-rules.csv", "p2, *, !east-region, *, *, *, *, see, deny, x", "group can only"),
        ("owner-rules.csv", "q, a, b", "unknown row type"),
        ("legal-tags.csv", "g, CA0990000, Bad Group", "group row"),
    ],
)
def test_bad_rows_are_refused_with_file_and_line(
    policy_dir: pathlib.Path, file: str, line: str, message: str
) -> None:
    _append(policy_dir / file, line + "\n")
    with pytest.raises(ConfigError, match=message) as info:
        load_policy_data(policy_dir, CATALOGUE)
    assert file in str(info.value)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "  - {id: X1, owner: CA0990000, requesters: [WA0990100], purposes: [C],"
            " share: {PERSONS: '*'}}",
            "unknown record kind",
        ),
        (
            "  - {id: X2, owner: CA0990000, requesters: [WA0990100], purposes: [C],"
            " share: {PERSON: [ssn, shoeSize]}}",
            "no field",
        ),
        ("  - {id: X3, owner: CA0990000, requesters: [WA0990100], purposes: [C]}", "`share`"),
        (
            "  - {id: MVSO-CCPD-2024, owner: CA0990000, requesters: [WA0990100], purposes: [C],"
            " share: {PERSON: '*'}}",
            "used twice",
        ),
        (
            "  - {id: X4, owner: CA0990000, requesters: [WA0990100], purposes: [Q],"
            " share: {PERSON: '*'}}",
            "unknown purpose",
        ),
        (
            "  - {id: X5, owner: CA0990000, requester: [WA0990100], purposes: [C],"
            " share: {PERSON: '*'}}",
            "unknown keys",
        ),
    ],
)
def test_bad_agreements_are_refused(policy_dir: pathlib.Path, text: str, message: str) -> None:
    _append(policy_dir / "agreements.yaml", "\n" + text + "\n")
    with pytest.raises(ConfigError, match=message):
        load_policy_data(policy_dir, CATALOGUE)


def test_bad_agency_facts_are_refused(policy_dir: pathlib.Path) -> None:
    path = policy_dir / "agencies.yaml"
    _append(path, "  TX0990000:\n    state: TX\n    retention_days: {PLATE_READS: 3}\n")
    with pytest.raises(ConfigError, match="unknown record kind"):
        load_policy_data(policy_dir, CATALOGUE)


def test_missing_model_is_a_config_error(tmp_path: pathlib.Path) -> None:
    with pytest.raises(ConfigError, match=r"no model\.conf"):
        AccessPolicy.load(tmp_path, CATALOGUE)


def test_version_follows_policy_content_only(policy_dir: pathlib.Path) -> None:
    version = content_version(policy_dir)
    _append(policy_dir / "README.md", "\nnotes\n")
    _append(policy_dir / "cases.yaml", "\n# more\n")
    assert content_version(policy_dir) == version
    _append(policy_dir / "owner-rules.csv", "\n# a comment is content too\n")
    assert content_version(policy_dir) != version


def test_an_extra_rule_file_is_part_of_the_policy(policy_dir: pathlib.Path) -> None:
    (policy_dir / "owner-rules-harbor.csv").write_text(
        "p2, OR0990200, other, *, *, *, Person.phones, read, deny, owner.OR0990200.phones\n",
        encoding="utf-8",
    )
    data = load_policy_data(policy_dir, CATALOGUE)
    rule = next(r for r in data.rules if r.id == "owner.OR0990200.phones")
    assert rule.origin == "owner-rules-harbor.csv:1"
