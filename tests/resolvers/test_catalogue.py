"""One description of what a reader may see: the catalogue is the schema, and masks allow-list.

The access policy decides on the fields ``resolvers.catalogue`` derives from the record types; the
presenters copy a value only when the decision lists its field as readable. So a field added to
the schema is withheld from everyone whose rules do not grant it, without a line of policy code.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import msgspec
import pytest
import strawberry
from graphql import GraphQLObjectType

from hub.access.catalogue import INVOLVEMENT, TYPE_OF_KIND
from hub.access.policy import AccessPolicy, Visibility, default_policy_dir
from hub.context import RequestContext, Subject
from hub.errors import ConfigError
from hub.model import EntityKind, Person, SourceKind
from resolvers import types as t
from resolvers.catalogue import CATALOGUE, RECORD_TYPES, catalogue_of
from resolvers.present import matches, present, score
from resolvers.schema import build_schema
from tests.access import samples
from tests.conftest import demo_settings

MARIN, HARBOR = "CA0990000", "OR0990200"
NOW = datetime(2026, 1, 1, tzinfo=UTC)


def _schema_fields(schema: strawberry.Schema) -> dict[str, tuple[str, ...]]:
    out = {}
    for name in (*TYPE_OF_KIND.values(), INVOLVEMENT):
        graphql_type = schema._schema.type_map[name]
        assert isinstance(graphql_type, GraphQLObjectType)
        out[name] = tuple(graphql_type.fields)
    return out


def test_the_catalogue_is_every_field_of_every_record_type_in_the_served_schema(
    tmp_path: Path,
) -> None:
    schema = build_schema(demo_settings(tmp_path))
    assert dict(CATALOGUE.fields) == _schema_fields(schema)
    assert CATALOGUE.free_text == frozenset({"Incident.narrative"})
    assert {"Person.ssn", "Incident.narrative", "Involvement.person"} <= set(CATALOGUE.objects)


# A field added to the schema in a test, as a developer would add one to resolvers/types.py.
@strawberry.federation.type(keys=["id"], name="Person")
class PersonWithEyes(t.Person):
    eye_color: str | None = None


def test_a_field_added_to_the_schema_without_a_rule_is_withheld_from_partners() -> None:
    widened = catalogue_of((PersonWithEyes, *RECORD_TYPES[1:]))
    # the check that would fail: the policy's catalogue no longer matches the record types
    assert widened != CATALOGUE
    assert "eyeColor" in widened.fields["Person"]
    assert "eyeColor" not in CATALOGUE.fields["Person"]
    policy = AccessPolicy.load(default_policy_dir(), widened)
    marin_person = samples.record(EntityKind.PERSON, MARIN)
    # Harbor Falls' agreement with Marin names the person fields it shares: not the new one.
    harbor_person = samples.record(EntityKind.PERSON, HARBOR)
    marin_analyst = samples.context(MARIN, ["analyst"])
    partner = policy.decide(marin_analyst, harbor_person, NOW)
    assert partner.visibility is Visibility.FULL
    assert "eyeColor" in partner.denied_fields
    assert "eyeColor" not in partner.readable_fields
    assert "name" in partner.readable_fields
    # Marin's own analyst is granted every field of Marin's records by a wildcard rule.
    own = policy.decide(marin_analyst, marin_person, NOW)
    assert "eyeColor" in own.readable_fields


def test_a_policy_naming_a_field_the_schema_lacks_does_not_load(tmp_path: Path) -> None:
    policy_dir = tmp_path / "policies"
    policy_dir.mkdir()
    for source in default_policy_dir().iterdir():
        (policy_dir / source.name).write_bytes(source.read_bytes())
    rules = policy_dir / "hub-rules.csv"
    rules.write_text(rules.read_text() + "p, analyst, C, Person.eyeColor, read, allow, x.eyes\n")
    with pytest.raises(ConfigError, match=r"Person\.eyeColor"):
        AccessPolicy.load(policy_dir, CATALOGUE)
    # the same policy loads against a schema that has the field
    widened = catalogue_of((PersonWithEyes, *RECORD_TYPES[1:]))
    assert AccessPolicy.load(policy_dir, widened).version


def test_a_find_rule_on_free_text_does_not_load(tmp_path: Path) -> None:
    policy_dir = tmp_path / "policies"
    policy_dir.mkdir()
    for source in default_policy_dir().iterdir():
        (policy_dir / source.name).write_bytes(source.read_bytes())
    rules = policy_dir / "owner-rules.csv"
    rules.write_text(rules.read_text() + "p2, *, *, *, *, *, Incident.narrative, find, allow, x\n")
    with pytest.raises(ConfigError, match="free text"):
        AccessPolicy.load(policy_dir, CATALOGUE)


def _person() -> Person:
    record = samples.record(EntityKind.PERSON, MARIN)
    assert isinstance(record, Person)
    return record


def test_the_presenter_copies_only_what_is_readable() -> None:
    record = _person()
    nothing = present(record, frozenset())
    assert isinstance(nothing, t.Person)
    plain = ("name", "aliases", "date_of_birth", "sex", "ssn", "driver_license", "addresses")
    assert all(getattr(nothing, f) is None for f in plain)
    assert nothing.id == record.id  # a record's identity stands with it
    some = present(record, frozenset({"name", "ssn"}))
    assert isinstance(some, t.Person)
    assert some.name is not None
    assert some.name.surname == record.name.surname
    assert some.ssn == record.ssn
    assert some.date_of_birth is None
    assert some.addresses is None
    every = present(record, frozenset(CATALOGUE.fields["Person"]))
    assert isinstance(every, t.Person)
    assert every.date_of_birth == record.date_of_birth


def test_matching_and_ranking_see_only_the_fields_given() -> None:
    record = _person()
    surname = record.name.surname or ""
    assert matches(record, frozenset({"name"}), surname)
    assert not matches(record, frozenset(), surname)
    assert not matches(record, frozenset({"ssn", "dateOfBirth"}), record.ssn or "x")
    assert score(record, frozenset(), surname) == 0.0
    assert score(record, frozenset({"name"}), surname) > 50
    # the names of the people involved, where the reader may read them, find an incident
    incident = samples.record(EntityKind.INCIDENT, MARIN)
    assert not matches(incident, frozenset({"number"}), surname)
    assert matches(incident, frozenset({"number"}), surname, also=[f"Jordan {surname}"])


def test_an_agency_no_policy_names_sees_nothing_not_even_a_pointer() -> None:
    policy = AccessPolicy.load(default_policy_dir(), CATALOGUE)
    stranger = RequestContext(
        subject=Subject(
            user_id="u1", name="u1", ori="TX0000000", state="TX", roles=frozenset({"analyst"})
        ),
        purpose="C",
    )
    assert not policy.knows_agency("TX0000000")
    for kind in TYPE_OF_KIND:
        decision = policy.decide(stranger, samples.record(kind, MARIN), NOW)
        assert decision.visibility is Visibility.INVISIBLE
        assert decision.rules == ("unknown-agency",)
    owner = samples.agencies()[MARIN]
    verdict = policy.check_source(stranger, owner, SourceKind.RMS, frozenset(TYPE_OF_KIND))
    assert not verdict.allowed
    assert verdict.status == "DENIED"


def test_a_restriction_code_no_policy_names_is_logged_once_by_code_only(
    caplog: pytest.LogCaptureFixture,
) -> None:
    policy = AccessPolicy.load(default_policy_dir(), CATALOGUE)
    record = msgspec.structs.replace(_person(), tags=frozenset({"northwind:qqz"}))
    analyst = samples.context(MARIN, ["analyst"])
    with caplog.at_level("WARNING", logger="hub.access.policy"):
        for roles in (["analyst"], ["detective"], ["analyst", "detective"]):
            decision = policy.decide(samples.context(MARIN, roles), record, NOW)
            assert decision.visibility is Visibility.POINTER
            assert decision.findable_fields == frozenset()
    logged = [r.getMessage() for r in caplog.records if "northwind:qqz" in r.getMessage()]
    assert len(logged) == 1
    assert record.name.surname not in logged[0]
    assert (record.ssn or "-") not in logged[0]
    assert "law.unrecognised-restriction" in policy.decide(analyst, record, NOW).rules


def test_a_restriction_code_the_policy_names_is_read_as_its_tag(tmp_path: Path) -> None:
    policy_dir = tmp_path / "policies"
    policy_dir.mkdir()
    for source in default_policy_dir().iterdir():
        (policy_dir / source.name).write_bytes(source.read_bytes())
    vocabulary = policy_dir / "legal-tags.yaml"
    text = vocabulary.read_text().replace("codes: {}", 'codes: {"northwind:qqz": juvenile}')
    vocabulary.write_text(text)
    policy = AccessPolicy.load(policy_dir, CATALOGUE)
    record = msgspec.structs.replace(_person(), tags=frozenset({"northwind:qqz"}))
    # a juvenile record: whole for its owner, a pointer found by name for another agency
    own = policy.decide(samples.context(MARIN, ["analyst"]), record, NOW)
    assert own.visibility is Visibility.FULL
    other = policy.decide(samples.context("WA0990100", ["detective"]), record, NOW)
    assert other.visibility is Visibility.POINTER
    assert "law.juvenile.owner-only" in other.rules
    assert other.findable_fields == frozenset({"name", "aliases"})
