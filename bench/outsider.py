"""The outsider: an attacker model of what the hub may leak, and the differential check that
catches a leak whatever path it takes (issue 10 §5).

An outsider may not read what an owner withheld from them, but may try to learn it by asking: a
sex-offence victim's surname, a word of another agency's narrative, a plate only an in-state-only
camera read, the id of a sealed record. The hub keeps its promise when nothing in its answer
depends on whether that value exists. So every case asks twice, changing only the value: once
with a *secret* (a value that only withheld fields or invisible records hold, for this subject)
and once with its *twin* (a random value of the same shape that no vendor holds). The two answers
must be identical: status code, hits, pointers, per-source counts and statuses, hit order, errors
with their messages, codes and paths, extensions; only what varies per request anyway
(``latencyMs``, ``cached``, request and trace ids) is set aside.

Two paths compare two worlds instead of two values: the same question asked of the demo world and
of its *twin world* for this subject, where every record invisible to the subject is gone, every
link to a record it may not read in full is cut, and every field it may neither read nor search
is scrambled (same shape, other characters).
Hit order, counts and relationships must not change: that is how an order computed on a withheld
narrative, or a relationship that betrays a hidden record, is caught.

Choosing the secret is the heart of it. A value is secret for a subject when no record of the
world that the subject can see matches it on the fields it may search: the readable fields of a
FULL record, the owner's pointer index of a POINTER one (``RecordDecision.searchable_fields``),
by the hub's own matching (``resolvers.present.matches``). A subject of an agency no policy names
sees nothing: every value is secret to it. A case where the vendors hold nothing for the secret
proves nothing and is discarded (and counted), as is one whose twin some vendor does hold.

One path streams (``searchStream`` over a WebSocket, as a browser would): each source's payload
is compared in an order of its own, since sources answer in any order, and the last payload
(every source's status) as it is.

Two paths go through live results (they need the hub's Redis): a watch on the secret and one on
its twin, each by a user of its own, then a vendor's notice of every record holding the secret;
the answers to ``watch`` and the two inboxes must be identical (a watch matches only on what its
watcher may read and delivers only what it may see). And a watch on a person by id, which
answers alike for a record one may not read and one that does not exist.

Cases are drawn through a ``Chooser``: hypothesis's ``data.draw`` in the test suite
(``tests/resolvers/test_outsider.py``), a seeded ``random.Random`` in ``hub bench leaks``.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import hashlib
import itertools
import json
import random
import string
from collections import Counter, defaultdict
from collections.abc import AsyncIterator, Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Literal, Protocol, TypeVar

import aiohttp
import msgspec
from rapidfuzz import fuzz, process

from hub.access.catalogue import ROLES
from hub.access.policy import AccessPolicy, RecordDecision, Visibility
from hub.access.purposes import PURPOSES
from hub.adapters.base import Adapter, SearchRequest
from hub.context import RequestContext, Subject
from hub.demo.index import RecordIndex
from hub.demo.simulator import Simulator
from hub.demo.world import REYES_PLATE, SEALED_SURNAME, SEX_OFFENSE_VICTIM_SURNAME, World
from hub.edge.runtime import Runtime
from hub.errors import InvalidId
from hub.live import Live
from hub.live.model import Target
from hub.live.service import WATCH_KINDS
from hub.model import (
    EntityKind,
    Incident,
    LegalTag,
    Person,
    PersonName,
    PlateRead,
    Record,
    RecordRef,
    Vehicle,
    kind_of,
    make_id,
    normalise_plate,
    parse_id,
)
from hub.trust.identity import load_or_create_demo_key, mint_token
from resolvers.catalogue import load_policy
from resolvers.present import matches, words

_T = TypeVar("_T")

# A token whose agency no policy names: it must learn nothing (the hub refuses it outright).
UNKNOWN_AGENCY = "TX0000000"
# An agency the policy knows that holds no record of the demo world (the east region's).
REMOTE_AGENCY = "NY0990000"
CASE_NUMBER = "26-000999"
# Questions policy forbids one agency's systems to answer, by that agency: (the agencies whose
# users ask, their roles, the purpose, what they ask by, the value). The auditor of the denied
# agency must not learn of them (its systems were never asked; nothing of it came back).
AUDITED_DENIALS: dict[str, tuple[tuple[str, ...], tuple[str, ...], str, Probe, str]] = {
    # Marin's plate reads are in-state-only (legal-tags.csv law.alpr.in-state-only).
    "CA0990000": (("WA0990100", "OR0990200", "NV0990000"), ("detective",), "ALPR-INV",
                  "plate", REYES_PLATE.number),
    # Harbor Falls' records serve no out-of-state firearms check (owner-rules.csv).
    "OR0990200": (("CA0990000", "WA0990100", "NV0990000"), ("records",), "F", "text", "Reyes"),
}  # fmt: skip
# What differs between two requests whatever they ask: never evidence of a leak.
VARYING = frozenset({"latencyMs", "cached", "requestId", "traceId"})
# Draws of a value for one subject before the case is given up as "no secret for this subject".
ATTEMPTS = 24
# Planted people of the demo world (hub.demo.world): the cases the policy is about.
PLANTED_SURNAMES = frozenset({"Reyes", SEALED_SURNAME, SEX_OFFENSE_VICTIM_SURNAME, "Mabry"})


# -- subjects ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Asker:
    """A subject: a user of agency ``ori`` holding ``roles``, stating ``purpose``."""

    ori: str
    roles: tuple[str, ...]
    purpose: str

    def context(self) -> RequestContext:
        subject = Subject(
            user_id="outsider",
            name="outsider",
            ori=self.ori,
            state=self.ori[:2],
            roles=frozenset(self.roles),
        )
        return RequestContext(subject=subject, purpose=self.purpose)

    def __str__(self) -> str:
        return f"{self.ori} {'+'.join(self.roles)} (purpose {self.purpose})"


# A partner hub's account speaks for a user of its own (X-Hub-Assertion): not a subject here.
ASKER_ROLES: tuple[str, ...] = tuple(sorted(set(ROLES) - {"partner-hub"}))
ASKER_PURPOSES: tuple[str, ...] = tuple(sorted(PURPOSES))
# Where most is shared, so where most could leak (as test_no_leak's sharing_asker).
SHARING_ORIS = ("CA0990000", "WA0990100", "OR0990200")
SHARING_ROLES = ("patrol", "detective", "analyst", "dispatcher", "supervisor")


class Chooser(Protocol):
    """Where a case's choices come from (hypothesis in tests, a seeded Random in the bench)."""

    def pick(self, options: Sequence[_T]) -> _T: ...

    def chance(self, one_in: int) -> bool: ...

    def seed(self) -> int: ...


@dataclass(slots=True)
class RandomChooser:
    rng: random.Random

    def pick(self, options: Sequence[_T]) -> _T:
        return options[self.rng.randrange(len(options))]

    def chance(self, one_in: int) -> bool:
        return self.rng.randrange(one_in) == one_in - 1

    def seed(self) -> int:
        return self.rng.randrange(2**32)


# -- what an outsider may try ------------------------------------------------------------------


class Path(enum.StrEnum):
    """How the value reaches the hub."""

    SEARCH = "search, literal"
    SEARCH_VARIABLES = "search, $text"
    SEARCH_KINDS = "search, kinds and limit"
    SEARCH_ALIASES = "search, aliases"
    SEARCH_FRAGMENTS = "search, fragments"
    SEARCH_DIRECTIVES = "search, @include/@skip"
    SEARCH_PERSISTED = "search, APQ hash + $text"
    SEARCH_PERSISTED_LITERAL = "search, APQ literal"
    STREAM = "searchStream over a WebSocket"
    PLATE_READS = "plateReads"
    LOOKUP = "lookup by id, literal"
    LOOKUP_VARIABLES = "lookup by id, $id"
    ENTITIES = "_entities"
    ENTITIES_BESIDE = "_entities beside a visible record"
    RANKING = "search, hidden content changed"
    RELATIONS = "relationships, hidden records removed"
    AUDIT = "auditEvents, another agency's question"
    WATCH = "watch text, then notices of the records holding it"
    WATCH_PERSON = "watch a person by id"


Probe = Literal["text", "plate", "id"]
PROBE_OF: dict[Path, Probe] = {
    Path.SEARCH: "text",
    Path.SEARCH_VARIABLES: "text",
    Path.SEARCH_KINDS: "text",
    Path.SEARCH_ALIASES: "text",
    Path.SEARCH_FRAGMENTS: "text",
    Path.SEARCH_DIRECTIVES: "text",
    Path.SEARCH_PERSISTED: "text",
    Path.SEARCH_PERSISTED_LITERAL: "text",
    Path.STREAM: "text",
    Path.PLATE_READS: "plate",
    Path.LOOKUP: "id",
    Path.LOOKUP_VARIABLES: "id",
    Path.ENTITIES: "id",
    Path.ENTITIES_BESIDE: "id",
    Path.RANKING: "text",
    Path.WATCH: "text",
    Path.WATCH_PERSON: "id",
}
# Compared across two worlds (the simulators' records are swapped in-process for the twin).
WORLD_PATHS = frozenset({Path.RANKING, Path.RELATIONS})
# Live results (hub.live): they need the hub's Redis; without it, their cases are discarded.
LIVE_PATHS = frozenset({Path.WATCH, Path.WATCH_PERSON})
# Records a WATCH case's vendors send a notice of, at most.
MAX_NOTICED = 20
PATHS: tuple[Path, ...] = tuple(Path)


@dataclass(frozen=True, slots=True)
class Clue:
    """A value an outsider may ask about, and the record it was taken from."""

    value: str
    channel: str  # what it is: "victim-name", "narrative", "in-state-plate", "sealed-person-id"...
    probe: Probe
    kinds: frozenset[EntityKind]  # the kinds of record that hold it
    holder: str = ""  # hub id of a record holding it ("" for a value named by hand)


@dataclass(frozen=True, slots=True)
class Case:
    asker: Asker
    path: Path
    clue: Clue | None  # None: no secret found for this subject (discarded), or RELATIONS
    seed: int  # the twin's randomness
    variant: int = 0  # small choices of the document (limit, order of representations)
    companion: str | None = None  # a visible record: beside the secret, or RELATIONS' parent

    def describe(self) -> str:
        what = "" if self.clue is None else f" {self.clue.channel} {self.clue.value!r}"
        beside = "" if self.companion is None else f" (record {self.companion})"
        return f"{self.asker}: {self.path.value}{what}{beside}"


Verdict = Literal["same", "leak", "discarded"]


@dataclass(frozen=True, slots=True)
class Outcome:
    case: Case
    verdict: Verdict
    detail: str = ""  # why discarded, or where the two answers differ
    twin: str = ""

    def describe(self) -> str:
        twin = f" vs twin {self.twin!r}" if self.twin else ""
        return f"{self.verdict}: {self.case.describe()}{twin}: {self.detail}"


@dataclass(slots=True)
class Tally:
    """Cases by path and verdict, discards by reason, and the first leak of each kind."""

    run: Counter[str] = field(default_factory=Counter)  # path -> cases compared
    leaks: Counter[str] = field(default_factory=Counter)  # path -> cases that differed
    discarded: Counter[str] = field(default_factory=Counter)  # path -> cases discarded
    reasons: Counter[str] = field(default_factory=Counter)  # why discarded
    channels: Counter[str] = field(default_factory=Counter)  # channel -> leaks
    examples: dict[tuple[str, str], Outcome] = field(default_factory=dict)

    def add(self, outcome: Outcome) -> None:
        path = outcome.case.path.value
        if outcome.verdict == "discarded":
            self.discarded[path] += 1
            self.reasons[outcome.detail] += 1
            return
        self.run[path] += 1
        if outcome.verdict == "leak":
            self.leaks[path] += 1
            channel = outcome.case.clue.channel if outcome.case.clue else "relation"
            self.channels[channel] += 1
            self.examples.setdefault((path, channel), outcome)

    @property
    def cases(self) -> int:
        return sum(self.run.values()) + sum(self.discarded.values())

    @property
    def compared(self) -> int:
        return sum(self.run.values())

    @property
    def leak_count(self) -> int:
        return sum(self.leaks.values())

    def summary(self) -> str:
        lines = [
            f"{self.cases} cases: {self.compared} compared, "
            f"{sum(self.discarded.values())} discarded, {self.leak_count} leaks"
        ]
        for path in PATHS:
            name = path.value
            if self.run[name] or self.discarded[name]:
                lines.append(
                    f"  {name}: {self.run[name]} compared, {self.discarded[name]} discarded, "
                    f"{self.leaks[name]} leaks"
                )
        for reason, n in self.reasons.most_common():
            lines.append(f"  discarded, {reason}: {n}")
        for outcome in self.examples.values():
            lines.append(f"  LEAK {outcome.describe()}")
        return "\n".join(lines)


# -- the world's values --------------------------------------------------------------------------


def strings_in(value: Any) -> Iterator[str]:
    """Every string (and number) a JSON-like value holds, at any depth."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for v in value.values():
            yield from strings_in(v)
    elif isinstance(value, list):
        for v in value:
            yield from strings_in(v)
    elif value is not None and not isinstance(value, bool):
        yield str(value)


def record_words(record: Record) -> set[str]:
    """Every word of every value of the record: a superset of what any search can match on."""
    return {w for s in strings_in(msgspec.to_builtins(record)) for w in words(s)}


class Vocabulary:
    """The world's words, and which records hold each: which records a text could match at all,
    so that the hub's own (fuzzy) ``matches`` is asked only about those."""

    def __init__(self, records: Iterable[Record]) -> None:
        by_word: dict[str, set[str]] = defaultdict(set)
        ids = []
        for record in records:
            ids.append(record.id)
            for word in record_words(record):
                by_word[word].add(record.id)
        self.every = frozenset(ids)
        self.by_word = {w: frozenset(rs) for w, rs in by_word.items()}
        self.words = list(self.by_word)
        self._close: dict[str, frozenset[str]] = {}

    def close(self, word: str) -> frozenset[str]:
        """Records holding a word within the hub's spelling tolerance of ``word``."""
        found = self._close.get(word)
        if found is None:
            near = process.extract(word, self.words, scorer=fuzz.ratio, score_cutoff=85, limit=None)
            held: set[str] = set(self.by_word.get(word, ()))
            for w, _, _ in near:
                held |= self.by_word[w]
            found = self._close[word] = frozenset(held)
        return found

    def candidates(self, text: str) -> frozenset[str]:
        """The records ``text`` could match on some field (a superset of any reader's)."""
        asked = words(text)
        if not asked:
            return self.every
        compact = self.by_word.get(normalise_plate(text).lower(), frozenset())
        common = frozenset.intersection(*(self.close(w) for w in asked))
        return compact | common


def _tag_prefix(record: Record) -> str:
    tags = set(record.tags)
    if isinstance(record, Person | Incident):
        for involvement in record.involvements:
            tags |= involvement.tags
    for tag, prefix in (
        (LegalTag.SEALED, "sealed-"),
        (LegalTag.SEX_OFFENSE_VICTIM, "victim-"),
        (LegalTag.JUVENILE, "juvenile-"),
        (LegalTag.IN_STATE_ONLY, "in-state-"),
    ):
        if tag.value in tags:
            return prefix
    return ""


# Texts a subject legitimately finds things with (RANKING): not the identifiers no vendor indexes.
_SEEN_GROUPS = ("name", "narrative", "incident", "offense", "vehicle")
# Groups in the order a chooser sees them (hypothesis draws the first ones more often): those a
# vendor indexes first, the identifiers it does not (SSNs, licences, addresses, phones) last.
_GROUP_ORDER = (*_SEEN_GROUPS, "identifier", "read", *(k.value for k in EntityKind))


class Pools:
    """The world's values by probe, tier (0 planted, 1 legally tagged, 2 the rest) and group,
    so that every kind of value is drawn, not only the most numerous."""

    def __init__(self, world: World) -> None:
        records = [r for rs in world.records.values() for r in rs]
        planted = _planted(records)
        found: dict[tuple[Probe, str], tuple[int, str, set[EntityKind], str, str]] = {}

        def add(record: Record, probe: Probe, group: str, channel: str, value: str | None) -> None:
            if not value or not value.strip() or len(value) > 200:
                return
            tier = 0 if record.id in planted else 1 if _tag_prefix(record) else 2
            key = (probe, value)
            if key in found:
                found[key][2].add(kind_of(record))
                if tier < found[key][0]:
                    found[key] = (tier, group, found[key][2], channel, record.id)
                return
            found[key] = (tier, group, {kind_of(record)}, channel, record.id)

        for record in records:
            prefix = _tag_prefix(record)
            kind = kind_of(record)
            add(record, "id", kind.value, f"{prefix}{kind.value.lower()}-id", record.id)
            if isinstance(record, Person):
                for n in (record.name, *record.aliases):
                    add(record, "text", "name", f"{prefix}surname", n.surname)
                    full = " ".join(p for p in (n.given, n.surname) if p)
                    add(record, "text", "name", f"{prefix}name", full)
                add(record, "text", "identifier", f"{prefix}ssn", record.ssn)
                if record.driver_license is not None:
                    dl = record.driver_license.number
                    add(record, "text", "identifier", f"{prefix}driver-licence", dl)
                for address in record.addresses:
                    add(record, "text", "identifier", f"{prefix}address", address.street)
                for phone in record.phones:
                    add(record, "text", "identifier", f"{prefix}phone", phone)
            elif isinstance(record, Incident):
                add(record, "text", "incident", f"{prefix}incident-number", record.number)
                if record.location is not None and record.location.address:
                    street = record.location.address.split(",")[0]
                    add(record, "text", "incident", f"{prefix}incident-location", street)
                said = [w for w in (record.narrative or "").split() if w.isalpha() and len(w) >= 5]
                for w in said:
                    add(record, "text", "narrative", f"{prefix}narrative", w.lower())
                for a, b in itertools.pairwise(said):
                    add(record, "text", "narrative", f"{prefix}narrative", f"{a} {b}".lower())
                for offense in record.offenses:
                    add(record, "text", "offense", f"{prefix}offense", offense.description)
            elif isinstance(record, Vehicle):
                if record.plate is not None:
                    plate = record.plate.number
                    add(record, "text", "vehicle", f"{prefix}vehicle-plate", plate)
                    add(record, "plate", "vehicle", f"{prefix}vehicle-plate", plate)
                add(record, "text", "vehicle", f"{prefix}vin", record.vin)
            elif isinstance(record, PlateRead):
                add(record, "plate", "read", f"{prefix}plate", record.plate.number)

        self.tiers: dict[Probe, tuple[dict[str, list[Clue]], ...]] = {
            probe: ({}, {}, {}) for probe in ("text", "plate", "id")
        }
        for (probe, value), (tier, group, kinds, channel, holder) in found.items():
            clue = Clue(value, channel, probe, frozenset(kinds), holder)
            self.tiers[probe][tier].setdefault(group, []).append(clue)

    def pick(
        self, chooser: Chooser, probe: Probe, groups: Iterable[str] | None = None
    ) -> Clue | None:
        allowed = None if groups is None else set(groups)
        tiers = []
        for tier in self.tiers[probe]:
            usable = {g: cs for g, cs in tier.items() if allowed is None or g in allowed}
            if usable:
                tiers.append(usable)
        if not tiers:
            return None
        tier = tiers[chooser.pick(range(len(tiers)))]
        group = chooser.pick(sorted(tier, key=_GROUP_ORDER.index))
        return chooser.pick(tier[group])


def _planted(records: Sequence[Record]) -> set[str]:
    people = [r for r in records if isinstance(r, Person) and r.name.surname in PLANTED_SURNAMES]
    ids = {p.id for p in people} | {i.incident_id for p in people for i in p.involvements}
    for r in records:
        plate = getattr(r, "plate", None)
        if plate is not None and plate.number == REYES_PLATE.number:
            ids.add(r.id)
    return ids


# -- twins ---------------------------------------------------------------------------------------

_UPPER, _LOWER, _DIGITS = string.ascii_uppercase, string.ascii_lowercase, string.digits


def scramble(value: str, rng: random.Random, *, letters: bool = True) -> str:
    """``value`` with every letter and digit replaced by a random one of the same class."""
    out = []
    for ch in value:
        if ch in _DIGITS:
            out.append(rng.choice(_DIGITS))
        elif letters and ch in _UPPER:
            out.append(rng.choice(_UPPER))
        elif letters and ch in _LOWER:
            out.append(rng.choice(_LOWER))
        else:
            out.append(ch)
    return "".join(out)


class Cipher:
    """A random substitution of letters for letters and digits for digits: scrambles a whole
    world's hidden values fast (``str.translate``), keeping their shape."""

    def __init__(self, rng: random.Random) -> None:
        source = _UPPER + _LOWER + _DIGITS
        target = "".join("".join(rng.sample(a, len(a))) for a in (_UPPER, _LOWER, _DIGITS))
        self._table = str.maketrans(source, target)

    def __call__(self, value: str) -> str:
        return value.translate(self._table)


def twin_id(hub_id: str, rng: random.Random) -> str:
    """A well-formed id of the same source and kind, its vendor id's digits drawn anew."""
    ref = parse_id(hub_id)
    vendor_id = ref.record_id
    if any(ch in _DIGITS for ch in vendor_id):
        other = scramble(vendor_id, rng, letters=False)
    else:
        other = scramble(vendor_id, rng)
    return make_id(ref.source, ref.kind, other)


# -- the documents -------------------------------------------------------------------------------

PERSON = (
    "id name { given middle surname suffix } aliases { given surname } dateOfBirth sex race "
    "ssn driverLicense { number state } addresses { street city state postalCode } phones "
    "cautions provenance { agency { ori } system { name } recordId }"
)
VEHICLE = (
    "id vin plate { number state } make model year color "
    "provenance { agency { ori } system { name } recordId }"
)
INCIDENT = (
    "id number incidentKind: kind offenses { code description } occurredAt reportedAt status "
    "narrative location { address latitude longitude } "
    "provenance { agency { ori } system { name } recordId }"
)
READ = (
    "id plate { number state } readAt camera confidence imageUrl "
    "provenance { agency { ori } system { name } recordId }"
)
POINTER = "kind owner { ori name state } contact"
SELECTION: dict[EntityKind, str] = {
    EntityKind.PERSON: PERSON,
    EntityKind.VEHICLE: VEHICLE,
    EntityKind.INCIDENT: INCIDENT,
    EntityKind.PLATE_READ: READ,
}
# One hop through each relationship of a type: each reached record is decided on its own.
RELATIONS: dict[EntityKind, str] = {
    EntityKind.PERSON: (
        f"{PERSON} vehicles {{ id vin plate {{ number state }} registeredOwner {{ id }} }} "
        "incidents { role person { id } incident { id number narrative } }"
    ),
    EntityKind.VEHICLE: (
        f"{VEHICLE} registeredOwner {{ id name {{ surname }} ssn }} "
        "plateReads { id readAt camera provenance { agency { ori } } }"
    ),
    EntityKind.INCIDENT: (
        f"{INCIDENT} involvedPersons {{ role person {{ id name {{ surname }} ssn }} "
        "incident { id } } involvedVehicles { id vin plate { number state } }"
    ),
    EntityKind.PLATE_READ: (
        f"{READ} vehicle {{ id vin registeredOwner {{ id name {{ surname }} }} }}"
    ),
}
TYPE_NAME: dict[EntityKind, str] = {
    EntityKind.PERSON: "Person",
    EntityKind.VEHICLE: "Vehicle",
    EntityKind.INCIDENT: "Incident",
    EntityKind.PLATE_READ: "PlateRead",
}
ROOT_OF: dict[EntityKind, str] = {
    EntityKind.PERSON: "person",
    EntityKind.VEHICLE: "vehicle",
    EntityKind.INCIDENT: "incident",
}
HITS = (
    "__typename "
    + " ".join(f"... on {TYPE_NAME[k]} {{ {SELECTION[k]} }}" for k in EntityKind)
    + f" ... on RecordPointer {{ {POINTER} }}"
)
SOURCES = "source agency status count latencyMs message cached"
# Subjects are resolved from the hits on what the reader may read alone: their grouping, scores
# and evidence must not move when what it may not read changes (the twin's scrambled fields).
SUBJECTS = (
    "subjects { id score members { person { id } score linkedTo evidence { feature level weight } }"
    " vehicles { id } incidents { role incident { id } } plateReads { id } }"
    " vehicleSubjects { id vin plate { number state } members { id } }"
)
SEARCH = f"hits {{ {HITS} }} sources {{ {SOURCES} }} {SUBJECTS}"
ENTITY = " ".join(f"... on {TYPE_NAME[k]} {{ {RELATIONS[k]} }}" for k in EntityKind)

SEARCH_BY_VARIABLE = f"query Outsider($text: String!) {{ search(text: $text) {{ {SEARCH} }} }}"
PERSISTED = f"query OutsiderPersisted($text: String!) {{ search(text: $text) {{ {SEARCH} }} }}"
SEARCH_WITH_KINDS = (
    "query Outsider($text: String!, $kinds: [EntityKind!], $limit: Int) "
    f"{{ search(text: $text, kinds: $kinds, limit: $limit) {{ {SEARCH} }} }}"
)
SEARCH_ALIASED = (
    "query Outsider($text: String!) {"
    f" first: search(text: $text) {{ found: hits {{ {HITS} }} asked: sources {{ {SOURCES} }} }}"
    " again: search(text: $text, limit: 3) { hits { kind: __typename"
    " ... on RecordPointer { owner { ori } pointerKind: kind } }"
    " sources { source status count } } }"
)
SEARCH_FRAGMENTS = (
    "query Outsider($text: String!) { search(text: $text) { ...Result } }"
    " fragment Result on SearchResult { hits { ...Hit } sources { ...Status } }"
    " fragment Hit on SearchHit { __typename ... on Person { ...PersonFields }"
    f" ... on Incident {{ {INCIDENT} }} ... on Vehicle {{ {VEHICLE} }} ... {{ __typename }}"
    " ... on PlateRead { id } ... on RecordPointer { ...Pointer } }"
    f" fragment PersonFields on Person {{ {PERSON} }}"
    f" fragment Pointer on RecordPointer {{ {POINTER} }}"
    " fragment Status on SourceStatus { source agency status count latencyMs message }"
)
SEARCH_DIRECTIVES = (
    "query Outsider($text: String!, $yes: Boolean!, $no: Boolean!) {"
    " search(text: $text) @include(if: $yes) {"
    f"  hits @skip(if: $no) {{ {HITS} }} sources @include(if: true) {{ {SOURCES} }}"
    "  notShown: hits @include(if: $no) { __typename } }"
    " skipped: search(text: $text) @skip(if: true) { hits { __typename } } }"
)
PLATE_READS = (
    "query Outsider($plate: String!, $limit: Int) { plateReads(plate: $plate, limit: $limit)"
    f" {{ {RELATIONS[EntityKind.PLATE_READ]} }} }}"
)
ENTITIES = (
    f"query Outsider($r: [_Any!]!) {{ _entities(representations: $r) {{ __typename {ENTITY} }} }}"
)


WS_PROTOCOL = "graphql-transport-ws"
# Large enough that no source's hits are cut by the limit: which hits a stream keeps under a
# limit depends on which source answered first.
STREAM_LIMIT = 200
STREAM_SEARCH = (
    "subscription Outsider($text: String!, $limit: Int) {"
    " searchStream(text: $text, limit: $limit) {"
    f" done source {{ {SOURCES} }} sources {{ {SOURCES} }} hits {{ {HITS} }} }} }}"
)
WATCH = (
    "mutation Outsider($until: DateTime!, $purpose: String!, $case: String!, $text: String,"
    " $person: ID) { watch(until: $until, purpose: $purpose, caseNumber: $case, text: $text,"
    " person: $person) { watch { target until } interests { ori name contact } } }"
)
INBOX = (
    "query Outsider { inbox { record { __typename "
    + " ".join(f"... on {TYPE_NAME[k]} {{ id }}" for k in EntityKind)
    + " } interest { ori name contact } } }"
)
WATCHES = "query Outsider { watches { id } }"
CANCEL_WATCH = "mutation Outsider($id: ID!) { cancelWatch(id: $id) }"


def _literal(value: str) -> str:
    """A GraphQL string literal (JSON's escapes are GraphQL's)."""
    return json.dumps(value)


def apq(document: str) -> dict[str, Any]:
    digest = hashlib.sha256(document.encode()).hexdigest()
    return {"persistedQuery": {"version": 1, "sha256Hash": digest}}


# -- answers ---------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Exchange:
    status: int
    body: Any


def normalised(value: Any) -> Any:
    """The answer without what varies per request anyway (latencies, cache flags, ids)."""
    if isinstance(value, dict):
        return {k: normalised(v) for k, v in value.items() if k not in VARYING}
    if isinstance(value, list):
        return [normalised(v) for v in value]
    return value


def _short(value: Any) -> str:
    text = json.dumps(value, sort_keys=True, default=str)
    return text if len(text) <= 160 else text[:157] + "..."


def difference(a: Any, b: Any, at: str = "") -> str | None:
    """Where ``a`` and ``b`` first differ (a JSON path and both values), or None."""
    where = at or "."
    if isinstance(a, dict) and isinstance(b, dict):
        for key in sorted(set(a) | set(b)):
            if key not in a or key not in b:
                whose, value = ("secret", a[key]) if key in a else ("twin", b[key])
                return f"{where}: {key!r} only in the {whose}'s answer: {_short(value)}"
            found = difference(a[key], b[key], f"{at}.{key}")
            if found:
                return found
        return None
    if isinstance(a, list) and isinstance(b, list):
        for i, (x, y) in enumerate(zip(a, b, strict=False)):
            found = difference(x, y, f"{at}[{i}]")
            if found:
                return f"{found} ({len(a)} vs {len(b)} items)" if len(a) != len(b) else found
        if len(a) != len(b):
            extra = a[len(b)] if len(a) > len(b) else b[len(a)]
            return f"{where}: {len(a)} vs {len(b)} items, e.g. {_short(extra)}"
        return None
    if a != b:
        return f"{where}: {_short(a)} vs {_short(b)}"
    return None


def stream_answer(messages: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """A stream's messages in an order that does not depend on which source answered first:
    each source's payload sorted among the others; the statuses known so far, which do
    depend on it, left out of all but the last payload (which holds every source's)."""
    payloads: list[Any] = []
    last: Any = None
    other: list[Any] = []
    for message in messages:
        if message.get("type") != "next":
            other.append(message)
            continue
        payload = message.get("payload") or {}
        data = (payload.get("data") or {}).get("searchStream")
        if isinstance(data, dict) and data.get("done"):
            last = {"data": data, "errors": payload.get("errors")}
            continue
        if isinstance(data, dict):
            data = {k: v for k, v in data.items() if k != "sources"}
        payloads.append({"data": data, "errors": payload.get("errors")})
    # Sorted on what is compared: a latency, which varies anyway, must not move a payload.
    payloads.sort(key=lambda p: json.dumps(normalised(p), sort_keys=True, default=str))
    return {"payloads": payloads, "last": last, "other": other}


def compare(secret: Sequence[Exchange], twin: Sequence[Exchange]) -> str | None:
    for step, (x, y) in enumerate(zip(secret, twin, strict=True)):
        if x.status != y.status:
            return f"step {step}: HTTP {x.status} vs {y.status}"
        found = difference(normalised(x.body), normalised(y.body))
        if found:
            return f"step {step}: {found}" if len(secret) > 1 else found
    return None


# -- the subject's view of the world ---------------------------------------------------------------


class Oracle:
    """What one subject may see of the world, by the policy's own decisions."""

    def __init__(self, outsider: Outsider, asker: Asker) -> None:
        self.outsider = outsider
        self.asker = asker
        self.ctx = asker.context()
        self.now = datetime.now(UTC)
        # The pointer index is for participants: an agency no policy names learns nothing.
        self.participant = outsider.policy.knows_agency(asker.ori)
        self._decisions: dict[str, RecordDecision] = {}
        self._secret: dict[str, bool] = {}

    def decision(self, record: Record) -> RecordDecision:
        found = self._decisions.get(record.id)
        if found is None:
            found = self._decisions[record.id] = self.outsider.policy.decide(
                self.ctx, record, self.now
            )
        return found

    def visibility(self, record: Record) -> Visibility:
        if not self.participant:
            return Visibility.INVISIBLE
        return self.decision(record).visibility

    def searchable(self, record: Record) -> frozenset[str]:
        """The fields a search may match ``record`` on for this subject (readable ones when it
        is FULL, the owner's pointer index when a POINTER); empty when it is invisible."""
        if self.visibility(record) is Visibility.INVISIBLE:
            return frozenset()
        return self.decision(record).searchable_fields

    def is_secret(self, clue: Clue) -> bool:
        if clue.probe == "id":
            # A lookup shows a record only in full; a pointer is found by what its owner's
            # pointer index names, never by id unless it names the id.
            record = self.outsider.records.get(clue.value)
            if record is None or self.visibility(record) is Visibility.FULL:
                return False
            return "id" not in self.searchable(record)
        return self.is_secret_text(clue.value)

    def is_secret_text(self, text: str) -> bool:
        """No record this subject can see matches ``text`` where it may search."""
        found = self._secret.get(text)
        if found is None:
            found = self._secret[text] = not any(True for _ in self.seen_matching(text))
        return found

    def seen_matching(self, text: str) -> Iterator[Record]:
        records = self.outsider.records
        for hub_id in sorted(self.outsider.vocabulary.candidates(text)):
            record = records[hub_id]
            fields = self.searchable(record)
            if fields and matches(record, fields, text):
                yield record

    def hidden_relatives(self, record: Record) -> bool:
        """Whether a relationship of ``record`` leads to a record this subject may not see."""
        return any(
            self.visibility(r) is not Visibility.FULL for r in self.outsider.relatives(record)
        )


# -- the world twin: what this subject cannot see, changed ----------------------------------------


def _scrambled_name(name: PersonName, scramble: Cipher) -> PersonName:
    def s(v: str | None) -> str | None:
        return None if v is None else scramble(v)

    return PersonName(given=s(name.given), middle=s(name.middle), surname=s(name.surname),
                      suffix=name.suffix)  # fmt: skip


def scrambled(record: Record, keep: frozenset[str], scramble: Cipher) -> Record:
    """``record`` with the identifying and free-text values of every field not in ``keep``
    drawn anew (relationships, plates and dates stay: they tie records together)."""
    changes: dict[str, Any] = {}
    if isinstance(record, Person):
        if "name" not in keep:
            changes["name"] = _scrambled_name(record.name, scramble)
        if "aliases" not in keep:
            changes["aliases"] = tuple(_scrambled_name(a, scramble) for a in record.aliases)
        if "ssn" not in keep and record.ssn:
            changes["ssn"] = scramble(record.ssn)
        if "driverLicense" not in keep and record.driver_license is not None:
            number = scramble(record.driver_license.number)
            changes["driver_license"] = msgspec.structs.replace(
                record.driver_license, number=number
            )
        if "addresses" not in keep:
            changes["addresses"] = tuple(
                msgspec.structs.replace(a, street=scramble(a.street) if a.street else None)
                for a in record.addresses
            )
        if "phones" not in keep:
            changes["phones"] = tuple(scramble(p) for p in record.phones)
        if "dateOfBirth" not in keep and record.date_of_birth is not None:
            # Another date of birth: subjects must not link, or score, on a withheld one.
            shift = 1 + int(scramble(record.date_of_birth.isoformat()).replace("-", "")[-3:]) % 900
            changes["date_of_birth"] = record.date_of_birth - timedelta(days=shift)
    elif isinstance(record, Incident):
        if "number" not in keep:
            changes["number"] = scramble(record.number)
        if "narrative" not in keep and record.narrative:
            changes["narrative"] = scramble(record.narrative)
        if "location" not in keep and record.location is not None and record.location.address:
            changes["location"] = msgspec.structs.replace(
                record.location, address=scramble(record.location.address)
            )
    elif isinstance(record, Vehicle):
        if "vin" not in keep and record.vin:
            changes["vin"] = scramble(record.vin)
    elif isinstance(record, PlateRead) and "camera" not in keep and record.camera:
        changes["camera"] = scramble(record.camera)
    return msgspec.structs.replace(record, **changes) if changes else record


def unlinked(record: Record, seen: Callable[[str | None], bool]) -> Record:
    """``record`` without its links to the records this subject may not read (``seen`` says
    which it may): a relationship shows a record in full or not at all, so a record one may
    not read leaves no trace in the relationships of one that one may."""
    changes: dict[str, Any] = {}
    if isinstance(record, Person):
        changes["vehicle_ids"] = tuple(i for i in record.vehicle_ids if seen(i))
        changes["involvements"] = tuple(i for i in record.involvements if seen(i.incident_id))
    elif isinstance(record, Incident):
        changes["involved_vehicle_ids"] = tuple(i for i in record.involved_vehicle_ids if seen(i))
        changes["involvements"] = tuple(i for i in record.involvements if seen(i.person_id))
    elif isinstance(record, Vehicle) and not seen(record.registered_owner_id):
        changes["registered_owner_id"] = None
    return msgspec.structs.replace(record, **changes) if changes else record


class _WorldLock:
    """Value cases share the world; a world-twin case has it alone (it swaps the simulators'
    records while it asks). Writers first, so that a stream of readers cannot starve them."""

    def __init__(self) -> None:
        self._cond = asyncio.Condition()
        self._readers = 0
        self._writing = False
        self._waiting = 0

    @contextlib.asynccontextmanager
    async def shared(self) -> AsyncIterator[None]:
        async with self._cond:
            await self._cond.wait_for(lambda: not self._writing and not self._waiting)
            self._readers += 1
        try:
            yield
        finally:
            async with self._cond:
                self._readers -= 1
                self._cond.notify_all()

    @contextlib.asynccontextmanager
    async def alone(self) -> AsyncIterator[None]:
        async with self._cond:
            self._waiting += 1
            await self._cond.wait_for(lambda: not self._writing and not self._readers)
            self._waiting -= 1
            self._writing = True
        try:
            yield
        finally:
            async with self._cond:
                self._writing = False
                self._cond.notify_all()


# -- the fuzzer ------------------------------------------------------------------------------------


@dataclass(slots=True)
class HubTarget:
    """A hub served over HTTP in this process, in front of its demo world's simulators."""

    url: str
    session: aiohttp.ClientSession
    runtime: Runtime

    @property
    def adapters(self) -> tuple[Adapter, ...]:
        return self.runtime.services.adapters

    @property
    def simulators(self) -> Mapping[str, Simulator]:
        running = self.runtime.world
        return {} if running is None else running.simulators

    @property
    def world(self) -> World:
        running = self.runtime.world
        if running is None:
            raise ValueError("the outsider needs a hub serving its demo world in-process")
        return running.world


class Outsider:
    """Draws cases (subject, path, secret) and runs each against the served hub."""

    def __init__(self, target: HubTarget, policy: AccessPolicy | None = None) -> None:
        self.target = target
        self.world = target.world
        if policy is None:
            # The hub's own policy when it runs one: one decision cache for both (the oracle is
            # the decision table itself, asked about the world's canonical records).
            gate = target.runtime.services.gate
            policy = gate if isinstance(gate, AccessPolicy) else load_policy()
        self.policy: AccessPolicy = policy
        self.records: dict[str, Record] = {
            r.id: r for rs in self.world.records.values() for r in rs
        }
        self.vocabulary = Vocabulary(self.records.values())
        self.pools = Pools(self.world)
        self.participants: tuple[str, ...] = (
            *sorted(a.ori for a in self.world.agencies),
            REMOTE_AGENCY,
        )
        settings = target.runtime.settings
        self._key = load_or_create_demo_key(settings.demo_key_path)
        self._auth = settings.auth
        self._tokens: dict[Asker, str] = {}
        self._oracles: dict[Asker, Oracle] = {}
        self._registered: set[str] = set()
        self._counter = itertools.count()
        self._nonces: dict[Case, int] = {}
        self._lock = _WorldLock()
        self._by_plate: dict[str, list[Record]] = defaultdict(list)
        for record in self.records.values():
            plate = getattr(record, "plate", None)
            if plate is not None:
                self._by_plate[plate.number].append(record)
        self._ids = sorted(self.records)
        self._related = [i for i in self._ids if self.relatives(self.records[i])]

    # -- subjects ------------------------------------------------------------------------------

    def oracle(self, asker: Asker) -> Oracle:
        found = self._oracles.get(asker)
        if found is None:
            if len(self._oracles) > 4096:
                self._oracles.clear()
            found = self._oracles[asker] = Oracle(self, asker)
        return found

    def draw_asker(self, chooser: Chooser) -> Asker:
        if chooser.chance(2):
            role = chooser.pick(SHARING_ROLES)
            return Asker(chooser.pick(SHARING_ORIS), (role,), chooser.pick(("C", "X")))
        ori = UNKNOWN_AGENCY if chooser.chance(8) else chooser.pick(self.participants)
        roles = {chooser.pick(ASKER_ROLES)}
        if chooser.chance(3):
            roles.add(chooser.pick(ASKER_ROLES))
        return Asker(ori, tuple(sorted(roles)), chooser.pick(ASKER_PURPOSES))

    def relatives(self, record: Record) -> list[Record]:
        """The records a relationship of ``record`` reaches, in the world."""
        ids: list[str] = []
        if isinstance(record, Person):
            ids += record.vehicle_ids
            ids += [i.incident_id for i in record.involvements]
        elif isinstance(record, Incident):
            ids += record.involved_vehicle_ids
            ids += [i.person_id for i in record.involvements]
        elif isinstance(record, Vehicle):
            if record.registered_owner_id:
                ids.append(record.registered_owner_id)
            if record.plate is not None:
                ids += [r.id for r in self._by_plate[record.plate.number] if r.id != record.id]
        elif isinstance(record, PlateRead):
            ids += [r.id for r in self._by_plate[record.plate.number] if isinstance(r, Vehicle)]
        return [self.records[i] for i in ids if i in self.records]

    # -- cases ---------------------------------------------------------------------------------

    def draw_case(self, chooser: Chooser, path: Path | None = None) -> Case:
        asker = self.draw_asker(chooser)
        path = path if path is not None else chooser.pick(PATHS)
        seed = chooser.seed()
        variant = chooser.pick((0, 1, 2, 3))
        if path is Path.AUDIT:
            return self._audit_case(chooser, seed, variant)
        oracle = self.oracle(asker)
        if path in WORLD_PATHS:
            # Most of the world is hidden from many subjects (an auditor, a licensing check):
            # another subject, a few times, rather than a case that proves nothing.
            for _ in range(4):
                if path is Path.RELATIONS:
                    parent = self._parent(chooser, oracle)
                    if parent is not None:
                        return Case(asker, path, None, seed, variant, parent)
                else:
                    seen = self._seen_clue(chooser, oracle)
                    if seen is not None:
                        return Case(asker, path, seen, seed, variant)
                asker = self.draw_asker(chooser)
                oracle = self.oracle(asker)
            return Case(asker, path, None, seed, variant)
        probe = PROBE_OF[path]
        groups: tuple[str, ...] | None = None
        if path in (Path.LOOKUP, Path.LOOKUP_VARIABLES):
            groups = tuple(k.value for k in ROOT_OF)
        elif path is Path.WATCH_PERSON:
            groups = (EntityKind.PERSON.value,)
        clue = None
        for _ in range(ATTEMPTS):
            candidate = self.pools.pick(chooser, probe, groups)
            if candidate is not None and oracle.is_secret(candidate):
                clue = candidate
                break
        companion = None
        if path is Path.ENTITIES_BESIDE:
            for _ in range(ATTEMPTS):
                beside = chooser.pick(self._ids)
                if oracle.visibility(self.records[beside]) is Visibility.FULL:
                    companion = beside
                    break
        return Case(asker, path, clue, seed, variant, companion)

    def case(self, asker: Asker, path: Path, value: str, *, seed: int = 0, variant: int = 0,
             companion: str | None = None) -> Case:  # fmt: skip
        """A case named by hand (regression tests): ``value`` as the secret."""
        probe = PROBE_OF.get(path, "text")
        found = next(
            (c for tier in self.pools.tiers[probe] for cs in tier.values() for c in cs
             if c.value == value),
            None,
        )  # fmt: skip
        clue = found or Clue(value, "named", probe, frozenset(EntityKind))
        return Case(asker, path, clue, seed, variant, companion)

    def _audit_case(self, chooser: Chooser, seed: int, variant: int) -> Case:
        """An auditor of an agency whose systems policy forbids another agency's user to ask
        (AUDITED_DENIALS): that user's question, which lists the auditor's sources as DENIED,
        is none of the auditor's business."""
        ori = chooser.pick(tuple(AUDITED_DENIALS))
        auditor = Asker(ori, ("auditor",), chooser.pick(("A", "C")))
        _, _, _, probe, value = AUDITED_DENIALS[ori]
        clue = Clue(value, "denied-question", probe, frozenset(EntityKind))
        return Case(auditor, Path.AUDIT, clue, seed, variant)

    async def _run_audit(self, case: Case) -> Outcome:
        """The other agency's user asks; the auditor's queries by that user (and by a record
        that came back to it) must answer as for a user who never asked anything."""
        clue = case.clue
        if clue is None or case.asker.ori not in AUDITED_DENIALS:
            return Outcome(case, "discarded", "no question this auditor's agency is denied")
        victims, roles, purpose, probe, value = AUDITED_DENIALS[case.asker.ori]
        victim_ori = victims[case.seed % len(victims)]
        nonce = next(self._counter)
        victim, twin = f"victim-{case.seed}-{nonce}", f"victim-{case.seed}-{nonce}-twin"
        token = mint_token(self._key, self._auth, user=victim, agency=victim_ori,
                           state=victim_ori[:2], roles=roles)  # fmt: skip
        if probe == "plate":
            query = "query Victim($v: String!) { found: plateReads(plate: $v) { id } }"
        else:
            query = (
                "query Victim($v: String!) { search(text: $v) { hits { ... on Person { id } } } }"
            )
        headers = {"Content-Type": "application/json", "Authorization": f"Bearer {token}",
                   "X-Purpose": purpose, "X-Case-Number": CASE_NUMBER}  # fmt: skip
        payload = {"query": query, "variables": {"v": value}}
        async with self.target.session.post(
            f"{self.target.url}/graphql", data=json.dumps(payload), headers=headers
        ) as resp:
            answer = await resp.json(content_type=None)
        data = answer.get("data") or {}
        found = data.get("found") or ((data.get("search") or {}).get("hits") or [])
        returned = [h["id"] for h in found if isinstance(h, dict) and h.get("id")]
        # A record that came back to the victim, or (none came back) any: the query by user
        # alone is then what is compared.
        record = returned[0] if returned else self._ids[case.seed % len(self._ids)]
        twin_record = twin_id(record, random.Random(case.seed))  # noqa: S311 (not a secret)
        audit = (
            "query Audit($user: String, $record: ID) { byUser: auditEvents(user: $user) { "
            "user agency caseNumber criteria sources { source status } records { id } } "
            "byRecord: auditEvents(user: $user, recordId: $record) { user records { id } } }"
        )

        async def ask(user: str, record_id: str) -> list[Exchange]:
            variables = {"user": user, "record": record_id}
            return [await self.post(case.asker, {"query": audit, "variables": variables})]

        if case.seed % 2:
            secret_answer, twin_answer = await ask(victim, record), await ask(twin, twin_record)
        else:
            twin_answer, secret_answer = await ask(twin, twin_record), await ask(victim, record)
        differs = compare(secret_answer, twin_answer)
        if differs is None:
            return Outcome(case, "same", twin=twin)
        return Outcome(case, "leak", differs, twin=twin)

    # -- live results ----------------------------------------------------------------------------

    @property
    def live(self) -> Live | None:
        live = getattr(self.target.runtime.services, "live", None)
        return live if isinstance(live, Live) else None

    async def _run_watch(self, case: Case) -> Outcome:
        """Two users of the asker's agency, roles and purpose each watch a value: one the
        secret, the other its twin. WATCH_PERSON compares the two answers to ``watch(person:)``.
        WATCH then has the vendor of a record holding the secret send a notice of it, waits
        until the live service has handled it, and compares the two users' inboxes too: a watch
        must match only on what its watcher may read, and deliver only what it may see.

        The case has the world alone: a watch made by another case at the same time could tell
        of its agency's interest (deconfliction) in one answer and not the other."""
        live = self.live
        if live is None:
            return Outcome(case, "discarded", "live results off (the hub has no Redis)")
        clue = case.clue
        if clue is None:
            return Outcome(case, "discarded", "no secret for this subject")
        async with self._lock.alone():
            twin = await self._held_twin(case, clue)
            if isinstance(twin, Outcome):
                return twin
            nonce = next(self._counter)
            users = {clue.value: f"watcher-{nonce}-a", twin: f"watcher-{nonce}-b"}
            order = [clue.value, twin] if case.seed % 2 else [twin, clue.value]
            until = (datetime.now(UTC) + timedelta(hours=1)).replace(microsecond=0).isoformat()
            answers: dict[str, list[Exchange]] = {}
            try:
                for value in order:
                    variables: dict[str, Any] = {
                        "until": until, "purpose": case.asker.purpose, "case": CASE_NUMBER,
                        "text": None if case.path is Path.WATCH_PERSON else value,
                        "person": value if case.path is Path.WATCH_PERSON else None,
                    }  # fmt: skip
                    answers[value] = [
                        await self.post(
                            case.asker, {"query": WATCH, "variables": variables}, users[value]
                        )
                    ]
                if case.path is Path.WATCH:
                    await self._notice(live, self._holders(clue))
                    for value in order:
                        inbox = await self.post(case.asker, {"query": INBOX}, users[value])
                        answers[value].append(inbox)
            finally:
                for value in order:
                    await self._cancel_watches(case.asker, users[value])
        found = compare(answers[clue.value], answers[twin])
        if found is None:
            return Outcome(case, "same", twin=twin)
        return Outcome(case, "leak", found, twin=twin)

    def _holders(self, clue: Clue) -> list[str]:
        """The records that hold the clue's value (at most ``MAX_NOTICED``): the one it was
        taken from first, then those of the world that hold it written out in some value."""
        wanted = clue.value.casefold()
        found = [clue.holder] if clue.holder else []
        for hub_id in sorted(self.vocabulary.candidates(clue.value)):
            if len(found) >= MAX_NOTICED:
                break
            record = self.records[hub_id]
            if kind_of(record) not in WATCH_KINDS[Target.TEXT]:
                continue  # plate reads are pushed as reads, never noticed
            held = any(wanted in s.casefold() for s in strings_in(msgspec.to_builtins(record)))
            if held and hub_id not in found:
                found.append(hub_id)
        return found

    async def _notice(self, live: Live, holders: Sequence[str]) -> None:
        """Each holder's vendor tells the hub its records changed; returns once every live
        event is handled (the watches have seen them, fetched fresh)."""
        by_source: dict[str, list[RecordRef]] = defaultdict(list)
        for hub_id in holders:
            ref = parse_id(hub_id)
            by_source[ref.source].append(ref)
        adapters = {a.name: a for a in self.target.adapters}
        for source, refs in by_source.items():
            notices = [{"kind": r.kind.value, "recordId": r.record_id, "notice": "UPDATED"}
                       for r in refs]  # fmt: skip
            key = str(adapters[source].config.options.get("notice_key", ""))
            async with self.target.session.post(
                f"{self.target.url}/sources/{source}/notices",
                json={"notices": notices},
                headers={"X-Notice-Key": key},
            ) as resp:
                if resp.status != 200:
                    raise RuntimeError(f"{source} refused the notice: HTTP {resp.status}")
        await settled(live)

    async def _cancel_watches(self, asker: Asker, user: str) -> None:
        listed = await self.post(asker, {"query": WATCHES}, user)
        data = listed.body.get("data") if isinstance(listed.body, dict) else None
        for watch in (data or {}).get("watches") or []:
            payload = {"query": CANCEL_WATCH, "variables": {"id": watch["id"]}}
            await self.post(asker, payload, user)

    def _seen_clue(self, chooser: Chooser, oracle: Oracle) -> Clue | None:
        """A text this subject legitimately finds something with (RANKING)."""
        for _ in range(ATTEMPTS):
            clue = self.pools.pick(chooser, "text", _SEEN_GROUPS)
            if clue is not None and not oracle.is_secret_text(clue.value):
                return clue
        return None

    def _parent(self, chooser: Chooser, oracle: Oracle) -> str | None:
        """A record this subject sees in full, whose relationships it will follow (RELATIONS)."""
        hiding = not chooser.chance(4)
        fallback = None
        for _ in range(ATTEMPTS):
            record = self.records[chooser.pick(self._related)]
            if oracle.visibility(record) is not Visibility.FULL:
                continue
            if not hiding or oracle.hidden_relatives(record):
                return record.id
            fallback = fallback or record.id
        return fallback

    # -- running a case ------------------------------------------------------------------------

    async def run(self, case: Case) -> Outcome:
        if case.path in WORLD_PATHS:
            return await self._run_worlds(case)
        if case.path is Path.AUDIT:
            return await self._run_audit(case)
        if case.path in LIVE_PATHS:
            return await self._run_watch(case)
        clue = case.clue
        if clue is None:
            return Outcome(case, "discarded", "no secret for this subject")
        async with self._lock.shared():
            twin = await self._held_twin(case, clue)
            if isinstance(twin, Outcome):
                return twin
            if case.seed % 2:
                secret_answer = await self._ask(case, clue.value)
                twin_answer = await self._ask(case, twin)
            else:
                twin_answer = await self._ask(case, twin)
                secret_answer = await self._ask(case, clue.value)
        found = compare(secret_answer, twin_answer)
        if found is None:
            return Outcome(case, "same", twin=twin)
        return Outcome(case, "leak", found, twin=twin)

    async def _held_twin(self, case: Case, clue: Clue) -> str | Outcome:
        """The twin of a secret some vendor holds; or, when there is none, the case discarded
        and why (a case that proves nothing)."""
        if not await self.held(clue, clue.value):
            return Outcome(case, "discarded", "the vendors hold nothing for the secret")
        twin = await self._twin(case)
        if twin is None:
            return Outcome(case, "discarded", "no twin that the vendors lack")
        return twin

    async def held(self, clue: Clue, value: str) -> bool:
        """Whether some vendor holds a record for ``value`` (asked past the hub's gate)."""
        adapters = self.target.adapters
        if clue.probe == "id":
            try:
                ref = parse_id(value)
            except InvalidId:
                return False
            adapter = next((a for a in adapters if a.name == ref.source), None)
            if adapter is None:
                return False
            return bool(await adapter.get_many(ref.kind, [ref.record_id]))
        if clue.probe == "plate":
            request = SearchRequest(
                kinds=frozenset({EntityKind.PLATE_READ}), plates=(normalise_plate(value),),
                limit=100,
            )  # fmt: skip
        else:
            request = SearchRequest(kinds=frozenset(EntityKind), text=value.strip(), limit=50)
        asked = [a for a in adapters if a.answers(request)]
        answers = await asyncio.gather(*(a.search(request) for a in asked))
        return any(answers)

    async def _twin(self, case: Case) -> str | None:
        assert case.clue is not None
        clue = case.clue
        rng = random.Random(case.seed)  # noqa: S311 (a twin is random, not a secret)
        for _ in range(8):
            if clue.probe == "id":
                twin = twin_id(clue.value, rng)
                if twin in self.records:
                    continue
            else:
                twin = scramble(clue.value, rng)
                if twin == clue.value or self.vocabulary.candidates(twin):
                    continue  # some record holds a word near it: not a value that exists nowhere
            if not await self.held(clue, twin):
                return twin
        return None

    def token(self, asker: Asker, user: str = "outsider") -> str:
        if user != "outsider":
            return mint_token(self._key, self._auth, user=user, agency=asker.ori,
                              state=asker.ori[:2], roles=asker.roles)  # fmt: skip
        found = self._tokens.get(asker)
        if found is None:
            found = self._tokens[asker] = mint_token(
                self._key, self._auth, user="outsider", agency=asker.ori, state=asker.ori[:2],
                roles=asker.roles,
            )  # fmt: skip
        return found

    async def post(
        self, asker: Asker, payload: Mapping[str, Any], user: str = "outsider"
    ) -> Exchange:
        """``payload`` posted as ``user`` of the asker's agency, with its roles and purpose."""
        headers = {
            "Content-Type": "application/json",
            "Authorization": f"Bearer {self.token(asker, user)}",
            "X-Purpose": asker.purpose,
            "X-Case-Number": CASE_NUMBER,
        }
        async with self.target.session.post(
            f"{self.target.url}/graphql", data=json.dumps(payload), headers=headers
        ) as resp:
            raw = await resp.read()
            try:
                body: Any = json.loads(raw)
            except ValueError:
                body = raw.decode("utf-8", "replace")
            return Exchange(resp.status, body)

    async def _ask(self, case: Case, value: str) -> list[Exchange]:
        """The path's request(s) with ``value`` in the secret's place."""
        asker, path, variant = case.asker, case.path, case.variant
        clue = case.clue
        assert clue is not None
        if path is Path.SEARCH:
            query = f"{{ search(text: {_literal(value)}) {{ {SEARCH} }} }}"
            return [await self.post(asker, {"query": query})]
        if path is Path.SEARCH_VARIABLES:
            return [
                await self.post(asker, {"query": SEARCH_BY_VARIABLE, "variables": {"text": value}})
            ]
        if path is Path.SEARCH_KINDS:
            variables = {
                "text": value,
                "kinds": sorted(k.value for k in clue.kinds),
                "limit": (1, 3, 50, 200)[variant],
            }
            return [await self.post(asker, {"query": SEARCH_WITH_KINDS, "variables": variables})]
        if path is Path.SEARCH_ALIASES:
            return [await self.post(asker, {"query": SEARCH_ALIASED, "variables": {"text": value}})]
        if path is Path.SEARCH_FRAGMENTS:
            payload = {"query": SEARCH_FRAGMENTS, "variables": {"text": value}}
            return [await self.post(asker, payload)]
        if path is Path.SEARCH_DIRECTIVES:
            variables = {"text": value, "yes": True, "no": False}
            return [await self.post(asker, {"query": SEARCH_DIRECTIVES, "variables": variables})]
        if path is Path.SEARCH_PERSISTED:
            await self._register(asker, PERSISTED)
            payload = {"extensions": apq(PERSISTED), "variables": {"text": value}}
            return [await self.post(asker, payload)]
        if path is Path.SEARCH_PERSISTED_LITERAL:
            # Unknown hash, then the document registered with it, then the hash alone again. The
            # operation is named for the case, so that no earlier case registered either document.
            name = f"OutsiderLiteral{case.seed}x{self._nonce(case)}"
            query = f"query {name} {{ search(text: {_literal(value)}) {{ {SEARCH} }} }}"
            ext = apq(query)
            return [
                await self.post(asker, {"extensions": ext}),
                await self.post(asker, {"query": query, "extensions": ext}),
                await self.post(asker, {"extensions": ext}),
            ]
        if path is Path.STREAM:
            return [await self.stream(asker, value)]
        if path is Path.PLATE_READS:
            reads = {"plate": value, "limit": (1, 5, 100, 100)[variant]}
            return [await self.post(asker, {"query": PLATE_READS, "variables": reads})]
        ref = parse_id(clue.value)
        if path in (Path.LOOKUP, Path.LOOKUP_VARIABLES) and ref.kind in ROOT_OF:
            root, selection = ROOT_OF[ref.kind], RELATIONS[ref.kind]
            if path is Path.LOOKUP:
                query = f"{{ {root}(id: {_literal(value)}) {{ {selection} }} }}"
                return [await self.post(asker, {"query": query})]
            query = f"query Outsider($id: ID!) {{ {root}(id: $id) {{ {selection} }} }}"
            return [await self.post(asker, {"query": query, "variables": {"id": value}})]
        representations = [{"__typename": TYPE_NAME[ref.kind], "id": value}]
        if path is Path.ENTITIES_BESIDE and case.companion is not None:
            beside = self.records[case.companion]
            other = {"__typename": TYPE_NAME[kind_of(beside)], "id": beside.id}
            representations.insert(variant % 2, other)
        return [await self.post(asker, {"query": ENTITIES, "variables": {"r": representations}})]

    async def stream(self, asker: Asker, value: str) -> Exchange:
        """``searchStream`` for ``value`` over a WebSocket (graphql-transport-ws, what the
        headers carry in ``connection_init``): every message until the stream ends, or the
        close code when the hub closes the connection instead."""
        url = self.target.url.replace("http://", "ws://", 1) + "/graphql"
        init = {"Authorization": f"Bearer {self.token(asker)}", "X-Purpose": asker.purpose,
                "X-Case-Number": CASE_NUMBER}  # fmt: skip
        variables = {"text": value, "limit": STREAM_LIMIT}
        subscribe = {
            "id": "1",
            "type": "subscribe",
            "payload": {"query": STREAM_SEARCH, "variables": variables},
        }
        messages: list[dict[str, Any]] = []
        async with self.target.session.ws_connect(url, protocols=(WS_PROTOCOL,)) as ws:
            await ws.send_json({"type": "connection_init", "payload": init})
            while True:
                frame = await ws.receive(timeout=30)
                if frame.type is not aiohttp.WSMsgType.TEXT:
                    messages.append({"closed": ws.close_code, "reason": str(frame.extra or "")})
                    break
                message: dict[str, Any] = json.loads(frame.data)
                messages.append(message)
                if message.get("type") == "connection_ack":
                    await ws.send_json(subscribe)
                elif message.get("type") in ("complete", "error"):
                    break
        return Exchange(101, stream_answer(messages))

    def _nonce(self, case: Case) -> int:
        """A number of this run of ``case``, the same for its secret and its twin."""
        found = self._nonces.get(case)
        if found is None:
            found = self._nonces[case] = next(self._counter)
        return found

    async def _register(self, asker: Asker, document: str) -> None:
        """Register a persisted document once (its first run is not compared)."""
        if document in self._registered:
            return
        payload = {"query": document, "extensions": apq(document), "variables": {"text": "-"}}
        await self.post(asker, payload)
        self._registered.add(document)

    # -- two worlds ----------------------------------------------------------------------------

    async def _run_worlds(self, case: Case) -> Outcome:
        if not self.target.simulators:
            return Outcome(case, "discarded", "no in-process simulators to swap")
        oracle = self.oracle(case.asker)
        if case.path is Path.RELATIONS:
            if case.companion is None:
                return Outcome(case, "discarded", "no record this subject sees in full")
            record = self.records[case.companion]
            kind = kind_of(record)
            if kind in ROOT_OF and case.variant % 2:
                root, selection = ROOT_OF[kind], RELATIONS[kind]
                query = f"query Outsider($id: ID!) {{ {root}(id: $id) {{ {selection} }} }}"
                payload: dict[str, Any] = {"query": query, "variables": {"id": record.id}}
            else:
                representations = [{"__typename": TYPE_NAME[kind], "id": record.id}]
                payload = {"query": ENTITIES, "variables": {"r": representations}}
        else:
            clue = case.clue
            if clue is None:
                return Outcome(case, "discarded", "no text this subject finds anything with")
            limit = (3, 10, 50, 50)[case.variant]
            request = SearchRequest(kinds=frozenset(EntityKind), text=clue.value, limit=limit)
            asked = [a for a in self.target.adapters if a.answers(request)]
            answers = await asyncio.gather(*(a.search(request) for a in asked))
            if not any(answers):
                return Outcome(case, "discarded", "the vendors hold nothing for the text")
            if any(len(a) >= limit for a in answers):
                # A vendor that filled its page may have left out a visible record for an
                # invisible one: what the hub cannot see, it cannot keep out of the count.
                return Outcome(case, "discarded", "a vendor filled its page")
            variables = {"text": clue.value, "kinds": None, "limit": limit}
            payload = {"query": SEARCH_WITH_KINDS, "variables": variables}
        twin_world = self.twin_world(oracle, Cipher(random.Random(case.seed)))  # noqa: S311
        async with self._lock.alone():
            real = await self.post(case.asker, payload)
            with self.swapped(twin_world):
                twin = await self.post(case.asker, payload)
        found = compare([real], [twin])
        if found is None:
            return Outcome(case, "same")
        return Outcome(case, "leak", found)

    def twin_world(self, oracle: Oracle, scramble: Cipher) -> dict[str, list[Record]]:
        """The world as it might be, for all this subject may know: what it may not see
        removed, what it may neither read nor search drawn anew."""
        records = self.records

        def full(hub_id: str | None) -> bool:
            found = None if hub_id is None else records.get(hub_id)
            return found is not None and oracle.visibility(found) is Visibility.FULL

        out: dict[str, list[Record]] = {}
        for source, held in self.world.records.items():
            kept = []
            for record in held:
                if oracle.visibility(record) is Visibility.INVISIBLE:
                    continue
                record = scrambled(record, oracle.searchable(record), scramble)
                kept.append(unlinked(record, full))
            out[source] = kept
        return out

    @contextlib.contextmanager
    def swapped(self, records: Mapping[str, list[Record]]) -> Iterator[None]:
        """The simulators serve ``records`` instead of the world's, until the block ends."""
        simulators = self.target.simulators
        saved = {name: (sim.records, sim.index) for name, sim in simulators.items()}
        try:
            for name, sim in simulators.items():
                if name in records:
                    sim.records = list(records[name])
                    sim.index = RecordIndex(sim.records)
            yield
        finally:
            for name, (kept, index) in saved.items():
                simulators[name].records = kept
                simulators[name].index = index


async def settled(live: Live, within_s: float = 10.0) -> None:
    """Every live event appended so far is handled and acknowledged (the consumer group has
    neither lag nor pending entries)."""
    deadline = asyncio.get_running_loop().time() + within_s
    while not await live.store.handled_all():
        if asyncio.get_running_loop().time() > deadline:
            raise RuntimeError(f"live events not handled within {within_s:g} s")
        await asyncio.sleep(0.02)


async def sweep(
    outsider: Outsider,
    count: int,
    *,
    seed: int = 10,
    concurrency: int = 16,
    progress: Callable[[Tally], None] | None = None,
) -> Tally:
    """``count`` cases drawn from a seeded Random, ``concurrency`` at a time; their tally."""
    chooser = RandomChooser(random.Random(seed))  # noqa: S311 (reproducible cases)
    cases = [outsider.draw_case(chooser) for _ in range(count)]
    tally = Tally()
    gate = asyncio.Semaphore(concurrency)
    every = max(1, count // 10)

    async def one(case: Case) -> None:
        async with gate:
            outcome = await outsider.run(case)
        tally.add(outcome)
        if progress is not None and tally.cases % every == 0:
            progress(tally)

    await asyncio.gather(*(one(c) for c in cases))
    return tally
