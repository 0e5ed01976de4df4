"""Random subjects and random records: decide() never shows what the policy's own words forbid.

The oracle here reads the policy files with plain Python (csv/yaml, fnmatch), not through Casbin
or hub.access.matching, and states the law and the agreements as a counsel would read them.
"""

from __future__ import annotations

import csv
import fnmatch
from dataclasses import dataclass
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hub.access.catalogue import ROLES, TYPE_OF_KIND
from hub.access.policy import AccessPolicy, Visibility, default_policy_dir
from hub.access.purposes import PURPOSES
from hub.context import RequestContext, Subject
from hub.model import EntityKind, LegalTag, Record, SourceKind
from resolvers.catalogue import CATALOGUE
from tests.access import samples

FIELDS = CATALOGUE.fields

POLICY_DIR = default_policy_dir()
AGENCIES = yaml.safe_load((POLICY_DIR / "agencies.yaml").read_text())["agencies"]
AGREEMENTS = yaml.safe_load((POLICY_DIR / "agreements.yaml").read_text())
GROUPS: dict[str, list[str]] = AGREEMENTS["groups"]
ORIS = sorted(samples.agencies())
NON_CJ_ALPR = {"J", "F", "D", "H"}


def _expand(names: list[str] | str) -> set[str]:
    names = [names] if isinstance(names, str) else names
    out: set[str] = set()
    for name in names:
        out |= set(GROUPS.get(name, [name]))
    return out


def _owner_deny_rows() -> list[list[str]]:
    rows = []
    for name in ("owner-rules.csv", "legal-tags.csv"):
        for row in csv.reader((POLICY_DIR / name).read_text().splitlines()):
            if row and not row[0].startswith("#") and row[0].strip() == "p2":
                cells = [c.strip() for c in row[1:]]
                if cells[7] == "deny":
                    rows.append(cells)
    return rows


OWNER_DENIES = _owner_deny_rows()


def _role_purposes() -> dict[str, set[str]]:
    """Role -> the purposes hub-rules.csv lets it `see` anything for."""
    out: dict[str, set[str]] = {}
    for row in csv.reader((POLICY_DIR / "hub-rules.csv").read_text().splitlines()):
        if row and row[0].strip() == "p":
            role, purposes, _obj, act, eft, _id = (c.strip() for c in row[1:])
            if eft == "allow" and "see" in act.split("|") and role != "*":
                expanded = set(PURPOSES) if purposes == "*" else set(purposes.split("|"))
                out.setdefault(role, set()).update(expanded)
    return out


ROLE_PURPOSES = _role_purposes()


@dataclass(frozen=True)
class Case:
    ori: str
    state: str
    roles: frozenset[str]
    purpose: str | None
    owner: str
    owner_state: str
    kind: EntityKind
    source: SourceKind
    tags: frozenset[str]
    age_days: int

    @property
    def own(self) -> bool:
        return self.ori == self.owner

    @property
    def known_roles(self) -> frozenset[str]:
        return self.roles & frozenset(ROLES)

    @property
    def type_name(self) -> str:
        return TYPE_OF_KIND[self.kind]

    @property
    def effective_tags(self) -> frozenset[str]:
        extra = AGENCIES.get(self.owner, {}).get("source_tags", {}).get(self.source.value, [])
        return self.tags | frozenset(extra)

    @property
    def expired(self) -> bool:
        limit = AGENCIES.get(self.owner, {}).get("retention_days", {}).get(self.kind.value)
        return limit is not None and self.age_days > limit


def _one(value: str, pattern: str) -> bool:
    if pattern == "*":
        return True
    negated = pattern.startswith("!")
    hit = value in pattern.lstrip("!").split("|")
    return hit != negated


def _requester(case: Case, pattern: str) -> bool:
    if pattern == "*":
        return True
    if pattern in GROUPS:
        return case.ori in GROUPS[pattern]
    relation = {
        "self": case.own,
        "other": not case.own,
        "in-state": case.state == case.owner_state,
        "out-of-state": case.state != case.owner_state,
    }
    return any(relation.get(word, word == case.ori) for word in pattern.split("|"))


def _owner_denied_fields(case: Case) -> set[str]:
    """Fields that an owner rule or the law denies to EVERY role of this subject."""
    denied: set[str] = set()
    tags = case.effective_tags | ({"retention-expired"} if case.expired else set())
    for owner, requester, role, purposes, tag, objects, act, _eft, _id in OWNER_DENIES:
        if "read" not in act.split("|") and act != "*":
            continue
        if owner != "*" and case.owner not in _expand(owner.split("|")):
            continue
        if not _requester(case, requester):
            continue
        if not all(_one(r, role) for r in case.known_roles):
            continue
        if case.purpose is None or not _one(case.purpose, purposes):
            continue
        if tag != "*" and not (set(tag.split("|")) & tags):
            continue
        for field in FIELDS[case.type_name]:
            obj = f"{case.type_name}.{field}"
            if any(fnmatch.fnmatchcase(obj, p) for p in objects.split("|")) or objects == "*":
                denied.add(field)
    return denied


def _agreement_fields(case: Case) -> set[str] | None:
    """Fields some agreement lets this subject read of this owner's kind; None if none does."""
    fields: set[str] | None = None
    for agreement in AGREEMENTS["agreements"]:
        if case.owner not in _expand(agreement["owner"]):
            continue
        if case.ori not in _expand(agreement["requesters"]):
            continue
        if case.purpose not in agreement["purposes"]:
            continue
        roles = agreement.get("roles", "*")
        if roles != "*" and not case.known_roles & set(roles):
            continue
        shared = agreement["share"].get(case.kind.value)
        if shared is None:
            continue
        fields = (fields or set()) | (set(FIELDS[case.type_name]) if shared == "*" else set(shared))
    return fields


def _must_be_invisible(case: Case) -> bool:
    tags = case.effective_tags
    if case.purpose is None or case.purpose not in PURPOSES or not case.known_roles:
        return True
    if not any(case.purpose in ROLE_PURPOSES.get(r, set()) for r in case.known_roles):
        return True
    if LegalTag.SEALED in tags and not (case.own and "records" in case.roles):
        return True
    if LegalTag.IN_STATE_ONLY in tags and case.state != case.owner_state:
        return True
    if case.expired:
        return True
    if case.kind is EntityKind.PLATE_READ and case.purpose in NON_CJ_ALPR:
        return True
    return LegalTag.JUVENILE in tags and case.purpose in {"J", "F", "H"}


def _must_not_be_full(case: Case) -> bool:
    if _must_be_invisible(case):
        return True
    if case.own:
        return False
    return _agreement_fields(case) is None or LegalTag.JUVENILE in case.effective_tags


def _must_deny(case: Case) -> set[str]:
    """Fields the decision table denies whatever else allows them."""
    denied = _owner_denied_fields(case)
    if not case.own:
        shared = _agreement_fields(case) or set()
        denied |= set(FIELDS[case.type_name]) - shared
    if case.purpose in {"J", "F", "H"} and case.kind is EntityKind.INCIDENT:
        denied.add("narrative")
    if case.purpose in NON_CJ_ALPR and case.kind is EntityKind.VEHICLE:
        denied.add("plateReads")
    roles = case.known_roles
    if roles and roles <= {"patrol", "dispatcher"} and case.kind is EntityKind.PERSON:
        denied.add("ssn")
    if roles == {"dispatcher"} and case.kind is EntityKind.INCIDENT:
        denied.add("narrative")
    if roles == {"auditor"}:
        denied |= set(FIELDS[case.type_name]) - {"id", "provenance"}
    return denied


@st.composite
def cases(draw: Any) -> Case:
    ori = draw(st.sampled_from([*ORIS, "TX0990000"]))
    owner = draw(st.sampled_from(ORIS))
    kind = draw(st.sampled_from(list(EntityKind)))
    if kind is EntityKind.PLATE_READ:
        source = SourceKind.ALPR
    else:
        source = draw(st.sampled_from([SourceKind.RMS, SourceKind.CAD]))
    return Case(
        ori=ori,
        state="TX" if ori == "TX0990000" else samples.agencies()[ori].state,
        roles=draw(st.frozensets(st.sampled_from([*ROLES, "janitor"]), min_size=1, max_size=3)),
        purpose=draw(st.sampled_from([*PURPOSES, None, "Z"])),
        owner=owner,
        owner_state=samples.agencies()[owner].state,
        kind=kind,
        source=source,
        tags=draw(st.frozensets(st.sampled_from([t.value for t in LegalTag]), max_size=2)),
        age_days=draw(st.integers(min_value=0, max_value=1000)),
    )


@pytest.fixture(scope="module")
def policy() -> AccessPolicy:
    return AccessPolicy.load(POLICY_DIR, CATALOGUE)


def _decide(policy: AccessPolicy, case: Case) -> tuple[Record, Any]:
    ctx = RequestContext(
        subject=Subject(user_id="p", name="p", ori=case.ori, state=case.state, roles=case.roles),
        purpose=case.purpose,
    )
    record = samples.record(
        case.kind, case.owner, tags=case.tags, age_days=case.age_days, source=case.source
    )
    return record, policy.decide(ctx, record, samples.NOW)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(case=cases())
def test_decide_never_shows_what_the_table_denies(policy: AccessPolicy, case: Case) -> None:
    _, decision = _decide(policy, case)
    all_fields = frozenset(FIELDS[case.type_name])
    if _must_be_invisible(case):
        assert decision.visibility is Visibility.INVISIBLE, decision.rules
    if _must_not_be_full(case):
        assert decision.visibility is not Visibility.FULL, decision.rules
    if decision.visibility is not Visibility.FULL:
        assert decision.denied_fields == all_fields
    else:
        assert _must_deny(case) <= decision.denied_fields, decision.rules
        assert decision.denied_fields <= all_fields


@settings(max_examples=200, deadline=None)
@given(case=cases())
def test_decisions_are_stable_and_shared_by_equal_keys(policy: AccessPolicy, case: Case) -> None:
    _, first = _decide(policy, case)
    _, again = _decide(policy, case)
    assert again is first
