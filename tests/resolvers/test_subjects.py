"""Subjects over real HTTP: one person across agencies, resolved after the access decisions,
on what the reader may read alone; their relationships batched like any other."""

from __future__ import annotations

import dataclasses
import json
from collections import defaultdict
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import msgspec
import pytest

from hub.demo.world import REYES_IDENTITY, REYES_VIN, World
from hub.model import Person, Vehicle
from tests.adapters.conformance import small_world
from tests.conftest import HubServer, demo_settings, running_hub

MARIN, CASCADE, HARBOR = "CA0990000", "WA0990100", "OR0990200"
SUBJECTS = """query Subjects($text: String!, $kinds: [EntityKind!]) {
  search(text: $text, kinds: $kinds) {
    hits { __typename ... on Person { id ssn dateOfBirth provenance { agency { ori } } }
           ... on Vehicle { id } ... on RecordPointer { kind owner { ori } } }
    subjects { id score
      members { person { id } score linkedTo evidence { feature level weight } }
      vehicles { id vin } incidents { role incident { id } } plateReads { id readAt } }
    vehicleSubjects { id vin plate { number state } members { id } } } }"""


async def _subjects(
    hub: HubServer, text: str, agency: str = MARIN, kinds: list[str] | None = None
) -> dict[str, Any]:
    body = await hub.query(SUBJECTS, {"text": text, "kinds": kinds or ["PERSON"]}, agency=agency)
    result: dict[str, Any] = body["data"]["search"]
    return result


@pytest.fixture
async def world_hub(tmp_path: Path) -> AsyncIterator[tuple[HubServer, World]]:
    world = small_world()
    async with running_hub(demo_settings(tmp_path), world=world) as hub:
        yield hub, world


@pytest.mark.parametrize("agency", [MARIN, CASCADE, HARBOR])
async def test_every_person_hit_is_in_one_subject_of_one_real_person(
    world_hub: tuple[HubServer, World], agency: str
) -> None:
    hub, world = world_hub
    found = await _subjects(hub, "Jordan Reyes", agency)
    people = [h["id"] for h in found["hits"] if h["__typename"] == "Person"]
    members = [m["person"]["id"] for s in found["subjects"] for m in s["members"]]
    assert sorted(members) == sorted(people)  # each once; pointers in none
    for subject in found["subjects"]:
        ids = [m["person"]["id"] for m in subject["members"]]
        assert len({world.identity_of[i] for i in ids}) == 1, "two people made one"
    reyes = [i for i in people if world.identity_of[i] == REYES_IDENTITY]
    assert len(reyes) >= 3  # the worked example: three agencies, several spellings
    holding = [
        s for s in found["subjects"] if reyes[0] in {m["person"]["id"] for m in s["members"]}
    ]
    assert {m["person"]["id"] for m in holding[0]["members"]} == set(reyes)
    # Other people called Jordan Reyes stay other subjects.
    others = {world.identity_of[i] for i in people} - {REYES_IDENTITY}
    assert len(found["subjects"]) >= 1 + len(others)


async def test_members_carry_their_scores_and_evidence(
    world_hub: tuple[HubServer, World],
) -> None:
    hub, world = world_hub
    found = await _subjects(hub, "Jordan Reyes")
    reyes = next(
        s for s in found["subjects"]
        if world.identity_of[s["members"][0]["person"]["id"]] == REYES_IDENTITY
    )  # fmt: skip
    ids = {m["person"]["id"] for m in reyes["members"]}
    for member in reyes["members"]:
        assert 0.95 <= member["score"] <= 1
        assert member["linkedTo"] in ids - {member["person"]["id"]}
        weights = [e["weight"] for e in member["evidence"]]
        assert weights == sorted(weights, reverse=True)
        assert {"given", "surname"} <= {e["feature"] for e in member["evidence"]}
    assert reyes["score"] == min(m["score"] for m in reyes["members"])


async def test_a_withheld_ssn_is_never_evidence(world_hub: tuple[HubServer, World]) -> None:
    """Harbor Falls withholds SSNs from Marin: no comparison with a Harbor record uses one."""
    hub, _ = world_hub
    found = await _subjects(hub, "Jordan Reyes", MARIN)
    hits = {h["id"]: h for h in found["hits"] if h["__typename"] == "Person"}
    harbor = {i for i, h in hits.items() if h["provenance"]["agency"]["ori"] == HARBOR}
    assert harbor
    assert all(hits[i]["ssn"] is None for i in harbor)
    for subject in found["subjects"]:
        for m in subject["members"]:
            if m["person"]["id"] in harbor or m["linkedTo"] in harbor:
                assert "ssn" not in {e["feature"] for e in m["evidence"]}


def _with_ssn(world: World, owner: str, ssn: str) -> World:
    """``world`` with every record of the worked example's person held by ``owner`` given
    another SSN."""
    records = {}
    for source, rs in world.records.items():
        records[source] = [
            msgspec.structs.replace(r, ssn=ssn)
            if isinstance(r, Person)
            and r.ssn
            and r.provenance.agency.ori == owner
            and world.identity_of.get(r.id) == REYES_IDENTITY
            else r
            for r in rs
        ]
    return dataclasses.replace(world, records=records)


@pytest.mark.parametrize(("owner", "moves"), [(HARBOR, False), (CASCADE, True)])
async def test_a_value_the_reader_may_not_read_moves_nothing(
    tmp_path: Path, owner: str, moves: bool
) -> None:
    """The same search by Marin's analyst, with the Reyes SSNs of one owner changed: Harbor's
    (withheld from Marin) leave the subjects exactly as they were; Cascade's (which Marin
    reads) change the evidence, so the comparison is not vacuous."""
    world = small_world()
    answers = []
    for w in (world, _with_ssn(world, owner, "900-00-0001")):
        async with running_hub(demo_settings(tmp_path / str(len(answers))), world=w) as hub:
            found = await _subjects(hub, "Jordan Reyes", MARIN)
            answers.append(json.dumps(found["subjects"], sort_keys=True))
    assert (answers[0] != answers[1]) is moves


async def test_relationships_follow_the_subject_and_are_batched(
    world_hub: tuple[HubServer, World],
) -> None:
    hub, world = world_hub
    alpr = [s.name for s in world.systems if s.kind == "sentinel-alpr"]
    before = {name: len(hub.simulator_requests(name)) for name in alpr}
    found = await _subjects(hub, "Jordan Reyes", MARIN)
    reyes = next(
        s for s in found["subjects"]
        if world.identity_of[s["members"][0]["person"]["id"]] == REYES_IDENTITY
    )  # fmt: skip
    assert REYES_VIN in {v["vin"] for v in reyes["vehicles"]}
    reads = [r["readAt"] for r in reyes["plateReads"]]
    assert reads
    assert reads == sorted(reads, reverse=True)
    assert len({r["id"] for r in reyes["plateReads"]}) == len(reads)
    assert len(reyes["incidents"]) >= 2
    # One call per plate-read source for the whole response, however many subjects ask.
    for name in alpr:
        assert len(hub.simulator_requests(name)) - before[name] <= 1


async def test_vehicles_group_by_vin_and_plate(world_hub: tuple[HubServer, World]) -> None:
    hub, world = world_hub
    held: dict[str, list[Vehicle]] = defaultdict(list)
    for source in ("marin-rms", "cascade-rms"):  # Marin reads both
        for r in world.records[source]:
            if isinstance(r, Vehicle) and r.vin and r.plate is not None:
                held[r.vin].append(r)
    vin, records = next((v, rs) for v, rs in held.items() if len(rs) == 2)
    plate = records[0].plate
    assert plate is not None
    found = await _subjects(hub, plate.number, MARIN, ["VEHICLE"])
    vehicles = [h["id"] for h in found["hits"] if h["__typename"] == "Vehicle"]
    assert {r.id for r in records} <= set(vehicles)
    group = next(g for g in found["vehicleSubjects"] if g["vin"] == vin)
    assert group["plate"] == {"number": plate.number, "state": plate.state}
    assert {m["id"] for m in group["members"]} == {r.id for r in records}
    members = [m["id"] for g in found["vehicleSubjects"] for m in g["members"]]
    assert sorted(members) == sorted(vehicles)


async def test_an_outsider_gets_no_subject_from_pointers(
    world_hub: tuple[HubServer, World],
) -> None:
    """An agency no agreement lets read the records (the east, through the partner hub's
    users, or here: a search whose hits are pointers) gets subjects only of what it reads."""
    hub, _ = world_hub
    found = await _subjects(hub, "Jordan Reyes", HARBOR)
    pointers = [h for h in found["hits"] if h["__typename"] == "RecordPointer"]
    assert pointers  # Marin's record is a pointer to Harbor
    members = {m["person"]["id"] for s in found["subjects"] for m in s["members"]}
    assert len(members) == len(found["hits"]) - len(pointers)
