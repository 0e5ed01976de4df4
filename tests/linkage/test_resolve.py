"""Resolution: scores from the readable fields alone, contradictions kept apart, and every
record in exactly one cluster."""

from __future__ import annotations

from datetime import date

import msgspec
from hypothesis import given
from hypothesis import strategies as st

from hub.linkage import compare, resolve_people, shipped, view_of
from hub.linkage.compare import FIELDS
from hub.model import Address, DriverLicense
from tests.linkage.test_compare import EVERYTHING, person

_FIELD_SETS = st.frozensets(st.sampled_from(sorted(EVERYTHING)))
_OTHER_DATES = st.dates(min_value=date(1930, 1, 1), max_value=date(2010, 12, 31))


@given(_FIELD_SETS, _FIELD_SETS, st.text("0123456789", min_size=9, max_size=9), _OTHER_DATES)
def test_a_withheld_value_never_decides_or_influences_a_score(
    readable_a: frozenset[str], readable_b: frozenset[str], ssn: str, dob: date
) -> None:
    """Change every value of record a that its reader may not read: nothing of the comparison
    moves, not the score, not the evidence, not the blocking."""
    a, b = person(), person(given="Jordy", dob=date(1988, 12, 4))
    changed = msgspec.structs.replace(
        a,
        ssn=a.ssn if "ssn" in readable_a else f"{ssn[:3]}-{ssn[3:5]}-{ssn[5:]}",
        date_of_birth=a.date_of_birth if "dateOfBirth" in readable_a else dob,
        driver_license=(
            a.driver_license
            if "driverLicense" in readable_a
            else DriverLicense(number=ssn, state="NV")
        ),
        phones=a.phones if "phones" in readable_a else (ssn,),
        addresses=a.addresses
        if "addresses" in readable_a
        else (Address(street=ssn, postal_code=ssn[:5]),),
        sex=a.sex if "sex" in readable_a else "F",
    )
    weights = shipped()
    vb = view_of(b, readable_b)
    before = compare(view_of(a, readable_a), vb, weights)
    after = compare(view_of(changed, readable_a), vb, weights)
    assert before == after
    clusters_before = resolve_people([view_of(a, readable_a), vb])
    clusters_after = resolve_people([view_of(changed, readable_a), vb])
    assert clusters_before == clusters_after
    features = {e.feature for e in before.evidence}
    for feature, fields in FIELDS.items():
        if feature not in ("given", "surname") and not all(
            f in readable_a and f in readable_b for f in fields
        ):
            assert feature not in features


def test_a_readable_ssn_or_date_of_birth_does_decide() -> None:
    """The check above is not vacuous: the same change, readable, moves the score."""
    a, b = person(), person()
    weights = shipped()
    same = compare(view_of(a, EVERYTHING), view_of(b, EVERYTHING), weights)
    other = msgspec.structs.replace(a, ssn="999-99-9999", date_of_birth=date(1970, 1, 30))
    differs = compare(view_of(other, EVERYTHING), view_of(b, EVERYTHING), weights)
    assert differs.bits < same.bits
    assert {("ssn", "different"), ("dateOfBirth", "different")} <= {
        (e.feature, e.level) for e in differs.evidence
    }


def test_variants_of_one_person_resolve_to_one_subject_and_namesakes_do_not() -> None:
    records = [
        person("Jordan", "Reyes", middle="Avery"),
        person("Jordy", "Reyes", dob=date(1988, 12, 4), ssn=None, driver_license=None),
        person("Jordan", "Reyes-Alvarez", ssn=None),
        # A namesake: same name, another date of birth, other identifiers, elsewhere.
        person(
            "Jordan",
            "Reyes",
            dob=date(1991, 7, 23),
            ssn="601-22-1234",
            driver_license=DriverLicense(number="WDL1234", state="WA"),
            phones=("(206) 555-0199",),
            addresses=(Address(street="77 Pine St", postal_code="98101"),),
        ),
    ]
    clusters = resolve_people([view_of(r, EVERYTHING) for r in records])
    assert [c.members for c in clusters] == [(0, 1, 2), (3,)]
    first = clusters[0]
    assert set(first.links) == {0, 1, 2}
    assert all(link.probability >= shipped().threshold for link in first.links.values())
    assert clusters[1].links == {}


def test_a_chain_of_links_does_not_join_records_that_contradict_each_other() -> None:
    """b links to a (phone, names) and to c (phone, names) when it has no date of birth; a and
    c, with different dates of birth and SSNs, must stay two people."""
    shared = {"phones": ("(415) 555-0100",), "addresses": (), "driver_license": None}
    a = person("Sam", "Lee", dob=date(1980, 1, 2), ssn="111-11-1111", **shared)
    b = person("Sam", "Lee", dob=None, ssn=None, **shared)
    c = person("Sam", "Lee", dob=date(1999, 9, 9), ssn="222-22-2222", **shared)
    views = [view_of(r, EVERYTHING) for r in (a, b, c)]
    weights = shipped()
    assert compare(views[0], views[1], weights).probability >= weights.threshold
    assert compare(views[1], views[2], weights).probability >= weights.threshold
    clusters = resolve_people(views)
    assert len(clusters) == 2
    assert sorted(len(c.members) for c in clusters) == [1, 2]


@given(st.lists(st.sampled_from(range(6)), min_size=0, max_size=12))
def test_every_record_is_in_exactly_one_cluster(picks: list[int]) -> None:
    pool = [
        person(),
        person("Jordy"),
        person("Ana", "Silva", dob=date(1970, 3, 3), ssn="333-33-3333"),
        person("Ana", "Silva", dob=None, ssn=None),
        person("Bo", "Nguyen", dob=date(2000, 1, 1), ssn=None, phones=()),
        person("Jordan", "Reyes", dob=None, ssn=None, phones=(), driver_license=None),
    ]
    views = [view_of(pool[i], EVERYTHING) for i in picks]
    clusters = resolve_people(views)
    members = [m for c in clusters for m in c.members]
    assert sorted(members) == list(range(len(views)))
    assert [c.members[0] for c in clusters] == sorted(c.members[0] for c in clusters)
