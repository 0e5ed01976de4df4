"""AccessPolicy over the demo world: the worked example, the seven demo cases of issue 3, the
check before the fetch, caching, reload and explain."""

from __future__ import annotations

import pathlib
import shutil
from collections.abc import Iterator
from typing import Any

import pytest

from hub.access.catalogue import ROLES
from hub.access.explain import explain_text
from hub.access.policy import AccessPolicy, Visibility, default_policy_dir
from hub.demo.world import (
    SEALED_SURNAME,
    SEX_OFFENSE_VICTIM_SURNAME,
    VENDORS,
    World,
    generate_world,
)
from hub.errors import ConfigError
from hub.model import (
    EntityKind,
    Incident,
    LegalTag,
    Person,
    PlateRead,
    Record,
    SourceKind,
    Vehicle,
)
from resolvers.catalogue import CATALOGUE
from tests.access import samples
from tests.access.samples import CASCADE, HARBOR, MARIN, NOW, SIERRA

FIELDS = CATALOGUE.fields

WEST = (MARIN, CASCADE, HARBOR, SIERRA)


@pytest.fixture(scope="module")
def policy() -> AccessPolicy:
    return AccessPolicy.load(default_policy_dir(), CATALOGUE)


@pytest.fixture(scope="module")
def world() -> World:
    return generate_world(size=600, seed=3)


def records_of(world: World, kind: type[Any] | None = None) -> Iterator[Record]:
    for records in world.records.values():
        for record in records:
            if kind is None or isinstance(record, kind):
                yield record


def source_kind(world: World, system: str) -> SourceKind:
    return VENDORS[world.system(system).kind][1]


def people_named(world: World, surname: str) -> list[Person]:
    return [p for p in records_of(world, Person) if p.name.surname == surname]  # type: ignore[misc]


# -- the worked example ---------------------------------------------------------------------


def test_worked_example_reyes_for_a_marin_analyst(policy: AccessPolicy, world: World) -> None:
    ctx = samples.context(MARIN, ["analyst"], "C")
    outcome: dict[str, set[Visibility]] = {}
    for person in people_named(world, "Reyes"):
        decision = policy.decide(ctx, person, NOW)
        outcome.setdefault(person.provenance.agency.ori, set()).add(decision.visibility)
        if person.provenance.agency.ori == HARBOR:
            # Harbor Falls shares who a person is (HFPD-MVSO-2025), not what it knows of them
            assert {"ssn", "addresses", "incidents"} <= decision.denied_fields
            assert "name" not in decision.denied_fields
    assert outcome[MARIN] == {Visibility.FULL}
    assert outcome[CASCADE] == {Visibility.FULL}
    assert outcome[HARBOR] == {Visibility.FULL}
    # ... and its incident reports stay pointers
    harbor_reports = [r for r in records_of(world, Incident) if r.provenance.agency.ori == HARBOR]
    assert harbor_reports
    for report in harbor_reports[:20]:
        assert policy.decide(ctx, report, NOW).visibility is Visibility.POINTER or report.tags


# -- the seven demo cases --------------------------------------------------------------------


def test_cascade_patrol_sees_name_and_birth_date_but_not_ssn_or_addresses(
    policy: AccessPolicy, world: World
) -> None:
    ctx = samples.context(CASCADE, ["patrol"], "C")
    marin_people = [
        p for p in records_of(world, Person) if p.provenance.agency.ori == MARIN and not p.tags
    ]
    assert marin_people
    for person in marin_people:
        decision = policy.decide(ctx, person, NOW)
        assert decision.visibility is Visibility.FULL
        assert {"name", "dateOfBirth"}.isdisjoint(decision.denied_fields)
        assert {"ssn", "addresses"} <= decision.denied_fields


def test_out_of_state_user_never_sees_marin_plate_reads_and_marin_alpr_is_not_asked(
    policy: AccessPolicy, world: World
) -> None:
    marin = samples.agencies()[MARIN]
    for roles, purpose in (
        (["patrol"], "C"),
        (["detective"], "ALPR-INV"),
        (["supervisor"], "ALPR-HOT"),
        (["patrol", "detective"], "X"),
    ):
        ctx = samples.context(SIERRA, roles, purpose)
        reads = [r for r in world.records["marin-alpr"] if isinstance(r, PlateRead)]
        assert reads
        assert all(policy.decide(ctx, r, NOW).visibility is Visibility.INVISIBLE for r in reads)
        source = policy.check_source(
            ctx, marin, SourceKind.ALPR, frozenset({EntityKind.PLATE_READ})
        )
        assert not source.allowed
        assert source.status == "DENIED"
        # The Sierra system itself is asked: its own reads.
        own = policy.check_source(
            ctx, samples.agencies()[SIERRA], SourceKind.ALPR, frozenset({EntityKind.PLATE_READ})
        )
        assert own.allowed


def test_purpose_j_never_returns_narratives_or_plate_reads(
    policy: AccessPolicy, world: World
) -> None:
    for ori in WEST:
        ctx = samples.context(ori, ["records"], "J")
        for record in records_of(world):
            decision = policy.decide(ctx, record, NOW)
            if isinstance(record, PlateRead):
                assert decision.visibility is Visibility.INVISIBLE
            if isinstance(record, Incident):
                assert "narrative" in decision.denied_fields
            if isinstance(record, Vehicle):
                assert "plateReads" in decision.denied_fields
        for system in world.systems:
            if source_kind(world, system.name) is SourceKind.ALPR:
                check = policy.check_source(
                    ctx,
                    world.agency(system.agency),
                    SourceKind.ALPR,
                    frozenset({EntityKind.PLATE_READ}),
                )
                assert check.status == "SKIPPED"


def test_sealed_record_is_invisible_to_everyone_but_the_owners_records_clerk(
    policy: AccessPolicy, world: World
) -> None:
    sealed = [r for r in records_of(world) if LegalTag.SEALED in r.tags]
    assert any(isinstance(r, Person) and r.name.surname == SEALED_SURNAME for r in sealed)
    for record in sealed:
        owner = record.provenance.agency.ori
        for ori in WEST:
            for role in ROLES:
                ctx = samples.context(ori, [role], "A" if role in ("records", "auditor") else "C")
                visible = policy.decide(ctx, record, NOW).visibility
                if ori == owner and role == "records":
                    assert visible is Visibility.FULL
                else:
                    assert visible is Visibility.INVISIBLE, (ori, role)


def test_victim_of_a_sex_offence_is_not_named_to_other_agencies(
    policy: AccessPolicy, world: World
) -> None:
    (victim,) = people_named(world, SEX_OFFENSE_VICTIM_SURNAME)
    marin = victim.provenance.agency
    incident_ids = {i.incident_id for i in victim.involvements}
    involvement = next(i for i in victim.involvements if i.role == "VICTIM")
    for ori in (CASCADE, HARBOR, SIERRA):
        ctx = samples.context(ori, ["detective"], "C")
        decision = policy.decide(ctx, victim, NOW)
        assert decision.visibility is not Visibility.FULL or "name" in decision.denied_fields
        involved = policy.decide_involvement(ctx, marin, involvement)
        assert involved.visibility is not Visibility.FULL or "person" in involved.denied_fields
    # Cascade has an agreement with Marin: the record is there, the identity is not.
    ctx = samples.context(CASCADE, ["detective"], "C")
    decision = policy.decide(ctx, victim, NOW)
    assert decision.visibility is Visibility.FULL
    assert {"name", "aliases", "dateOfBirth", "ssn"} <= decision.denied_fields
    incident = next(r for r in records_of(world, Incident) if r.id in incident_ids)
    assert policy.decide(ctx, incident, NOW).visibility is Visibility.FULL
    assert "person" in policy.decide_involvement(ctx, marin, involvement).denied_fields
    # Marin itself keeps it.
    own = samples.context(MARIN, ["detective"], "C")
    assert policy.decide(own, victim, NOW).denied_fields == frozenset()
    assert policy.decide_involvement(own, marin, involvement).denied_fields == frozenset()


def test_agency_without_agreement_gets_pointers_not_records(
    policy: AccessPolicy, world: World
) -> None:
    pairs = ((SIERRA, MARIN), (SIERRA, CASCADE), (SIERRA, HARBOR), (HARBOR, MARIN))
    for requester, owner in pairs:
        ctx = samples.context(requester, ["detective"], "C")
        records = [
            r
            for r in records_of(world)
            if r.provenance.agency.ori == owner and not r.tags and not isinstance(r, PlateRead)
        ]
        assert records
        for record in records:
            decision = policy.decide(ctx, record, NOW)
            assert decision.visibility is Visibility.POINTER
            assert "owner.no-agreement" in decision.rules


def test_auditor_reads_no_criminal_justice_fields(policy: AccessPolicy, world: World) -> None:
    for ori in WEST:
        for purpose in ("A", "C", "X"):
            ctx = samples.context(ori, ["auditor"], purpose)
            for record in records_of(world):
                decision = policy.decide(ctx, record, NOW)
                type_name = type(record).__name__
                readable = frozenset(FIELDS[type_name]) - decision.denied_fields
                assert readable <= {"id", "provenance"}
                for involvement in getattr(record, "involvements", ()):
                    inv = policy.decide_involvement(ctx, record.provenance.agency, involvement)
                    assert inv.denied_fields == frozenset(FIELDS["Involvement"])


# -- retention -------------------------------------------------------------------------------


def test_marin_plate_reads_past_one_year_are_invisible(policy: AccessPolicy, world: World) -> None:
    ctx = samples.context(MARIN, ["analyst"], "ALPR-INV")
    now = world.generated_at
    seen = {True: 0, False: 0}
    for read in world.records["marin-alpr"]:
        assert read.created is not None
        old = (now.date() - read.created).days > 365
        decision = policy.decide(ctx, read, now)
        assert (decision.visibility is Visibility.INVISIBLE) == old
        seen[old] += 1
    assert seen[True]
    assert seen[False]


# -- caching ---------------------------------------------------------------------------------


class _CountingCasbin:
    """Counts the calls that reach Casbin (a pass-through, not a stand-in)."""

    def __init__(self, policy: AccessPolicy) -> None:
        self.calls = 0
        enforcer = policy._state.enforcer
        real = enforcer._casbin.enforce_ex

        def counted(*args: Any) -> Any:
            self.calls += 1
            return real(*args)

        enforcer._casbin.enforce_ex = counted


def test_a_cached_decision_never_calls_casbin(world: World) -> None:
    policy = AccessPolicy.load(default_policy_dir(), CATALOGUE)
    counter = _CountingCasbin(policy)
    ctx = samples.context(MARIN, ["analyst"], "C")
    person = next(iter(people_named(world, "Reyes")))
    first = policy.decide(ctx, person, NOW)
    assert counter.calls > 0
    before = counter.calls
    for _ in range(100):
        assert policy.decide(ctx, person, NOW) is first
    # Another user with the same roles, agency and purpose shares the decision.
    other = samples.context(MARIN, ["analyst"], "C", user="u2")
    assert policy.decide(other, person, NOW) is first
    assert counter.calls == before
    assert policy.cache_sizes()["records"] == 1


def test_whole_world_decides_with_few_casbin_calls(world: World) -> None:
    policy = AccessPolicy.load(default_policy_dir(), CATALOGUE)
    counter = _CountingCasbin(policy)
    ctx = samples.context(CASCADE, ["detective"], "C")
    total = sum(1 for _ in records_of(world))
    for record in records_of(world):
        policy.decide(ctx, record, NOW)
    keys = policy.cache_sizes()["records"]
    assert keys < 60 < total
    assert counter.calls < 40 * keys


def test_source_checks_are_cached_too(policy: AccessPolicy) -> None:
    ctx = samples.context(SIERRA, ["patrol"], "C")
    marin = samples.agencies()[MARIN]
    kinds = frozenset({EntityKind.PLATE_READ})
    assert policy.check_source(ctx, marin, SourceKind.ALPR, kinds) is policy.check_source(
        ctx, marin, SourceKind.ALPR, kinds
    )


def test_reason_carries_no_criminal_justice_information(policy: AccessPolicy) -> None:
    ctx = samples.context(SIERRA, ["patrol"], "C")
    reason = policy.check_source(
        ctx, samples.agencies()[MARIN], SourceKind.ALPR, frozenset({EntityKind.PLATE_READ})
    ).reason
    assert "law.alpr.in-state-only" in reason
    assert "7ABC123" not in reason
    assert "Reyes" not in reason


# -- reload ----------------------------------------------------------------------------------


@pytest.fixture
def policy_copy(tmp_path: pathlib.Path) -> pathlib.Path:
    target = tmp_path / "policies"
    shutil.copytree(default_policy_dir(), target)
    return target


def _touch_later(path: pathlib.Path, text: str) -> None:
    before = path.stat().st_mtime_ns
    path.write_text(text, encoding="utf-8")
    # Some filesystems keep coarse timestamps; make the change visible to the fingerprint.
    import os

    os.utime(path, ns=(before + 2_000_000_000, before + 2_000_000_000))


HARBOR_TO_SIERRA = """
  - id: HFPD-SSP-2026
    title: Harbor Falls PD shares persons with Sierra State Patrol
    owner: OR0990200
    requesters: [NV0990000]
    purposes: [C]
    share:
      PERSON: "*"
"""


def test_reload_picks_up_a_new_agreement_without_restart(policy_copy: pathlib.Path) -> None:
    policy = AccessPolicy.load(policy_copy, CATALOGUE)
    version = policy.version
    ctx = samples.context(SIERRA, ["analyst"], "C")
    person = samples.record(EntityKind.PERSON, HARBOR)
    assert policy.decide(ctx, person, NOW).visibility is Visibility.POINTER
    assert policy.reload_if_changed() is False

    agreements = policy_copy / "agreements.yaml"
    _touch_later(agreements, agreements.read_text(encoding="utf-8") + HARBOR_TO_SIERRA)
    assert policy.reload_if_changed() is True
    assert policy.version != version
    decision = policy.decide(ctx, person, NOW)
    assert decision.visibility is Visibility.FULL
    assert "agreement.HFPD-SSP-2026" in decision.rules
    assert policy.reload_if_changed() is False


def test_documentation_edits_do_not_change_the_version(policy_copy: pathlib.Path) -> None:
    policy = AccessPolicy.load(policy_copy, CATALOGUE)
    readme = policy_copy / "README.md"
    _touch_later(readme, readme.read_text(encoding="utf-8") + "\nmore words\n")
    assert policy.reload_if_changed() is False


def test_broken_files_keep_the_policy_in_force(policy_copy: pathlib.Path) -> None:
    policy = AccessPolicy.load(policy_copy, CATALOGUE)
    version = policy.version
    rules = policy_copy / "hub-rules.csv"
    _touch_later(rules, rules.read_text(encoding="utf-8") + "p, patroll, C, *, read, allow, x\n")
    with pytest.raises(ConfigError, match=r"hub-rules.csv:\d+: unknown role"):
        policy.reload_if_changed()
    assert policy.version == version
    ctx = samples.context(MARIN, ["patrol"], "C")
    assert policy.decide(ctx, samples.record(EntityKind.PERSON, MARIN), NOW).visibility is (
        Visibility.FULL
    )
    # The same broken files are not re-read on every request.
    assert policy.reload_if_changed() is False


# -- explain ---------------------------------------------------------------------------------


def test_explain_names_the_rule_and_where_it_is_written(policy: AccessPolicy) -> None:
    text = explain_text(policy, "u1", CASCADE, None, ["patrol"], "C", MARIN, None, "Person.ssn")
    assert "Person.ssn -> DENIED" in text
    assert "hub.patrol.no-ssn [hub-rules.csv:" in text
    assert "owner.CA0990000.identifiers-stay-home [owner-rules.csv:" in text
    assert policy.version in text

    text = explain_text(
        policy, "u1", CASCADE, None, ["patrol"], "C", MARIN, None, "Person.dateOfBirth"
    )
    assert "Person.dateOfBirth -> ALLOWED" in text
    assert "agreement.MVSO-CCPD-2024 [agreements.yaml MVSO-CCPD-2024]" in text


def test_explain_a_record_and_tags(policy: AccessPolicy) -> None:
    text = explain_text(policy, "u1", SIERRA, None, ["analyst"], "C", HARBOR, None, "Person")
    assert "Person -> POINTER" in text
    assert "owner.no-agreement" in text
    text = explain_text(
        policy,
        "u1",
        SIERRA,
        None,
        ["patrol"],
        "C",
        MARIN,
        None,
        "PlateRead.camera",
        source_kind="ALPR",
    )
    assert "-> DENIED" in text
    assert "law.alpr.in-state-only" in text
    text = explain_text(
        policy, "u1", MARIN, None, ["analyst"], "C", MARIN, None, "PlateRead", age_days=400
    )
    assert "PlateRead -> INVISIBLE" in text
    assert "law.retention" in text
    text = explain_text(
        policy,
        "u1",
        CASCADE,
        None,
        ["detective"],
        "C",
        MARIN,
        None,
        "Involvement.person",
        tags=["sex-offense-victim"],
    )
    assert "-> DENIED" in text
    assert "law.victim-identity" in text


def test_explain_rejects_what_it_does_not_know(policy: AccessPolicy) -> None:
    with pytest.raises(ValueError, match="unknown field"):
        explain_text(policy, "u1", MARIN, None, ["analyst"], "C", MARIN, None, "Person.SSN")
    with pytest.raises(ValueError, match="unknown legal tag"):
        explain_text(
            policy, "u1", MARIN, None, ["analyst"], "C", MARIN, None, "Person", tags=["secret"]
        )
    with pytest.raises(ValueError, match="give its state"):
        explain_text(policy, "u1", "TX0000000", None, ["analyst"], "C", MARIN, None, "Person")
    text = explain_text(policy, "u1", "TX0000000", "TX", ["analyst"], "C", MARIN, None, "Person")
    # an agency no policy names is no participant: not even a pointer (issue 10)
    assert "Person -> INVISIBLE" in text
    assert "unknown-agency" in text
