"""The seeded demo world: fictional agencies, their systems, and the records each system holds.

``generate_world(size, seed, region)`` is deterministic: the same arguments give equal records.
``size`` is roughly the total number of records over all systems; every size, however small,
holds the planted examples and at least ``MIN_PER_KIND`` records of each kind each system holds.

What the world promises the vendor protocols (so a round trip through any of them is lossless):

- every datetime is UTC, timezone-aware, whole seconds; ``retrieved_at`` is ``World.generated_at``;
- latitude/longitude are rounded to 6 decimals, ALPR confidence to 2 decimals in [0.5, 1.0];
- RMS systems (Northwind, Keystone) fill every Person field; Vehicles; Incidents of kind REPORT
  with NIBRS offences (``tables.NIBRS_OFFENSES``) and statuses from ``tables.RMS_STATUSES``;
- CAD systems (Beacon) fill only Person name, date_of_birth, sex, race, phones, addresses,
  cautions and involvements (names have no suffix); Incidents of kind CALL whose offences are
  call types (``tables.CAD_CALL_TYPES``), statuses from ``tables.CAD_STATUSES``, no vehicles;
- ALPR systems (Sentinel) hold PlateReads whose location has coordinates and no address;
- a given name is one word (Beacon splits ``LAST, FIRST MIDDLE`` at the first space), and a few
  names carry diacritics (``tables.ACCENTED_*``), which every protocol carries as they are;
- within one system, ``Person.vehicle_ids`` and ``Vehicle.registered_owner_id`` agree, and a
  Person and an Incident hold the same ``InvolvementRef`` objects.

People recur across agencies under variations, as they do in real records, and the world knows
who is who: ``World.identity_of`` maps every Person's id to the number of the real person it
records (``World.people``), ``World.variations`` says how each record departs from that person
(``Variation``), and ``World.same_person_pairs()`` lists the pairs of records of one person: the
ground truth an entity resolution is measured on. The rates below are per Person record, measured
over 20k-record worlds (seeds 1 and 5) and held to bounds by tests/demo/test_world.py. About a
quarter of records are "recurring": of someone already on file in another system.

- The name as another clerk typed it, on 55 % of recurring records: a nickname (``NICKNAMES``;
  1-1.5 %), a surname typo (a letter dropped, doubled or transposed; ~3 %), given and middle
  swapped (~2 %), a hyphenated surname (~1.7 %), the middle name cut to its initial (~2.4 %) or
  dropped. CAD records give only the given name and surname 40 % of the time: a dropped middle
  name is ~10 % of all records, ~30 % of CAD ones.
- A married name (~1.4 %): a woman on file elsewhere has married since (15 % of her recurring
  records); her records made after the wedding carry her new surname, an RMS one half of the
  time with her maiden name as an alias (~0.4 %).
- Transliteration (~0.8 %): 3 % of people have diacritics in their name (``ACCENTED_*``: José,
  Zoë, Nuñez); a CAD types them without 60 % of the time, an RMS 20 %.
- Shared names: 2 % of people are given the given, middle and surname of an earlier, different
  person of the same sex (the name pools are weighted by frequency: mostly common names); with
  the pools' own coincidences ~11 % of people share a given name and surname with someone else.
  In the west a second Jordan Reyes (``OTHER_REYES_DOB``, a man) has a call in Cascade City's
  CAD, so the worked example must keep two people apart.
- The date of birth: day and month transposed (8 % of recurring records where the day can be a
  month: ~0.6 %), one digit off (2.5 %: 1988 -> 1989, day 12 -> 21 or 13, month 4 -> 5); in CAD
  records missing (15 %) or year-only, the 1st of January of the right year (5 %).
- What never varies between the records of one person: sex, race, SSN (one per person),
  driver licence, height and weight, where the system holds them.
"""

from __future__ import annotations

import bisect
import enum
import gc
import itertools
import random
import unicodedata
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Generic, TypeVar

from faker import Faker

from hub.demo.regions import (
    LICENSE_FORMATS,
    PLATE_FORMATS,
    REGIONS,
    AgencyPlan,
    RegionPlan,
)
from hub.demo.tables import (
    ACCENTED_FEMALE,
    ACCENTED_MALE,
    ACCENTED_SURNAMES,
    CAD_CALL_TYPES,
    CAD_ROLES,
    CAD_STATUSES,
    CAUTIONS,
    NAME_SUFFIXES,
    NIBRS_FREQUENCIES,
    NIBRS_OFFENSES,
    NICKNAMES,
    RMS_STATUSES,
    SEX_OFFENSE_CODES,
    VEHICLE_COLORS,
    VEHICLE_MODELS,
)
from hub.model import (
    Address,
    Agency,
    DriverLicense,
    EntityKind,
    Incident,
    IncidentKind,
    InvolvementRef,
    LegalTag,
    LicensePlate,
    Location,
    Offense,
    Person,
    PersonName,
    PlateRead,
    Provenance,
    Record,
    SourceKind,
    SourceSystem,
    Vehicle,
    make_id,
)

_T = TypeVar("_T")


class _Draw(random.Random):
    """A seeded Random with cheaper draws: the world makes millions of them.

    ``int(random() * n)`` is a little biased for huge ``n`` and several times faster than
    ``randrange``'s rejection sampling; a demo world does not need the difference.
    """

    def pick(self, seq: Sequence[_T]) -> _T:
        return seq[int(self.random() * len(seq))]

    def below(self, start: int, stop: int | None = None) -> int:
        if stop is None:
            return int(self.random() * start)
        return start + int(self.random() * (stop - start))

    def between(self, low: int, high: int) -> int:
        return low + int(self.random() * (high - low + 1))

    def weighted(self, table: _Weighted[_T]) -> _T:
        return table.items[bisect.bisect(table.cumulative, self.random() * table.total)]


@dataclass(frozen=True, slots=True)
class _Weighted(Generic[_T]):
    items: tuple[_T, ...]
    cumulative: tuple[float, ...]
    total: float

    @classmethod
    def of(cls, weights: Mapping[_T, float]) -> _Weighted[_T]:
        cumulative = tuple(itertools.accumulate(weights.values()))
        return cls(tuple(weights), cumulative, cumulative[-1])


@dataclass(frozen=True, slots=True)
class SystemSpec:
    """One simulated vendor system of one agency."""

    name: str  # the source name, e.g. "marin-rms"
    kind: str  # the adapter kind, e.g. "northwind-rms"
    agency: str  # owning ORI
    api_key: str  # the credential the simulator expects (demo only, deterministic)
    entity_kinds: frozenset[EntityKind]


# The instant the world is "generated": every record's retrieved_at, and "now" for its dates.
GENERATED_AT = datetime(2026, 11, 1, 12, 0, 0, tzinfo=UTC)


class Variation(enum.StrEnum):
    """How a Person record departs from the real person it records (``World.variations``)."""

    NICKNAME = "nickname"  # the given name as a nickname (NICKNAMES)
    SURNAME_TYPO = "surname-typo"  # two letters transposed, one dropped or one doubled
    SWAPPED_NAMES = "swapped-names"  # given and middle name swapped
    HYPHENATED_SURNAME = "hyphenated-surname"  # another surname joined on with a hyphen
    MIDDLE_INITIAL = "middle-initial"  # the middle name cut to its initial
    MIDDLE_DROPPED = "middle-dropped"  # the person has a middle name; the record has none
    MARRIED_NAME = "married-name"  # the surname she took when she married (RealPerson)
    MAIDEN_ALIAS = "maiden-alias"  # an alias with her name before she married
    TRANSLITERATED = "transliterated"  # the name typed without its diacritics
    DOB_DAY_MONTH = "dob-day-month"  # day and month of birth transposed
    DOB_DIGIT = "dob-digit"  # one digit of the date of birth off
    DOB_YEAR_ONLY = "dob-year-only"  # the 1st of January of the right year
    DOB_MISSING = "dob-missing"  # no date of birth


@dataclass(frozen=True, slots=True)
class RealPerson:
    """A person as they really are: what the Person records of ``World.identity_of`` record."""

    number: int  # unique within one world (region, size, seed); REYES_IDENTITY in every region
    name: PersonName  # the name they were born with, diacritics and all
    date_of_birth: date
    sex: str
    ssn: str
    married_surname: str | None = None
    married_on: date | None = None
    # A different, earlier person whose given name and surname this one was given on purpose
    # (the background's namesakes share the middle name too).
    namesake_of: int | None = None


@dataclass(slots=True)
class World:
    seed: int
    size: int
    region: str
    agencies: list[Agency]
    systems: list[SystemSpec]
    # system name -> the canonical records that system holds (ids made with that system's name)
    records: dict[str, list[Record]] = field(default_factory=dict)
    generated_at: datetime = GENERATED_AT
    # The ground truth of who is who. Person id -> the number of the real person it records.
    identity_of: dict[str, int] = field(default_factory=dict)
    # number -> the real person, for every number in identity_of
    people: dict[int, RealPerson] = field(default_factory=dict)
    # Person id -> how the record departs from the real person (empty: recorded as they are)
    variations: dict[str, frozenset[Variation]] = field(default_factory=dict)

    def agency(self, ori: str) -> Agency:
        return next(a for a in self.agencies if a.ori == ori)

    def system(self, name: str) -> SystemSpec:
        return next(s for s in self.systems if s.name == name)

    def records_of(self, number: int) -> list[str]:
        """The ids of the Person records of real person ``number``, in system order."""
        return [pid for pid, n in self.identity_of.items() if n == number]

    def same_person(self, a: str, b: str) -> bool:
        """Whether Person ids ``a`` and ``b`` record the same real person (KeyError: not a
        Person of this world)."""
        return self.identity_of[a] == self.identity_of[b]

    def same_person_pairs(self, ids: Iterable[str] | None = None) -> set[tuple[str, str]]:
        """Every pair ``(a, b)``, ``a < b``, of Person ids (of ``ids``, or of the whole world)
        that record the same real person: the true matches a linkage is scored against."""
        groups: dict[int, list[str]] = {}
        for pid in self.identity_of if ids is None else dict.fromkeys(ids):
            groups.setdefault(self.identity_of[pid], []).append(pid)
        return {
            (a, b) if a < b else (b, a)
            for members in groups.values()
            for a, b in itertools.combinations(members, 2)
        }


# -- the planted examples (region "west") ------------------------------------------------------

REYES_DOB = date(1988, 4, 12)
REYES_IDENTITY = 0  # the number of Jordan Avery Reyes in World.people, in every region
OTHER_REYES_DOB = date(1995, 10, 3)  # another Jordan Reyes (west: Cascade City's CAD)
REYES_PLATE = LicensePlate(number="7ABC123", state="CA")
REYES_VIN = "4T1BF1FK5GU187203"
SEALED_SURNAME = "Whitlock"
SEX_OFFENSE_VICTIM_SURNAME = "Halvorsen"

MIN_PER_KIND = 12

VENDORS: dict[str, tuple[str, SourceKind]] = {
    "northwind-rms": ("Northwind", SourceKind.RMS),
    "keystone-rms": ("Keystone", SourceKind.RMS),
    "beacon-cad": ("Beacon", SourceKind.CAD),
    "sentinel-alpr": ("Sentinel", SourceKind.ALPR),
}

# Vendor-flavoured record ids, by adapter kind and entity kind.
_RECORD_ID_FORMATS: dict[str, dict[EntityKind, str]] = {
    "northwind-rms": {
        EntityKind.PERSON: "NW-P-{:06d}",
        EntityKind.VEHICLE: "NW-V-{:06d}",
        EntityKind.INCIDENT: "NW-I-{:06d}",
    },
    "keystone-rms": {
        EntityKind.PERSON: "KS-PER-{:07d}",
        EntityKind.VEHICLE: "KS-VEH-{:07d}",
        EntityKind.INCIDENT: "KS-INC-{:07d}",
    },
    "beacon-cad": {EntityKind.PERSON: "BC-N-{:06d}", EntityKind.INCIDENT: "BC-E-{:06d}"},
    "sentinel-alpr": {EntityKind.PLATE_READ: "SN-{:08d}"},
}

_ENTITY_KINDS: dict[str, frozenset[EntityKind]] = {
    "northwind-rms": frozenset({EntityKind.PERSON, EntityKind.VEHICLE, EntityKind.INCIDENT}),
    "keystone-rms": frozenset({EntityKind.PERSON, EntityKind.VEHICLE, EntityKind.INCIDENT}),
    "beacon-cad": frozenset({EntityKind.PERSON, EntityKind.INCIDENT}),
    "sentinel-alpr": frozenset({EntityKind.PLATE_READ}),
}

_LETTERS = "ABCDEFGHJKLMNPRSTUVWXYZ"  # plates and VINs skip I, O, Q
_DIGITS = "0123456789"
_ALNUM = _LETTERS + _DIGITS
_ALPHABETS = {"L": _LETTERS, "D": _DIGITS, "A": _ALNUM}

_SECONDS_PER_DAY = 86_400
_YEARS_OF_RECORDS = 12
_YEARS_OF_READS = 3

# Legal tags as bits, so each combination is one shared frozenset.
_SEALED, _JUVENILE, _VICTIM, _IN_STATE = 1, 2, 4, 8
_TAG_BITS = (
    (_SEALED, LegalTag.SEALED),
    (_JUVENILE, LegalTag.JUVENILE),
    (_VICTIM, LegalTag.SEX_OFFENSE_VICTIM),
    (_IN_STATE, LegalTag.IN_STATE_ONLY),
)
_TAGS: tuple[frozenset[str], ...] = tuple(
    frozenset(str(tag.value) for bit, tag in _TAG_BITS if mask & bit) for mask in range(16)
)

# Variations as bits while the world is built, each combination one shared frozenset at the end.
_VARIATIONS = tuple(Variation)
(
    _NICKNAME,
    _SURNAME_TYPO,
    _SWAPPED,
    _HYPHENATED,
    _MIDDLE_INITIAL,
    _MIDDLE_DROPPED,
    _MARRIED,
    _MAIDEN_ALIAS,
    _TRANSLITERATED,
    _DOB_DAY_MONTH,
    _DOB_DIGIT,
    _DOB_YEAR_ONLY,
    _DOB_MISSING,
) = (1 << i for i in range(len(_VARIATIONS)))
_DOB_VARIATIONS = _DOB_DAY_MONTH | _DOB_DIGIT | _DOB_YEAR_ONLY | _DOB_MISSING

# The rates the module docstring documents (see there for what they come to per record).
_P_RECUR_RMS, _P_RECUR_CAD = 0.3, 0.4  # a background record is of someone already on file
_P_VARIED_NAME = 0.55  # of recurring records: the name as another clerk typed it
_P_CAD_SHORT_NAME = 0.4  # CAD: given name and surname only
_P_ALIAS = 0.12  # RMS: an alias
_P_MARRIES = 0.15  # a woman's recurring record: she married since her last record
_P_MAIDEN_ALIAS = 0.5  # RMS, married name: her maiden name as an alias
_P_ACCENTED = 0.03  # people whose name carries diacritics
_P_FOLD_CAD, _P_FOLD_RMS = 0.6, 0.2  # ... typed without them
_P_NAMESAKE = 0.02  # a new person is given the full name of an earlier one
_P_DOB_DAY_MONTH = 0.08  # recurring records, where the day is a possible month
_P_DOB_DIGIT = 0.025
_P_DOB_MISSING_CAD, _P_DOB_YEAR_ONLY_CAD = 0.15, 0.05

_OFFENSE_TABLE = _Weighted.of(NIBRS_FREQUENCIES)
_RACES = _Weighted.of({"W": 62, "B": 18, "A": 10, "I": 3, "U": 7})
_PARTY_COUNTS = _Weighted.of({1: 50, 2: 35, 3: 15})
_OFFENSES: dict[str, Offense] = {
    code: Offense(code=code, description=desc) for code, desc in NIBRS_OFFENSES.items()
}
_CALL_TYPES: tuple[Offense, ...] = tuple(
    Offense(code=code, description=desc) for code, desc in CAD_CALL_TYPES.items()
)

_RMS_NARRATIVES = (
    "R/P reported {offense} at {place}. Officer responded and took a report.",
    "Officer dispatched to {place} for {offense}. S1 identified; statements taken.",
    "V1 stated the {offense} happened overnight at {place}. Scene photographed.",
    "On patrol, officer observed {offense} near {place}. S1 detained without incident.",
    "Follow-up on {offense} at {place}. Evidence booked; case forwarded to detectives.",
    "W1 called about {offense} at {place}. Area canvassed; no further leads.",
)
_CAD_NARRATIVES = (
    "RP ADV {offense} AT LOC. UNIT ENRT.",
    "CALLER REPORTS {offense} IN PROGRESS. 2 UNITS ASSIGNED.",
    "{offense}. RP WILL MEET UNIT IN FRONT. NO WEAPONS SEEN.",
    "ANON CALLER ADV {offense}. UNIT CHECKED AREA, GOA.",
    "{offense}. RP CALLBACK NUMBER ON FILE. UNIT ON SCENE.",
)


def _ts(moment: datetime) -> int:
    return int(moment.timestamp())


def _at(ts: int) -> datetime:
    return datetime.fromtimestamp(ts, UTC)


def _add_years(day: date, years: int) -> date:
    try:
        return day.replace(year=day.year + years)
    except ValueError:  # 29 February
        return day.replace(year=day.year + years, day=28)


def _plain(text: str | None) -> str | None:
    """``text`` without its diacritics (José -> Jose), as a system that cannot store them has it."""
    if text is None or text.isascii():
        return text
    return "".join(c for c in unicodedata.normalize("NFKD", text) if not unicodedata.combining(c))


def _is_plain(name: PersonName) -> bool:
    return all(p is None or p.isascii() for p in (name.given, name.middle, name.surname))


def _date_or_none(year: int, month: int, day: int) -> date | None:
    try:
        return date(year, month, day)
    except ValueError:
        return None


class _Identity:
    """A person as they really are; each system holds its own variant of them."""

    __slots__ = (
        "address",
        "dob",
        "height",
        "last_seen",
        "license",
        "married_on",
        "married_surname",
        "name",
        "namesake_of",
        "number",
        "phone",
        "race",
        "sex",
        "ssn",
        "systems",
        "vehicles",
        "weight",
    )

    def __init__(
        self,
        *,
        number: int,
        name: PersonName,
        dob: date,
        sex: str,
        race: str,
        height: int,
        weight: int,
        ssn: str,
        license: DriverLicense,
        address: Address,
        phone: str,
    ) -> None:
        self.name = name
        self.dob = dob
        self.sex = sex
        self.race = race
        self.height = height
        self.weight = weight
        self.ssn = ssn
        self.license = license
        self.address = address
        self.phone = phone
        self.number = number
        self.systems: list[str] = []
        self.vehicles: list[_VehicleFacts] = []
        self.last_seen = 0  # the ordinal of the latest creation date of their records
        self.married_surname: str | None = None
        self.married_on = 0  # ordinal; 0: not married while on file
        self.namesake_of: int | None = None

    def name_on(self, day: date) -> PersonName:
        """Their name as of ``day``: married women's surname changes on the wedding day."""
        if self.married_surname is None or day.toordinal() < self.married_on:
            return self.name
        n = self.name
        return PersonName(given=n.given, middle=n.middle, surname=self.married_surname)

    def truth(self) -> RealPerson:
        return RealPerson(
            number=self.number,
            name=self.name,
            date_of_birth=self.dob,
            sex=self.sex,
            ssn=self.ssn,
            married_surname=self.married_surname,
            married_on=date.fromordinal(self.married_on) if self.married_on else None,
            namesake_of=self.namesake_of,
        )


@dataclass(slots=True)
class _VehicleFacts:
    vin: str
    plate: LicensePlate
    make: str
    model: str
    year: int
    color: str


@dataclass(slots=True, eq=False)
class _PersonDraft:
    """A Person being built: involvements and vehicles arrive before the frozen record is made."""

    record_id: str
    id: str
    identity: _Identity
    name: PersonName
    aliases: tuple[PersonName, ...]
    dob: date | None
    created: date
    tags: int
    addresses: tuple[Address, ...]
    phones: tuple[str, ...]
    cautions: tuple[str, ...]
    last_updated: datetime
    variations: int = 0
    # The record cannot be older than this ordinal (a married name: the wedding day).
    not_before: int = 0
    vehicle_ids: list[str] = field(default_factory=list)
    involvements: list[InvolvementRef] = field(default_factory=list)


@dataclass(slots=True)
class _System:
    """One system's records while the world is being built."""

    spec: SystemSpec
    source: SourceSystem
    agency: Agency
    plan: AgencyPlan
    people: list[_PersonDraft] = field(default_factory=list)
    vehicles: list[Vehicle] = field(default_factory=list)
    incidents: list[Incident] = field(default_factory=list)
    reads: list[tuple[int, LicensePlate, int, Location | None]] = field(default_factory=list)
    counters: dict[EntityKind, int] = field(default_factory=dict)
    plate_numbers: set[str] = field(default_factory=set)
    planted_people: int = 0

    @property
    def is_rms(self) -> bool:
        return self.source.kind is SourceKind.RMS

    @property
    def is_cad(self) -> bool:
        return self.source.kind is SourceKind.CAD

    def next_record_id(self, kind: EntityKind) -> str:
        n = self.counters.get(kind, 0) + 1
        self.counters[kind] = n
        return _RECORD_ID_FORMATS[self.spec.kind][kind].format(n)


class _Builder:
    def __init__(self, size: int, seed: int, plan: RegionPlan, as_of: datetime) -> None:
        self.size = size
        self.seed = seed
        self.plan = plan
        self.as_of = as_of.replace(microsecond=0)
        self.now_ts = _ts(self.as_of)
        self.today = self.as_of.date()
        self.records_from = self.today.toordinal() - 365 * _YEARS_OF_RECORDS
        self.rng = _Draw(f"hub-demo-world/{plan.name}/{seed}")
        self.identities: list[_Identity] = []  # background people, whom records may share
        self.identity_count = 0
        self.plates: set[str] = set()
        self.vins: set[str] = set()
        self.ssns: set[str] = set()  # one person, one SSN: a shared one would be false evidence
        self.dates: dict[int, date] = {}
        self._pools(Faker("en_US"))
        self.systems: list[_System] = []
        for sp in plan.systems:
            agency_plan = next(a for a in plan.agencies if a.agency.ori == sp.ori)
            vendor, source_kind = VENDORS[sp.kind]
            spec = SystemSpec(
                name=sp.name,
                kind=sp.kind,
                agency=sp.ori,
                api_key=f"demo-key-{sp.name}",
                entity_kinds=_ENTITY_KINDS[sp.kind],
            )
            self.systems.append(
                _System(
                    spec=spec,
                    source=SourceSystem(name=sp.name, vendor=vendor, kind=source_kind),
                    agency=agency_plan.agency,
                    plan=agency_plan,
                )
            )

    # -- pools ---------------------------------------------------------------------------------

    def _pools(self, fake: Faker) -> None:
        fake.seed_instance(f"{self.plan.name}/{self.seed}")
        n = max(150, min(self.size // 3, 2500))
        planted = {SEALED_SURNAME, SEX_OFFENSE_VICTIM_SURNAME}
        self.male = [fake.first_name_male() for _ in range(n)]
        self.female = [fake.first_name_female() for _ in range(n)]
        self.surnames = [s for s in (fake.last_name() for _ in range(n)) if s not in planted]
        self.streets = [fake.street_name() for _ in range(max(60, min(self.size // 10, 1000)))]
        self.cities: dict[str, list[tuple[str, str]]] = {}
        for state in self.plan.neighbour_states:
            names = [fake.city() for _ in range(4)]
            self.cities[state] = [(c, fake.zipcode_in_state(state)) for c in names]
        for ap in self.plan.agencies:
            home = (ap.city, fake.zipcode_in_state(ap.agency.state))
            self.cities[ap.agency.state].insert(0, home)

    # -- small draws ---------------------------------------------------------------------------

    def pattern(self, fmt: str) -> str:
        """A string of ``fmt``: L a letter, D a digit, A either; anything else as it is."""
        r = self.rng.random
        return "".join([(a[int(r() * len(a))] if (a := _ALPHABETS.get(ch)) else ch) for ch in fmt])

    def date_of(self, ordinal: int) -> date:
        day = self.dates.get(ordinal)
        if day is None:
            day = self.dates[ordinal] = date.fromordinal(ordinal)
        return day

    def address(self, state: str) -> Address:
        rng = self.rng
        cities = self.cities.get(state) or self.cities[self.plan.agencies[0].agency.state]
        # Most people live in the agency's own city (listed first).
        city, zipcode = cities[0] if rng.random() < 0.5 else rng.pick(cities)
        street = f"{rng.between(10, 9899)} {rng.pick(self.streets)}"
        return Address(street=street, city=city, state=state, postal_code=zipcode)

    def phone(self, plan: AgencyPlan) -> str:
        return f"({self.rng.pick(plan.area_codes)}) 555-{self.rng.between(0, 9999):04d}"

    def new_plate(self, state: str) -> LicensePlate:
        fmt = PLATE_FORMATS.get(state, "LLLDDDD")
        while True:
            number = self.pattern(fmt)
            if number not in self.plates:
                self.plates.add(number)
                return LicensePlate(number=number, state=state)

    def new_vin(self) -> str:
        while True:
            vin = self.pattern("DLLLLDDLLDLDDDDDD")
            if vin not in self.vins:
                self.vins.add(vin)
                return vin

    def vehicle_facts(self, state: str) -> _VehicleFacts:
        rng = self.rng
        make, model, first, last = rng.pick(VEHICLE_MODELS)
        return _VehicleFacts(
            vin=self.new_vin(),
            plate=self.new_plate(state),
            make=make,
            model=model,
            year=rng.between(first, last),
            color=rng.pick(VEHICLE_COLORS),
        )

    def location(self, plan: AgencyPlan, with_address: bool) -> Location:
        rng = self.rng
        lat = round(plan.center[0] + rng.uniform(-0.06, 0.06), 6)
        lon = round(plan.center[1] + rng.uniform(-0.08, 0.08), 6)
        address = None
        if with_address:
            street = f"{rng.between(10, 9899)} {rng.pick(self.streets)}"
            address = f"{street}, {plan.city}, {plan.agency.state}"
        return Location(address=address, latitude=lat, longitude=lon)

    def provenance(self, system: _System, record_id: str, updated: datetime) -> Provenance:
        return Provenance(
            agency=system.agency,
            system=system.source,
            record_id=record_id,
            retrieved_at=self.as_of,
            last_updated=updated,
        )

    def updated_after(self, created: date) -> datetime:
        start = (created.toordinal() - 719_163) * _SECONDS_PER_DAY  # 719163: 1970-01-01
        return _at(self.rng.between(min(start, self.now_ts), self.now_ts))

    # -- identities ----------------------------------------------------------------------------

    def next_identity_number(self) -> int:
        self.identity_count += 1
        return self.identity_count - 1

    def new_identity(self, plan: AgencyPlan) -> _Identity:
        rng = self.rng
        sex = "M" if rng.random() < 0.62 else "F"
        given_pool = self.male if sex == "M" else self.female
        given = rng.pick(given_pool)
        middle = rng.pick(given_pool) if rng.random() < 0.85 else None
        suffix = rng.pick(NAME_SUFFIXES) if sex == "M" and rng.random() < 0.03 else None
        surname = rng.pick(self.surnames)
        if rng.random() < _P_ACCENTED:
            which = rng.random()  # the given name, both, or the surname
            if which < 0.7:
                given = rng.pick(ACCENTED_MALE if sex == "M" else ACCENTED_FEMALE)
            if which >= 0.4:
                surname = rng.pick(ACCENTED_SURNAMES)
        name = PersonName(given=given, middle=middle, surname=surname, suffix=suffix)
        age = 13 + int(rng.betavariate(2.0, 5.0) * 70)
        dob = self.date_of(self.today.toordinal() - age * 365 - rng.below(365))
        if sex == "M":
            height, weight = round(rng.gauss(69.5, 3)), round(rng.gauss(190, 35))
        else:
            height, weight = round(rng.gauss(64, 2.8)), round(rng.gauss(155, 30))
        if age < 16:
            height, weight = height - 3, weight - 30
        state = plan.agency.state if rng.random() < 0.85 else rng.pick(self.plan.neighbour_states)
        while True:
            area = rng.between(1, 899)
            area = 665 if area == 666 else area  # 666 is never issued
            ssn = f"{area:03d}-{rng.between(1, 99):02d}-{rng.between(1, 9999):04d}"
            if ssn not in self.ssns:
                self.ssns.add(ssn)
                break
        return _Identity(
            number=self.next_identity_number(),
            name=name,
            dob=dob,
            sex=sex,
            race=rng.weighted(_RACES),
            height=max(56, min(80, height)),
            weight=max(90, min(350, weight)),
            ssn=ssn,
            license=DriverLicense(
                number=self.pattern(LICENSE_FORMATS.get(state, "DDDDDDDD")), state=state
            ),
            address=self.address(state),
            phone=self.phone(plan),
        )

    def varied_name(self, name: PersonName, cad: bool) -> tuple[PersonName, int]:
        """The name as another clerk typed it, and the variation (a bit; 0: none after all)."""
        rng = self.rng
        given, middle, surname, suffix = name.given, name.middle, name.surname, name.suffix
        assert given is not None
        assert surname is not None
        roll = rng.random()
        if roll < 0.2 and given in NICKNAMES:
            given, how = rng.pick(NICKNAMES[given]), _NICKNAME
        elif roll < 0.35 and len(surname) > 4:
            surname, how = self.typo(surname), _SURNAME_TYPO
        elif roll < 0.5 and middle is not None:
            given, middle, how = middle, given, _SWAPPED
        elif roll < 0.6:
            surname, how = f"{surname}-{rng.pick(self.surnames)}", _HYPHENATED
        elif roll < 0.8 and middle is not None:
            middle, how = middle[0], _MIDDLE_INITIAL
        else:
            middle, how = None, _MIDDLE_DROPPED
        if (given, middle, surname) == (name.given, name.middle, name.surname):
            how = 0  # e.g. "Hall" with its two l's transposed, or no middle name to drop
        if cad:
            suffix = None
        return PersonName(given=given, middle=middle, surname=surname, suffix=suffix), how

    def dob_slip(self, dob: date) -> date:
        """``dob`` with one digit off, as a hurried clerk types it."""
        rng = self.rng
        y, m, d = dob.year, dob.month, dob.day
        how = rng.below(4)
        slipped = None
        if how == 0 and d >= 10 and d % 11:  # the day's digits swapped: 12 -> 21, 30 -> 3
            slipped = _date_or_none(y, m, (d % 10) * 10 + d // 10)
        elif how == 1:  # the day's last digit one off: 12 -> 13
            slipped = _date_or_none(y, m, d + rng.pick((-1, 1))) if d % 10 not in (0, 9) else None
        elif how == 2:  # the month's last digit one off: 04 -> 05
            slipped = _date_or_none(y, m + rng.pick((-1, 1)), d) if m % 10 not in (0, 9) else None
        if slipped is None:  # the year's last digit one off: 1988 -> 1989
            step = -1 if y % 10 == 9 else 1 if y % 10 == 0 else rng.pick((-1, 1))
            slipped = _date_or_none(y + step, m, d) or date(y, m, 28)  # 29 February: 28
        return slipped

    def typo(self, word: str) -> str:
        rng = self.rng
        i = rng.below(1, len(word) - 1)
        how = rng.below(3)
        if how == 0:  # transposed letters
            return word[:i] + word[i + 1] + word[i] + word[i + 2 :]
        if how == 1:  # dropped letter
            return word[:i] + word[i + 1 :]
        return word[:i] + word[i] + word[i:]  # doubled letter

    # -- people --------------------------------------------------------------------------------

    def add_person(
        self,
        system: _System,
        identity: _Identity,
        *,
        name: PersonName | None = None,
        aliases: tuple[PersonName, ...] | None = None,
        dob: date | None = None,
        created: date | None = None,
        tags: int = 0,
        variations: int = 0,
    ) -> _PersonDraft:
        """A record of ``identity`` in ``system``; what is not given is drawn, with the documented
        variations. A caller that gives ``name`` or ``dob`` says how they vary (``variations``)."""
        rng = self.rng
        plan = system.plan
        recurring = bool(identity.systems)
        cad = system.is_cad
        today = self.today.toordinal()
        if created is None:
            since = _add_years(identity.dob, 18).toordinal()
            # Most records are made of adults; a few of children from twelve on.
            if since > today or rng.random() < 0.06:
                since = _add_years(identity.dob, 12).toordinal()
            if (
                name is None
                and recurring
                and identity.sex == "F"
                and identity.married_surname is None
                and rng.random() < _P_MARRIES
            ):
                # She married since her last record; this one is made after, under her new name.
                wed_from = max(identity.last_seen, _add_years(identity.dob, 18).toordinal()) + 30
                if wed_from < today - 30:
                    identity.married_on = rng.between(wed_from, today - 30)
                    identity.married_surname = self.other_surname(identity.name.surname)
                    since = identity.married_on
            created = self.date_of(rng.between(max(self.records_from, since), today))
        not_before = 0
        if name is None:
            base = identity.name_on(created)
            if base is not identity.name:
                variations |= _MARRIED
                not_before = identity.married_on
            if recurring and rng.random() < _P_VARIED_NAME:
                name, how = self.varied_name(base, cad)
                variations |= how
            elif cad and (base.suffix or rng.random() < _P_CAD_SHORT_NAME):
                name = PersonName(given=base.given, surname=base.surname)
                variations |= _MIDDLE_DROPPED if base.middle else 0
            else:
                name = base
            if not _is_plain(name) and rng.random() < (_P_FOLD_CAD if cad else _P_FOLD_RMS):
                name = PersonName(
                    given=_plain(name.given),
                    middle=_plain(name.middle),
                    surname=_plain(name.surname),
                    suffix=name.suffix,
                )
                variations |= _TRANSLITERATED
        if aliases is None:
            aliases = ()
            if not cad and variations & _MARRIED and rng.random() < _P_MAIDEN_ALIAS:
                aliases = (identity.name,)
                variations |= _MAIDEN_ALIAS
            elif not cad and rng.random() < _P_ALIAS:
                alias, _how = self.varied_name(identity.name, cad)
                if alias == name:  # a variation that changed nothing: an other surname then
                    alias = PersonName(given=identity.name.given, surname=rng.pick(self.surnames))
                aliases = (alias,)
        if dob is None:
            dob = identity.dob
            roll = rng.random()
            if recurring and roll < _P_DOB_DAY_MONTH:
                if dob.day <= 12 and dob.day != dob.month:
                    dob = date(dob.year, dob.day, dob.month)
                    variations |= _DOB_DAY_MONTH
            elif _P_DOB_DAY_MONTH <= roll < _P_DOB_DAY_MONTH + _P_DOB_DIGIT:
                dob = self.dob_slip(dob)
                variations |= _DOB_DIGIT
            if cad:
                roll = rng.random()
                if roll < _P_DOB_MISSING_CAD:
                    dob, variations = None, variations & ~_DOB_VARIATIONS | _DOB_MISSING
                elif roll < _P_DOB_MISSING_CAD + _P_DOB_YEAR_ONLY_CAD and (
                    identity.dob.month,
                    identity.dob.day,
                ) != (1, 1):
                    dob = date(identity.dob.year, 1, 1)
                    variations = variations & ~_DOB_VARIATIONS | _DOB_YEAR_ONLY
        if created < _add_years(identity.dob, 18):
            tags |= _JUVENILE
        address = identity.address
        if recurring and rng.random() < 0.3:
            address = self.address(address.state or plan.agency.state)
        if cad:
            addresses: tuple[Address, ...] = (address,) if rng.random() < 0.8 else ()
            phones: tuple[str, ...] = (identity.phone,) if rng.random() < 0.9 else ()
            cautions: tuple[str, ...] = (rng.pick(CAUTIONS),) if rng.random() < 0.03 else ()
        else:
            roll = rng.random()
            addresses = (address,)
            if roll < 0.25:
                addresses = (address, self.address(address.state or plan.agency.state))
            roll = rng.random()
            phones = (identity.phone,) if roll < 0.7 else ()
            if roll < 0.15:
                phones = (identity.phone, self.phone(plan))
            cautions = (rng.pick(CAUTIONS),) if rng.random() < 0.06 else ()
        record_id = system.next_record_id(EntityKind.PERSON)
        draft = _PersonDraft(
            record_id=record_id,
            id=make_id(system.spec.name, EntityKind.PERSON, record_id),
            identity=identity,
            name=name,
            aliases=aliases,
            dob=dob,
            created=created,
            tags=tags,
            addresses=addresses,
            phones=phones,
            cautions=cautions,
            last_updated=self.updated_after(created),
            variations=variations,
            not_before=not_before,
        )
        identity.systems.append(system.spec.name)
        identity.last_seen = max(identity.last_seen, created.toordinal())
        system.people.append(draft)
        return draft

    def other_surname(self, surname: str | None) -> str:
        while True:
            other = self.rng.pick(self.surnames)
            if other != surname:
                return other

    def share_name(self, identity: _Identity) -> None:
        """Give ``identity`` the full name of an earlier, different person of the same sex."""
        rng = self.rng
        for _try in range(4):
            other = self.identities[rng.below(len(self.identities))]
            if other.sex == identity.sex:
                n = other.name
                identity.name = PersonName(given=n.given, middle=n.middle, surname=n.surname)
                identity.namesake_of = other.number
                if identity.dob == other.dob:
                    identity.dob = self.date_of(identity.dob.toordinal() - rng.between(30, 900))
                return

    def background_people(self, system: _System, count: int) -> None:
        rng = self.rng
        share = _P_RECUR_CAD if system.is_cad else _P_RECUR_RMS
        name = system.spec.name
        for _ in range(count):
            identity = None
            if self.identities and rng.random() < share:
                for _try in range(3):
                    candidate = self.identities[rng.below(len(self.identities))]
                    if name not in candidate.systems and len(candidate.systems) < 3:
                        identity = candidate
                        break
            if identity is None:
                identity = self.new_identity(system.plan)
                if self.identities and rng.random() < _P_NAMESAKE:
                    self.share_name(identity)
                self.identities.append(identity)
            self.add_person(system, identity, tags=_SEALED if rng.random() < 0.01 else 0)

    def finish_people(self, system: _System) -> list[Person]:
        out = []
        cad = system.is_cad
        for d in system.people:
            ident = d.identity
            prov = self.provenance(system, d.record_id, d.last_updated)
            if cad:
                person = Person(
                    id=d.id,
                    provenance=prov,
                    tags=_TAGS[d.tags],
                    created=d.created,
                    name=d.name,
                    date_of_birth=d.dob,
                    sex=ident.sex,
                    race=ident.race,
                    addresses=d.addresses,
                    phones=d.phones,
                    cautions=d.cautions,
                    involvements=tuple(d.involvements),
                )
            else:
                person = Person(
                    id=d.id,
                    provenance=prov,
                    tags=_TAGS[d.tags],
                    created=d.created,
                    name=d.name,
                    aliases=d.aliases,
                    date_of_birth=d.dob,
                    sex=ident.sex,
                    race=ident.race,
                    height=ident.height,
                    weight=ident.weight,
                    ssn=ident.ssn,
                    driver_license=ident.license,
                    addresses=d.addresses,
                    phones=d.phones,
                    cautions=d.cautions,
                    vehicle_ids=tuple(d.vehicle_ids),
                    involvements=tuple(d.involvements),
                )
            out.append(person)
        return out

    # -- vehicles ------------------------------------------------------------------------------

    def add_vehicle(
        self,
        system: _System,
        owner: _PersonDraft | None,
        facts: _VehicleFacts,
        created: date,
    ) -> Vehicle:
        record_id = system.next_record_id(EntityKind.VEHICLE)
        vehicle = Vehicle(
            id=make_id(system.spec.name, EntityKind.VEHICLE, record_id),
            provenance=self.provenance(system, record_id, self.updated_after(created)),
            created=created,
            vin=facts.vin,
            plate=facts.plate,
            make=facts.make,
            model=facts.model,
            year=facts.year,
            color=facts.color,
            registered_owner_id=None if owner is None else owner.id,
        )
        if owner is not None:
            owner.vehicle_ids.append(vehicle.id)
        system.plate_numbers.add(facts.plate.number)
        system.vehicles.append(vehicle)
        return vehicle

    def background_vehicles(self, system: _System, count: int) -> None:
        rng = self.rng
        people = system.people
        first = system.planted_people
        today = self.today.toordinal()
        for _ in range(count):
            owner = None
            if rng.random() < 0.93:
                owner = people[rng.below(first, len(people))]
            facts = None
            if owner is not None:
                for known in owner.identity.vehicles:
                    if known.plate.number not in system.plate_numbers and rng.random() < 0.6:
                        facts = known
                        break
            if facts is None:
                state = system.agency.state
                if owner is not None and owner.identity.license.state:
                    state = owner.identity.license.state
                facts = self.vehicle_facts(state)
                if owner is not None:
                    owner.identity.vehicles.append(facts)
            since = self.records_from
            if owner is not None:
                since = max(since, _add_years(owner.identity.dob, 16).toordinal())
            self.add_vehicle(
                system, owner, facts, self.date_of(rng.between(min(since, today), today))
            )

    # -- incidents -----------------------------------------------------------------------------

    def add_incident(
        self,
        system: _System,
        parties: Sequence[tuple[_PersonDraft, str]],
        offenses: tuple[Offense, ...],
        reported: datetime,
        *,
        occurred: datetime | None = None,
        status: str | None = None,
        narrative: str | None = None,
        location: Location | None = None,
        vehicle_ids: tuple[str, ...] = (),
        tags: int = 0,
    ) -> Incident:
        rng = self.rng
        cad = system.is_cad
        record_id = system.next_record_id(EntityKind.INCIDENT)
        incident_id = make_id(system.spec.name, EntityKind.INCIDENT, record_id)
        prefix = system.plan.prefix
        seq = system.counters[EntityKind.INCIDENT]
        if cad:
            number = f"{prefix}-CFS-{reported.year % 100:02d}-{seq:06d}"
        else:
            number = f"{prefix}-{reported.year}-{seq:06d}"
        if occurred is None:
            back = rng.between(60, 1800) if cad else rng.between(300, 72 * 3600)
            occurred = reported - timedelta(seconds=back)
        if location is None:
            location = self.location(system.plan, with_address=True)
        if status is None:
            if cad:
                status = "CLOSED" if rng.random() < 0.4 else rng.pick(CAD_STATUSES)
            else:
                recent = self.now_ts - _ts(reported) < 120 * _SECONDS_PER_DAY
                # Recent reports are mostly still open; old ones closed one way or another.
                open_ = recent and rng.random() < 0.6
                status = "OPEN" if open_ else rng.pick(RMS_STATUSES[1:])
        if narrative is None:
            templates = _CAD_NARRATIVES if cad else _RMS_NARRATIVES
            what = offenses[0].description
            place = (location.address or system.plan.city).split(",")[0]
            narrative = rng.pick(templates).format(
                offense=what.upper() if cad else what.lower(), place=place
            )
        sex_offense = any(o.code in SEX_OFFENSE_CODES for o in offenses)
        refs = []
        for draft, role in parties:
            mask = (draft.tags & (_JUVENILE | _SEALED)) | (tags & _SEALED)
            if sex_offense and role == "VICTIM":
                mask |= _VICTIM
                draft.tags |= _VICTIM
            ref = InvolvementRef(
                role=role, person_id=draft.id, incident_id=incident_id, tags=_TAGS[mask]
            )
            draft.involvements.append(ref)
            refs.append(ref)
        incident = Incident(
            id=incident_id,
            provenance=self.provenance(
                system, record_id, _at(rng.between(_ts(reported), self.now_ts))
            ),
            tags=_TAGS[tags],
            created=self.date_of(reported.date().toordinal()),
            number=number,
            incident_kind=IncidentKind.CALL if cad else IncidentKind.REPORT,
            offenses=offenses,
            occurred_at=occurred,
            reported_at=reported,
            location=location,
            status=status,
            narrative=narrative,
            involvements=tuple(refs),
            involved_vehicle_ids=() if cad else vehicle_ids,
        )
        system.incidents.append(incident)
        return incident

    def background_incidents(self, system: _System, count: int) -> None:
        rng = self.rng
        people = system.people
        first = system.planted_people
        cad = system.is_cad
        for _ in range(count):
            if cad:
                offenses: tuple[Offense, ...] = (rng.pick(_CALL_TYPES),)
            else:
                code = rng.weighted(_OFFENSE_TABLE)
                offenses = (_OFFENSES[code],)
                if rng.random() < 0.15:
                    other = rng.weighted(_OFFENSE_TABLE)
                    if other != code and other not in SEX_OFFENSE_CODES:
                        offenses = (*offenses, _OFFENSES[other])
            n = rng.weighted(_PARTY_COUNTS)
            chosen: list[_PersonDraft] = []
            for _try in range(n):
                d = people[rng.below(first, len(people))]
                if d not in chosen:
                    chosen.append(d)
            sex_offense = offenses[0].code in SEX_OFFENSE_CODES
            parties = []
            for i, d in enumerate(chosen):
                if sex_offense:
                    role = "VICTIM" if i == 0 else "SUSPECT"
                elif cad:
                    role = "REPORTING_PARTY" if i == 0 else rng.pick(CAD_ROLES)
                elif i == 0:
                    role = rng.pick(("SUSPECT", "ARRESTEE", "VICTIM", "REPORTING_PARTY"))
                else:
                    role = rng.pick(("VICTIM", "WITNESS", "REPORTING_PARTY", "SUSPECT"))
                parties.append((d, role))
            # No earlier than any party could be on file as what they are on file as (a juvenile
            # or an adult), so moving their record's creation back to it keeps that status.
            since = self.records_from
            for d in chosen:
                of_age = 12 if d.tags & _JUVENILE else 18
                since = max(since, _add_years(d.identity.dob, of_age).toordinal(), d.not_before)
            start = (since - 719_163) * _SECONDS_PER_DAY  # 719163: 1970-01-01
            reported = _at(rng.between(min(start, self.now_ts), self.now_ts))
            day = self.date_of(reported.date().toordinal())
            for d in chosen:
                d.created = min(d.created, day)
            vehicle_ids: tuple[str, ...] = ()
            if not cad and system.vehicles and rng.random() < 0.3:
                owned = [v for d in chosen for v in d.vehicle_ids]
                if owned:
                    vehicle_ids = (rng.pick(owned),)
                else:
                    vehicle_ids = (system.vehicles[rng.below(len(system.vehicles))].id,)
            sealed = not cad and rng.random() < 0.01
            self.add_incident(
                system,
                parties,
                offenses,
                reported,
                vehicle_ids=vehicle_ids,
                tags=_SEALED if sealed else 0,
            )

    # -- plate reads ---------------------------------------------------------------------------

    def cameras(self, system: _System, count: int) -> list[tuple[str, Location | None]]:
        rng = self.rng
        plan = system.plan
        out: list[tuple[str, Location | None]] = []
        for i in range(1, count + 1):
            if i % 4 == 0:
                out.append((f"{plan.prefix}-MOBILE-{i:02d} Unit {rng.between(1, 9)}A{i:02d}", None))
            else:
                road = rng.pick(plan.roads)
                way = rng.pick(("NB", "SB", "EB", "WB"))
                out.append(
                    (
                        f"{plan.prefix}-FIXED-{i:03d} {road} {way}",
                        self.location(plan, with_address=False),
                    )
                )
        return out

    def plate_reads(
        self, system: _System, count: int, known: list[LicensePlate]
    ) -> list[PlateRead]:
        rng = self.rng
        cams = self.cameras(system, max(8, min(count // 200, 60)))
        unknown_states = [system.agency.state] * 3 + list(self.plan.neighbour_states)
        unknown = [self.new_plate(rng.pick(unknown_states)) for _ in range(max(10, count // 10))]
        start = self.now_ts - 365 * _YEARS_OF_READS * _SECONDS_PER_DAY
        reads = list(system.reads)
        for _ in range(count - len(reads)):
            if known and rng.random() < 0.85:
                # Skewed: a few plates (commuters) pass the cameras again and again.
                plate = known[int(len(known) * rng.random() ** 2)]
            else:
                plate = unknown[rng.below(len(unknown))]
            reads.append((rng.between(start, self.now_ts), plate, rng.below(len(cams)), None))
        reads.sort(key=lambda r: r[0])
        tags = _TAGS[_IN_STATE if system.agency.state in self.plan.in_state_only_alpr else 0]
        out = []
        for ts, plate, cam, where in reads:
            camera, fixed = cams[cam % len(cams)]
            location = where or fixed or self.location(system.plan, with_address=False)
            record_id = system.next_record_id(EntityKind.PLATE_READ)
            read_at = _at(ts)
            confidence = _CONFIDENCE[int(50 * (1 - rng.random() ** 3) + 0.5)]
            out.append(
                PlateRead(
                    id=make_id(system.spec.name, EntityKind.PLATE_READ, record_id),
                    provenance=self.provenance(system, record_id, read_at),
                    tags=tags,
                    created=self.date_of(read_at.date().toordinal()),
                    plate=plate,
                    read_at=read_at,
                    location=location,
                    camera=camera,
                    confidence=confidence,
                    image_url=f"https://alpr.example/img/{record_id}.jpg",
                )
            )
        return out

    # -- the whole world -----------------------------------------------------------------------

    def counts(self, system: _System) -> dict[EntityKind, int]:
        weight = next(s.weight for s in self.plan.systems if s.name == system.spec.name)
        total = self.size * weight
        if system.is_rms:
            shares = {EntityKind.PERSON: 0.4, EntityKind.VEHICLE: 0.3, EntityKind.INCIDENT: 0.3}
        elif system.is_cad:
            shares = {EntityKind.PERSON: 0.5, EntityKind.INCIDENT: 0.5}
        else:
            shares = {EntityKind.PLATE_READ: 1.0}
        return {k: max(MIN_PER_KIND, round(total * s)) for k, s in shares.items()}

    def build(self) -> World:
        by_name = {s.spec.name: s for s in self.systems}
        _PLANTS[self.plan.name](self, by_name)
        holders = [s for s in self.systems if s.is_rms or s.is_cad]
        counts = {s.spec.name: self.counts(s) for s in self.systems}
        for s in holders:
            s.planted_people = len(s.people)
        for s in holders:
            want = counts[s.spec.name]
            self.background_people(s, want[EntityKind.PERSON] - len(s.people))
        for s in holders:
            want = counts[s.spec.name]
            if s.is_rms:
                self.background_vehicles(s, want[EntityKind.VEHICLE] - len(s.vehicles))
            self.background_incidents(s, want[EntityKind.INCIDENT] - len(s.incidents))
        known: list[LicensePlate] = []
        seen: set[str] = set()
        for s in self.systems:
            for v in s.vehicles:
                if v.plate is not None and v.plate.number not in seen:
                    seen.add(v.plate.number)
                    known.append(v.plate)
        self.rng.shuffle(known)
        records: dict[str, list[Record]] = {}
        for s in self.systems:
            if s.source.kind is SourceKind.ALPR:
                reads = counts[s.spec.name][EntityKind.PLATE_READ]
                records[s.spec.name] = list(self.plate_reads(s, reads, known))
            else:
                out: list[Record] = []
                out.extend(self.finish_people(s))
                out.extend(s.vehicles)
                out.extend(s.incidents)
                records[s.spec.name] = out
        world = World(
            seed=self.seed,
            size=self.size,
            region=self.plan.name,
            agencies=[a.agency for a in self.plan.agencies],
            systems=[s.spec for s in self.systems],
            records=records,
            generated_at=self.as_of,
        )
        self.label(world)
        return world

    def label(self, world: World) -> None:
        """The ground truth: who each Person record is, and how it departs from them."""
        sets: dict[int, frozenset[Variation]] = {}
        people: dict[int, RealPerson] = {}
        for s in self.systems:
            for d in s.people:
                ident = d.identity
                world.identity_of[d.id] = ident.number
                labels = sets.get(d.variations)
                if labels is None:
                    labels = sets[d.variations] = frozenset(
                        v for i, v in enumerate(_VARIATIONS) if d.variations >> i & 1
                    )
                world.variations[d.id] = labels
                if ident.number not in people:
                    people[ident.number] = ident.truth()
        world.people.update(sorted(people.items()))


_CONFIDENCE: tuple[float, ...] = tuple(round(0.5 + i / 100, 2) for i in range(51))


def _on(day: str) -> date:
    return date.fromisoformat(day)


def _at_utc(moment: str) -> datetime:
    return datetime.fromisoformat(moment).replace(tzinfo=UTC)


def _reyes(b: _Builder) -> tuple[_Identity, _VehicleFacts]:
    """Jordan Avery Reyes of Marin Valley and his Camry, the worked example."""
    home = Address(
        street="1420 Laurel Grove Ave", city="Marin Valley", state="CA", postal_code="94960"
    )
    reyes = _Identity(
        number=b.next_identity_number(),  # the first person of every region: REYES_IDENTITY
        name=PersonName(given="Jordan", middle="Avery", surname="Reyes"),
        dob=REYES_DOB,
        sex="M",
        race="W",
        height=70,
        weight=172,
        ssn="521-44-7810",
        license=DriverLicense(number="D5550123", state="CA"),
        address=home,
        phone="(415) 555-0142",
    )
    camry = _VehicleFacts(
        vin=REYES_VIN, plate=REYES_PLATE, make="Toyota", model="Camry", year=2016, color="SILVER"
    )
    b.plates.add(REYES_PLATE.number)
    b.vins.add(REYES_VIN)
    b.ssns.add(reyes.ssn)
    reyes.vehicles.append(camry)
    return reyes, camry


def _plant_west(b: _Builder, systems: dict[str, _System]) -> None:
    """The worked examples the README and tests rely on."""
    marin, cascade, harbor = systems["marin-rms"], systems["cascade-rms"], systems["harbor-rms"]
    cascade_cad, harbor_cad = systems["cascade-cad"], systems["harbor-cad"]
    marin_plan = marin.plan
    reyes, camry = _reyes(b)
    home = reyes.address
    p_marin = b.add_person(
        marin,
        reyes,
        name=reyes.name,
        aliases=(),
        dob=REYES_DOB,
        created=_on("2019-03-02"),
    )
    p_marin.phones = (reyes.phone,)
    p_marin.addresses = (home,)
    p_marin.cautions = ()
    camry_record = b.add_vehicle(marin, p_marin, camry, _on("2019-03-02"))
    b.add_incident(
        marin,
        [(p_marin, "SUSPECT")],
        (_OFFENSES["13B"],),
        _at_utc("2024-08-17T23:41:09"),
        occurred=_at_utc("2024-08-17T23:05:00"),
        status="CLEARED BY ARREST",
        narrative="Officer dispatched to a parking lot disturbance. S1 Reyes cited and released.",
        location=Location(
            address="200 Harbor Point Rd, Marin Valley, CA", latitude=38.048113, longitude=-122.5377
        ),
        vehicle_ids=(camry_record.id,),
    )

    p_cascade = b.add_person(
        cascade,
        reyes,
        name=PersonName(given="Jordan", middle="A", surname="Reyes"),
        aliases=(),
        dob=REYES_DOB,
        created=_on("2021-06-14"),
        variations=_MIDDLE_INITIAL,
    )
    b.add_incident(
        cascade,
        [(p_cascade, "WITNESS")],
        (_OFFENSES["23F"],),
        _at_utc("2021-06-14T17:20:45"),
        status="INACTIVE",
        narrative="W1 saw a man break a car window in the lot and run north.",
    )

    p_harbor = b.add_person(
        harbor,
        reyes,
        name=PersonName(given="Jordan", surname="Reyes"),
        aliases=(PersonName(given="Jordy", surname="Reyes"),),
        dob=REYES_DOB,
        created=_on("2022-10-03"),
        variations=_MIDDLE_DROPPED,
    )
    b.add_incident(
        harbor,
        [(p_harbor, "VICTIM")],
        (_OFFENSES["23H"],),
        _at_utc("2022-10-03T09:12:30"),
        status="OPEN",
        narrative="V1 Jordan Reyes reported a bicycle stolen from the marina rack.",
    )

    p_ccad = b.add_person(
        cascade_cad,
        reyes,
        name=PersonName(given="Jordan", surname="Reyes"),
        dob=REYES_DOB,
        created=_on("2023-01-27"),
        variations=_MIDDLE_DROPPED,
    )
    b.add_incident(
        cascade_cad,
        [(p_ccad, "REPORTING_PARTY")],
        (_CALL_TYPES[[o.code for o in _CALL_TYPES].index("1182")],),
        _at_utc("2023-01-27T15:02:11"),
        status="REPORT TAKEN",
        narrative="RP ADV MINOR COLLISION IN PARKING LOT. NO INJURIES. UNIT ENRT.",
    )

    p_hcad = b.add_person(
        harbor_cad,
        reyes,
        name=PersonName(given="Jordan", surname="Reyes"),
        dob=date(1988, 12, 4),  # the clerk swapped day and month
        created=_on("2023-09-09"),
        variations=_MIDDLE_DROPPED | _DOB_DAY_MONTH,
    )
    b.add_incident(
        harbor_cad,
        [(p_hcad, "WITNESS")],
        (_CALL_TYPES[0],),
        _at_utc("2023-09-09T01:44:00"),
        status="GONE ON ARRIVAL",
        narrative="CALLER REPORTS DISTURBANCE IN PROGRESS. 2 UNITS ASSIGNED.",
    )

    # Another Jordan Reyes, a younger man of Cascade City: a namesake to keep apart from him.
    other = b.new_identity(cascade_cad.plan)
    other.name = PersonName(given="Jordan", middle="Mateo", surname="Reyes")
    other.sex, other.dob = "M", OTHER_REYES_DOB
    other.namesake_of = reyes.number
    p_other = b.add_person(
        cascade_cad,
        other,
        name=PersonName(given="Jordan", surname="Reyes"),
        aliases=(),
        dob=OTHER_REYES_DOB,
        created=_on("2024-03-15"),
        variations=_MIDDLE_DROPPED,
    )
    b.add_incident(
        cascade_cad,
        [(p_other, "SUSPECT")],
        (_CALL_TYPES[[o.code for o in _CALL_TYPES].index("TS")],),
        _at_utc("2024-03-15T22:18:40"),
        status="ADVISED",
        narrative="TRAFFIC STOP. DRIVER ADVISED, NO CITATION. UNIT CLEAR.",
    )

    # A sealed record: the person and the incident both.
    whitlock = b.new_identity(marin_plan)
    whitlock.name = PersonName(given="Daniel", middle="Roy", surname=SEALED_SURNAME)
    whitlock.dob = date(1979, 9, 23)
    p_whitlock = b.add_person(
        marin, whitlock, name=whitlock.name, aliases=(), created=_on("2015-05-20"), tags=_SEALED
    )
    b.add_incident(
        marin,
        [(p_whitlock, "ARRESTEE")],
        (_OFFENSES["35A"],),
        _at_utc("2015-05-20T02:30:00"),
        status="CLOSED",
        tags=_SEALED,
    )

    # A sex offence: the victim's identity is protected.
    halvorsen = b.new_identity(marin_plan)
    halvorsen.sex = "F"
    halvorsen.dob = date(1994, 2, 17)
    halvorsen.height, halvorsen.weight = 66, 140
    halvorsen.name = PersonName(given="Ingrid", middle="Marie", surname=SEX_OFFENSE_VICTIM_SURNAME)
    p_victim = b.add_person(
        marin, halvorsen, name=halvorsen.name, aliases=(), created=_on("2020-11-08")
    )
    suspect = b.new_identity(marin_plan)
    suspect.sex = "M"
    suspect.dob = date(1981, 7, 30)
    suspect.name = PersonName(given="Curtis", middle="Dale", surname="Mabry")
    p_suspect = b.add_person(
        marin, suspect, name=suspect.name, aliases=(), created=_on("2020-11-08")
    )
    b.add_incident(
        marin,
        [(p_victim, "VICTIM"), (p_suspect, "SUSPECT")],
        (_OFFENSES["11A"],),
        _at_utc("2020-11-08T04:15:00"),
        status="CLEARED BY ARREST",
    )

    # Reyes's Camry passes the cameras: Marin Valley daily, the Sierra patrol on trips to Reno.
    marin_alpr, sierra_alpr = systems["marin-alpr"], systems["sierra-alpr"]
    first = _ts(b.as_of) - 700 * _SECONDS_PER_DAY
    for i in range(24):
        ts = first + i * 29 * _SECONDS_PER_DAY + 7 * 3600 + i * 613
        marin_alpr.reads.append((ts, REYES_PLATE, i % 3, None))
    for i in range(7):
        ts = first + 40 * _SECONDS_PER_DAY + i * 90 * _SECONDS_PER_DAY + 15 * 3600 + i * 311
        sierra_alpr.reads.append((ts, REYES_PLATE, i % 3, None))


def _plant_east(b: _Builder, systems: dict[str, _System]) -> None:
    """Reyes drove east once: a partner hub's search for him finds this."""
    hudson, hudson_alpr = systems["hudson-rms"], systems["hudson-alpr"]
    reyes, _camry = _reyes(b)
    p_hudson = b.add_person(
        hudson,
        reyes,
        name=PersonName(given="Jordan", middle="A", surname="Reyes"),
        aliases=(),
        dob=REYES_DOB,
        created=_on("2025-07-19"),
        variations=_MIDDLE_INITIAL,
    )
    b.add_incident(
        hudson,
        [(p_hudson, "VICTIM")],
        (_OFFENSES["23F"],),
        _at_utc("2025-07-19T13:05:51"),
        status="OPEN",
        narrative="V1, visiting from California, reported a laptop stolen from his car.",
    )
    first = _ts(_at_utc("2025-07-16T18:00:00"))
    for i in range(6):
        hudson_alpr.reads.append((first + i * 16 * 3600 + i * 97, REYES_PLATE, i % 3, None))


_PLANTS = {"west": _plant_west, "east": _plant_east}


def today() -> datetime:
    """Midnight UTC today: the demo's "now", so retention rules never age the demo world out,
    while the world stays the same all day for the same arguments."""
    now = datetime.now(UTC)
    return datetime(now.year, now.month, now.day, tzinfo=UTC)


def generate_world(
    size: int = 2000, seed: int = 1, region: str = "west", *, as_of: datetime = GENERATED_AT
) -> World:
    """The demo world of ``region`` with about ``size`` records, the same for the same arguments.

    ``as_of`` is the world's "now": the newest record date and every record's retrieved_at.
    """
    plan = REGIONS.get(region)
    if plan is None:
        raise ValueError(f"unknown demo region {region!r}; known: {', '.join(REGIONS)}")
    if size < 1:
        raise ValueError("size must be positive")
    # Millions of new container objects would trigger full collections again and again; none of
    # them is garbage until the build is over.
    collecting = gc.isenabled()
    gc.disable()
    try:
        return _Builder(size, seed, plan, as_of).build()
    finally:
        if collecting:
            gc.enable()
