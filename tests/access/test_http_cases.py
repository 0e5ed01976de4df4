"""The demo policy's story, told over real HTTP: each case of issue 3 §8 against the running hub.

The hub is served by uvicorn in front of the demo world's simulators (``tests.conftest.hub``); a
token is minted for each subject, and what comes back is read as a client would read it. Where
the case is "not contacted", the simulator's own request log is the proof.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pytest

from hub.access.policy import AccessPolicy, Visibility, default_policy_dir
from hub.context import RequestContext, Subject
from hub.demo.world import (
    REYES_DOB,
    REYES_PLATE,
    SEALED_SURNAME,
    SEX_OFFENSE_VICTIM_SURNAME,
)
from hub.model import EntityKind, Incident, Person, Record, Vehicle, make_id, parse_id
from resolvers.catalogue import CATALOGUE
from resolvers.present import matches, matches_readable
from tests.adapters.conformance import small_world
from tests.conftest import HubServer

MARIN, CASCADE, HARBOR, SIERRA = "CA0990000", "WA0990100", "OR0990200", "NV0990000"
WORLD = small_world()
AGENCIES = {a.ori: a for a in WORLD.agencies}


RECORDS: dict[str, Record] = {r.id: r for rs in WORLD.records.values() for r in rs}


def marin_person(surname: str) -> Person:
    return next(
        r for r in WORLD.records["marin-rms"] if isinstance(r, Person) and r.name.surname == surname
    )


def incident_of(person: Person) -> Incident:
    found = RECORDS[person.involvements[0].incident_id]
    assert isinstance(found, Incident)
    return found


MARIN_REYES = marin_person("Reyes")
WHITLOCK = marin_person(SEALED_SURNAME)
WHITLOCK_INCIDENT = incident_of(WHITLOCK)
HALVORSEN = marin_person(SEX_OFFENSE_VICTIM_SURNAME)
ASSAULT = incident_of(HALVORSEN)
CAMRY = next(
    r for r in WORLD.records["marin-rms"] if isinstance(r, Vehicle) and r.plate == REYES_PLATE
)
assert MARIN_REYES.date_of_birth == REYES_DOB


@dataclass(frozen=True)
class Who:
    """A subject: a user of ``agency`` with ``roles``, stating ``purpose``."""

    agency: str
    roles: tuple[str, ...]
    purpose: str = "C"

    async def ask(
        self, hub: HubServer, query: str, variables: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        return await hub.query(
            query, variables, agency=self.agency, roles=self.roles, purpose=self.purpose
        )


PERSON = """
  id name { given middle surname } aliases { given surname } dateOfBirth sex ssn
  driverLicense { number state } addresses { street city } phones cautions
  provenance { agency { ori } system { name } recordId }
"""
INCIDENT = """
  id number incidentKind: kind offenses { code description } occurredAt status narrative
  location { address } provenance { agency { ori } system { name } }
"""
VEHICLE = "id vin plate { number state } make model year color provenance { agency { ori } }"
READ = (
    "id plate { number state } readAt camera imageUrl provenance { agency { ori } system { name } }"
)
HITS = f"""
  hits {{
    __typename
    ... on Person {{ {PERSON} }}
    ... on Incident {{ {INCIDENT} }}
    ... on Vehicle {{ {VEHICLE} }}
    ... on PlateRead {{ {READ} }}
    ... on RecordPointer {{ kind owner {{ ori name state }} contact }}
  }}
  sources {{ source agency status count message }}
"""
SEARCH = f"""
query Search($text: String!, $kinds: [EntityKind!], $limit: Int) {{
  search(text: $text, kinds: $kinds, limit: $limit) {{ {HITS} }}
}}
"""


def data_errors(body: dict[str, Any]) -> list[dict[str, Any]]:
    """Errors other than FORBIDDEN_FIELD: there must be none."""
    return [e for e in body.get("errors") or [] if e["extensions"]["code"] != "FORBIDDEN_FIELD"]


def withheld(body: dict[str, Any]) -> dict[str, int]:
    """Type.field -> values withheld, from the FORBIDDEN_FIELD errors (each key exactly once)."""
    errors = [e for e in body.get("errors") or [] if e["extensions"]["code"] == "FORBIDDEN_FIELD"]
    keys = [e["extensions"]["field"] for e in errors]
    assert len(keys) == len(set(keys)), f"one error per Type.field, got {keys}"
    return {e["extensions"]["field"]: e["extensions"]["withheld"] for e in errors}


def hits_of(body: dict[str, Any], typename: str | None = None) -> list[dict[str, Any]]:
    assert not data_errors(body), body["errors"]
    hits: list[dict[str, Any]] = body["data"]["search"]["hits"]
    return [h for h in hits if typename is None or h["__typename"] == typename]


def owner(hit: dict[str, Any]) -> str:
    ori: str = hit["provenance"]["agency"]["ori"]
    return ori


def statuses(body: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {s["source"]: s for s in body["data"]["search"]["sources"]}


def ext_statuses(body: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {s["source"]: s for s in body["extensions"]["sources"]}


def counts_add_up(body: dict[str, Any]) -> None:
    result = body["data"]["search"]
    assert sum(s["count"] for s in result["sources"]) == len(result["hits"])


# -- the worked example ------------------------------------------------------------------------


async def test_worked_example_marin_analyst_finds_reyes_in_three_agencies(hub: HubServer) -> None:
    body = await Who(MARIN, ("analyst",)).ask(hub, SEARCH, {"text": "Reyes"})
    people = hits_of(body, "Person")
    reyes = [p for p in people if p["name"]["surname"] == "Reyes"]
    assert {owner(p) for p in reyes} >= {MARIN, CASCADE, HARBOR}
    # full records: Marin's own in full, Cascade shares every person field with Marin
    marin = next(p for p in reyes if p["id"] == MARIN_REYES.id)
    assert marin["ssn"] == MARIN_REYES.ssn
    assert marin["addresses"][0]["street"] == MARIN_REYES.addresses[0].street
    assert any(p["ssn"] for p in reyes if owner(p) == CASCADE)
    # Harbor Falls shares who a person is, not its identifiers
    harbor = [p for p in reyes if owner(p) == HARBOR]
    assert all(p["dateOfBirth"] and p["ssn"] is None and p["addresses"] is None for p in harbor)
    # and its incidents only as pointers: kind, owner and whom to call, nothing else
    pointers = hits_of(body, "RecordPointer")
    assert pointers
    for pointer in pointers:
        agency = AGENCIES[pointer["owner"]["ori"]]
        assert pointer["owner"] == {"ori": agency.ori, "name": agency.name, "state": agency.state}
        assert pointer["contact"] == agency.contact
        assert set(pointer) == {"__typename", "kind", "owner", "contact"}
    assert {(p["kind"], p["owner"]["ori"]) for p in pointers} >= {("INCIDENT", HARBOR)}
    counts_add_up(body)
    assert "Person.ssn" in withheld(body)  # Harbor Falls' SSNs


# -- a patrol officer of Cascade City reads a Marin person ----------------------------------


async def test_cascade_patrol_reads_marin_name_and_dob_but_not_ssn_or_addresses(
    hub: HubServer,
) -> None:
    body = await Who(CASCADE, ("patrol",)).ask(hub, SEARCH, {"text": "Reyes", "kinds": ["PERSON"]})
    people = hits_of(body, "Person")
    marin = next(p for p in people if p["id"] == MARIN_REYES.id)
    assert marin["name"] == {"given": "Jordan", "middle": "Avery", "surname": "Reyes"}
    assert marin["dateOfBirth"] == REYES_DOB.isoformat()
    assert marin["ssn"] is None
    assert marin["addresses"] is None
    assert marin["phones"] is None  # Marin keeps phone numbers home too
    raw = json.dumps(body)
    assert MARIN_REYES.ssn is not None
    assert MARIN_REYES.ssn not in raw  # Cascade's own record of him has it too: no SSN at all
    # one error per denied Type.field, counting the records, not one per row
    counts = withheld(body)
    marin_people = [p for p in people if owner(p) == MARIN]
    assert counts["Person.addresses"] == len(marin_people)
    assert counts["Person.ssn"] == len(people)  # patrol officers read no SSN of anyone's
    ssn_error = next(e for e in body["errors"] if e["extensions"]["field"] == "Person.ssn")
    assert ssn_error["message"] == f"Person.ssn withheld by policy from {len(people)} record(s)"
    # the officer's own agency's records keep their addresses
    assert any(p["addresses"] for p in people if owner(p) == CASCADE)


async def test_forbidden_field_errors_count_rows_across_every_path(hub: HubServer) -> None:
    """Search hits and records reached by traversal share one error per Type.field."""
    query = f"""{{
      search(text: "Reyes", kinds: [PERSON, INCIDENT], limit: 200) {{ hits {{
        ... on Person {{ id ssn addresses {{ street }} }}
        ... on Incident {{ id involvedPersons {{ person {{ id ssn addresses {{ street }} }} }} }}
      }} }}
      person(id: "{MARIN_REYES.id}") {{ id ssn }}
    }}"""
    body = await Who(CASCADE, ("patrol",)).ask(hub, query)
    assert not data_errors(body), body["errors"]
    people: dict[str, dict[str, Any]] = {}
    for hit in body["data"]["search"]["hits"]:
        if "ssn" in hit:
            people[hit["id"]] = hit
        for involvement in hit.get("involvedPersons") or []:
            if involvement["person"]:
                people[involvement["person"]["id"]] = involvement["person"]
    assert len(people) > 3
    assert all(p["ssn"] is None for p in people.values())
    counts = withheld(body)
    # each record counted once however many paths reached it
    assert counts["Person.ssn"] >= len(people)
    marin = [i for i in people if parse_id(i).source == "marin-rms"]
    assert counts["Person.addresses"] >= len(marin) >= 1


# -- Sierra State Patrol (Nevada) and Marin's plate reads (California) -------------------------


async def test_sierra_never_sees_marin_plate_reads_and_marin_alpr_is_never_asked(
    hub: HubServer,
) -> None:
    for who in (
        Who(SIERRA, ("detective",), "ALPR-INV"),
        Who(SIERRA, ("patrol",)),
        Who(SIERRA, ("analyst",)),
    ):
        root = await who.ask(
            hub, f'{{ plateReads(plate: "{REYES_PLATE.number}") {{ {READ} vehicle {{ id }} }} }}'
        )
        assert not data_errors(root), root["errors"]
        reads = root["data"]["plateReads"]
        # its own reads of the Camry, and nothing of Marin's
        assert reads
        assert {r["provenance"]["agency"]["ori"] for r in reads} == {SIERRA}
        assert ext_statuses(root)["marin-alpr"]["status"] == "DENIED"
        # and nothing reaches them through a vehicle either (Marin's Camry is a pointer to them)
        assert all(r["vehicle"] is None for r in reads)
        traversal = await who.ask(
            hub,
            f"""{{ search(text: "{REYES_PLATE.number}") {{
                 hits {{ __typename
                   ... on Vehicle {{ id plateReads {{ id provenance {{ agency {{ ori }} }} }} }}
                   ... on PlateRead {{ id provenance {{ agency {{ ori }} }}
                     vehicle {{ plateReads {{ id }} }} }} }}
                 sources {{ source status count }} }} }}""",
        )
        hits = hits_of(traversal)
        assert not any(h.get("provenance", {}).get("agency", {}).get("ori") == MARIN for h in hits)
        assert statuses(traversal)["marin-alpr"]["status"] == "DENIED"
        assert statuses(traversal)["marin-alpr"]["count"] == 0
        assert ext_statuses(traversal)["marin-alpr"]["status"] == "DENIED"
        raw = json.dumps(traversal)
        assert not [r.id for r in WORLD.records["marin-alpr"] if r.id in raw]
    assert hub.simulator_requests("marin-alpr") == []
    assert hub.simulator_requests("sierra-alpr")  # the search did run


async def test_cascade_traversing_to_marin_plate_reads_gets_none_and_asks_nothing(
    hub: HubServer,
) -> None:
    """Washington is out of state for California's ALPR law too: Marin's Camry is shared with
    Cascade City, its plate reads are not, and Marin's ALPR is not asked for them."""
    body = await Who(CASCADE, ("detective",)).ask(
        hub,
        f"""{{ vehicle(id: "{CAMRY.id}") {{ id make
              plateReads {{ id provenance {{ agency {{ ori }} system {{ name }} }}
                vehicle {{ id registeredOwner {{ id name {{ surname }} }} }} }} }} }}""",
    )
    assert not data_errors(body), body["errors"]
    camry = body["data"]["vehicle"]
    assert camry["make"] == "Toyota"
    reads = camry["plateReads"]
    assert reads  # Sierra's reads, shared with its ALPR partners
    assert {r["provenance"]["system"]["name"] for r in reads} == {"sierra-alpr"}
    assert ext_statuses(body)["marin-alpr"]["status"] == "DENIED"
    assert hub.simulator_requests("marin-alpr") == []
    # whereas Marin's own analyst gets Marin's reads through the same path
    own = await Who(MARIN, ("analyst",)).ask(
        hub,
        f'{{ vehicle(id: "{CAMRY.id}") {{ plateReads {{ provenance {{ system {{ name }} }} }} }} }}',  # noqa: E501
    )
    systems = {r["provenance"]["system"]["name"] for r in own["data"]["vehicle"]["plateReads"]}
    assert systems == {"marin-alpr", "sierra-alpr"}


# -- purpose J: criminal-justice employment ----------------------------------------------------


async def test_purpose_j_returns_no_incident_narratives_and_no_plate_reads(
    hub: HubServer,
) -> None:
    clerk = Who(MARIN, ("records",), "J")
    # The Reyes report, found by its number (its narrative, which names him, is withheld for
    # J, so a search for "Reyes" must not find it through the narrative; only through the
    # people it involves, whom the clerk may read).
    report = next(
        r for r in WORLD.records["marin-rms"]
        if isinstance(r, Incident) and r.narrative and "Reyes" in r.narrative
    )  # fmt: skip
    involved = {
        person.name.surname
        for ref in report.involvements
        if isinstance(person := RECORDS.get(ref.person_id), Person)
    }
    by_name = await clerk.ask(hub, SEARCH, {"text": "Reyes", "kinds": ["INCIDENT"]})
    found = report.id in {i["id"] for i in hits_of(by_name, "Incident")}
    assert found == ("Reyes" in involved)
    unnamed = await clerk.ask(hub, SEARCH, {"text": "Reyes", "kinds": ["INCIDENT"]})
    assert all(i["narrative"] is None for i in hits_of(unnamed, "Incident"))
    body = await clerk.ask(hub, SEARCH, {"text": report.number, "limit": 200})
    incidents = hits_of(body, "Incident")
    assert incidents  # the records clerk does get incidents for employment checks
    assert report.id in {i["id"] for i in incidents}
    assert all(i["narrative"] is None for i in incidents)
    assert "Incident.narrative" in withheld(body)
    narratives = [r.narrative for r in RECORDS.values() if isinstance(r, Incident) and r.narrative]
    raw = json.dumps(body)
    assert not [n for n in narratives if n in raw]
    # plate reads: not by their root field, not through a vehicle, and no ALPR is asked
    reads = await clerk.ask(hub, f'{{ plateReads(plate: "{REYES_PLATE.number}") {{ id }} }}')
    assert not data_errors(reads), reads["errors"]
    assert reads["data"]["plateReads"] == []
    alprs = ("marin-alpr", "sierra-alpr")
    assert {ext_statuses(reads)[n]["status"] for n in alprs} <= {"DENIED", "SKIPPED"}
    camry = await clerk.ask(
        hub, f'{{ vehicle(id: "{CAMRY.id}") {{ id make plateReads {{ id }} }} }}'
    )
    assert camry["data"]["vehicle"]["make"] == "Toyota"
    assert camry["data"]["vehicle"]["plateReads"] is None
    assert "Vehicle.plateReads" in withheld(camry)
    assert [hub.simulator_requests(n) for n in alprs] == [[], []]
    by_plate = await clerk.ask(hub, SEARCH, {"text": REYES_PLATE.number})
    assert hits_of(by_plate, "PlateRead") == []
    assert all(statuses(by_plate)[n]["count"] == 0 for n in alprs)


async def test_purpose_j_search_does_not_contact_alpr_sources(hub: HubServer) -> None:
    body = await Who(MARIN, ("records",), "J").ask(hub, SEARCH, {"text": REYES_PLATE.number})
    assert hits_of(body, "PlateRead") == []
    for name in ("marin-alpr", "sierra-alpr"):
        assert statuses(body)[name]["status"] in ("DENIED", "SKIPPED"), statuses(body)[name]
        assert hub.simulator_requests(name) == []


async def test_search_does_not_match_on_a_withheld_narrative(hub: HubServer) -> None:
    narrative = next(
        r for r in WORLD.records["marin-rms"] if isinstance(r, Incident) and r.narrative
        and "cited and released" in r.narrative
    )  # fmt: skip
    as_j = await Who(MARIN, ("records",), "J").ask(
        hub, SEARCH, {"text": "cited and released", "kinds": ["INCIDENT"]}
    )
    as_c = await Who(MARIN, ("analyst",), "C").ask(
        hub, SEARCH, {"text": "cited and released", "kinds": ["INCIDENT"]}
    )
    assert narrative.id in {h["id"] for h in hits_of(as_c, "Incident")}
    assert narrative.id not in {h.get("id") for h in hits_of(as_j)}


# -- a sealed record ---------------------------------------------------------------------------

NOBODY = "Zyxwvutsr"  # no record anywhere has this name
STRANGERS = [
    Who(MARIN, ("analyst",)),
    Who(MARIN, ("detective", "supervisor"), "X"),
    Who(MARIN, ("patrol",)),
    Who(MARIN, ("auditor",), "A"),
    Who(CASCADE, ("records",)),  # another agency's records clerk
    Who(CASCADE, ("detective",)),
    Who(SIERRA, ("detective",)),
]


def _without_timing(body: dict[str, Any]) -> Any:
    text = json.dumps(body)
    for name in (SEALED_SURNAME, NOBODY):
        text = text.replace(name, "<text>")
    data = json.loads(text)
    for entry in data.get("extensions", {}).get("sources", []):
        entry.pop("latencyMs", None)
        entry.pop("cached", None)
    return data


@pytest.mark.parametrize("who", STRANGERS, ids=str)
async def test_sealed_record_is_invisible_without_a_trace(hub: HubServer, who: Who) -> None:
    sealed = await who.ask(hub, SEARCH, {"text": SEALED_SURNAME})
    nothing = await who.ask(hub, SEARCH, {"text": NOBODY})
    assert "errors" not in sealed
    assert hits_of(sealed) == []
    assert statuses(sealed)["marin-rms"]["count"] == 0
    # no hint: the answer is the answer to a name nobody has
    assert _without_timing(sealed) == _without_timing(nothing)
    for root, record in (("person", WHITLOCK), ("incident", WHITLOCK_INCIDENT)):
        by_id = await who.ask(hub, f'{{ {root}(id: "{record.id}") {{ id }} }}')
        assert by_id["data"] == {root: None}
        assert "errors" not in by_id
        assert all(s["count"] == 0 for s in by_id["extensions"]["sources"])
    # a record that does not exist reads the same
    missing = make_id("marin-rms", EntityKind.PERSON, "NW-P-999999")
    absent = await who.ask(hub, f'{{ person(id: "{missing}") {{ id }} }}')
    present = await who.ask(hub, f'{{ person(id: "{WHITLOCK.id}") {{ id }} }}')
    assert _without_timing(absent) == _without_timing(present)


async def test_sealed_record_is_seen_by_the_owners_records_clerk(hub: HubServer) -> None:
    for purpose in ("C", "A"):
        body = await Who(MARIN, ("records",), purpose).ask(hub, SEARCH, {"text": SEALED_SURNAME})
        person = next(p for p in hits_of(body, "Person") if p["id"] == WHITLOCK.id)
        assert person["name"]["surname"] == SEALED_SURNAME
        assert statuses(body)["marin-rms"]["count"] >= 1
        incident = await Who(MARIN, ("records",), purpose).ask(
            hub,
            f'{{ incident(id: "{WHITLOCK_INCIDENT.id}") {{ id number '
            f"involvedPersons {{ role person {{ id }} }} }} }}",
        )
        assert incident["data"]["incident"]["number"] == WHITLOCK_INCIDENT.number
        assert incident["data"]["incident"]["involvedPersons"] == [
            {"role": "ARRESTEE", "person": {"id": WHITLOCK.id}}
        ]


# -- the victim of a sex offence -----------------------------------------------------------


VICTIM_PATHS = f"""{{
  person(id: "{HALVORSEN.id}") {{ id name {{ given surname }} aliases {{ surname }} dateOfBirth
    driverLicense {{ number }} sex }}
  incident(id: "{ASSAULT.id}") {{ id offenses {{ code }}
    involvedPersons {{ role person {{ id name {{ given surname }} dateOfBirth }} }} }}
}}"""


@pytest.mark.parametrize(
    ("agency", "roles"), [(CASCADE, ["detective"]), (CASCADE, ["patrol"]), (CASCADE, ["analyst"])]
)
async def test_sex_offence_victim_name_is_withheld_from_other_agencies(
    hub: HubServer, agency: str, roles: list[str]
) -> None:
    body = await Who(agency, tuple(roles)).ask(hub, VICTIM_PATHS)
    assert not data_errors(body), body["errors"]
    person = body["data"]["person"]
    assert person is not None
    assert person["id"] == HALVORSEN.id
    assert person["name"] is None
    assert person["aliases"] is None
    assert person["dateOfBirth"] is None
    assert person["driverLicense"] is None
    counts = withheld(body)
    assert {"Person.name", "Person.dateOfBirth", "Involvement.person"} <= set(counts)
    # through the incident: the victim's part without the victim; the suspect as any person
    incident = body["data"]["incident"]
    assert incident["offenses"] == [{"code": "11A"}]
    parts = {p["role"]: p["person"] for p in incident["involvedPersons"]}
    assert parts["VICTIM"] is None
    assert parts["SUSPECT"]["name"]["surname"] == "Mabry"
    raw = json.dumps(body)
    assert SEX_OFFENSE_VICTIM_SURNAME not in raw
    assert "Ingrid" not in raw
    assert HALVORSEN.date_of_birth is not None
    assert HALVORSEN.date_of_birth.isoformat() not in raw


async def test_sex_offence_victim_name_is_visible_to_the_owner(hub: HubServer) -> None:
    body = await Who(MARIN, ("detective",)).ask(hub, VICTIM_PATHS)
    assert "errors" not in body
    assert body["data"]["person"]["name"] == {"given": "Ingrid", "surname": "Halvorsen"}
    parts = {p["role"]: p["person"] for p in body["data"]["incident"]["involvedPersons"]}
    assert parts["VICTIM"]["id"] == HALVORSEN.id
    assert parts["VICTIM"]["name"]["surname"] == SEX_OFFENSE_VICTIM_SURNAME


async def test_search_by_a_victims_withheld_name_does_not_find_her(hub: HubServer) -> None:
    body = await Who(CASCADE, ("detective",)).ask(hub, SEARCH, {"text": "Ingrid Halvorsen"})
    assert HALVORSEN.id not in {h.get("id") for h in hits_of(body)}


async def test_victims_record_is_not_linked_to_the_sex_offence_by_any_path(
    hub: HubServer,
) -> None:
    body = await Who(CASCADE, ("detective",)).ask(
        hub,
        f'{{ person(id: "{HALVORSEN.id}") {{ id sex incidents {{ role incident {{ id '
        f"offenses {{ code }} }} }} }} }}",
    )
    incidents = body["data"]["person"]["incidents"] or []
    assert ASSAULT.id not in {i["incident"]["id"] for i in incidents if i["incident"]}


# -- no agreement: pointers ------------------------------------------------------------------


async def test_an_agency_without_an_agreement_gets_pointers_not_records(hub: HubServer) -> None:
    body = await Who(SIERRA, ("detective",)).ask(hub, SEARCH, {"text": "Reyes"})
    hits = hits_of(body)
    assert hits
    assert {h["__typename"] for h in hits} == {"RecordPointer"}
    assert {h["owner"]["ori"] for h in hits} == {MARIN, CASCADE, HARBOR}
    for hit in hits:
        agency = AGENCIES[hit["owner"]["ori"]]
        assert hit["contact"] == agency.contact
        assert hit["owner"]["name"] == agency.name
    # Found by the names the owners' pointer indexes name; not Harbor's incident report: Sierra
    # may read none of the people it involves, and a pointer is never found by a narrative.
    assert {h["kind"] for h in hits} == {"PERSON"}
    counts_add_up(body)
    raw = json.dumps(body)
    assert MARIN_REYES.id not in raw
    assert "Jordan" not in raw
    assert "errors" not in body  # a pointer withholds no field: it has none
    # a lookup by id cannot stand as a pointer: null, no error
    by_id = await Who(SIERRA, ("detective",)).ask(
        hub, f'{{ person(id: "{MARIN_REYES.id}") {{ id name {{ surname }} }} }}'
    )
    assert by_id == {**by_id, "data": {"person": None}}
    assert "errors" not in by_id
    # Harbor Falls shares persons with Marin, not incidents: Marin gets pointers to those
    marin = await Who(MARIN, ("analyst",)).ask(
        hub, SEARCH, {"text": "Reyes", "kinds": ["INCIDENT"]}
    )
    harbor = [h for h in hits_of(marin) if h["__typename"] == "RecordPointer"]
    assert harbor
    assert {(h["kind"], h["owner"]["ori"]) for h in harbor} == {("INCIDENT", HARBOR)}
    assert not [h for h in hits_of(marin, "Incident") if owner(h) == HARBOR]


# -- the auditor -------------------------------------------------------------------------------

IDENTIFIERS = {"__typename", "id", "provenance"}


def cj_values(value: Any, path: str = "") -> list[str]:
    """Paths of every non-null value of a record object other than its id and provenance."""
    found = []
    if isinstance(value, dict):
        is_record = value.get("__typename") in ("Person", "Vehicle", "Incident", "PlateRead")
        for key, v in value.items():
            if is_record and key in IDENTIFIERS:
                continue
            if is_record and v is not None:
                found.append(f"{path}.{key}")
            found += cj_values(v, f"{path}.{key}")
    elif isinstance(value, list):
        for i, v in enumerate(value):
            found += cj_values(v, f"{path}[{i}]")
    return found


@pytest.mark.parametrize("purpose", ["C", "A", "X"])
async def test_an_auditor_reads_no_criminal_justice_field(hub: HubServer, purpose: str) -> None:
    query = f"""{{
      search(text: "Reyes", limit: 200) {{ hits {{ __typename
        ... on Person {{ {PERSON} vehicles {{ __typename id vin }} incidents {{ role }} }}
        ... on Incident {{ {INCIDENT} involvedPersons {{ role }} involvedVehicles {{ id }} }}
        ... on Vehicle {{ {VEHICLE} registeredOwner {{ id }} plateReads {{ id }} }}
        ... on RecordPointer {{ kind }} }} }}
      plateReads(plate: "{REYES_PLATE.number}") {{ __typename {READ} vehicle {{ id }} }}
      person(id: "{MARIN_REYES.id}") {{ __typename {PERSON} }}
      vehicle(id: "{CAMRY.id}") {{ __typename {VEHICLE} }}
    }}"""
    body = await Who(MARIN, ("auditor",), purpose).ask(hub, query)
    assert not data_errors(body), body["errors"]
    records = [h for h in body["data"]["search"]["hits"] if h["__typename"] != "RecordPointer"]
    records += body["data"]["plateReads"] + [body["data"]["person"], body["data"]["vehicle"]]
    records = [r for r in records if r is not None]
    assert len(records) >= 2  # they see that the records exist, and which they are
    # A plate read is found by its plate, which an auditor does not read: none comes back.
    assert body["data"]["plateReads"] == []
    assert all(r["id"] and r["provenance"]["agency"]["ori"] for r in records)
    assert cj_values(body["data"]) == []
    raw = json.dumps(body["data"])
    for secret in ("Jordan", "Reyes", REYES_PLATE.number, "Toyota", MARIN_REYES.ssn or "-"):
        assert secret not in raw
    assert "Person.name" in withheld(body)


# -- traversal and lookups: each record gets its own owner's decision ---------------------------


async def test_a_record_reached_by_traversal_gets_its_own_owners_decision(
    hub: HubServer,
) -> None:
    # Cascade reads Sierra's plate read (Sierra's ALPR agreement), Marin's Camry (Marin's
    # agreement: every vehicle field) and Marin's Reyes (no SSN, address or phone leaves Marin)
    query = f"""{{ plateReads(plate: "{REYES_PLATE.number}") {{
        id camera provenance {{ agency {{ ori }} }}
        vehicle {{ id vin provenance {{ agency {{ ori }} }}
          registeredOwner {{ id ssn addresses {{ street }} name {{ surname }}
            provenance {{ agency {{ ori }} }} }} }} }} }}"""
    cascade = await Who(CASCADE, ("detective",)).ask(hub, query)
    assert not data_errors(cascade), cascade["errors"]
    reads = cascade["data"]["plateReads"]
    assert reads
    assert all(r["provenance"]["agency"]["ori"] == SIERRA for r in reads)
    assert all(r["camera"] for r in reads)
    vehicle = reads[0]["vehicle"]
    assert vehicle["id"] == CAMRY.id
    assert vehicle["vin"] == CAMRY.vin
    reyes = vehicle["registeredOwner"]
    assert reyes["id"] == MARIN_REYES.id
    assert reyes["name"] == {"surname": "Reyes"}
    assert reyes["ssn"] is None
    assert reyes["addresses"] is None
    # the same path for Marin's analyst: Marin's own record in full
    marin = await Who(MARIN, ("analyst",)).ask(hub, query)
    owners = [r["vehicle"]["registeredOwner"] for r in marin["data"]["plateReads"]]
    assert {o["ssn"] for o in owners} == {MARIN_REYES.ssn}
    # and for Sierra: its own reads in full, Marin's Camry only a pointer, so null
    sierra = await Who(SIERRA, ("detective",), "ALPR-INV").ask(hub, query)
    assert not data_errors(sierra), sierra["errors"]
    own = sierra["data"]["plateReads"]
    assert own
    assert all(r["camera"] for r in own)
    assert all(r["vehicle"] is None for r in own)


LOOKUP_SUBJECTS = [
    Who(MARIN, ("analyst",)),
    Who(MARIN, ("records",)),
    Who(MARIN, ("auditor",)),
    Who(CASCADE, ("patrol",)),
    Who(CASCADE, ("detective",), "X"),
    Who(HARBOR, ("analyst",)),
    Who(SIERRA, ("detective",)),
]
PLANTED = [
    r
    for r in RECORDS.values()
    if isinstance(r, Person)
    and r.name.surname in ("Reyes", SEALED_SURNAME, SEX_OFFENSE_VICTIM_SURNAME, "Mabry")
]


@pytest.mark.parametrize("who", LOOKUP_SUBJECTS, ids=str)
async def test_a_lookup_by_id_decides_as_a_search_hit_does(hub: HubServer, who: Who) -> None:
    """FULL: the same object by id as in search; POINTER: a pointer in search, null by id;
    INVISIBLE: absent from both. Never an error that says why."""
    policy = AccessPolicy.load(default_policy_dir(), CATALOGUE)
    ctx = RequestContext(
        subject=Subject(
            user_id="u1", name="u1", ori=who.agency, state=who.agency[:2],
            roles=frozenset(who.roles),
        ),
        purpose=who.purpose,
    )  # fmt: skip
    now = datetime.now(UTC)
    shown: dict[str, dict[str, Any]] = {}
    pointers: Counter[tuple[str, str]] = Counter()
    for text in ("Reyes", SEALED_SURNAME, SEX_OFFENSE_VICTIM_SURNAME, "Mabry"):
        body = await who.ask(hub, SEARCH, {"text": text, "kinds": ["PERSON"], "limit": 200})
        for hit in hits_of(body):
            if hit["__typename"] == "RecordPointer":
                pointers[(hit["kind"], hit["owner"]["ori"])] += 1
            else:
                shown[hit["id"]] = hit
    assert len(PLANTED) >= 8
    expected_pointers: Counter[tuple[str, str]] = Counter()
    for record in PLANTED:
        decision = policy.decide(ctx, record, now)
        visibility = decision.visibility
        assert isinstance(record, Person)
        if visibility is Visibility.FULL and not matches_readable(
            record, decision.denied_fields, record.name.surname or ""
        ):
            # Found by a name this reader may not read: search keeps quiet, the id still works.
            assert record.id not in shown
            body = await who.ask(hub, "query($id: ID!) { person(id: $id) { id } }",
                                 {"id": record.id})  # fmt: skip
            assert body["data"]["person"] == {"id": record.id}
            continue
        body = await who.ask(
            hub, f"query($id: ID!) {{ person(id: $id) {{ {PERSON} }} }}", {"id": record.id}
        )
        assert not data_errors(body), body["errors"]
        found = body["data"]["person"]
        if visibility is Visibility.FULL:
            assert record.id in shown, record.id
            hit = {k: v for k, v in shown[record.id].items() if k != "__typename"}
            assert found == hit, record.id
        else:
            assert record.id not in shown
            assert found is None, record.id
            assert "errors" not in body
            # A pointer only where the owner lets its index be searched by that name.
            if visibility is Visibility.POINTER and matches(
                record, decision.findable_fields, record.name.surname or ""
            ):
                expected_pointers[("PERSON", record.provenance.agency.ori)] += 1
    # the pointers search gave are those records', and no invisible one's
    assert pointers == expected_pointers


async def test_forbidden_field_only_for_fields_the_query_selected(hub: HubServer) -> None:
    query = f'{{ person(id: "{MARIN_REYES.id}") {{ id name {{ surname }} }} }}'
    body = await Who(CASCADE, ("patrol",)).ask(hub, query)
    assert body["data"]["person"]["name"] == {"surname": "Reyes"}
    assert "errors" not in body, [e["message"] for e in body["errors"]]
