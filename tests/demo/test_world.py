from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from collections import Counter, defaultdict
from datetime import date, datetime, timedelta
from typing import TypeVar

import pytest

from hub.demo.index import RecordIndex
from hub.demo.tables import CAD_CALL_TYPES, NIBRS_OFFENSES, SEX_OFFENSE_CODES
from hub.demo.world import (
    MIN_PER_KIND,
    REYES_DOB,
    SEALED_SURNAME,
    SEX_OFFENSE_VICTIM_SURNAME,
    VENDORS,
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
    "print(hashlib.sha256(b''.join(enc.encode(w.records[s.name]) for s in w.systems)).hexdigest())"
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
    ages = [
        (p.created - p.date_of_birth).days / 365.25
        for p in people
        if p.date_of_birth is not None and p.created is not None
    ]
    assert min(ages) >= 11  # twelve, give or take a transposed day and month
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
    assert redated
    for ps in redated:
        a, b = sorted({p.date_of_birth for p in ps if p.date_of_birth is not None})
        assert (a.year, a.month, a.day) == (b.year, b.day, b.month)


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
        # A clerk's transposed date of birth can move the 18th birthday by months; not more.
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
