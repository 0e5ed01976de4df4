"""The query document: which root fields and which Type.fields it asks for, and the caches that
parse, validate and read each distinct query text once.

The caches are module-level LRUs shared by every request (strawberry makes fresh extensions per
request): keyed by the query text, since graphql-core hashes the whole AST on every lookup of a
parsed document, and the text is the same key, cheaper.
"""

from __future__ import annotations

import functools
from collections import OrderedDict
from collections.abc import Iterator, Sequence
from typing import Any

from graphql import (
    DocumentNode,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLError,
    InlineFragmentNode,
    OperationDefinitionNode,
    SelectionSetNode,
    TypeInfo,
    TypeInfoVisitor,
    Visitor,
    parse,
    visit,
)
from strawberry.schema.schema import validate_document

# Distinct documents whose parse, validation and selected fields are kept (LRU).
DOCUMENT_CACHE = 512

# A syntax error is raised as GraphQLError and not remembered; parse options (max_tokens) are
# part of the key.
parse_document = functools.lru_cache(maxsize=DOCUMENT_CACHE)(parse)


def root_fields(document: DocumentNode, operation_name: str | None) -> set[str]:
    """The root fields the operation asks for (the first one, when none is named)."""
    fragments = {
        d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)
    }
    operations = [d for d in document.definitions if isinstance(d, OperationDefinitionNode)]
    if operation_name is not None:
        operations = [o for o in operations if o.name and o.name.value == operation_name]
    names: set[str] = set()

    def walk(selection_set: SelectionSetNode, seen: frozenset[str]) -> Iterator[str]:
        for sel in selection_set.selections:
            if isinstance(sel, FieldNode):
                yield sel.name.value
            elif isinstance(sel, InlineFragmentNode):
                yield from walk(sel.selection_set, seen)
            elif isinstance(sel, FragmentSpreadNode):
                frag = fragments.get(sel.name.value)
                if frag is not None and sel.name.value not in seen:
                    yield from walk(frag.selection_set, seen | {sel.name.value})

    for op in operations[:1]:
        names.update(walk(op.selection_set, frozenset()))
    return names


_SELECTED: OrderedDict[str, frozenset[str]] = OrderedDict()


def selected_fields_of(schema: Any, query: str | None, document: DocumentNode) -> frozenset[str]:
    """``selected_fields``, remembered per query text (the parse cache makes the document)."""
    if query is None:
        return frozenset(selected_fields(schema, document))
    found = _SELECTED.get(query)
    if found is None:
        found = _SELECTED[query] = frozenset(selected_fields(schema, document))
        if len(_SELECTED) > DOCUMENT_CACHE:
            _SELECTED.popitem(last=False)
    else:
        _SELECTED.move_to_end(query)
    return found


def selected_fields(schema: Any, document: DocumentNode) -> set[str]:
    """Every Type.field the document selects (through fragments and unions too)."""
    type_info = TypeInfo(schema._schema)
    found: set[str] = set()

    class Collect(Visitor):
        def enter_field(self, node: FieldNode, *_: Any) -> None:
            parent = type_info.get_parent_type()
            if parent is not None:
                found.add(f"{parent.name}.{node.name.value}")

    visit(document, TypeInfoVisitor(type_info, Collect()))
    return found


_VALIDATED: OrderedDict[tuple[Any, str, tuple[Any, ...]], list[GraphQLError]] = OrderedDict()


def validation_errors(
    schema: Any, query: str, document: DocumentNode, rules: Sequence[Any]
) -> list[GraphQLError]:
    """The document's validation errors, remembered per (schema, query text, rules)."""
    key = (schema, query, tuple(rules))
    errors = _VALIDATED.get(key)
    if errors is None:
        errors = validate_document(schema._schema, document, key[2])
        _VALIDATED[key] = errors
        if len(_VALIDATED) > DOCUMENT_CACHE:
            _VALIDATED.popitem(last=False)
    else:
        _VALIDATED.move_to_end(key)
    return errors
