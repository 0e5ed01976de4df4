"""policies/cases.yaml: the decision table the demo policy must satisfy, one test per case."""

from __future__ import annotations

from datetime import date
from typing import Any

import pytest
import yaml

from hub.access.catalogue import TYPE_OF_KIND
from hub.access.policy import AccessPolicy, Visibility, default_policy_dir
from hub.model import EntityKind, InvolvementRef, SourceKind
from resolvers.catalogue import CATALOGUE
from tests.access import samples

FIELDS = CATALOGUE.fields

CASES: list[dict[str, Any]] = yaml.safe_load(
    (default_policy_dir() / "cases.yaml").read_text(encoding="utf-8")
)["cases"]


@pytest.fixture(scope="module")
def policy() -> AccessPolicy:
    return AccessPolicy.load(default_policy_dir(), CATALOGUE)


def test_the_table_has_at_least_forty_cases_with_unique_names() -> None:
    names = [c["name"] for c in CASES]
    assert len(names) >= 40
    assert len(set(names)) == len(names)


def test_every_deny_rule_and_every_agreement_is_named_by_some_case(policy: AccessPolicy) -> None:
    named = {r for c in CASES for r in c["expect"].get("rules_include", [])}
    # An agreement that has ended (`until:`) decides nothing any more: no case can name it.
    must = {
        rule.id
        for rule in policy.data.in_force(date.today()).rules
        if rule.ptype != "g" and (rule.values[-2] == "deny" or rule.id.startswith("agreement."))
    }
    assert must - named == set()


def _context(case: dict[str, Any]) -> Any:
    subject = case["subject"]
    return samples.context(subject["ori"], subject["roles"], case.get("purpose"))


@pytest.mark.parametrize("case", CASES, ids=[c["name"] for c in CASES])
def test_case(policy: AccessPolicy, case: dict[str, Any]) -> None:
    ctx = _context(case)
    expect = case["expect"]

    if "source" in case:
        source = case["source"]
        decision = policy.check_source(
            ctx,
            samples.agencies()[source["owner"]],
            SourceKind(source["kind"]),
            frozenset(EntityKind(k) for k in source["kinds"]),
        )
        status = "ALLOWED" if decision.allowed else decision.status
        assert status == expect["status"], decision.reason
        assert decision.allowed == (decision.status is None)
        for rule in expect.get("rules_include", []):
            assert rule in decision.reason
        return

    if "involvement" in case:
        inv = case["involvement"]
        type_name = "Involvement"
        decision = policy.decide_involvement(
            ctx,
            samples.agencies()[inv["owner"]],
            InvolvementRef(
                role="VICTIM", person_id="p", incident_id="i", tags=frozenset(inv.get("tags", []))
            ),
        )
    else:
        rec = case["record"]
        kind = EntityKind(rec["kind"])
        type_name = TYPE_OF_KIND[kind]
        record = samples.record(
            kind,
            rec["owner"],
            tags=rec.get("tags", []),
            age_days=rec.get("age_days", 30),
            source=SourceKind(rec["source"]) if "source" in rec else None,
        )
        decision = policy.decide(ctx, record, samples.NOW)

    all_fields = frozenset(FIELDS[type_name])
    assert decision.visibility == Visibility(expect["visibility"]), decision.rules
    assert decision.denied_fields <= all_fields
    if decision.visibility is not Visibility.FULL:
        assert decision.denied_fields == all_fields
    if "denied" in expect:
        assert decision.denied_fields == frozenset(expect["denied"]), decision.rules
    if "readable" in expect:
        assert all_fields - decision.denied_fields == frozenset(expect["readable"])
    if decision.visibility is Visibility.FULL:
        assert decision.readable_fields == all_fields - decision.denied_fields
        assert decision.findable_fields == frozenset()
    else:
        assert decision.readable_fields == frozenset()
    if decision.visibility is not Visibility.POINTER:
        assert decision.findable_fields == frozenset()
    if "findable" in expect:
        assert decision.findable_fields == frozenset(expect["findable"]), decision.rules
    assert frozenset(expect.get("denied_includes", [])) <= decision.denied_fields
    assert not frozenset(expect.get("allowed_includes", [])) & decision.denied_fields
    for rule in expect.get("rules_include", []):
        assert rule in decision.rules, decision.rules
