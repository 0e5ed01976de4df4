"""Estimated cost of a query: how many values it could make the hub fetch and return.

Every field costs 1; a list field multiplies the cost of what it selects by how many items it
may hold: its ``limit`` argument where it has one, otherwise a typical size for that
relationship. Depth and alias limits catch other shapes; this catches the wide ones (a search of
1,000 hits, each with every vehicle, each with every plate read…). Checked before execution, so
a refused query calls no vendor.
"""

from __future__ import annotations

import weakref
from collections.abc import Mapping
from typing import Any

from graphql import (
    DocumentNode,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    InlineFragmentNode,
    IntValueNode,
    OperationDefinitionNode,
    SelectionSetNode,
    VariableNode,
)

# List fields without a limit argument, and how many items each typically holds.
FAN_OUT: Mapping[str, int] = {
    "vehicles": 5,
    "incidents": 10,
    "plateReads": 50,
    "involvedPersons": 5,
    "involvedVehicles": 5,
    "aliases": 3,
    "addresses": 3,
    "offenses": 3,
    "sources": 1,  # listed once per request, bounded by configuration
    "records": 50,
    "withheld": 5,
    "members": 5,  # of a subject: together no more than the hits
    "evidence": 9,
}
# List fields whose size is their own (or their parent's) `limit` argument.
# searchStream: its hits across every payload are at most its limit, as search's.
LIMITED: Mapping[str, int] = {
    "search": 50, "searchStream": 50, "plateReads": 100, "auditEvents": 100,
}  # fmt: skip
MAX_FRAGMENT_DEPTH = 20


def _limit(field: FieldNode, variables: Mapping[str, Any], default: int) -> int:
    for arg in field.arguments or ():
        if arg.name.value != "limit":
            continue
        if isinstance(arg.value, IntValueNode):
            return int(arg.value.value)
        if isinstance(arg.value, VariableNode):
            value = variables.get(arg.value.name.value)
            if isinstance(value, int):
                return value
    return default


# Estimates already made: by the document's id (with a weak reference to it, so an id reused
# after the parse cache dropped the document is not mistaken for it), the operation's name and
# the integer variables, the only values an estimate reads (``_limit``).
_ESTIMATES: dict[tuple[int, str | None, tuple[tuple[str, int], ...]], tuple[Any, int]] = {}
MAX_ESTIMATES = 4096


def estimate_cost(
    document: DocumentNode, operation_name: str | None, variables: Mapping[str, Any] | None
) -> int:
    """``_estimate``, remembered per document, operation and integer variables."""
    ints = tuple(sorted((k, v) for k, v in (variables or {}).items() if isinstance(v, int)))
    key = (id(document), operation_name, ints)
    found = _ESTIMATES.get(key)
    if found is not None and found[0]() is document:
        cost: int = found[1]
        return cost
    cost = _estimate(document, operation_name, variables)
    if len(_ESTIMATES) >= MAX_ESTIMATES:
        _ESTIMATES.clear()
    _ESTIMATES[key] = (weakref.ref(document), cost)
    return cost


def _estimate(
    document: DocumentNode, operation_name: str | None, variables: Mapping[str, Any] | None
) -> int:
    variables = variables or {}
    fragments = {
        d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)
    }
    operations = [d for d in document.definitions if isinstance(d, OperationDefinitionNode)]
    if operation_name is not None:
        operations = [o for o in operations if o.name and o.name.value == operation_name]
    if not operations:
        return 0

    def cost(selection_set: SelectionSetNode | None, size: int, depth: int) -> int:
        """``size``: how many items the enclosing list may hold (for SearchResult.hits)."""
        if selection_set is None or depth > MAX_FRAGMENT_DEPTH:
            return 0
        total = 0
        for sel in selection_set.selections:
            if isinstance(sel, FieldNode):
                name = sel.name.value
                if name in LIMITED:
                    inner = _limit(sel, variables, LIMITED[name])
                    # search's own object is one SearchResult; its hits are the list
                    times = 1 if name in ("search", "searchStream") else inner
                    total += 1 + times * cost(sel.selection_set, inner, depth + 1)
                elif name in ("hits", "subjects", "vehicleSubjects"):
                    total += 1 + size * cost(sel.selection_set, 1, depth + 1)
                else:
                    times = FAN_OUT.get(name, 1)
                    total += 1 + times * cost(sel.selection_set, 1, depth + 1)
            elif isinstance(sel, InlineFragmentNode):
                total += cost(sel.selection_set, size, depth + 1)
            elif isinstance(sel, FragmentSpreadNode):
                frag = fragments.get(sel.name.value)
                if frag is not None:
                    total += cost(frag.selection_set, size, depth + 1)
        return total

    return cost(operations[0].selection_set, 1, 0)
