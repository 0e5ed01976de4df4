"""No leak, whatever the query: random subjects by random documents, over real HTTP.

Subjects are drawn from the agencies, roles and purposes the policy knows; documents from the
schema itself (``tests.resolvers.strategies``): search, lookups by id, plateReads and federation
``_entities``, with random fields, aliases, inline and named fragments, unions and relationships
up to three hops deep. The oracle is the decision table itself — ``AccessPolicy.decide`` and
``decide_involvement`` on the world's canonical records — applied to every object of the
response, whatever path reached it:

- a record object is FULL for this subject; every field its decision denies reads null; every
  other field reads the canonical value (so no record's values appear under another's id);
- INVISIBLE and POINTER records never appear as objects, a POINTER only as a RecordPointer;
- relationships hold exactly the related records this subject may see, each decided on its own;
- the hits and the per-source counts of a search are exactly the visible records the sources hold
  (asked directly, through the same adapters), so invisible records change no count;
- and the raw response text holds no value of a field denied to this subject (SSNs, names,
  narratives, ids of invisible records...) unless the same value is one it may read.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
from collections import Counter, defaultdict
from collections.abc import AsyncIterator, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import cache
from typing import Any

import msgspec
import pytest
import pytest_asyncio
from graphql import get_named_type
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from bench.outsider import strings_in
from hub.access.catalogue import ROLES, TYPE_OF_KIND
from hub.access.policy import AccessPolicy, RecordDecision, Visibility, default_policy_dir
from hub.access.purposes import PURPOSES
from hub.adapters.base import SearchRequest
from hub.context import RequestContext, Subject
from hub.linkage.compare import FIELDS as LINKAGE_FIELDS
from hub.model import (
    EntityKind,
    Incident,
    Person,
    PlateRead,
    Record,
    Vehicle,
    kind_of,
    normalise_plate,
)
from resolvers.catalogue import CATALOGUE
from resolvers.present import matches
from tests.adapters.conformance import small_world
from tests.conftest import HubServer, demo_settings, serve_hub
from tests.resolvers.strategies import (
    AGENCIES,
    RECORD_TYPES,
    SCHEMA,
    Document,
    Field,
    Inline,
    Pools,
    Selection,
    documents,
)

FIELDS = CATALOGUE.fields

pytestmark = pytest.mark.asyncio(loop_scope="module")

WORLD = small_world()
POOLS = Pools.of(WORLD)
RECORDS: dict[str, Record] = {r.id: r for rs in WORLD.records.values() for r in rs}
SOURCE_OF: dict[str, str] = {r.id: name for name, rs in WORLD.records.items() for r in rs}
POLICY = AccessPolicy.load(default_policy_dir(), CATALOGUE)
RELATIONS = frozenset(
    {
        "vehicles",
        "incidents",
        "registeredOwner",
        "plateReads",
        "involvedPersons",
        "involvedVehicles",
        "vehicle",
        "person",
        "incident",
    }
)
EXAMPLES = 200


@dataclass(frozen=True)
class Served:
    """The hub, with a short repr (hypothesis prints the arguments of a failing example)."""

    hub: HubServer

    def __repr__(self) -> str:
        return f"Served({self.hub.url})"

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:
        printer.text(repr(self))


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def served(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Served]:
    settings = demo_settings(tmp_path_factory.mktemp("no-leak"))
    # hundreds of queries a minute from a few test users: lift the per-user rate limits
    resilience: Any = getattr(settings, "resilience", None)
    if resilience is not None:
        unlimited = dataclasses.replace(resilience, user_per_minute=10**7, agency_per_minute=10**7)
        settings = dataclasses.replace(settings, resilience=unlimited)
    async for server in serve_hub(settings, world=WORLD):
        yield Served(server)


# -- subjects ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Asker:
    ori: str
    roles: tuple[str, ...]
    purpose: str

    def context(self) -> RequestContext:
        subject = Subject(
            user_id="u1", name="u1", ori=self.ori, state=self.ori[:2], roles=frozenset(self.roles)
        )
        return RequestContext(subject=subject, purpose=self.purpose)


_ROLES = sorted(set(ROLES) - {"partner-hub"})
# A partner hub's account speaks for a user of its own (X-Hub-Assertion): not a subject here.
any_asker = st.builds(
    Asker,
    ori=st.sampled_from([*AGENCIES, "NY0990000"]),
    roles=st.lists(st.sampled_from(_ROLES), min_size=1, max_size=2, unique=True).map(
        lambda rs: tuple(sorted(rs))
    ),
    purpose=st.sampled_from(sorted(PURPOSES)),
)
# Users of the agencies with agreements, for criminal-justice purposes: where most is shared,
# so where most could leak.
sharing_asker = st.builds(
    Asker,
    ori=st.sampled_from(["CA0990000", "WA0990100", "OR0990200"]),
    roles=st.sampled_from(["patrol", "detective", "analyst", "dispatcher", "supervisor"]).map(
        lambda r: (r,)
    ),
    purpose=st.sampled_from(["C", "X"]),
)
askers = st.one_of(sharing_asker, any_asker)


# -- the canonical records as the schema shows them ------------------------------------------


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(w.title() for w in rest)


def _schema_shape(value: Any) -> Any:
    if isinstance(value, dict):
        return {_camel(k): _schema_shape(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_schema_shape(v) for v in value]
    return value


@cache
def canonical(hub_id: str) -> dict[str, Any]:
    """The record as GraphQL would render it in full (camelCase, the schema's field names)."""
    data = _schema_shape(msgspec.json.decode(msgspec.json.encode(RECORDS[hub_id])))
    assert isinstance(data, dict)
    if "incidentKind" in data:
        data["kind"] = data.pop("incidentKind")
    return data


def pointer_of(record: Record) -> dict[str, Any]:
    owner = record.provenance.agency
    return {
        "kind": kind_of(record).value,
        "owner": {"ori": owner.ori, "name": owner.name, "state": owner.state},
        "contact": owner.contact,
    }


def distinctive(record: Record) -> dict[str, list[str]]:
    """Values of a record that identify it or a person, by field: what must not leak."""
    out: dict[str, list[str]] = {"id": [record.id], "provenance": [record.provenance.record_id]}
    if isinstance(record, Person):
        names = [record.name, *record.aliases]
        out["name"] = [n for n in (record.name.given, record.name.surname) if n and len(n) >= 5]
        out["aliases"] = [a.surname for a in names[1:] if a.surname and len(a.surname) >= 5]
        out["dateOfBirth"] = [record.date_of_birth.isoformat()] if record.date_of_birth else []
        out["ssn"] = [record.ssn] if record.ssn else []
        out["driverLicense"] = [record.driver_license.number] if record.driver_license else []
        out["addresses"] = [a.street for a in record.addresses if a.street]
        out["phones"] = list(record.phones)
    elif isinstance(record, Vehicle):
        out["vin"] = [record.vin] if record.vin else []
        out["plate"] = [record.plate.number] if record.plate else []
    elif isinstance(record, Incident):
        out["number"] = [record.number]
        out["narrative"] = [record.narrative] if record.narrative else []
        out["location"] = (
            [record.location.address] if record.location and record.location.address else []
        )
    elif isinstance(record, PlateRead):
        out["imageUrl"] = [record.image_url] if record.image_url else []
    return out


# -- the oracle --------------------------------------------------------------------------------


class Oracle:
    """The decision table's answer for one subject, for every record of the world."""

    def __init__(self, asker: Asker) -> None:
        self.asker = asker
        self.ctx = asker.context()
        self.now = datetime.now(UTC)
        self._decisions: dict[str, RecordDecision] = {}
        self._exposure: tuple[tuple[str, ...], str] | None = None

    def decision(self, record: Record) -> RecordDecision:
        found = self._decisions.get(record.id)
        if found is None:
            found = self._decisions[record.id] = POLICY.decide(self.ctx, record, self.now)
        return found

    def full(self, hub_id: str) -> bool:
        record = RECORDS.get(hub_id)
        return record is not None and self.decision(record).visibility is Visibility.FULL

    def exposure(self) -> tuple[tuple[str, ...], str]:
        """(values that must not appear, the text of everything this subject may read)."""
        if self._exposure is None:
            self._exposure = self._expose()
        return self._exposure

    def _expose(self) -> tuple[tuple[str, ...], str]:
        secrets: list[str] = []
        allowed: list[str] = []
        for record in RECORDS.values():
            decision = self.decision(record)
            values = distinctive(record)
            if decision.visibility is Visibility.FULL:
                data = canonical(record.id)
                for name in FIELDS[TYPE_OF_KIND[kind_of(record)]]:
                    if name in decision.denied_fields:
                        secrets.extend(values.get(name, []))
                    else:
                        allowed.extend(strings_in(data.get(name)))
                        allowed.extend(values.get(name, []))
            else:
                secrets.extend(v for vs in values.values() for v in vs)
        for agency in WORLD.agencies:
            allowed.extend([agency.ori, agency.name, agency.contact])
        return tuple(dict.fromkeys(secrets)), "\x00".join(allowed)


_ORACLES: dict[Asker, Oracle] = {}


def oracle_for(asker: Asker) -> Oracle:
    if asker not in _ORACLES:
        _ORACLES[asker] = Oracle(asker)
    return _ORACLES[asker]


@dataclass
class Seen:
    """What the walk met in the response."""

    full: dict[str, set[str]] = field(default_factory=lambda: defaultdict(set))  # source -> ids
    denied: dict[str, set[str]] = field(default_factory=lambda: defaultdict(set))  # T.f -> ids


class Walk:
    """Checks one response against the oracle, object by object, following the document."""

    def __init__(self, doc: Document, oracle: Oracle) -> None:
        self.doc = doc
        self.oracle = oracle
        self.seen = Seen()

    # -- plain values ----------------------------------------------------------------------

    def project(self, expected: Any, selection: Sequence[Selection], type_name: str) -> Any:
        """``expected`` (schema-shaped JSON) as the response shows it under ``selection``."""
        if expected is None:
            return None
        if isinstance(expected, list):
            return [self.project(e, selection, type_name) for e in expected]
        gtype: Any = SCHEMA.type_map[type_name]
        if not selection:
            if type_name == "DateTime":
                return datetime.fromisoformat(expected).isoformat()
            return expected
        out = {}
        for key, (name, sub) in self.doc.fields_of(selection, type_name).items():
            if name == "__typename":
                out[key] = type_name
                continue
            named = get_named_type(gtype.fields[name].type)
            out[key] = self.project(expected.get(name), sub, named.name)
        return out

    # -- records ---------------------------------------------------------------------------

    def record(self, type_name: str, selection: Sequence[Selection], value: Any, path: str) -> str:
        """Check one record object; its hub id."""
        assert isinstance(value, dict), f"{path}: {type_name} is not an object: {value!r}"
        fields = self.doc.fields_of(selection, type_name)
        id_key = next(k for k, (n, _) in fields.items() if n == "id")
        hub_id = str(value[id_key])
        record = RECORDS.get(hub_id)
        assert record is not None, f"{path}: {type_name} with an id no source holds: {hub_id}"
        assert TYPE_OF_KIND[kind_of(record)] == type_name, f"{path}: {hub_id} is not a {type_name}"
        decision = self.oracle.decision(record)
        assert decision.visibility is Visibility.FULL, (
            f"{path}: {type_name} {hub_id} rendered, but it is {decision.visibility} to "
            f"{self.oracle.asker} ({decision.rules})"
        )
        self.seen.full[SOURCE_OF[hub_id]].add(hub_id)
        gtype: Any = SCHEMA.type_map[type_name]
        data = canonical(hub_id)
        for key, (name, sub) in fields.items():
            got = value[key]
            where = f"{path}.{key}"
            if name == "__typename":
                assert got == type_name, where
                continue
            if name in decision.denied_fields:
                assert got is None, (
                    f"{where}: {type_name}.{name} is denied to {self.oracle.asker} "
                    f"({decision.rules}) but read {got!r}"
                )
                self.seen.denied[f"{type_name}.{name}"].add(hub_id)
                continue
            if name in RELATIONS:
                self.relation(record, name, sub, got, where)
                continue
            named = get_named_type(gtype.fields[name].type)
            want = self.project(data.get(name), sub, named.name)
            if name == "provenance":
                # retrievedAt is when the adapter fetched it, not part of the record
                want, got = _without(want, got, sub, self.doc)
            assert got == want, f"{where}: {got!r} is not the record's {name} {want!r}"
        return hub_id

    def records(
        self,
        type_name: str,
        selection: Sequence[Selection],
        value: Any,
        expected: Sequence[str],
        path: str,
    ) -> None:
        assert isinstance(value, list), f"{path}: {value!r}"
        got = [self.record(type_name, selection, v, f"{path}[{i}]") for i, v in enumerate(value)]
        assert got == list(expected), f"{path}: got {got}, the visible related records {expected}"

    def relation(
        self, record: Record, name: str, selection: Sequence[Selection], got: Any, path: str
    ) -> None:
        full = self.oracle.full
        if isinstance(record, Person) and name == "vehicles":
            ids = [i for i in record.vehicle_ids if full(i)]
            self.records("Vehicle", selection, got, ids, path)
        elif isinstance(record, Incident) and name == "involvedVehicles":
            ids = [i for i in record.involved_vehicle_ids if full(i)]
            self.records("Vehicle", selection, got, ids, path)
        elif isinstance(record, Vehicle) and name == "registeredOwner":
            owner = record.registered_owner_id
            if owner is None or not full(owner):
                assert got is None, f"{path}: an owner this subject may not see: {got!r}"
            else:
                assert self.record("Person", selection, got, path) == owner, path
        elif isinstance(record, Vehicle) and name == "plateReads":
            if record.plate is None:
                assert got is None, path
                return
            reads = [
                r
                for r in RECORDS.values()
                if isinstance(r, PlateRead) and r.plate == record.plate and full(r.id)
            ]
            assert isinstance(got, list), f"{path}: {got!r}"
            ids = [
                self.record("PlateRead", selection, v, f"{path}[{i}]") for i, v in enumerate(got)
            ]
            assert sorted(ids) == sorted(r.id for r in reads), f"{path}: {ids}"
            times = [RECORDS[i].read_at for i in ids]  # type: ignore[union-attr]
            assert times == sorted(times, reverse=True), f"{path}: not newest first"
        elif isinstance(record, PlateRead) and name == "vehicle":
            candidates = {
                v.id
                for v in RECORDS.values()
                if isinstance(v, Vehicle) and v.plate == record.plate and full(v.id)
            }
            if not candidates:
                assert got is None, f"{path}: a vehicle this subject may not see: {got!r}"
            else:
                assert got is not None, f"{path}: the vehicle is visible ({candidates})"
                assert self.record("Vehicle", selection, got, path) in candidates, path
        elif isinstance(record, Person) and name == "incidents":
            self.involvements(record, "incident", selection, got, path)
        elif isinstance(record, Incident) and name == "involvedPersons":
            self.involvements(record, "person", selection, got, path)
        else:
            raise AssertionError(f"{path}: no oracle for {type(record).__name__}.{name}")

    def involvements(
        self, record: Person | Incident, side: str, selection: Sequence[Selection], got: Any,
        path: str,
    ) -> None:  # fmt: skip
        ctx = self.oracle.ctx
        expected = []
        for ref in record.involvements:
            other_id, own_id = (
                (ref.incident_id, ref.person_id) if side == "incident"
                else (ref.person_id, ref.incident_id)
            )  # fmt: skip
            other, mine = RECORDS.get(other_id), RECORDS.get(own_id)
            holder = other or mine
            if holder is None:
                continue
            verdict = POLICY.decide_involvement(ctx, holder.provenance.agency, ref)
            if verdict.visibility is not Visibility.FULL or not self.oracle.full(other_id):
                continue
            if side == "incident" and "person" in verdict.denied_fields:
                continue  # under the person's own record it would link them to the incident
            expected.append((ref, verdict))
        assert isinstance(got, list), f"{path}: {got!r}"
        assert len(got) == len(expected), (
            f"{path}: {len(got)} involvements, {len(expected)} visible"
        )
        for i, (item, (ref, verdict)) in enumerate(zip(got, expected, strict=True)):
            fields = self.doc.fields_of(selection, "Involvement")
            for key, (name, sub) in fields.items():
                value, where = item[key], f"{path}[{i}].{key}"
                if name == "__typename":
                    assert value == "Involvement", where
                elif name in verdict.denied_fields:
                    assert value is None, f"{where}: Involvement.{name} denied ({verdict.rules})"
                    self.seen.denied[f"Involvement.{name}"].add(
                        f"{ref.person_id}/{ref.incident_id}"
                    )
                elif name == "role":
                    assert value == ref.role, where
                elif name == "person":
                    assert self.record("Person", sub, value, where) == ref.person_id, where
                elif name == "incident":
                    assert self.record("Incident", sub, value, where) == ref.incident_id, where

    # -- unions ----------------------------------------------------------------------------

    def member(self, union: str, selection: Sequence[Selection], value: Any, path: str) -> str:
        """The concrete type of a union member object, read from its ``__typename``."""
        assert isinstance(value, dict), f"{path}: {value!r}"
        for member in SCHEMA.type_map[union].types:  # type: ignore[attr-defined]
            for key, (name, _) in self.doc.fields_of(selection, member.name).items():
                if name == "__typename" and value.get(key) == member.name:
                    return str(member.name)
        raise AssertionError(f"{path}: no __typename in {value!r}")

    def signature(
        self, union: str, selection: Sequence[Selection], value: Any, path: str
    ) -> tuple[str, str]:
        """Check one hit; what identifies it: a record id, or a pointer as the response shows it."""
        type_name = self.member(union, selection, value, path)
        fields = self.doc.fields_of(selection, type_name)
        if type_name == "RecordPointer":
            return ("pointer", json.dumps(value, sort_keys=True))
        if not any(n == "id" for n, _ in fields.values()):
            return ("unselected", type_name)
        return ("id", self.record(type_name, selection, value, path))

    def expected_signature(
        self, union: str, selection: Sequence[Selection], record: Record
    ) -> tuple[str, str]:
        decision = self.oracle.decision(record)
        type_name = TYPE_OF_KIND[kind_of(record)]
        if decision.visibility is Visibility.POINTER:
            shown = self.project(pointer_of(record), selection, "RecordPointer")
            return ("pointer", json.dumps(shown, sort_keys=True))
        if not any(n == "id" for n, _ in self.doc.fields_of(selection, type_name).values()):
            return ("unselected", type_name)
        return ("id", record.id)

    # -- root fields -----------------------------------------------------------------------

    def search(self, root: Field, value: Any, raw: dict[str, list[Record] | None]) -> None:
        path = root.key
        limit = root.args.get("limit", 50)
        text = root.args["text"].strip()
        visible = {
            name: [r for r in records if shown_as_hit(self.oracle, r, text)]
            for name, records in raw.items()
            if records is not None
        }
        total = sum(len(v) for v in visible.values())
        fields = self.doc.fields_of(root.selection, "SearchResult")
        hits: list[Any] = []
        for key, (name, sub) in fields.items():
            if name == "hits":
                hits = value[key]
                got = Counter(
                    self.signature("SearchHit", sub, h, f"{path}.{key}[{i}]")
                    for i, h in enumerate(hits)
                )
                want = Counter(
                    self.expected_signature("SearchHit", sub, r)
                    for rs in visible.values()
                    for r in rs
                )
                if total <= limit:
                    assert got == want, f"{path}: hits {got} are not the visible records {want}"
                else:
                    assert sum(got.values()) == limit, f"{path}: {len(hits)} hits, limit {limit}"
                    assert not got - want, f"{path}: hits not visible: {got - want}"
        for key, (name, sub) in fields.items():
            if name == "subjects":
                self.subjects(value[key], sub, visible, f"{path}.{key}")
        for key, (name, sub) in fields.items():
            if name == "sources":
                self.sources(value[key], sub, raw, visible, total <= limit, f"{path}.{key}")
                counts = [s for s in self.doc.fields_of(sub, "SourceStatus").items()]
                count_key = next((k for k, (n, _) in counts if n == "count"), None)
                if count_key is not None and "hits" in {n for n, _ in fields.values()}:
                    assert sum(s[count_key] for s in value[key]) == len(hits), path

    def subjects(
        self,
        value: Any,
        selection: Sequence[Selection],
        visible: dict[str, list[Record]],
        path: str,
    ) -> None:
        """Every member a Person the subject may read in full, among the hits it may see; every
        piece of evidence on fields it may read of both records compared."""
        shown = {r.id for rs in visible.values() for r in rs}
        assert isinstance(value, list), path
        members_seen: set[str] = set()
        for i, subject in enumerate(value):
            for j, member in enumerate(subject["members"]):
                where = f"{path}[{i}].members[{j}]"
                person = self.doc.fields_of(selection, "Subject")
                (members_sel,) = [sub for n, sub in person.values() if n == "members"]
                (person_sel,) = [
                    sub for n, sub in self.doc.fields_of(members_sel, "SubjectMember").values()
                    if n == "person"
                ]  # fmt: skip
                hub_id = self.record("Person", person_sel, member["person"], f"{where}.person")
                assert hub_id in shown, f"{where}: {hub_id} is not a hit this subject may see"
                assert hub_id not in members_seen, f"{where}: {hub_id} in two subjects"
                members_seen.add(hub_id)
                other = member["linkedTo"]
                if other is None:
                    assert member["evidence"] == [], where
                    continue
                readable = self.oracle.decision(RECORDS[hub_id]).readable_fields
                readable &= self.oracle.decision(RECORDS[other]).readable_fields
                for e in member["evidence"]:
                    needs = set(LINKAGE_FIELDS[e["feature"]])
                    if e["feature"] in ("given", "surname"):
                        needs = {"name"} if "name" in readable else {"aliases"}
                    assert needs <= readable, (
                        f"{where}: evidence on {e['feature']}, which {self.oracle.asker} may "
                        f"not read of both {hub_id} and {other}"
                    )

    def sources(
        self,
        value: Any,
        selection: Sequence[Selection],
        raw: dict[str, list[Record] | None],
        visible: dict[str, list[Record]],
        exact: bool,
        path: str,
    ) -> None:
        fields = self.doc.fields_of(selection, "SourceStatus")
        keys = {n: k for k, (n, _) in fields.items()}
        names = list(raw)
        assert len(value) == len(names), path
        for name, entry in zip(names, value, strict=True):
            if "source" in keys:
                assert entry[keys["source"]] == name, path
            count = entry.get(keys.get("count", ""), None)
            status = entry.get(keys.get("status", ""), None)
            if raw[name] is None:  # not asked: agency not asked or no kind it holds
                assert status in (None, "SKIPPED"), f"{path}: {name} {status}"
                assert count in (None, 0), f"{path}: {name} {count}"
                continue
            if count is not None:
                if exact:
                    assert count == len(visible[name]), (
                        f"{path}: {name} counts {count}, {len(visible[name])} visible"
                    )
                else:
                    assert count <= len(visible[name]), f"{path}: {name} over-counts"
            if status is not None and count is not None:
                if count:
                    assert status == "OK", f"{path}: {name} {status} with {count} hits"
                else:
                    assert status in ("NO_HIT", "DENIED", "SKIPPED"), f"{path}: {name} {status}"

    def lookup(self, root: Field, value: Any) -> None:
        type_name = {"person": "Person", "vehicle": "Vehicle", "incident": "Incident"}[root.name]
        hub_id = root.args["id"]
        if self.oracle.full(hub_id):
            assert value is not None, f"{root.key}: {hub_id} is visible but read null"
            assert self.record(type_name, root.selection, value, root.key) == hub_id
        else:
            assert value is None, f"{root.key}: {hub_id} is not FULL to this subject: {value!r}"

    def plate_reads(self, root: Field, value: Any, raw: dict[str, list[Record] | None]) -> None:
        limit = root.args.get("limit", 100)
        reads = [r for rs in raw.values() if rs for r in rs if isinstance(r, PlateRead)]
        reads.sort(key=lambda r: (r.read_at, r.id), reverse=True)
        # found by its plate: only reads whose plate this reader may read
        want = [
            r.id
            for r in reads
            if self.oracle.full(r.id) and "plate" in self.oracle.decision(r).readable_fields
        ][:limit]
        self.records("PlateRead", root.selection, value, want, root.key)

    def entities(self, root: Field, value: Any) -> None:
        reps = self.doc.variables[root.args["representations"].name]
        assert isinstance(value, list)
        assert len(value) == len(reps), root.key
        for i, (rep, got) in enumerate(zip(reps, value, strict=True)):
            where = f"{root.key}[{i}]"
            if self.oracle.full(rep["id"]):
                assert got is not None, f"{where}: {rep['id']} is visible but read null"
                assert self.member("_Entity", root.selection, got, where) == rep["__typename"]
                if any(
                    n == "id"
                    for n, _ in self.doc.fields_of(root.selection, rep["__typename"]).values()
                ):
                    assert self.record(rep["__typename"], root.selection, got, where) == rep["id"]
            else:
                assert got is None, f"{where}: {rep['id']} is not FULL to this subject: {got!r}"


def _without(want: Any, got: Any, selection: Sequence[Selection], doc: Document) -> tuple[Any, Any]:
    if not isinstance(want, dict) or not isinstance(got, dict):
        return want, got
    drop = {k for k, (n, _) in doc.fields_of(selection, "Provenance").items() if n == "retrievedAt"}
    return (
        {k: v for k, v in want.items() if k not in drop},
        {k: v for k, v in got.items() if k not in drop},
    )


# -- asking the sources directly, past the gate ------------------------------------------------


async def raw_search(hub: HubServer, args: dict[str, Any]) -> dict[str, list[Record] | None]:
    """What every source holds for this search (None: the hub does not ask it)."""
    kinds = frozenset(EntityKind(k.value) for k in args.get("kinds", [])) or frozenset(EntityKind)
    request = SearchRequest(kinds=kinds, text=args["text"].strip(), limit=args.get("limit", 50))
    agencies = args.get("agencies")
    adapters = hub.runtime.services.adapters
    asked = [
        a
        for a in adapters
        if a.answers(request) and (not agencies or a.config.agency.ori in agencies)
    ]
    answers = await asyncio.gather(*(a.search(request) for a in asked))
    found = {a.name: records for a, records in zip(asked, answers, strict=True)}
    return {a.name: found.get(a.name) for a in adapters}


async def raw_plate_reads(hub: HubServer, args: dict[str, Any]) -> dict[str, list[Record] | None]:
    request = SearchRequest(
        kinds=frozenset({EntityKind.PLATE_READ}),
        plates=(normalise_plate(args["plate"]),),
        plate_state=args["state"].upper() if "state" in args else None,
        limit=args.get("limit", 100),
    )
    asked = [a for a in hub.runtime.services.adapters if a.answers(request)]
    answers = await asyncio.gather(*(a.search(request) for a in asked))
    return {a.name: records for a, records in zip(asked, answers, strict=True)}


def _uses_relations(doc: Document) -> bool:
    inner = [f for root in doc.root for f in _fields(root.selection)]
    inner += [f for _, sel in doc.fragments.values() for f in _fields(sel)]
    return any(f.name in RELATIONS for f in inner)


def _fields(selection: Sequence[Selection]) -> Iterable[Field]:
    for sel in selection:
        if isinstance(sel, Field):
            yield sel
            yield from _fields(sel.selection)
        elif isinstance(sel, Inline):
            yield from _fields(sel.selection)


# -- the property ------------------------------------------------------------------------------


def involved_names(oracle: Oracle, record: Record) -> list[str]:
    """The names of the people an incident involves that this reader may read (the involvement
    shown, the person's record and name readable): a search may find the incident by them."""
    decision = oracle.decision(record)
    if not isinstance(record, Incident) or "involvedPersons" not in decision.searchable_fields:
        return []
    names = []
    for ref in record.involvements:
        person = RECORDS.get(ref.person_id)
        if not isinstance(person, Person):
            continue
        part = POLICY.decide_involvement(oracle.ctx, record.provenance.agency, ref)
        if part.visibility is not Visibility.FULL or "person" in part.denied_fields:
            continue
        readable = oracle.decision(person).readable_fields
        people = ([person.name] if "name" in readable else []) + (
            list(person.aliases) if "aliases" in readable else []
        )
        names += [" ".join(x for x in (n.given, n.middle, n.surname, n.suffix) if x)
                  for n in people]  # fmt: skip
    return names


def shown_as_hit(oracle: Oracle, record: Record, text: str) -> bool:
    """A search hit is shown, in full or as a pointer, only when it matches the search on what
    this reader may search: the fields it may read, or for a pointer the fields its owner's
    pointer index names (a match only in withheld fields would confirm their content)."""
    decision = oracle.decision(record)
    if decision.visibility is Visibility.INVISIBLE:
        return False
    return matches(record, decision.searchable_fields, text, involved_names(oracle, record))


async def check_no_leak(hub: HubServer, asker: Asker, doc: Document) -> None:
    oracle = oracle_for(asker)
    text = doc.render()
    raws: dict[str, dict[str, list[Record] | None]] = {}
    for root in doc.root:
        if root.name == "search":
            raws[root.key] = await raw_search(hub, root.args)
        elif root.name == "plateReads":
            raws[root.key] = await raw_plate_reads(hub, root.args)
    body = await hub.query(
        text, doc.variables or None, agency=asker.ori, roles=asker.roles, purpose=asker.purpose
    )
    errors = body.get("errors") or []
    others = [e for e in errors if e["extensions"]["code"] != "FORBIDDEN_FIELD"]
    assert not others, f"{asker}\n{text}\n{others}"
    data = body["data"]
    walk = Walk(doc, oracle)
    for root in doc.root:
        value = data[root.key]
        if root.name == "search":
            walk.search(root, value, raws[root.key])
        elif root.name == "plateReads":
            walk.plate_reads(root, value, raws[root.key])
        elif root.name == "_entities":
            walk.entities(root, value)
        else:
            walk.lookup(root, value)

    rendered = sum(len(ids) for ids in walk.seen.full.values())
    event("records rendered: " + ("none" if not rendered else "1-5" if rendered <= 5 else "6+"))
    event("denied fields met" if walk.seen.denied else "no denied field met")
    event("pointer hit" if '"RecordPointer"' in json.dumps(data) else "no pointer")

    # One FORBIDDEN_FIELD per Type.field, counting records, never more than can be withheld.
    withheld = Counter(e["extensions"]["field"] for e in errors)
    assert all(n == 1 for n in withheld.values()), f"{asker}: repeated errors {withheld}"
    counts = {e["extensions"]["field"]: e["extensions"]["withheld"] for e in errors}
    for key, ids in walk.seen.denied.items():
        assert key in counts, f"{asker}: {key} read null with no FORBIDDEN_FIELD error"
        if not key.startswith("Involvement."):
            assert counts[key] >= len(ids), f"{asker}: {key} withheld {counts[key]} < {len(ids)}"
    for key, count in counts.items():
        type_name, _, name = key.partition(".")
        if type_name in RECORD_TYPES:
            could = sum(
                1
                for r in RECORDS.values()
                if TYPE_OF_KIND[kind_of(r)] == type_name
                and oracle.decision(r).visibility is Visibility.FULL
                and name in oracle.decision(r).denied_fields
            )
            assert count <= could, f"{asker}: {key} withheld {count}, only {could} could be"

    # extensions.sources counts visible records only
    ext = {s["source"]: s for s in body["extensions"]["sources"]}
    for source, entry in ext.items():
        reachable = sum(
            1
            for r in WORLD.records[source]
            if oracle.decision(r).visibility is not Visibility.INVISIBLE
        )
        assert len(walk.seen.full[source]) <= entry["count"] <= reachable, f"{asker}: {entry}"
        if entry["status"] in ("OK", "NO_HIT"):
            assert (entry["status"] == "OK") == (entry["count"] > 0), entry
    if len(doc.root) == 1 and not _uses_relations(doc) and doc.root[0].name == "search":
        root = doc.root[0]
        text = root.args["text"].strip()
        visible = {
            name: sum(1 for r in rs if shown_as_hit(oracle, r, text))
            for name, rs in raws[root.key].items()
            if rs is not None
        }
        if sum(visible.values()) <= root.args.get("limit", 50):
            for source, n in visible.items():
                counted = ext[source]["count"] if source in ext else 0
                assert counted == n, f"{asker}: {source} counts {counted}, {n} visible"

    # Nothing denied leaks through any other path of the response.
    secrets, allowed = oracle.exposure()
    raw = "\x00".join(strings_in(body))
    asked = f"{text}\x00{json.dumps(doc.variables)}"
    leaked = [s for s in secrets if s in raw and s not in allowed and s not in asked]
    assert not leaked, f"{asker}: denied values in the response: {leaked}\n{text}"


PROPERTY = settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


@PROPERTY
@given(asker=askers, doc=documents(POOLS))
async def test_no_value_the_policy_denies_appears_anywhere(
    served: Served, asker: Asker, doc: Document
) -> None:
    await check_no_leak(served.hub, asker, doc)


@PROPERTY
@given(asker=askers, doc=documents(POOLS.planted()))
async def test_no_leak_on_the_planted_examples_and_their_relationships(
    served: Served, asker: Asker, doc: Document
) -> None:
    """The sealed record, the victim of a sex offence, Reyes across agencies: the cases the
    demo policy is about, reached by every path the schema offers."""
    await check_no_leak(served.hub, asker, doc)
