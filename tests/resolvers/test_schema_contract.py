"""The schema contract: ``schema.graphql`` at the repository root is the SDL frontends and
gateways build against, exactly what ``hub schema`` prints (the Federation v2 subgraph SDL, the
same text as ``_service { sdl }``).

- A change to the served schema that would break a client built on the committed file (a type,
  field, argument or enum value removed, a type changed, an argument made required, ...) fails
  here, by graphql-core's ``find_breaking_changes``, until it is accepted on purpose.
- Any other change (an addition, a dangerous change, a description) fails too until the file is
  regenerated: the contract is the file, so it must say what is served.

To accept a change: run ``hub schema > schema.graphql`` and commit the file with the change. A
breaking change needs more than that: tell the frontends and gateways that consume the file (a
gateway may no longer compose), and say so in the change.
"""

from __future__ import annotations

import dataclasses
import difflib
import os
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner
from graphql import (
    BreakingChange,
    BreakingChangeType,
    DocumentNode,
    EnumTypeDefinitionNode,
    FieldDefinitionNode,
    GraphQLSchema,
    NonNullTypeNode,
    ObjectTypeDefinitionNode,
    TypeDefinitionNode,
    find_breaking_changes,
    find_dangerous_changes,
    graphql_sync,
    parse,
    print_ast,
)
from graphql import build_schema as schema_from_sdl

from hub import cli
from resolvers.schema import build_schema
from tests.conftest import demo_settings

COMMITTED = Path(__file__).resolve().parents[2] / "schema.graphql"
ACCEPT = "hub schema > schema.graphql"


def _live_sdl(tmp_path: Path) -> str:
    """The SDL the hub serves, as ``hub schema`` prints it (click.echo adds the newline)."""
    return build_schema(demo_settings(tmp_path)).as_str() + "\n"


def _from_sdl(sdl: str) -> GraphQLSchema:
    # The subgraph SDL applies @link and @key without declaring them (gateways know them), which
    # graphql-core's SDL validation would refuse: the types and fields are what is compared.
    return schema_from_sdl(sdl, assume_valid_sdl=True)


def _committed() -> str:
    if not COMMITTED.exists():
        pytest.fail(f"{COMMITTED.name} is missing: run `{ACCEPT}` at the repository root")
    return COMMITTED.read_text(encoding="utf-8")


def _breaks(committed: GraphQLSchema, live: GraphQLSchema) -> list[BreakingChange]:
    return find_breaking_changes(committed, live)


def _breaking_message(changes: list[BreakingChange]) -> str:
    listed = "\n".join(f"  {c.type.name}: {c.description}" for c in changes)
    return (
        f"the served schema breaks the contract in {COMMITTED.name}:\n{listed}\n"
        "Clients and gateways built on the committed schema would fail. If the break is "
        "deliberate, tell the frontends and gateways that consume the file, then accept it: "
        f"run `{ACCEPT}` at the repository root and commit the file with the change."
    )


# -- the contract ----------------------------------------------------------------------------


def test_the_served_schema_breaks_nothing_in_the_committed_one(tmp_path: Path) -> None:
    live = build_schema(demo_settings(tmp_path))
    changes = _breaks(_from_sdl(_committed()), live._schema)
    assert not changes, _breaking_message(changes)


def _unaccepted(committed: str, live: str) -> str | None:
    """Why the committed file is not the served schema, or None when it is."""
    if committed == live:
        return None
    dangerous = find_dangerous_changes(_from_sdl(committed), _from_sdl(live))
    warn = "".join(f"\n  dangerous, {c.type.name}: {c.description}" for c in dangerous)
    diff = difflib.unified_diff(
        committed.splitlines(keepends=True),
        live.splitlines(keepends=True),
        f"{COMMITTED.name} (committed)",
        "hub schema (served)",
    )
    return (
        f"{COMMITTED.name} is not the schema the hub serves (additions, dangerous changes and "
        f"descriptions are part of the contract too){warn}\n"
        f"Run `{ACCEPT}` at the repository root and commit it.\n" + "".join(list(diff)[:60])
    )


def test_the_committed_schema_is_what_hub_schema_prints(tmp_path: Path) -> None:
    problem = _unaccepted(_committed(), _live_sdl(tmp_path))
    assert problem is None, problem


def test_hub_schema_prints_the_schema_the_hub_serves(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The same text a gateway reads from a running hub to compose it.
    served = graphql_sync(build_schema(demo_settings(tmp_path))._schema, "{ _service { sdl } }")
    assert served.errors is None, served.errors
    assert served.data is not None
    assert served.data["_service"]["sdl"] + "\n" == _live_sdl(tmp_path)
    # What a developer runs to accept a change: no setting from their shell changes it.
    for name in list(os.environ):
        if name.startswith("HUB_") or name == "REDIS_URL":
            monkeypatch.delenv(name)
    result = CliRunner().invoke(cli.main, ["schema"], env={"HUB_VAR_DIR": str(tmp_path / "v")})
    assert result.exit_code == 0, result.output
    assert result.output == _live_sdl(tmp_path)


# -- the check catches what it is for -------------------------------------------------------


def _edit(sdl: str, type_name: str, change: Callable[[object], object]) -> str:
    """The SDL with one type definition changed, as a developer's edit would change it."""
    document = parse(sdl)

    def named(d: object) -> bool:
        return isinstance(d, TypeDefinitionNode) and d.name.value == type_name

    assert any(named(d) for d in document.definitions), f"no type {type_name} to edit"
    edited: DocumentNode = dataclasses.replace(
        document,
        definitions=tuple(change(d) if named(d) else d for d in document.definitions),
    )
    return print_ast(edited)


def _without_field(name: str) -> Callable[[object], object]:
    def change(node: object) -> object:
        assert isinstance(node, ObjectTypeDefinitionNode)
        assert any(f.name.value == name for f in node.fields), f"no field {name}"
        return dataclasses.replace(
            node, fields=tuple(f for f in node.fields if f.name.value != name)
        )

    return change


def _argument_required(field: str, argument: str) -> Callable[[object], object]:
    def required(f: FieldDefinitionNode) -> FieldDefinitionNode:
        if f.name.value != field:
            return f
        args = tuple(
            dataclasses.replace(a, type=NonNullTypeNode(type=a.type))
            if a.name.value == argument and not isinstance(a.type, NonNullTypeNode)
            else a
            for a in f.arguments
        )
        assert args != f.arguments, f"no nullable argument {field}({argument}:)"
        return dataclasses.replace(f, arguments=args)

    def change(node: object) -> object:
        assert isinstance(node, ObjectTypeDefinitionNode)
        return dataclasses.replace(node, fields=tuple(required(f) for f in node.fields))

    return change


def _field_nullable(name: str) -> Callable[[object], object]:
    def nullable(f: FieldDefinitionNode) -> FieldDefinitionNode:
        if f.name.value != name:
            return f
        assert isinstance(f.type, NonNullTypeNode), f"{name} is nullable already"
        return dataclasses.replace(f, type=f.type.type)

    def change(node: object) -> object:
        assert isinstance(node, ObjectTypeDefinitionNode)
        return dataclasses.replace(node, fields=tuple(nullable(f) for f in node.fields))

    return change


def _without_value(name: str) -> Callable[[object], object]:
    def change(node: object) -> object:
        assert isinstance(node, EnumTypeDefinitionNode)
        assert any(v.name.value == name for v in node.values), f"no value {name}"
        return dataclasses.replace(
            node, values=tuple(v for v in node.values if v.name.value != name)
        )

    return change


@pytest.mark.parametrize(
    ("type_name", "change", "kind", "says"),
    [
        ("Person", _without_field("ssn"), BreakingChangeType.FIELD_REMOVED, "Person.ssn"),
        (
            "Query",
            _argument_required("plateReads", "state"),
            BreakingChangeType.ARG_CHANGED_KIND,
            "Query.plateReads(state:)",
        ),
        ("Agency", _field_nullable("ori"), BreakingChangeType.FIELD_CHANGED_KIND, "Agency.ori"),
        (
            "SourceOutcome",
            _without_value("NO_HIT"),
            BreakingChangeType.VALUE_REMOVED_FROM_ENUM,
            "NO_HIT",
        ),
    ],
    ids=["field-removed", "argument-made-required", "field-made-nullable", "enum-value-removed"],
)
def test_a_breaking_change_fails_the_contract_and_says_how_to_accept_it(
    type_name: str, change: Callable[[object], object], kind: BreakingChangeType, says: str
) -> None:
    committed = _committed()
    changed = _from_sdl(_edit(committed, type_name, change))
    changes = _breaks(_from_sdl(committed), changed)
    assert [c.type for c in changes] == [kind]
    message = _breaking_message(changes)
    assert says in message
    assert ACCEPT in message


def _insert_after(sdl: str, line: str, new: str) -> str:
    """The SDL as printed, with one line added after ``line`` (the rest byte for byte)."""
    assert sdl.count(line + "\n") == 1, f"no single line {line!r}"
    return sdl.replace(line + "\n", f"{line}\n{new}\n", 1)


def test_an_addition_or_a_dangerous_change_breaks_nothing_but_must_be_committed() -> None:
    committed = _committed()
    assert _unaccepted(committed, committed) is None
    added = _insert_after(committed, "type Agency {", "  badge: String")
    assert _breaks(_from_sdl(committed), _from_sdl(added)) == []
    problem = _unaccepted(committed, added)
    assert problem is not None
    assert ACCEPT in problem
    assert "\n+  badge: String\n" in problem
    # A dangerous change (a new enum value: a client's exhaustive switch meets it) is named.
    valued = _insert_after(committed, "enum SourceOutcome {", "  PARTIAL")
    assert _breaks(_from_sdl(committed), _from_sdl(valued)) == []
    problem = _unaccepted(committed, valued)
    assert problem is not None
    assert "dangerous, VALUE_ADDED_TO_ENUM: Enum value SourceOutcome.PARTIAL was added." in problem
