"""Hypothesis strategies for GraphQL documents built from the hub's own schema.

A document is kept as a small tree (``Field``, ``Inline``, ``Spread`` and named fragments) so a
test can render it to GraphQL text and walk the response with the same tree: which response key
is which field (aliases), which fragments apply to which concrete type (unions). Fields are
drawn from the schema itself, so a field added to a type is queried without touching this file.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

from graphql import (
    GraphQLObjectType,
    GraphQLSchema,
    GraphQLUnionType,
    get_named_type,
    is_leaf_type,
    parse,
)
from hypothesis import strategies as st

from hub.demo.world import REYES_PLATE, SEALED_SURNAME, SEX_OFFENSE_VICTIM_SURNAME, World
from hub.model import EntityKind, Incident, Person, PlateRead, Record, Vehicle
from hub.settings import Settings
from resolvers.cost import estimate_cost
from resolvers.schema import build_schema

SCHEMA: GraphQLSchema = build_schema(Settings())._schema
RECORD_TYPES = ("Person", "Vehicle", "Incident", "PlateRead")
# Fields that lead to another record: each one is a hop through the access gate.
RELATION_TYPES = frozenset({*RECORD_TYPES, "Involvement"})
# Same response name, different types across members of one union: must be aliased there.
CONFLICTING = frozenset({("Incident", "kind"), ("RecordPointer", "kind")})
AGENCIES = ("CA0990000", "WA0990100", "OR0990200", "NV0990000")
# Keep documents inside the hub's limits (depth 10, 30 aliases, 2,000 tokens) with room to spare.
MAX_DEPTH = 9
MAX_ALIASES = 12
FIELD_BUDGET = 60
MAX_HOPS = 3
MAX_COST = Settings().limits.max_cost


@dataclass
class Field:
    name: str
    alias: str | None = None
    args: dict[str, Any] = field(default_factory=dict)
    selection: list[Selection] = field(default_factory=list)

    @property
    def key(self) -> str:
        return self.alias or self.name


@dataclass
class Inline:
    on: str | None
    selection: list[Selection]


@dataclass
class Spread:
    fragment: str


Selection = Field | Inline | Spread


@dataclass(frozen=True)
class Enum:
    """An enum value in an argument (rendered bare)."""

    value: str


@dataclass(frozen=True)
class Var:
    """A variable in an argument: ``$name`` of GraphQL type ``type``."""

    name: str
    type: str


@dataclass
class Document:
    root: list[Field]
    fragments: dict[str, tuple[str, list[Selection]]] = field(default_factory=dict)
    variables: dict[str, Any] = field(default_factory=dict)
    variable_types: dict[str, str] = field(default_factory=dict)

    def __repr__(self) -> str:
        variables = f"\nvariables: {json.dumps(self.variables)}" if self.variables else ""
        return f"<Document\n{self.render()}{variables}\n>"

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:
        printer.text(repr(self))

    def render(self) -> str:
        head = "query"
        if self.variable_types:
            head += "(" + ", ".join(f"${n}: {t}" for n, t in self.variable_types.items()) + ")"
        parts = [f"{head} {_render_selection(self.root)}"]
        for name, (on, selection) in self.fragments.items():
            parts.append(f"fragment {name} on {on} {_render_selection(selection)}")
        return "\n".join(parts)

    def collect(self, selection: Sequence[Selection], type_name: str) -> dict[str, list[Field]]:
        """The fields of ``selection`` that apply to an object of concrete type ``type_name``,
        by response key (as GraphQL's CollectFields merges them)."""
        out: dict[str, list[Field]] = {}
        for sel in selection:
            if isinstance(sel, Field):
                out.setdefault(sel.key, []).append(sel)
            elif isinstance(sel, Inline):
                if _applies(sel.on, type_name):
                    for key, fields in self.collect(sel.selection, type_name).items():
                        out.setdefault(key, []).extend(fields)
            else:
                on, inner = self.fragments[sel.fragment]
                if _applies(on, type_name):
                    for key, fields in self.collect(inner, type_name).items():
                        out.setdefault(key, []).extend(fields)
        return out

    def fields_of(
        self, selection: Sequence[Selection], type_name: str
    ) -> dict[str, tuple[str, list[Selection]]]:
        """Response key -> (field name, merged sub-selection) for ``type_name``."""
        return {
            key: (fields[0].name, [s for f in fields for s in f.selection])
            for key, fields in self.collect(selection, type_name).items()
        }

    def walk_fields(self) -> Iterable[Field]:
        """Every field anywhere in the document (root, nested, in fragments)."""

        def walk(selection: Sequence[Selection]) -> Iterable[Field]:
            for sel in selection:
                if isinstance(sel, Field):
                    yield sel
                    yield from walk(sel.selection)
                elif isinstance(sel, Inline):
                    yield from walk(sel.selection)

        yield from walk(self.root)
        for _, inner in self.fragments.values():
            yield from walk(inner)


def _applies(on: str | None, type_name: str) -> bool:
    if on is None or on == type_name:
        return True
    union = SCHEMA.type_map.get(on)
    return isinstance(union, GraphQLUnionType) and any(t.name == type_name for t in union.types)


def _render_value(value: Any) -> str:
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, Var):
        return f"${value.name}"
    if isinstance(value, list):
        return "[" + ", ".join(_render_value(v) for v in value) + "]"
    return json.dumps(value)  # strings and numbers: a JSON literal is a GraphQL literal


def _render_selection(selection: Sequence[Selection]) -> str:
    parts = []
    for sel in selection:
        if isinstance(sel, Field):
            text = f"{sel.alias}: {sel.name}" if sel.alias else sel.name
            if sel.args:
                text += (
                    "(" + ", ".join(f"{k}: {_render_value(v)}" for k, v in sel.args.items()) + ")"
                )
            if sel.selection:
                text += " " + _render_selection(sel.selection)
            parts.append(text)
        elif isinstance(sel, Inline):
            on = f" on {sel.on}" if sel.on else ""
            parts.append(f"...{on} {_render_selection(sel.selection)}")
        else:
            parts.append(f"...{sel.fragment}")
    return "{ " + " ".join(parts) + " }"


# -- what to ask for: real names, plates, ids of the world -------------------------------------


Tiers = tuple[tuple[str, ...], ...]


@dataclass(frozen=True)
class Pools:
    """What to ask for, in tiers: the planted examples, the other records with legal tags, a
    spread of the rest. Each draw picks a tier first, so the rare cases (one sealed person, one
    victim of a sex offence) are met in every run."""

    texts: Tiers
    plates: Tiers
    ids: dict[str, Tiers]  # GraphQL type name -> hub ids
    favour_relations: bool = False

    @classmethod
    def of(cls, world: World) -> Pools:
        records = [r for rs in world.records.values() for r in rs]
        people = [r for r in records if isinstance(r, Person)]
        vehicles = [r for r in records if isinstance(r, Vehicle)]
        incidents = [r for r in records if isinstance(r, Incident)]
        reads = [r for r in records if isinstance(r, PlateRead)]
        planted_names = {"Reyes", SEALED_SURNAME, SEX_OFFENSE_VICTIM_SURNAME, "Mabry"}
        planted_people = [p for p in people if p.name.surname in planted_names]
        planted_ids = {p.id for p in planted_people} | {
            i.incident_id for p in planted_people for i in p.involvements
        }
        surnames = sorted({p.name.surname for p in people if p.name.surname} - planted_names)
        texts = (
            (*sorted(planted_names), "Jordan Reyes", "Ingrid Halvorsen", REYES_PLATE.number),
            ("parking", "larceny", "disturbance", "Qwzxv"),  # the last matches nothing
            (
                *surnames[::3],
                *(v.vin for v in vehicles[::4] if v.vin),
                *(v.plate.number for v in vehicles[::3] if v.plate),
                *(i.number for i in incidents[::4]),
            ),
        )
        plates = (
            (REYES_PLATE.number,),
            tuple(sorted({r.plate.number for r in reads[::5]} - {REYES_PLATE.number})),
        )

        def tier(r: Record) -> int:
            if r.id in planted_ids or getattr(r, "plate", None) == REYES_PLATE:
                return 0
            if r.tags or any(i.tags for i in getattr(r, "involvements", ())):
                return 1
            return 2

        def tiers(rs: Sequence[Record]) -> Tiers:
            by_tier = [[r.id for r in rs if tier(r) == n] for n in range(3)]
            return (tuple(by_tier[0]), tuple(by_tier[1][::3]), tuple(by_tier[2][::3]))

        return cls(
            texts=texts,
            plates=plates,
            ids={
                "Person": tiers(people),
                "Vehicle": tiers(vehicles),
                "Incident": tiers(incidents),
                "PlateRead": tiers(reads),
            },
        )

    def planted(self) -> Pools:
        """Only the planted examples, and documents that follow relationships more often."""
        return Pools(
            texts=self.texts[:1],
            plates=self.plates[:1],
            ids={k: v[:1] for k, v in self.ids.items()},
            favour_relations=True,
        )


# -- documents -----------------------------------------------------------------------------------

_T = TypeVar("_T")


class _Builder:
    def __init__(
        self, draw: Callable[[st.SearchStrategy[Any]], Any], pools: Pools, hops: int
    ) -> None:
        self.draw = draw
        self.hops = hops
        self.pools = pools
        self.fragments: dict[str, tuple[str, list[Selection]]] = {}
        self.aliases = 0
        self.budget = FIELD_BUDGET
        self.variables: dict[str, Any] = {}
        self.variable_types: dict[str, str] = {}

    def pick(self, options: Sequence[_T]) -> _T:
        value: _T = self.draw(st.sampled_from(options))
        return value

    def either(self, tiers: Tiers) -> str:
        return self.pick(self.pick([t for t in tiers if t]))

    def chance(self, one_in: int) -> bool:
        hit: bool = self.draw(st.integers(0, one_in - 1)) == 0
        return hit

    def alias(self, forced: bool = False) -> str | None:
        if forced or (self.aliases < MAX_ALIASES and self.chance(5)):
            self.aliases += 1
            return f"a{self.aliases}"
        return None

    def fragment(self, on: str, selection: list[Selection]) -> Spread:
        name = f"F{len(self.fragments)}"
        self.fragments[name] = (on, selection)
        return Spread(name)

    def wrap(self, type_name: str, items: list[Selection]) -> list[Selection]:
        """Move some of ``items`` into inline fragments and named fragments."""
        how = self.draw(st.lists(st.integers(0, 5), min_size=len(items), max_size=len(items)))
        direct: list[Selection] = []
        inline: list[Selection] = []
        bare: list[Selection] = []
        named: list[Selection] = []
        for item, h in zip(items, how, strict=True):
            [direct, direct, direct, inline, bare, named][h].append(item)
        out = direct
        if inline:
            out.append(Inline(type_name, inline))
        if bare:
            out.append(Inline(None, bare))
        if named:
            out.append(self.fragment(type_name, named))
        return out

    def object(self, type_name: str, depth: int, hops: int) -> list[Selection]:
        """A selection on object type ``type_name`` whose fields sit at ``depth``."""
        gtype = SCHEMA.type_map[type_name]
        assert isinstance(gtype, GraphQLObjectType)
        names = sorted(n for n in gtype.fields if not n.startswith("_"))
        record = type_name in RECORD_TYPES
        most = min(5, max(self.budget, 0 if record else 1))
        picked: list[str] = self.draw(
            st.lists(st.sampled_from(names), min_size=min(1, most), max_size=most, unique=True)
        )
        if record and hops > 0 and self.pools.favour_relations and self.chance(2):
            relations = [
                n for n in names if get_named_type(gtype.fields[n].type).name in RELATION_TYPES
            ]
            if relations and not set(relations) & set(picked):
                picked.append(self.pick(relations))
        if type_name == "Involvement" and self.pools.favour_relations and len(picked) < 3:
            picked = ["role", "person", "incident"]
        if record and "id" not in picked:
            # the oracle needs to know which record each object is
            picked.insert(self.draw(st.integers(0, len(picked))), "id")
        items: list[Selection] = []
        for name in picked:
            self.budget -= 1
            named = get_named_type(gtype.fields[name].type)
            alias = self.alias(forced=(type_name, name) in CONFLICTING)
            if is_leaf_type(named):
                items.append(Field(name, alias))
                continue
            relation = named.name in RELATION_TYPES
            if depth + 1 > MAX_DEPTH or (relation and (hops == 0 or self.budget <= 0)):
                continue
            if isinstance(named, GraphQLUnionType):
                sub = self.union(named.name, depth + 1, hops - relation)
            else:
                sub = self.object(named.name, depth + 1, hops - relation)
            items.append(Field(name, alias, selection=sub))
        if not items:
            items.append(Field("__typename", self.alias()))
        return self.wrap(type_name, items)

    def union(self, union_name: str, depth: int, hops: int) -> list[Selection]:
        union = SCHEMA.type_map[union_name]
        assert isinstance(union, GraphQLUnionType)
        members = [t.name for t in union.types]
        # each member most of the time: a hit of a type the document does not ask about
        # shows nothing but its __typename
        chosen = [m for m in members if not self.chance(4)] or [self.pick(members)]
        per_member: list[Selection] = []
        for member in chosen:
            sub = self.object(member, depth, hops)
            if self.chance(3):
                per_member.append(self.fragment(member, sub))
            else:
                per_member.append(Inline(member, sub))
        typename: Selection = Field("__typename", self.alias())
        if self.chance(4):
            # a fragment on the union itself
            return [self.fragment(union_name, [typename, *per_member])]
        return [typename, *per_member]

    # -- root fields ---------------------------------------------------------------------------

    def search(self) -> Field:
        args: dict[str, Any] = {"text": self.either(self.pools.texts)}
        if self.chance(3):
            kinds = self.draw(st.lists(st.sampled_from(list(EntityKind)), min_size=1, unique=True))
            args["kinds"] = [Enum(k.value) for k in kinds]
        if self.chance(5):
            args["agencies"] = self.draw(
                st.lists(st.sampled_from(AGENCIES), min_size=1, max_size=3, unique=True)
            )
        if self.chance(3):
            args["limit"] = self.pick([1, 3, 10, 200])
        selection: list[Selection] = [
            Field("hits", self.alias(), {}, self.union("SearchHit", 3, self.hops))
        ]
        if self.chance(2):
            selection.append(Field("sources", self.alias(), {}, self.object("SourceStatus", 3, 0)))
        if self.chance(3):
            selection.append(Field("subjects", self.alias(), {}, self.subjects()))
        return Field("search", None, args, self.wrap("SearchResult", selection))

    def subjects(self) -> list[Selection]:
        """Subjects: their members as records, with the evidence that linked them."""
        person = self.object("Person", 5, self.hops)
        member: list[Selection] = [
            Field("person", None, {}, person),
            Field("linkedTo"),
            Field("score"),
            Field("evidence", None, {}, [Field("feature"), Field("level"), Field("weight")]),
        ]
        return [Field("id"), Field("members", None, {}, member)]

    def lookup(self) -> Field:
        type_name = self.pick(["Person", "Vehicle", "Incident"])
        root = type_name[0].lower() + type_name[1:]
        hub_id = self.either(self.pools.ids[type_name])
        return Field(root, None, {"id": hub_id}, self.object(type_name, 2, self.hops))

    def plate_reads(self) -> Field:
        args: dict[str, Any] = {"plate": self.either(self.pools.plates)}
        if self.chance(4):
            args["state"] = self.pick(["CA", "WA", "NV", "OR"])
        if self.chance(3):
            args["limit"] = self.pick([1, 2, 5, 50])
        return Field("plateReads", None, args, self.object("PlateRead", 2, self.hops - 1))

    def entities(self) -> Field:
        reps = []
        for _ in range(self.draw(st.integers(1, 3))):
            type_name = self.pick(RECORD_TYPES)
            reps.append({"__typename": type_name, "id": self.either(self.pools.ids[type_name])})
        name = f"r{len(self.variables)}"
        self.variables[name] = reps
        self.variable_types[name] = "[_Any!]!"
        return Field(
            "_entities",
            None,
            {"representations": Var(name, "[_Any!]!")},
            self.union("_Entity", 2, self.hops - 1),
        )


@st.composite
def documents(draw: Callable[[st.SearchStrategy[Any]], Any], pools: Pools) -> Document:
    """A query document of one or two data root fields, each over real records of the world,
    within the hub's cost limit (fewer hops until it is)."""
    for hops in range(MAX_HOPS, -1, -1):
        builder = _Builder(draw, pools, hops)
        makers = [builder.search, builder.search, builder.lookup, builder.plate_reads]
        makers.append(builder.entities)
        roots = [builder.pick(makers)() for _ in range(draw(st.integers(1, 2)))]
        if len(roots) > 1:
            for i, root in enumerate(roots):
                root.alias = f"root{i}"
        doc = Document(roots, builder.fragments, builder.variables, builder.variable_types)
        if estimate_cost(parse(doc.render()), None, doc.variables) <= MAX_COST:
            break
    return doc
