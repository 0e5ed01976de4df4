"""Comparison levels, and that a view holds only what its reader may read."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from hub.linkage.compare import (
    FIELDS,
    PersonView,
    blocking_keys,
    name_levels,
    normal,
    other_levels,
    related_names,
    view_of,
)
from hub.model import (
    Address,
    Agency,
    DriverLicense,
    EntityKind,
    Person,
    PersonName,
    Provenance,
    SourceKind,
    SourceSystem,
    make_id,
)

EVERYTHING = frozenset(f for fields in FIELDS.values() for f in fields)
_PROV = Provenance(
    agency=Agency(ori="CA0990000", name="Marin", state="CA"),
    system=SourceSystem(name="marin-rms", vendor="Northwind", kind=SourceKind.RMS),
    record_id="NW-P-1",
    retrieved_at=datetime(2026, 1, 1, tzinfo=UTC),
)


def person(
    given: str = "Jordan",
    surname: str = "Reyes",
    middle: str | None = None,
    dob: date | None = date(1988, 4, 12),
    **more: object,
) -> Person:
    fields: dict[str, object] = {
        "sex": "M",
        "race": "W",
        "ssn": "521-44-7810",
        "driver_license": DriverLicense(number="D5550123", state="CA"),
        "phones": ("(415) 555-0142",),
        "addresses": (Address(street="1420 Laurel Grove Ave", postal_code="94960"),),
    }
    fields.update(more)
    return Person(
        id=make_id("marin-rms", EntityKind.PERSON, f"{given}{surname}{dob}"),
        provenance=_PROV,
        name=PersonName(given=given, middle=middle, surname=surname),
        date_of_birth=dob,
        **fields,  # type: ignore[arg-type]
    )


def levels(a: Person, b: Person, readable: frozenset[str] = EVERYTHING) -> dict[str, str]:
    va, vb = view_of(a, readable), view_of(b, readable)
    given, surname = max(name_levels(va, vb), key=lambda x: (x[0] == "exact", x[1] == "exact"))
    return {"given": given, "surname": surname, **other_levels(va, vb)}


def test_names_are_compared_transliterated_and_lower_case() -> None:
    assert normal("José  Nuñez-O'Brien") == "jose nunez o brien"
    assert levels(person("José", "Nuñez"), person("Jose", "Nunez"))["given"] == "exact"
    assert levels(person("Zoë", "Reyes"), person("Zoe", "Reyes"))["given"] == "exact"


@pytest.mark.parametrize(
    ("a", "b", "level"),
    [
        ("William", "Bill", "nickname"),
        ("Roberto", "Rob", "nickname"),
        ("Bill", "Will", "nickname"),  # two nicknames of William
        ("Jordan", "Jordon", "similar"),
        ("Jordan", "Michael", "different"),
        ("J", "Jordan", "initial"),
    ],
)
def test_given_name_levels(a: str, b: str, level: str) -> None:
    assert levels(person(a), person(b))["given"] == level


def test_nicknames_come_from_the_library_table() -> None:
    assert related_names("william", "bill")
    assert not related_names("william", "jordan")


def test_swapped_given_and_middle() -> None:
    a, b = person("Jordan", middle="Avery"), person("Avery", middle="Jordan")
    assert levels(a, b)["given"] == "swapped"


@pytest.mark.parametrize(
    ("a", "b", "level"),
    [
        ("Reyes", "Reyes-Alvarez", "part"),
        ("Reyes", "Reyse", "similar"),
        ("Reyes", "Martinez", "different"),
    ],
)
def test_surname_levels(a: str, b: str, level: str) -> None:
    assert levels(person(surname=a), person(surname=b))["surname"] == level


@pytest.mark.parametrize(
    ("a", "b", "level"),
    [
        (date(1988, 4, 12), date(1988, 4, 12), "exact"),
        (date(1988, 4, 12), date(1988, 12, 4), "transposed"),
        (date(1988, 4, 12), date(1989, 4, 12), "oneDigit"),
        (date(1988, 4, 12), date(1988, 1, 1), "yearOnly"),
        (date(1988, 4, 12), date(1975, 9, 30), "different"),
        (date(1988, 4, 12), None, "missing"),
    ],
)
def test_date_of_birth_levels(a: date, b: date | None, level: str) -> None:
    assert levels(person(dob=a), person(dob=b))["dateOfBirth"] == level


def test_identifiers_phones_and_addresses() -> None:
    same = levels(person(), person())
    assert same["ssn"] == same["driverLicense"] == "exact"
    assert same["phones"] == same["addresses"] == "shared"
    moved = person(
        ssn="521-44-7811",
        phones=("(415) 555-9999",),
        addresses=(Address(street="9 Other St", postal_code="94960"),),
    )
    other = levels(person(), moved)
    assert other["ssn"] == "oneDigit"
    assert other["phones"] == "different"
    assert other["addresses"] == "samePostalCode"


_FIELD_SETS = st.frozensets(st.sampled_from(sorted(EVERYTHING)))


@given(_FIELD_SETS)
def test_a_view_holds_nothing_its_reader_may_not_read(readable: frozenset[str]) -> None:
    full = view_of(person(), EVERYTHING)
    seen = view_of(person(), readable)
    assert (seen.date_of_birth is not None) == ("dateOfBirth" in readable)
    assert (seen.ssn is not None) == ("ssn" in readable)
    assert (seen.driver_license is not None) == ("driverLicense" in readable)
    assert bool(seen.phones) == ("phones" in readable)
    assert bool(seen.addresses) == ("addresses" in readable)
    assert bool(seen.names) == ("name" in readable)  # the record has no aliases
    assert (seen.sex is not None) == ("sex" in readable)
    # Blocking keys are the view's alone: what a reader may not read opens no comparison.
    assert blocking_keys(seen) <= blocking_keys(full)
    if "ssn" not in readable:
        assert not any(k.startswith("s:") for k in blocking_keys(seen))


@given(_FIELD_SETS, _FIELD_SETS)
def test_a_feature_counts_only_when_both_records_let_it_be_read(
    readable_a: frozenset[str], readable_b: frozenset[str]
) -> None:
    found = {
        **levels(person(), person(), EVERYTHING),
        **{
            k: v
            for k, v in other_levels(
                view_of(person(), readable_a), view_of(person(), readable_b)
            ).items()
        },
    }
    for feature in ("dateOfBirth", "ssn", "driverLicense", "phones", "addresses", "sex", "race"):
        both = all(f in readable_a and f in readable_b for f in FIELDS[feature])
        assert (found[feature] != "missing") == both, feature


def test_an_empty_view_compares_as_missing() -> None:
    nothing = view_of(person(), frozenset())
    assert isinstance(nothing, PersonView)
    assert name_levels(nothing, nothing) == [("missing", "missing")]
    assert set(other_levels(nothing, nothing).values()) == {"missing"}
