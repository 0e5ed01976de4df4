"""The compiled execution path (``resolvers.compiled``) answers exactly as graphql-core does.

Differential: every document is executed by both executors and the responses compared as JSON
text (so key order counts too): data, errors (messages, paths, locations, codes, order) and
extensions, and what the operation left for the audit trail (what was withheld, by which rules,
where first; the criteria; every source's status and count).

- the hub's schema, over the no-leak tests' world and simulators: the schema-driven random
  documents of ``tests.resolvers.strategies`` (search, lookups, plateReads, _entities, fragments,
  aliases, unions, relationships), decorated at random with @include/@skip (literal and
  variable), for random subjects (agencies, roles, purposes);
- a small schema made to fail: nulls in non-null fields at every depth, lists with null items,
  values that do not coerce, unions, resolvers that raise, merged fields and fragments.

``hub bench differential`` runs the first part thousands of times.
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import difflib
import enum
import json
import os
import types
from collections.abc import AsyncIterator, Callable
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Annotated, Any

import pytest
import pytest_asyncio
import strawberry
import strawberry.scalars
from graphql import (
    ArgumentNode,
    BooleanValueNode,
    DirectiveNode,
    FieldNode,
    GraphQLError,
    NamedTypeNode,
    NameNode,
    NonNullTypeNode,
    OperationDefinitionNode,
    Undefined,
    VariableDefinitionNode,
    VariableNode,
    parse,
    print_ast,
    visit,
)
from graphql.language import Visitor
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bench.hubs import SEARCH_QUERY
from hub.settings import ExecutionSettings, Settings, load_settings
from resolvers.compiled import CompiledExecutor
from resolvers.context import HubContext, Services
from resolvers.schema import build_schema
from tests.conftest import HubServer, demo_settings, serve_hub, unthrottled
from tests.resolvers.strategies import Document, Pools, documents
from tests.resolvers.test_no_leak import WORLD, Asker, askers

pytestmark = pytest.mark.asyncio(loop_scope="module")

POOLS = Pools.of(WORLD)
# Per random test; `hub bench differential` runs thousands through the same tests.
EXAMPLES = int(os.environ.get("HUB_DIFFERENTIAL_EXAMPLES", "120"))


# -- running one document through both executors ---------------------------------------------


@dataclasses.dataclass(frozen=True)
class Executors:
    """The hub's schema twice, graphql-core's executor and the compiled one, over one hub."""

    hub: HubServer
    services: Services
    plain: strawberry.Schema
    compiled: strawberry.Schema

    def __repr__(self) -> str:
        return f"Executors({self.hub.url})"

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:
        printer.text(repr(self))


def schemas(base: Settings) -> tuple[strawberry.Schema, strawberry.Schema]:
    off = dataclasses.replace(base, execution=ExecutionSettings(compiled=False))
    on = dataclasses.replace(base, execution=ExecutionSettings(compiled=True))
    return build_schema(off), build_schema(on)


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def executors(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Executors]:
    base = unthrottled(demo_settings(tmp_path_factory.mktemp("compiled")))
    async for server in serve_hub(base, world=WORLD):
        # No answer cache: both runs call the vendors, so both report the same sources.
        services = dataclasses.replace(server.runtime.services, cache=None)
        plain, compiled = schemas(base)
        yield Executors(server, services, plain, compiled)


def _sources(statuses: list[Any]) -> list[tuple[Any, ...]]:
    return [(s.source, s.agency, s.status, s.count, s.message) for s in statuses]


# Fields whose values are when or how fast the network answered, not what the executor made.
CLOCKED = frozenset({"latencyMs", "retrievedAt"})


def _clocked_keys(text: str) -> frozenset[str]:
    """The response keys of the ``CLOCKED`` fields (aliased or not) in the document."""
    keys: set[str] = set()

    class Collect(Visitor):
        def enter_field(self, node: FieldNode, *_: Any) -> None:
            if node.name.value in CLOCKED:
                keys.add(node.alias.value if node.alias else node.name.value)

    with contextlib.suppress(GraphQLError):  # a syntax error: reported alike by both
        visit(parse(text), Collect())
    return frozenset(keys)


def _timeless(value: Any, keys: frozenset[str]) -> Any:
    """``value`` with every clocked value (a scalar under one of ``keys``) replaced by a mark."""
    if isinstance(value, dict):
        return {
            k: "<clock>" if k in keys and isinstance(v, (float, str)) else _timeless(v, keys)
            for k, v in value.items()
        }
    if isinstance(value, list):
        return [_timeless(v, keys) for v in value]
    return value


async def run(
    schema: strawberry.Schema,
    services: Services,
    asker: Asker,
    text: str,
    variables: dict[str, Any] | None,
) -> str:
    """The response as JSON text, and what the audit trail would be told, as JSON text."""
    ctx = HubContext(services, asker.context())
    # A copy each: strawberry's _entities writes into the representations it is given.
    result = await schema.execute(text, copy.deepcopy(variables), context_value=ctx)
    response: dict[str, Any] = {"data": _timeless(result.data, _clocked_keys(text))}
    if result.errors:
        response["errors"] = [e.formatted for e in result.errors]
    if result.extensions:
        extensions = dict(result.extensions)
        # How long a source took is the network's, not the executor's.
        # The order is the one in which sources were first touched: with two roots, the
        # network's (which root's vendors answered first), not the executor's.
        extensions["sources"] = sorted(
            ({k: v for k, v in s.items() if k != "latencyMs"} for s in extensions["sources"]),
            key=lambda s: str(s["source"]),
        )
        response["extensions"] = extensions
    audit = {
        "withheld": sorted(ctx.withheld.items()),
        "rules": sorted((k, sorted(v)) for k, v in ctx.withheld_rules.items()),
        "paths": sorted(ctx.withheld_paths.items()),
        "criteria": ctx.criteria,
        "sources": sorted(_sources(ctx.source_statuses()), key=str),
    }
    return json.dumps([response, audit], default=str)


async def assert_same(
    ex: Executors, asker: Asker, text: str, variables: dict[str, Any] | None
) -> str:
    expected = await run(ex.plain, ex.services, asker, text, variables)
    got = await run(ex.compiled, ex.services, asker, text, variables)
    if got != expected:
        lines = [json.dumps(json.loads(x), indent=1).splitlines() for x in (expected, got)]
        diff = "\n".join(difflib.unified_diff(*lines, "graphql-core", "compiled", lineterm=""))
        raise AssertionError(f"{asker}\n{text}\n{variables}\n{diff}")
    return got


# -- @include / @skip, drawn over a generated document -----------------------------------------

FLAG = "hubFlag"


def with_directives(text: str, draw: Callable[[st.SearchStrategy[Any]], Any]) -> str:
    """``text`` with @include/@skip on some of its fields: literal, or the variable $hubFlag."""
    document = parse(text)
    used = False

    class Decorate(Visitor):
        def enter_field(self, node: FieldNode, *_: Any) -> FieldNode | None:
            nonlocal used
            if draw(st.integers(0, 4)) != 0:
                return None
            name = draw(st.sampled_from(["include", "skip"]))
            if draw(st.booleans()):
                value: Any = VariableNode(name=NameNode(value=FLAG))
                used = True
            else:
                value = BooleanValueNode(value=draw(st.booleans()))
            argument = ArgumentNode(name=NameNode(value="if"), value=value)
            directive = DirectiveNode(name=NameNode(value=name), arguments=(argument,))
            return FieldNode(
                alias=node.alias,
                name=node.name,
                arguments=node.arguments,
                directives=(*(node.directives or ()), directive),
                selection_set=node.selection_set,
            )

    decorated = visit(document, Decorate())
    if used:
        definition = VariableDefinitionNode(
            variable=VariableNode(name=NameNode(value=FLAG)),
            type=NonNullTypeNode(type=NamedTypeNode(name=NameNode(value="Boolean"))),
            directives=(),
        )

        class Declare(Visitor):
            def enter_operation_definition(
                self, node: OperationDefinitionNode, *_: Any
            ) -> OperationDefinitionNode:
                return OperationDefinitionNode(
                    operation=node.operation,
                    name=node.name,
                    variable_definitions=(*(node.variable_definitions or ()), definition),
                    directives=node.directives,
                    selection_set=node.selection_set,
                )

        decorated = visit(decorated, Declare())
    return print_ast(decorated)


@st.composite
def cases(
    draw: Callable[[st.SearchStrategy[Any]], Any], pools: Pools
) -> tuple[str, dict[str, Any]]:
    doc: Document = draw(documents(pools))
    text = doc.render()
    variables = dict(doc.variables)
    if draw(st.booleans()):
        text = with_directives(text, draw)
        if f"${FLAG}" in text:
            variables[FLAG] = draw(st.booleans())
    return text, variables


DIFFERENTIAL = settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


@DIFFERENTIAL
@given(asker=askers, case=cases(POOLS))
async def test_compiled_answers_random_documents_as_graphql_core(
    executors: Executors, asker: Asker, case: tuple[str, dict[str, Any]]
) -> None:
    text, variables = case
    await assert_same(executors, asker, text, variables or None)


@DIFFERENTIAL
@given(asker=askers, case=cases(POOLS.planted()))
async def test_compiled_answers_the_planted_examples_as_graphql_core(
    executors: Executors, asker: Asker, case: tuple[str, dict[str, Any]]
) -> None:
    """The sealed record, the victim, Reyes across agencies: masks, pointers, FORBIDDEN_FIELD."""
    text, variables = case
    await assert_same(executors, asker, text, variables or None)


WORKED = """query Worked($on: Boolean!) { search(text: "Reyes") {
  hits { __typename
    ... on Person { n: name { given @include(if: $on) surname } dateOfBirth ssn
                    name { middle } provenance { agency { ori } system { name kind } } }
    ... on RecordPointer { kind owner { ori name } contact @skip(if: $on) } }
  sources { source status count message } } }"""


@pytest.mark.parametrize("on", [True, False])
async def test_the_worked_example_with_pointers_and_forbidden_fields(
    executors: Executors, on: bool
) -> None:
    asker = Asker("CA0990000", ("analyst",), "C")
    got = json.loads(await assert_same(executors, asker, WORKED, {"on": on}))
    response = got[0]
    hits = response["data"]["search"]["hits"]
    # The case is the one the hub is about: records, a pointer and a withheld SSN all met.
    assert {"Person", "RecordPointer"} <= {h["__typename"] for h in hits}
    codes = {e["extensions"]["code"] for e in response.get("errors", [])}
    assert "FORBIDDEN_FIELD" in codes
    assert all(("given" in h["n"]) is on for h in hits if h["__typename"] == "Person")


async def test_refusals_and_request_errors_are_graphql_core_s(executors: Executors) -> None:
    asker = Asker("CA0990000", ("analyst",), "C")
    for text in (
        '{ search(text: "Reyes") { hits { ... on Person { nope } } } }',  # validation
        '{ search(text: "Reyes", limit: -1) { sources { source } } }',  # a resolver's error
        '{ person(id: "nope") { id name { given } } }',
    ):
        await assert_same(executors, asker, text, None)
    await assert_same(
        executors, Asker("CA0990000", ("analyst",), "ZZ"), "{ sources { source } }", None
    )


# -- a schema made to fail, for the error paths the hub's records rarely take -------------------


@strawberry.enum
class Colour(enum.Enum):
    RED = "red"
    BLUE = "blue"


@strawberry.type
class Leaf:
    label: str
    maybe: str | None
    colour: Colour | None
    count: int
    ratio: float | None = None
    day: date | None = None  # a custom scalar (strawberry's Date)


@strawberry.type
class Box:
    name: str
    leaf: Leaf | None
    strict_leaf: Leaf
    leaves: list[Leaf] | None
    strict_leaves: list[Leaf]
    numbers: list[int | None] | None
    strict_numbers: list[int] | None

    @strawberry.field
    async def later(self) -> Leaf | None:
        return self.leaf

    @strawberry.field
    def broken(self) -> Leaf | None:
        raise ValueError("broken on purpose")


@strawberry.type
class Other:
    name: str
    extra: strawberry.scalars.JSON | None = None


Thing = Annotated[Box | Other, strawberry.union("Thing")]


@strawberry.interface
class Shape:
    name: str


@strawberry.type
class Circle(Shape):
    radius: float | None
    leaf: Leaf | None = None


@strawberry.type
class Square(Shape):
    side: int

    @strawberry.field
    def area(self) -> int:
        return self.side * self.side


@strawberry.type
class Hexagon(Shape):
    """Not in the schema: strawberry resolves a Hexagon to a type graphql-core does not know."""

    side: int


@strawberry.interface
class Picked:
    """An interface with a resolve_type of its own, which reads info and counts its calls: the
    compiled path must leave it to graphql-core, and call it no more often."""

    name: str

    @classmethod
    def resolve_type(cls, obj: Any, info: Any, _type: Any) -> str:
        PICKED_CALLS.append(type(obj).__name__)
        return "Dot" if info.path.key == "picked" else "Nothing"


PICKED_CALLS: list[str] = []


@strawberry.type
class Dot(Picked):
    size: int


def _leaf(n: int, bad: str = "") -> Leaf:
    leaf = Leaf(
        label=f"l{n}",
        maybe=None if n % 2 else f"m{n}",
        colour=Colour.RED,
        count=n,
        ratio=n / 2,
        day=date(2024, 1, n % 28 + 1),
    )
    if bad == "range":
        # Out of Int's 32 bits, not finite, not a date: errors, as graphql-core reports them.
        leaf.count = 2**31
        leaf.ratio = float("inf")
        leaf.day = "2024-01-01"  # type: ignore[assignment]
    elif bad == "coerced":
        # Values the coercions accept as something else: a bool as an Int, an int as a Float,
        # a datetime as a Date; and the edges of Int, accepted.
        leaf.count = True
        leaf.ratio = 3  # type: ignore[assignment]
        leaf.day = datetime(2024, 1, 2, 3, 4, tzinfo=UTC)
        if n % 2:
            leaf.count = -(2**31) if n % 4 == 1 else 2**31 - 1
    elif bad == "nan":
        leaf.count = 2.0  # type: ignore[assignment]
        leaf.ratio = float("nan")
        leaf.day = ValueError("an Exception as a custom scalar")  # type: ignore[assignment]
    elif bad == "label":
        leaf.label = None  # type: ignore[assignment]
    elif bad == "colour":
        leaf.colour = "green"  # type: ignore[assignment]
    elif bad == "count":
        leaf.count = "x"  # type: ignore[assignment]
    elif bad == "undefined":
        # graphql-core's Undefined reads as null: an error in a non-null field.
        leaf.maybe = Undefined
        leaf.label = Undefined
    return leaf


def _box(bad: str = "") -> Box:
    box = Box(
        name="box",
        leaf=ValueError("an Exception as a leaf") if bad == "exception" else _leaf(1, bad),  # type: ignore[arg-type]
        strict_leaf=_leaf(2, bad),
        leaves=[_leaf(3), _leaf(4, bad), _leaf(5)],
        strict_leaves=[_leaf(6), _leaf(7, bad)],
        numbers=[1, None, 3],
        strict_numbers=[1, None] if bad == "numbers" else [1, 2],
    )
    if bad == "undefined":
        box.leaves = [_leaf(3), Undefined, None]  # type: ignore[list-item]
        box.strict_leaves = [_leaf(6), Undefined]  # type: ignore[list-item]
        box.strict_numbers = (1, Undefined)  # type: ignore[assignment]
    elif bad == "tuple":
        # Tuples are lists to graphql-core, a generator too (any iterable but a str or mapping).
        box.leaves = (_leaf(3), None)  # type: ignore[assignment]
        # A generator is read once: the compiled path must not start one it may give up on.
        box.strict_leaves = (x for x in [_leaf(6), _leaf(7, "label")])  # type: ignore[assignment]
        box.numbers = (1, None, 3.0)  # type: ignore[assignment]
    return box


@strawberry.type
class Bag:
    """Unions and interfaces in plain fields (as the search's hits are): compiled."""

    things: list[Thing]
    maybe_thing: Thing | None
    strict_thing: Thing
    shapes: list[Shape | None]
    shape: Shape
    picked: list[Picked]


def _bag(bad: str) -> Bag:
    """Bad: a value of no type of the union (or of one not in the schema), an Exception as a
    value, nulls in non-null fields, values cast to a type of the union or interface."""
    extra: Any = {"k": [1]}
    things: list[Any] = [_box(), Other(name="other", extra=extra), _box(bad)]
    shapes: list[Any] = [Circle(name="c", radius=1.5, leaf=_leaf(9, bad)), None]
    shapes.append(Square(name="s", side=None if bad == "count" else 2))  # type: ignore[arg-type]
    maybe: Any = Other(name="maybe")
    strict: Any = _box(bad)
    if bad == "member":
        things.append(_leaf(8))
        shapes.append(_leaf(10))
        maybe = _leaf(11)
    elif bad == "numbers":
        shapes.append(Hexagon(name="h", side=6))
        strict = None
    elif bad == "exception":
        raised: Any = ValueError("an Exception as a value")
        things.append(Other(name="raised", extra=raised))
        things.append(Other(name=ValueError("an Exception as a name")))  # type: ignore[arg-type]
        shapes.append(ValueError("an Exception as a shape"))
        shapes.append(Circle(name="c", radius=None, leaf=ValueError("as a leaf")))  # type: ignore[arg-type]
        maybe = ValueError("an Exception as a thing")
    elif bad == "label":
        things.append(Other(name=None))  # type: ignore[arg-type]
    elif bad == "cast":
        things.append(strawberry.cast(Other, types.SimpleNamespace(name="cast", extra=None)))
        shapes.append(strawberry.cast(Square, types.SimpleNamespace(name="cast", side=3)))
        maybe = strawberry.cast(Box, types.SimpleNamespace(name="cast"))
    shape = Circle(name=None if bad == "label" else "one", radius=None)  # type: ignore[arg-type]
    return Bag(
        things=things,
        maybe_thing=maybe,
        strict_thing=strict,
        shapes=shapes,
        shape=shape,
        picked=[Dot(name="d", size=1)],
    )


@strawberry.type
class ToyQuery:
    @strawberry.field
    def box(self, bad: str = "") -> Box:
        return _box(bad)

    @strawberry.field
    def boxes(self, bad: str = "") -> list[Box | None]:
        return [_box(), _box(bad), None]

    @strawberry.field
    def things(self, bad: str = "") -> list[Thing]:
        return _bag(bad).things

    @strawberry.field
    def bag(self, bad: str = "") -> Bag:
        return _bag(bad)


TOY_TYPES = [Circle, Square, Dot]
TOY_PLAIN = strawberry.Schema(query=ToyQuery, types=TOY_TYPES)
TOY_COMPILED = strawberry.Schema(
    query=ToyQuery, types=TOY_TYPES, execution_context_class=CompiledExecutor
)

LEAF = "label maybe colour count ratio day __typename"
TOY_DOCUMENTS = [
    f'{{ box(bad: "$B") {{ name leaf {{ {LEAF} }} strictLeaf {{ {LEAF} }} }} }}',
    f'{{ boxes(bad: "$B") {{ leaves {{ {LEAF} }} strictLeaves {{ label count }} }} }}',
    '{ boxes(bad: "$B") { numbers strictNumbers name } }',
    f'{{ box(bad: "$B") {{ a: leaf {{ x: label label }} leaf {{ maybe }} later {{ {LEAF} }} }} }}',
    f'{{ box(bad: "$B") {{ broken {{ label }} leaf {{ ...L }} }} }} '
    f"fragment L on Leaf {{ {LEAF} }}",
    "{ things { __typename ... on Box { name strictLeaf { label colour } } "
    "... on Other { name } } }",
    'query($f: Boolean!) { box(bad: "$B") { leaf { label @include(if: $f) '
    "count @skip(if: $f) } } }",
    f'{{ box(bad: "$B") {{ strictLeaves {{ ... on Leaf {{ {LEAF} }} }} '
    f"strictLeaf {{ count }} }} }}",
    '{ box(bad: "$B") { leaf { __typename } } }',
    # unions and interfaces in plain fields: the runtime type resolved as graphql-core does
    '{ bag(bad: "$B") { things { __typename ... on Box { name strictLeaf { label colour } '
    "leaves { count } } ... on Other { name extra } } } }",
    '{ bag(bad: "$B") { things { ...B ... on Other { n: name name __typename } } } } '
    "fragment B on Box { strictNumbers leaf { ... on Leaf { label } } }",
    'query($f: Boolean!) { bag(bad: "$B") { things { t: __typename @skip(if: $f) '
    "... on Box @include(if: $f) { name } ... on Other { name @include(if: $f) } } } }",
    '{ bag(bad: "$B") { things { ... on Box { later { label } } ... on Other { name } } } }',
    '{ bag(bad: "$B") { things { ... on Other { name } } maybeThing { __typename '
    "... on Box { name } } } }",
    '{ bag(bad: "$B") { strictThing { ... on Box { leaf { label } } } '
    "maybeThing { ... on Other { name } } } }",
    '{ bag(bad: "$B") { shapes { __typename name ... on Circle { radius leaf { label count } } '
    "... on Square { side } } } }",
    '{ bag(bad: "$B") { shapes { ... on Shape { name } ... on Square { side area } } } }',
    '{ bag(bad: "$B") { shape { name ... on Circle { radius } } picked { __typename name '
    "... on Dot { size } } } }",
    '{ bag(bad: "$B") { shapes { __typename } a: shapes { name } } things { __typename } }',
]


@pytest.mark.parametrize(
    "bad",
    [
        "",
        "label",
        "colour",
        "count",
        "numbers",
        "member",
        "exception",
        "cast",
        "undefined",
        "tuple",
        "range",
        "coerced",
        "nan",
    ],
)
@pytest.mark.parametrize("document", TOY_DOCUMENTS)
async def test_errors_and_null_propagation_are_graphql_core_s(document: str, bad: str) -> None:
    text = document.replace("$B", bad)
    variables = {"f": bad == ""} if "$f" in text else None
    expected = await TOY_PLAIN.execute(text, variables)
    got = await TOY_COMPILED.execute(text, variables)

    def shown(result: Any) -> str:
        errors = [e.formatted for e in result.errors or []]
        return json.dumps({"data": result.data, "errors": errors})

    assert shown(got) == shown(expected)
    if bad in ("label", "count") and "strictLeaf {" in text and "$B" in document:
        assert expected.errors  # the failure the case is about did happen


async def test_a_resolve_type_of_its_own_is_left_to_graphql_core() -> None:
    text = "{ bag { picked { __typename name ... on Dot { size } } } }"
    calls = []
    for schema in (TOY_PLAIN, TOY_COMPILED):
        PICKED_CALLS.clear()
        result = await schema.execute(text)
        assert result.errors is None
        calls.append(list(PICKED_CALLS))
    assert calls[0] == calls[1] == ["Dot"]


async def test_an_operator_can_turn_the_compiled_path_off(tmp_path: Path) -> None:
    config = tmp_path / "hub.toml"
    config.write_text('mode = "demo"\n[execution]\ncompiled = false\n')
    assert load_settings(config, env={}).execution.compiled is False
    assert load_settings(None, env={}).execution.compiled is ExecutionSettings().compiled
    config.write_text('mode = "demo"\n[execution]\ncompiled = "yes"\n')
    with pytest.raises(Exception, match="true or false"):
        load_settings(config, env={})


class Observed(CompiledExecutor):
    """The compiled executor, telling which fields it compiled (by parent type and name), and
    which values of abstract types graphql-core completed (by the runtime type's name)."""

    compiled: set[str] = set()  # one observer per test run
    abstract: list[str] = []

    def _plan(self, parent_type: Any, grouped: Any) -> Any:
        plan = super()._plan(parent_type, grouped)
        for _name, details, complete in plan or ():
            if complete is not None:
                Observed.compiled.add(f"{parent_type.name}.{details[0].node.name.value}")
        return plan

    def complete_abstract_value(self, return_type: Any, *args: Any, **kwargs: Any) -> Any:
        Observed.abstract.append(return_type.name)
        return super().complete_abstract_value(return_type, *args, **kwargs)


async def test_the_plain_fields_of_records_are_compiled_and_relationships_are_not(
    executors: Executors,
) -> None:
    """The differential tests would pass if nothing were compiled: this one says what is."""
    schema = build_schema(dataclasses.replace(executors.hub.settings))
    schema.execution_context_class = Observed  # type: ignore[attr-defined]
    Observed.compiled.clear()
    text = """{ search(text: "Reyes") { hits { ... on Person { id name { given surname } ssn
      provenance { agency { ori } } vehicles { vin plate { number } } } }
      sources { source status } } }"""
    asker = Asker("CA0990000", ("analyst",), "C")
    await run(schema, executors.services, asker, text, None)
    assert {
        "Person.id",
        "Person.name",
        "Person.ssn",
        "Person.provenance",
        "Vehicle.vin",
        "Vehicle.plate",
        "SearchResult.sources",
    } <= Observed.compiled
    # Relationships read info (the gate, the loaders, FORBIDDEN_FIELD paths): graphql-core's.
    assert not Observed.compiled & {"Person.vehicles", "Query.search", "SearchResult.hits"}


async def test_the_hits_of_the_hot_search_query_are_compiled(executors: Executors) -> None:
    """The bench's search: every hit, whatever its type, completed compiled, none by
    graphql-core's complete_abstract_value; and the same response as graphql-core's."""
    schema = build_schema(dataclasses.replace(executors.hub.settings))
    schema.execution_context_class = Observed  # type: ignore[attr-defined]
    asker = Asker("CA0990000", ("analyst",), "C")
    for kinds in (None, ["VEHICLE", "INCIDENT", "PLATE_READ"]):
        variables = {"text": "Reyes", "kinds": kinds}
        await assert_same(executors, asker, SEARCH_QUERY, variables)
        Observed.compiled.clear()
        Observed.abstract.clear()
        got = json.loads(await run(schema, executors.services, asker, SEARCH_QUERY, variables))
        hits = got[0]["data"]["search"]["hits"]
        assert hits
        if kinds is None:
            assert {"Person", "RecordPointer"} <= {h["__typename"] for h in hits}
        assert {"SearchResult.hits", "SearchResult.sources"} <= Observed.compiled
        # graphql-core would complete each hit (complete_abstract_value, complete_object_value,
        # execute_fields): the hits' fields are compiled into the completer of hits itself.
        assert Observed.abstract == []
        assert not {"Person.name", "Person.id", "RecordPointer.kind"} & Observed.compiled
