"""Agreements with an end date (``until:`` in agreements.yaml): the policy grants nothing under
one after its last day, even a policy loaded while it was in force; a bad date fails the load."""

from __future__ import annotations

import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import yaml

from hub.access.decisions import Visibility
from hub.access.policy import AccessPolicy, default_policy_dir
from hub.errors import ConfigError
from hub.model import EntityKind
from resolvers.catalogue import load_policy
from tests.access.samples import CASCADE, HARBOR, MARIN, NOW, context, record


def policy_with(tmp_path: Path, change: dict[str, object]) -> Path:
    """A copy of the shipped policy whose MVSO-CCPD-2024 (Marin shares with Cascade City) has
    ``change`` applied."""
    directory = tmp_path / "policies"
    shutil.copytree(default_policy_dir(), directory)
    path = directory / "agreements.yaml"
    data = yaml.safe_load(path.read_text())
    for agreement in data["agreements"]:
        if agreement["id"] == "MVSO-CCPD-2024":
            agreement.update(change)
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return directory


def test_the_shipped_ended_pilot_grants_nothing() -> None:
    policy = load_policy(None)
    pilot = next(a for a in policy.data.agreements if a.id == "MVSO-HFPD-PILOT-2024")
    assert pilot.until is not None
    assert pilot.owners == {MARIN}
    assert pilot.requesters == {HARBOR}
    incident = record(EntityKind.INCIDENT, MARIN)
    decision = policy.decide(context(HARBOR, ["detective"]), incident, NOW)
    assert decision.visibility is not Visibility.FULL


def test_groups_are_expanded_in_the_facts() -> None:
    compact = next(a for a in load_policy(None).data.agreements if a.id == "PNW-COMPACT-2022")
    assert compact.owners == compact.requesters == {CASCADE, HARBOR}
    assert compact.until is None


def test_an_agreement_grants_through_its_last_day_and_not_after(tmp_path: Path) -> None:
    # A policy is loaded for the day it is loaded on (the clock's).
    now = datetime.now(UTC)
    reader = context(CASCADE, ["analyst"])
    person = record(EntityKind.PERSON, MARIN, now=now)
    in_force = load_policy(policy_with(tmp_path / "a", {"until": now.date()}))
    assert in_force.decide(reader, person, now).visibility is Visibility.FULL
    ended = load_policy(policy_with(tmp_path / "b", {"until": now.date() - timedelta(days=1)}))
    assert ended.decide(reader, person, now).visibility is Visibility.POINTER


def test_a_loaded_policy_stops_granting_when_the_agreement_ends(tmp_path: Path) -> None:
    # Loaded (and its decisions cached) while the agreement is in force; the next day's
    # decision is made without it, with no reload of the files.
    now = datetime.now(UTC)
    directory = policy_with(tmp_path, {"until": now.date()})
    policy = AccessPolicy.load(directory, load_policy(None).data.catalogue)
    reader = context(CASCADE, ["analyst"])
    person = record(EntityKind.PERSON, MARIN, now=now)
    assert policy.decide(reader, person, now).visibility is Visibility.FULL
    tomorrow = now + timedelta(days=1)
    later = record(EntityKind.PERSON, MARIN, now=tomorrow)
    assert policy.decide(reader, later, tomorrow).visibility is Visibility.POINTER


@pytest.mark.parametrize("until", ["soon", "2026-13-40", 20261231, "2026-06-30T00:00:00"])
def test_a_bad_end_date_fails_the_load(tmp_path: Path, until: object) -> None:
    directory = policy_with(tmp_path, {"until": until})
    with pytest.raises(ConfigError, match=r"MVSO-CCPD-2024: `until`"):
        load_policy(directory)
