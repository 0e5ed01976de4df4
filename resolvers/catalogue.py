"""The access policy's catalogue, derived from the schema: never a list kept by hand.

Every field of a record type (``Person``, ``Vehicle``, ``Incident``, ``PlateRead``) and of
``Involvement`` is data a policy decides on. A field added to one of these types is in the
catalogue at once, and so withheld from every reader whose rules do not grant it (masks are
allow-lists, ``hub.access.policy``). A field marked ``metadata={"free_text": True}`` is never a
pointer's search key.
"""

from __future__ import annotations

import pathlib
from collections.abc import Iterable

from strawberry.schema.name_converter import NameConverter
from strawberry.types.base import StrawberryObjectDefinition
from strawberry.types.private import is_private

from hub.access.catalogue import INVOLVEMENT, TYPE_OF_KIND, Catalogue
from hub.access.policy import AccessPolicy, default_policy_dir
from resolvers import types as t

# The schema's data-bearing types, by the names policy gives them: the records, and a person's
# part in an incident.
RECORD_TYPES: tuple[type, ...] = tuple(
    getattr(t, name) for name in (*TYPE_OF_KIND.values(), INVOLVEMENT)
)
FREE_TEXT = "free_text"


def catalogue_of(types: Iterable[type]) -> Catalogue:
    """The catalogue of these strawberry types: each type's GraphQL name and field names."""
    names = NameConverter()
    fields: dict[str, tuple[str, ...]] = {}
    free_text: set[str] = set()
    for cls in types:
        definition = cls.__strawberry_definition__  # type: ignore[attr-defined]
        assert isinstance(definition, StrawberryObjectDefinition)
        type_name = names.from_object(definition)
        own = []
        for f in definition.fields:
            if is_private(f.type_annotation.resolve() if f.type_annotation else f.type):
                continue
            name = names.get_graphql_name(f)
            own.append(name)
            metadata: dict[str, object] = dict(f.metadata or {})
            if metadata.get(FREE_TEXT):
                free_text.add(f"{type_name}.{name}")
        fields[type_name] = tuple(own)
    expected = {*TYPE_OF_KIND.values(), INVOLVEMENT}
    if set(fields) != expected:
        raise TypeError(f"record types {sorted(fields)} are not the policy's {sorted(expected)}")
    return Catalogue(fields=fields, free_text=frozenset(free_text))


CATALOGUE = catalogue_of(RECORD_TYPES)


def load_policy(directory: pathlib.Path | None = None) -> AccessPolicy:
    """The access policy in ``directory`` (default: the shipped ``policies/``), checked against
    the schema's catalogue."""
    return AccessPolicy.load(directory or default_policy_dir(), CATALOGUE)
