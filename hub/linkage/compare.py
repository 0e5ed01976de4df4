"""What two person records have in common, feature by feature, on what a reader may read.

A ``PersonView`` is a person record reduced to the fields its reader may read (``view_of`` takes
the reader's readable fields, an allow-list): a withheld field is absent from the view, so it can
neither decide nor influence a comparison, a block or a score. Each comparison of two views puts
every feature at one *level* (``exact``, ``nickname``, ``transposed``, ...); ``missing`` when
either side lacks the field, which weighs nothing.

Names are compared after transliteration to ASCII (``anyascii``: José and Jose are one name),
with Jaro-Winkler similarity (``rapidfuzz``) and the hand-curated nickname table of the
``nicknames`` package (William and Bill, Roberto and Rob; Bill and Will, two of one name).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date
from functools import cache, lru_cache

import nicknames
from anyascii import anyascii
from rapidfuzz.distance import DamerauLevenshtein, JaroWinkler

from hub import model

# Features and their levels, strongest agreement first; ``missing`` weighs nothing.
LEVELS: dict[str, tuple[str, ...]] = {
    "given": ("exact", "nickname", "swapped", "similar", "initial", "different"),
    "surname": ("exact", "part", "similar", "close", "different"),
    "dateOfBirth": ("exact", "transposed", "oneDigit", "yearOnly", "different"),
    "sex": ("exact", "different"),
    "race": ("exact", "different"),
    "ssn": ("exact", "oneDigit", "different"),
    "driverLicense": ("exact", "different"),
    "phones": ("shared", "different"),
    "addresses": ("shared", "samePostalCode", "different"),
}
MISSING = "missing"
# The readable field each feature reads (a GraphQL field of Person).
FIELDS: dict[str, tuple[str, ...]] = {
    "given": ("name", "aliases"),
    "surname": ("name", "aliases"),
    "dateOfBirth": ("dateOfBirth",),
    "sex": ("sex",),
    "race": ("race",),
    "ssn": ("ssn",),
    "driverLicense": ("driverLicense",),
    "phones": ("phones",),
    "addresses": ("addresses",),
}

_NOT_LETTERS = re.compile(r"[^a-z ]+")
_NOT_ALNUM = re.compile(r"[^a-z0-9 ]+")
_NON_DIGITS = re.compile(r"[^0-9]+")
_SPACES = re.compile(r"\s+")


@dataclass(frozen=True, slots=True)
class Name:
    given: str | None
    middle: str | None
    surname: str | None
    # The surname's parts: a hyphenated or double surname, and the whole of it.
    surname_parts: frozenset[str]


@dataclass(frozen=True, slots=True)
class PersonView:
    """One person record as its reader may read it, normalised for comparison."""

    id: str
    names: tuple[Name, ...]  # the name first, then aliases
    date_of_birth: date | None
    sex: str | None
    race: str | None
    ssn: str | None
    driver_license: str | None
    phones: frozenset[str]
    addresses: frozenset[str]  # "street|postal code"
    postal_codes: frozenset[str]


def normal(text: str | None) -> str | None:
    """Lower-case ASCII letters and single spaces; None for nothing left."""
    if not text:
        return None
    out = _SPACES.sub(" ", _NOT_LETTERS.sub(" ", anyascii(text).lower().replace("-", " ")))
    return out.strip() or None


@lru_cache(maxsize=65_536)
def _street(text: str | None) -> str | None:
    if not text:
        return None
    return _SPACES.sub(" ", _NOT_ALNUM.sub(" ", anyascii(text).lower())).strip() or None


@lru_cache(maxsize=65_536)
def _name(n: model.PersonName) -> Name:
    surname = normal(n.surname)
    parts = frozenset(surname.split(" ")) | {surname} if surname else frozenset()
    return Name(
        given=normal(n.given), middle=normal(n.middle), surname=surname, surname_parts=parts
    )


def _digits(text: str | None) -> str | None:
    return (_NON_DIGITS.sub("", text) or None) if text else None


def view_of(person: model.Person, readable: frozenset[str]) -> PersonView:
    """``person`` reduced to the fields in ``readable``: nothing else of it is kept."""
    names: list[Name] = []
    if "name" in readable:
        names.append(_name(person.name))
    if "aliases" in readable:
        names.extend(_name(a) for a in person.aliases)
    dl = person.driver_license if "driverLicense" in readable else None
    addresses = person.addresses if "addresses" in readable else ()
    street = [(_street(a.street), (a.postal_code or "")[:5]) for a in addresses]
    sex = person.sex if "sex" in readable and person.sex not in ("U", "X") else None
    race = person.race if "race" in readable and person.race != "U" else None
    return PersonView(
        id=person.id,
        names=tuple(n for n in names if n.given or n.surname),
        date_of_birth=person.date_of_birth if "dateOfBirth" in readable else None,
        sex=sex,
        race=race,
        ssn=_digits(person.ssn) if "ssn" in readable else None,
        driver_license=f"{dl.state}:{dl.number.upper()}" if dl is not None else None,
        phones=frozenset(
            d for d in (_digits(p) for p in (person.phones if "phones" in readable else ())) if d
        ),
        addresses=frozenset(f"{s}|{z}" for s, z in street if s and z),
        postal_codes=frozenset(z for _, z in street if z),
    )


# -- names -------------------------------------------------------------------------------------


@cache
def _name_groups() -> dict[str, frozenset[int]]:
    """Each known name to the groups it belongs to: a formal name with its nicknames is one
    group (``nicknames``' hand-curated table)."""
    groups: dict[str, set[int]] = {}
    index: dict[str, int] = {}
    for triplet in nicknames.name_triplets():
        formal = triplet.name1
        group = index.setdefault(formal, len(index))
        for name in (formal, triplet.name2):
            groups.setdefault(normal(name) or name, set()).add(group)
    return {name: frozenset(g) for name, g in groups.items()}


def related_names(a: str, b: str) -> bool:
    """Whether one given name is a nickname of the other, or both are of one name."""
    groups = _name_groups()
    return bool(groups.get(a, frozenset()) & groups.get(b, frozenset()))


def _given_level(a: Name, b: Name) -> str:
    if a.given is None or b.given is None:
        return MISSING
    if a.given == b.given:
        return "exact"
    if (a.middle is not None and a.middle == b.given) or (
        b.middle is not None and b.middle == a.given
    ):
        return "swapped"
    if related_names(a.given, b.given):
        return "nickname"
    if JaroWinkler.similarity(a.given, b.given) >= 0.92:
        return "similar"
    if (len(a.given) == 1 or len(b.given) == 1) and a.given[0] == b.given[0]:
        return "initial"
    return "different"


def _surname_level(a: Name, b: Name) -> str:
    if a.surname is None or b.surname is None:
        return MISSING
    if a.surname == b.surname:
        return "exact"
    if a.surname_parts & b.surname_parts:
        return "part"
    similarity = JaroWinkler.similarity(a.surname, b.surname)
    if similarity >= 0.94:
        return "similar"
    if similarity >= 0.86:
        return "close"
    return "different"


# -- dates and numbers -------------------------------------------------------------------------


def _digits_of(d: date) -> str:
    return f"{d.year:04d}{d.month:02d}{d.day:02d}"


def _dob_level(a: date | None, b: date | None) -> str:
    if a is None or b is None:
        return MISSING
    if a == b:
        return "exact"
    if a.year == b.year and a.month == b.day and a.day == b.month:
        return "transposed"
    if DamerauLevenshtein.distance(_digits_of(a), _digits_of(b)) == 1:
        return "oneDigit"
    # A clerk who knew only the year enters the first of January.
    if a.year == b.year and (a.timetuple().tm_yday == 1 or b.timetuple().tm_yday == 1):
        return "yearOnly"
    return "different"


def _equal_level(a: str | None, b: str | None) -> str:
    if a is None or b is None:
        return MISSING
    return "exact" if a == b else "different"


def _ssn_level(a: str | None, b: str | None) -> str:
    if a is None or b is None:
        return MISSING
    if a == b:
        return "exact"
    return "oneDigit" if DamerauLevenshtein.distance(a, b) == 1 else "different"


def _shared_level(a: frozenset[str], b: frozenset[str]) -> str:
    if not a or not b:
        return MISSING
    return "shared" if a & b else "different"


def _address_level(a: PersonView, b: PersonView) -> str:
    if not a.postal_codes or not b.postal_codes:
        return MISSING
    if a.addresses & b.addresses:
        return "shared"
    return "samePostalCode" if a.postal_codes & b.postal_codes else "different"


def name_levels(a: PersonView, b: PersonView) -> list[tuple[str, str]]:
    """(given level, surname level) for every pairing of a name or alias of each."""
    return [(_given_level(x, y), _surname_level(x, y)) for x in a.names for y in b.names] or [
        (MISSING, MISSING)
    ]


def other_levels(a: PersonView, b: PersonView) -> dict[str, str]:
    """The level of each feature but the names."""
    return {
        "dateOfBirth": _dob_level(a.date_of_birth, b.date_of_birth),
        "sex": _equal_level(a.sex, b.sex),
        "race": _equal_level(a.race, b.race),
        "ssn": _ssn_level(a.ssn, b.ssn),
        "driverLicense": _equal_level(a.driver_license, b.driver_license),
        "phones": _shared_level(a.phones, b.phones),
        "addresses": _address_level(a, b),
    }


def blocking_keys(v: PersonView) -> set[str]:
    """Keys under which two views are compared at all: two views that share none are never
    compared (a large set would be all pairs otherwise). Generous on purpose: a true pair that
    shares no key cannot be linked."""
    keys: set[str] = set()
    year = v.date_of_birth.year if v.date_of_birth else None
    if v.date_of_birth is not None:
        keys.add(f"d:{v.date_of_birth.isoformat()}")
    if v.ssn:
        keys.add(f"s:{v.ssn}")
    if v.driver_license:
        keys.add(f"l:{v.driver_license}")
    keys.update(f"p:{p}" for p in v.phones)
    keys.update(f"a:{a}" for a in v.addresses)
    for n in v.names:
        for part in n.surname_parts:
            keys.add(f"n:{part[:4]}:{(n.given or '')[:1]}")
            if year is not None:
                keys.add(f"y:{part}:{year}")
        if n.given and year is not None:
            keys.add(f"g:{n.given}:{year}")
    return keys
