from __future__ import annotations

import itertools
import os
import re
import subprocess
import sys
import time
import unicodedata
from collections import Counter, defaultdict
from collections.abc import Collection
from datetime import date, datetime, timedelta
from typing import TypeVar

import pytest

from hub.demo.index import RecordIndex
from hub.demo.tables import CAD_CALL_TYPES, NIBRS_OFFENSES, NICKNAMES, SEX_OFFENSE_CODES
from hub.demo.world import (
    MIN_PER_KIND,
    OTHER_REYES_DOB,
    REYES_DOB,
    REYES_IDENTITY,
    SEALED_SURNAME,
    SEX_OFFENSE_VICTIM_SURNAME,
    VENDORS,
    RealPerson,
    Variation,
    World,
    generate_world,
)
from hub.model import (
    EntityKind,
    Incident,
    IncidentKind,
    LegalTag,
    Person,
    PlateRead,
    Record,
    Vehicle,
    decode_records,
    encode_records,
    kind_of,
    parse_id,
)

T = TypeVar("T")
SSN = re.compile(r"\d{3}-\d{2}-\d{4}")
PHONE = re.compile(r"\(\d{3}\) \d{3}-\d{4}")
PLATE = re.compile(r"[A-Z0-9]+")


@pytest.fixture(scope="module")
def world() -> World:
    return generate_world()


@pytest.fixture(scope="module")
def tiny() -> World:
    return generate_world(size=300)


@pytest.fixture(scope="module")
def big() -> World:
    started = time.perf_counter()
    out = generate_world(size=20_000, seed=5)
    print(f"\ngenerate_world(20_000): {time.perf_counter() - started:.2f} s")
    return out


def every(world: World) -> list[tuple[str, Record]]:
    return [(name, r) for name, records in world.records.items() for r in records]


def of_kind(world: World, cls: type[T]) -> list[T]:
    return [r for _, r in every(world) if isinstance(r, cls)]


# -- determinism and size ----------------------------------------------------------------------


def test_same_arguments_give_equal_worlds() -> None:
    assert generate_world(500, seed=3).records == generate_world(500, seed=3).records
    assert generate_world(500, seed=3).records != generate_world(500, seed=4).records


_DIGEST = (
    "import hashlib, msgspec; from hub.demo.world import generate_world; "
    "w = generate_world(600, seed=2); enc = msgspec.json.Encoder(order='deterministic'); "
    "truth = [w.identity_of, list(w.people.values()), w.variations]; "
    "print(hashlib.sha256(b''.join(enc.encode(w.records[s.name]) for s in w.systems)"
    " + enc.encode(truth)).hexdigest())"
)


def test_same_world_in_every_process() -> None:
    # Set iteration order changes with the hash seed; the world must not depend on it.
    digests = set()
    for hash_seed in ("1", "2"):
        env = {**os.environ, "PYTHONHASHSEED": hash_seed}
        out = subprocess.run(
            [sys.executable, "-c", _DIGEST], env=env, capture_output=True, text=True, check=True
        )
        digests.add(out.stdout.strip())
    assert len(digests) == 1


def test_size_is_the_total_number_of_records(world: World, big: World) -> None:
    assert abs(sum(map(len, world.records.values())) - 2000) <= 20
    assert abs(sum(map(len, big.records.values())) - 20_000) <= 200


def test_a_tiny_world_still_has_some_of_everything(tiny: World) -> None:
    for system in tiny.systems:
        kinds = Counter(kind_of(r) for r in tiny.records[system.name])
        assert set(kinds) == set(system.entity_kinds), system.name
        assert min(kinds.values()) >= MIN_PER_KIND, (system.name, kinds)
    names = {p.name.surname for p in of_kind(tiny, Person)}
    assert {"Reyes", SEALED_SURNAME, SEX_OFFENSE_VICTIM_SURNAME} <= names


def test_records_survive_a_json_round_trip(world: World) -> None:
    for records in world.records.values():
        assert decode_records(encode_records(records)) == records


# -- regions -----------------------------------------------------------------------------------


def test_unknown_region_is_refused() -> None:
    with pytest.raises(ValueError, match="region"):
        generate_world(region="atlantis")


def test_regions_differ_and_never_collide(world: World) -> None:
    east = generate_world(region="east")
    assert {a.ori for a in east.agencies}.isdisjoint(a.ori for a in world.agencies)
    assert {a.state for a in east.agencies}.isdisjoint(a.state for a in world.agencies)
    assert {s.name for s in east.systems}.isdisjoint(s.name for s in world.systems)
    assert sorted(s.kind for s in east.systems) == sorted(s.kind for s in world.systems)
    assert {r.id for _, r in every(east)}.isdisjoint(r.id for _, r in every(world))


def test_west_agencies_are_the_fixed_ones(world: World) -> None:
    assert {(a.ori, a.state) for a in world.agencies} == {
        ("CA0990000", "CA"),
        ("WA0990100", "WA"),
        ("OR0990200", "OR"),
        ("NV0990000", "NV"),
    }
    marin = world.agency("CA0990000")
    assert marin.name == "Marin Valley Sheriff's Office"
    assert "(415) 555-0100" in marin.contact
    systems = {(s.name, s.kind, s.agency) for s in world.systems}
    assert ("marin-rms", "northwind-rms", "CA0990000") in systems
    assert ("sierra-alpr", "sentinel-alpr", "NV0990000") in systems
    assert all(s.api_key == f"demo-key-{s.name}" for s in world.systems)


# -- ids, provenance, formats ------------------------------------------------------------------


def test_every_id_names_its_system_and_kind(world: World) -> None:
    for system in world.systems:
        vendor, source_kind = VENDORS[system.kind]
        for record in world.records[system.name]:
            ref = parse_id(record.id)
            assert ref.source == system.name
            assert ref.kind is kind_of(record)
            assert ref.record_id == record.provenance.record_id
            prov = record.provenance
            assert prov.agency == world.agency(system.agency)
            assert (prov.system.name, prov.system.vendor) == (system.name, vendor)
            assert prov.system.kind is source_kind
            assert prov.retrieved_at == world.generated_at
        ids = [r.id for r in world.records[system.name]]
        assert len(ids) == len(set(ids))


def _datetimes(record: Record) -> list[datetime | None]:
    out: list[datetime | None] = [
        record.provenance.retrieved_at,
        record.provenance.last_updated,
    ]
    if isinstance(record, Incident):
        out += [record.occurred_at, record.reported_at]
    if isinstance(record, PlateRead):
        out.append(record.read_at)
    return out


def test_values_have_the_promised_shape(world: World) -> None:
    for _, record in every(world):
        for moment in _datetimes(record):
            assert moment is not None
            assert moment.utcoffset() == timedelta(0)
            assert moment.microsecond == 0
            assert moment <= world.generated_at
        assert record.created is not None
        assert {*record.tags} <= {t.value for t in LegalTag}
        location = getattr(record, "location", None)
        if location is not None:
            assert location.latitude is not None
            assert location.longitude is not None
            assert round(location.latitude, 6) == location.latitude
            assert round(location.longitude, 6) == location.longitude
        if isinstance(record, Person):
            assert record.sex in {"M", "F"}
            assert record.race in set("WBAIU")
            assert all(PHONE.fullmatch(p) for p in record.phones)
            assert record.ssn is None or SSN.fullmatch(record.ssn)
            assert record.height is None or isinstance(record.height, int)
            assert record.weight is None or isinstance(record.weight, int)
        if isinstance(record, Vehicle | PlateRead):
            assert record.plate is not None
            assert PLATE.fullmatch(record.plate.number)
        if isinstance(record, PlateRead):
            assert record.confidence is not None
            assert 0.5 <= record.confidence <= 1.0
            assert round(record.confidence, 2) == record.confidence
            rid = record.provenance.record_id
            assert record.image_url == f"https://alpr.example/img/{rid}.jpg"


def test_dates_of_birth_are_realistic(big: World) -> None:
    people = of_kind(big, Person)
    ages = []
    for p in people:
        assert p.created is not None
        true_dob = big.people[big.identity_of[p.id]].date_of_birth
        ages.append((p.created - true_dob).days / 365.25)
        if p.date_of_birth is not None:
            # A clerk's slip (a transposed day and month, one digit, year-only) is within a year.
            assert abs((p.date_of_birth - true_dob).days) <= 366
    assert min(ages) >= 11.99  # records are made of people twelve and over
    assert max(ages) < 100
    juveniles = sum(age < 18 for age in ages) / len(ages)
    assert 0.02 < juveniles < 0.2


# -- what each vendor kind fills ---------------------------------------------------------------


def test_rms_records_are_whole(world: World) -> None:
    for system in (s for s in world.systems if s.kind.endswith("-rms")):
        records = world.records[system.name]
        people = [r for r in records if isinstance(r, Person)]
        assert all(p.ssn and p.driver_license and p.height and p.weight for p in people)
        assert any(p.aliases for p in people)
        assert any(p.vehicle_ids for p in people)
        assert any(p.cautions for p in people)
        for incident in (r for r in records if isinstance(r, Incident)):
            assert incident.incident_kind is IncidentKind.REPORT
            assert incident.offenses
            assert all(NIBRS_OFFENSES[o.code] == o.description for o in incident.offenses)
            assert incident.location is not None
            assert incident.location.address
            assert incident.status
            assert incident.narrative
            assert incident.occurred_at is not None
            assert incident.reported_at is not None
            assert incident.occurred_at <= incident.reported_at
        vehicles = [r for r in records if isinstance(r, Vehicle)]
        assert all(v.vin and len(v.vin) == 17 and v.make and v.year for v in vehicles)


def test_cad_records_fill_only_what_beacon_carries(world: World) -> None:
    for system in (s for s in world.systems if s.kind == "beacon-cad"):
        for record in world.records[system.name]:
            if isinstance(record, Person):
                assert record.aliases == ()
                assert record.ssn is None
                assert record.driver_license is None
                assert record.height is None
                assert record.weight is None
                assert record.vehicle_ids == ()
                assert record.name.suffix is None
            else:
                assert isinstance(record, Incident)
                assert record.incident_kind is IncidentKind.CALL
                assert record.involved_vehicle_ids == ()
                assert record.offenses
                assert all(CAD_CALL_TYPES[o.code] == o.description for o in record.offenses)


def test_alpr_reads_have_coordinates_and_no_address(world: World) -> None:
    for system in (s for s in world.systems if s.kind == "sentinel-alpr"):
        for read in world.records[system.name]:
            assert isinstance(read, PlateRead)
            assert read.location is not None
            assert read.location.address is None
            assert read.camera
            assert read.created == read.read_at.date()
            assert read.read_at > world.generated_at - timedelta(days=3 * 366)


# -- relationships -----------------------------------------------------------------------------


def test_relationships_agree_within_each_system(world: World) -> None:
    for records in world.records.values():
        by_id = {r.id: r for r in records}
        for record in records:
            if isinstance(record, Person):
                for vid in record.vehicle_ids:
                    vehicle = by_id[vid]
                    assert isinstance(vehicle, Vehicle)
                    assert vehicle.registered_owner_id == record.id
                for ref in record.involvements:
                    incident = by_id[ref.incident_id]
                    assert isinstance(incident, Incident)
                    assert any(other is ref for other in incident.involvements)
                    assert ref.person_id == record.id
            elif isinstance(record, Vehicle) and record.registered_owner_id is not None:
                owner = by_id[record.registered_owner_id]
                assert isinstance(owner, Person)
                assert record.id in owner.vehicle_ids
            elif isinstance(record, Incident):
                assert record.involvements
                for ref in record.involvements:
                    assert ref.incident_id == record.id
                    person = by_id[ref.person_id]
                    assert isinstance(person, Person)
                    assert any(other is ref for other in person.involvements)
                assert all(isinstance(by_id[v], Vehicle) for v in record.involved_vehicle_ids)


def test_plate_reads_are_mostly_of_known_vehicles(big: World) -> None:
    known = {(v.plate.number, v.plate.state) for v in of_kind(big, Vehicle) if v.plate}
    reads = of_kind(big, PlateRead)
    seen = sum((r.plate.number, r.plate.state) in known for r in reads)
    assert 0.7 < seen / len(reads) < 0.98


def test_people_recur_across_agencies_with_variations(big: World) -> None:
    by_ssn: dict[str, list[Person]] = defaultdict(list)
    for person in of_kind(big, Person):
        if person.ssn:
            by_ssn[person.ssn].append(person)
    shared = [ps for ps in by_ssn.values() if len({p.provenance.agency.ori for p in ps}) > 1]
    assert len(shared) > 100
    assert any(len({p.provenance.agency.ori for p in ps}) == 3 for ps in shared)
    renamed = [ps for ps in shared if len({(p.name.given, p.name.surname) for p in ps}) > 1]
    assert len(renamed) > 10
    redated = [ps for ps in shared if len({p.date_of_birth for p in ps}) > 1]
    assert len(redated) > 10
    for ps in redated:
        (number,) = {big.identity_of[p.id] for p in ps}  # one SSN, one person
        true_dob = big.people[number].date_of_birth
        for p in ps:
            assert p.date_of_birth is not None  # RMS records, which always have one
            if p.date_of_birth != true_dob:
                assert dob_varies_as_labelled(p.date_of_birth, true_dob, big.variations[p.id])


# -- the planted worked example ----------------------------------------------------------------


@pytest.mark.parametrize("size", [300, 2000])
def test_reyes_is_found_in_three_agencies(size: int) -> None:
    world = generate_world(size=size)
    found: dict[str, Person] = {}
    for name, records in world.records.items():
        for hit in RecordIndex(records).search("Reyes", [EntityKind.PERSON]):
            assert isinstance(hit, Person)
            if hit.date_of_birth == REYES_DOB:
                found[name] = hit
    assert {"marin-rms", "cascade-rms", "harbor-rms", "cascade-cad"} <= set(found)
    assert len({p.provenance.agency.ori for p in found.values()}) >= 3

    marin = found["marin-rms"]
    assert (marin.name.given, marin.name.middle, marin.name.surname) == ("Jordan", "Avery", "Reyes")
    by_id = {r.id: r for r in world.records["marin-rms"]}
    (camry,) = (by_id[v] for v in marin.vehicle_ids)
    assert isinstance(camry, Vehicle)
    assert camry.plate is not None
    assert (camry.plate.number, camry.plate.state) == ("7ABC123", "CA")
    assert (camry.year, camry.make, camry.model) == (2016, "Toyota", "Camry")
    assert marin.involvements
    assert found["cascade-rms"].name.given == "Jordan"
    assert "Jordy" in {a.given for a in found["harbor-rms"].aliases}
    assert found["cascade-cad"].involvements


def test_cameras_read_reyes_plate_again_and_again(tiny: World) -> None:
    for name, least in (("marin-alpr", 20), ("sierra-alpr", 5)):
        index = RecordIndex(tiny.records[name])
        reads = index.by_plates(["7ABC123"], EntityKind.PLATE_READ, state="CA")
        assert len(reads) >= least, name


# -- legal tags --------------------------------------------------------------------------------


def test_california_alpr_reads_stay_in_state(world: World) -> None:
    assert all(LegalTag.IN_STATE_ONLY in r.tags for r in world.records["marin-alpr"])
    assert not any(LegalTag.IN_STATE_ONLY in r.tags for r in world.records["sierra-alpr"])


def test_sealed_records(big: World, tiny: World) -> None:
    people = of_kind(big, Person)
    sealed = sum(LegalTag.SEALED in p.tags for p in people) / len(people)
    assert 0.003 < sealed < 0.03
    (whitlock,) = (p for p in of_kind(tiny, Person) if p.name.surname == SEALED_SURNAME)
    assert whitlock.provenance.system.name == "marin-rms"
    assert LegalTag.SEALED in whitlock.tags
    by_id = {r.id: r for r in tiny.records["marin-rms"]}
    for ref in whitlock.involvements:
        assert LegalTag.SEALED in ref.tags
        assert LegalTag.SEALED in by_id[ref.incident_id].tags


def test_juvenile_persons_and_their_involvements(big: World) -> None:
    tagged = 0
    for person in of_kind(big, Person):
        juvenile = LegalTag.JUVENILE in person.tags
        dob, created = person.date_of_birth, person.created
        assert created is not None
        # A clerk's slip in the date of birth moves the 18th birthday by a year at most.
        if dob is not None and abs((created - dob).days - 18 * 365.25) > 366:
            assert juvenile == ((created - dob).days < 18 * 365.25)
        tagged += juvenile
        for ref in person.involvements:
            assert (LegalTag.JUVENILE in ref.tags) == juvenile
    assert tagged > 50


def test_sex_offence_victims_are_tagged(big: World, tiny: World) -> None:
    victims = 0
    for records in big.records.values():
        by_id = {r.id: r for r in records}
        for incident in (r for r in records if isinstance(r, Incident)):
            if not {o.code for o in incident.offenses} & SEX_OFFENSE_CODES:
                continue
            refs = [ref for ref in incident.involvements if ref.role == "VICTIM"]
            assert refs
            for ref in refs:
                victims += 1
                assert LegalTag.SEX_OFFENSE_VICTIM in ref.tags
                assert LegalTag.SEX_OFFENSE_VICTIM in by_id[ref.person_id].tags
    assert victims > 10
    (planted,) = (p for p in of_kind(tiny, Person) if p.name.surname == SEX_OFFENSE_VICTIM_SURNAME)
    assert LegalTag.SEX_OFFENSE_VICTIM in planted.tags
    assert planted.provenance.system.name == "marin-rms"


def test_records_span_twelve_years(big: World) -> None:
    created = [r.created for _, r in every(big) if r.created is not None]
    assert min(created) < date(2016, 1, 1)
    assert max(created) <= big.generated_at.date()


# -- the ground truth: who is who --------------------------------------------------------------

NAME_VARIATIONS = frozenset(
    {
        Variation.NICKNAME,
        Variation.SURNAME_TYPO,
        Variation.SWAPPED_NAMES,
        Variation.HYPHENATED_SURNAME,
        Variation.MIDDLE_INITIAL,
        Variation.MIDDLE_DROPPED,
    }
)
DOB_VARIATIONS = frozenset(
    {
        Variation.DOB_DAY_MONTH,
        Variation.DOB_DIGIT,
        Variation.DOB_YEAR_ONLY,
        Variation.DOB_MISSING,
    }
)


def plain(text: str | None) -> str | None:
    if text is None:
        return None
    return "".join(c for c in unicodedata.normalize("NFKD", text) if not unicodedata.combining(c))


def one_edit(typed: str, real: str) -> bool:
    """A letter dropped, doubled, or two neighbours transposed."""
    if len(typed) == len(real) - 1:
        return any(real[:i] + real[i + 1 :] == typed for i in range(len(real)))
    if len(typed) == len(real) + 1:
        return any(typed[:i] + typed[i + 1 :] == real and typed[i] == typed[i + 1]
                   for i in range(len(typed) - 1))  # fmt: skip
    return len(typed) == len(real) and any(
        real[:i] + real[i + 1] + real[i] + real[i + 2 :] == typed != real
        for i in range(len(real) - 1)
    )


def one_digit_off(typed: date, real: date) -> bool:
    """One digit of the ISO date off by one (1988 -> 1989), or the day's digits swapped."""
    a, b = typed.isoformat(), real.isoformat()
    diff = [i for i in range(len(a)) if a[i] != b[i]]
    if len(diff) == 1:
        return abs(int(a[diff[0]]) - int(b[diff[0]])) == 1
    return a[:8] == b[:8] and a[8:] == b[8:][::-1]


def dob_varies_as_labelled(typed: date | None, real: date, labels: Collection[Variation]) -> bool:
    dob = DOB_VARIATIONS & set(labels)
    if typed is None:
        return dob == {Variation.DOB_MISSING}
    if typed == real:
        return not dob
    if dob == {Variation.DOB_DAY_MONTH}:
        return (typed.year, typed.month, typed.day) == (real.year, real.day, real.month)
    if dob == {Variation.DOB_YEAR_ONLY}:
        return typed == date(real.year, 1, 1)
    return dob == {Variation.DOB_DIGIT} and one_digit_off(typed, real)


def name_varies_as_labelled(person: Person, real: RealPerson, labels: frozenset[Variation]) -> bool:
    given, middle = real.name.given, real.name.middle
    surname = real.married_surname if Variation.MARRIED_NAME in labels else real.name.surname
    got = (person.name.given, person.name.middle, person.name.surname)
    if Variation.TRANSLITERATED in labels:
        if not all(part is None or part.isascii() for part in got):
            return False
        if all(part is None or part.isascii() for part in (given, middle, surname)):
            return False  # nothing to transliterate
        given, middle, surname = plain(given), plain(middle), plain(surname)
    assert given is not None
    assert surname is not None
    name = NAME_VARIATIONS & labels
    if not name:
        return got == (given, middle, surname)
    if len(name) > 1:
        return False
    (how,) = name
    if how is Variation.NICKNAME:
        return got[1:] == (middle, surname) and got[0] in NICKNAMES.get(given, ())
    if how is Variation.SURNAME_TYPO:
        return got[:2] == (given, middle) and one_edit(got[2] or "", surname)
    if how is Variation.SWAPPED_NAMES:
        return got == (middle, given, surname)
    if how is Variation.HYPHENATED_SURNAME:
        return got[:2] == (given, middle) and (got[2] or "").startswith(f"{surname}-")
    if how is Variation.MIDDLE_INITIAL:
        return middle is not None and got == (given, middle[0], surname)
    return middle is not None and got == (given, None, surname)  # MIDDLE_DROPPED


def people_by_identity(world: World) -> dict[int, list[Person]]:
    out: dict[int, list[Person]] = defaultdict(list)
    for person in of_kind(world, Person):
        out[world.identity_of[person.id]].append(person)
    return out


def test_every_person_record_has_its_real_person(big: World, tiny: World) -> None:
    for w in (big, tiny):
        ids = {p.id for p in of_kind(w, Person)}
        assert set(w.identity_of) == ids
        assert set(w.variations) == ids
        assert set(w.people) == set(w.identity_of.values())  # nobody without a record
        assert all(real.number == n for n, real in w.people.items())
        assert len({real.ssn for real in w.people.values()}) == len(w.people)  # one SSN each
    # Most people are on file once; about a quarter of records are of someone on file elsewhere.
    recurring = 1 - len(big.people) / len(big.identity_of)
    assert 0.15 < recurring < 0.4
    assert max(Counter(big.identity_of.values()).values()) >= 3


def test_records_of_one_person_agree_on_what_never_varies(big: World) -> None:
    for number, records in people_by_identity(big).items():
        real = big.people[number]
        assert {p.sex for p in records} == {real.sex}
        assert len({p.race for p in records}) == 1
        rms = [p for p in records if p.ssn is not None]
        assert {p.ssn for p in rms} <= {real.ssn}
        assert len({(p.driver_license, p.height, p.weight) for p in rms}) <= 1
        if len(records) > 1:
            assert len({p.provenance.system.name for p in records}) == len(records)


def test_each_record_varies_as_it_is_labelled(big: World) -> None:
    labelled = 0
    for person in of_kind(big, Person):
        real = big.people[big.identity_of[person.id]]
        labels = big.variations[person.id]
        assert name_varies_as_labelled(person, real, labels), (person.name, real, labels)
        assert dob_varies_as_labelled(person.date_of_birth, real.date_of_birth, labels)
        if Variation.MAIDEN_ALIAS in labels:
            assert Variation.MARRIED_NAME in labels
            assert real.name in person.aliases
        if real.married_on is not None:
            # Her records made since the wedding carry her new surname; the older ones do not.
            assert person.created is not None
            assert (Variation.MARRIED_NAME in labels) == (person.created >= real.married_on)
        else:
            assert Variation.MARRIED_NAME not in labels
        labelled += bool(labels)
    assert labelled > 0


def test_each_kind_of_variation_occurs_at_a_realistic_rate(big: World) -> None:
    people = of_kind(big, Person)
    cad = [p for p in people if p.provenance.system.kind.value == "CAD"]
    rate = Counter(v for p in people for v in big.variations[p.id])
    cad_rate = Counter(v for p in cad for v in big.variations[p.id])
    # per record, over all records (bounds around the rates the module docstring gives)
    bounds = {
        Variation.NICKNAME: (0.005, 0.04),
        Variation.SURNAME_TYPO: (0.01, 0.06),
        Variation.SWAPPED_NAMES: (0.01, 0.05),
        Variation.HYPHENATED_SURNAME: (0.005, 0.04),
        Variation.MIDDLE_INITIAL: (0.01, 0.05),
        Variation.MIDDLE_DROPPED: (0.05, 0.15),
        Variation.MARRIED_NAME: (0.005, 0.03),
        Variation.MAIDEN_ALIAS: (0.001, 0.01),
        Variation.TRANSLITERATED: (0.003, 0.02),
        Variation.DOB_DAY_MONTH: (0.002, 0.02),
        Variation.DOB_DIGIT: (0.01, 0.04),
    }
    assert set(bounds) | {Variation.DOB_YEAR_ONLY, Variation.DOB_MISSING} == set(Variation)
    for variation, (low, high) in bounds.items():
        assert low < rate[variation] / len(people) < high, (variation, rate[variation])
    # A CAD clerk leaves the date of birth out, or types the 1st of January of the right year.
    assert 0.1 < cad_rate[Variation.DOB_MISSING] / len(cad) < 0.2
    assert 0.025 < cad_rate[Variation.DOB_YEAR_ONLY] / len(cad) < 0.08
    assert rate[Variation.DOB_MISSING] == cad_rate[Variation.DOB_MISSING]
    assert rate[Variation.DOB_YEAR_ONLY] == cad_rate[Variation.DOB_YEAR_ONLY]
    assert cad_rate[Variation.MAIDEN_ALIAS] == 0  # CAD records carry no aliases
    # A few people have diacritics in their name; a few were given an earlier person's name.
    real = list(big.people.values())
    accented = [r for r in real if not (r.name.given or "").isascii()
                or not (r.name.surname or "").isascii()]  # fmt: skip
    assert 0.015 < len(accented) / len(real) < 0.05
    namesakes = [r for r in real if r.namesake_of is not None]
    assert 0.01 < len(namesakes) / len(real) < 0.04


def test_different_people_share_names(big: World) -> None:
    for real in big.people.values():
        if real.namesake_of is not None:
            other = big.people[real.namesake_of]
            assert real.number != other.number
            assert (real.name.given, real.name.surname) == (other.name.given, other.name.surname)
            assert real.sex == other.sex
            assert real.date_of_birth != other.date_of_birth
    # In the records: the same given name and surname, different people (what a matcher that
    # trusts names alone gets wrong).
    by_name: dict[tuple[str | None, str | None], set[int]] = defaultdict(set)
    for person in of_kind(big, Person):
        by_name[(person.name.given, person.name.surname)].add(big.identity_of[person.id])
    shared = [ns for ns in by_name.values() if len(ns) > 1]
    assert len(shared) > 50


def test_same_person_pairs_are_the_pairs_of_one_identity(big: World) -> None:
    pairs = big.same_person_pairs()
    sizes = Counter(big.identity_of.values())
    assert len(pairs) == sum(n * (n - 1) // 2 for n in sizes.values())
    assert all(a < b and big.same_person(a, b) for a, b in pairs)
    some = sorted(big.identity_of)[::7]
    assert big.same_person_pairs(some) == {
        (a, b) for a, b in itertools.combinations(sorted(some), 2) if big.same_person(a, b)
    }
    assert big.same_person_pairs([*some, *some]) == big.same_person_pairs(some)
    number = big.identity_of[next(iter(pairs))[0]]
    assert len(big.records_of(number)) >= 2


def test_same_arguments_give_the_same_truth() -> None:
    a, b, c = generate_world(500, seed=3), generate_world(500, seed=3), generate_world(500, seed=4)
    assert (a.identity_of, a.people, a.variations) == (b.identity_of, b.people, b.variations)
    assert (a.identity_of, a.people, a.variations) != (c.identity_of, c.people, c.variations)


@pytest.mark.parametrize("size", [300, 2000])
def test_the_worked_examples_truth(size: int) -> None:
    world = generate_world(size=size)
    reyes = world.people[REYES_IDENTITY]
    assert (reyes.name.given, reyes.name.middle, reyes.name.surname) == ("Jordan", "Avery", "Reyes")
    assert (reyes.date_of_birth, reyes.sex) == (REYES_DOB, "M")
    systems = {parse_id(pid).source for pid in world.records_of(REYES_IDENTITY)}
    assert systems == {"marin-rms", "cascade-rms", "harbor-rms", "cascade-cad", "harbor-cad"}
    assert len(world.same_person_pairs(world.records_of(REYES_IDENTITY))) == 10
    east = generate_world(size=size, region="east")
    assert east.people[REYES_IDENTITY].ssn == reyes.ssn
    (hudson,) = east.records_of(REYES_IDENTITY)
    assert parse_id(hudson).source == "hudson-rms"


@pytest.mark.parametrize("size", [300, 2000])
def test_a_second_jordan_reyes_is_another_person(size: int) -> None:
    world = generate_world(size=size)
    cad = [
        p
        for p in of_kind(world, Person)
        if p.provenance.system.name == "cascade-cad"
        and (p.name.given, p.name.surname) == ("Jordan", "Reyes")
    ]
    by_dob = {p.date_of_birth: p for p in cad}
    assert set(by_dob) == {REYES_DOB, OTHER_REYES_DOB}
    theirs, his = by_dob[REYES_DOB], by_dob[OTHER_REYES_DOB]
    assert world.identity_of[theirs.id] == REYES_IDENTITY
    other = world.identity_of[his.id]
    assert other != REYES_IDENTITY
    assert not world.same_person(theirs.id, his.id)
    assert world.records_of(other) == [his.id]
    real = world.people[other]
    assert (real.sex, real.date_of_birth, real.namesake_of) == ("M", OTHER_REYES_DOB, 0)
    assert his.sex == "M"
    assert his.involvements  # a call for service of his own
    assert world.agency(his.provenance.agency.ori).state == "WA"
