"""Canonical records to GraphQL objects, with a record's field mask applied once, here.

``readable`` holds the GraphQL field names of the record's type that the reader may read: an
allow-list. Every other field reads null, including one that no policy has heard of yet. This is
the only place record values are copied into the response, so a mask cannot be bypassed by
another path. The presenters are derived from the types (``resolvers.types``): a plain field
reads the canonical attribute of its own name (or its ``metadata={"model": ...}``); a nested
value is held as it is where its GraphQL type is plain fields of plain values (``_KEPT``: a
name, an address), else converted to the GraphQL class of the same name.
"""

from __future__ import annotations

import dataclasses
import enum
import re
import types
import typing
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

import msgspec
from anyascii import anyascii
from rapidfuzz import fuzz
from strawberry.schema.name_converter import NameConverter
from strawberry.types.private import is_private

from hub import model
from hub.access.catalogue import TYPE_OF_KIND
from resolvers import types as t

# The GraphQL type name of each kind: the policy's (one table for both). Kept under this name for
# resolvers.context, which reads it.

# -- converting canonical values ---------------------------------------------------------------

_SCALARS = frozenset({str, int, float, bool, date, datetime, type(None)})
_CONVERT: dict[type, Callable[[Any], Any]] = {}


def _held_as_is(candidates: Iterable[type]) -> frozenset[type]:
    """The canonical structs that the GraphQL layer may hold as they are, not converted: those
    whose GraphQL type of the same name has plain fields only (no resolver, no interface that
    would ask its type), each an attribute of the struct whose values are scalars, tuples of
    them, or structs held as they are. Never a record: a record is always presented, with its
    mask. Every field of such a type is then
    read (by strawberry's default resolver and by the compiled path alike) as the attribute of
    its name, with the very value the converted object would hold; a tuple completes as the
    list would. What it saves: one GraphQL object made per nested value (a person's name,
    licence, each address) per record, which completion then reads once and drops.

    Nested values carry no mask of their own (masks are per record field, applied in the
    record's presenter below), so holding them unconverted changes nothing a reader sees."""
    fields: dict[type, list[Any]] = {}
    for kind in candidates:
        target = getattr(t, kind.__name__, None)
        definition = getattr(target, "__strawberry_definition__", None)
        if definition is None or definition.interfaces or getattr(definition, "is_type_of", None):
            continue
        if any(f.base_resolver is not None for f in definition.fields):
            continue
        hints = typing.get_type_hints(kind)
        names = [f.python_name for f in definition.fields]
        if all(n in hints for n in names):
            fields[kind] = [hints[n] for n in names]
    held = set(fields)

    def plain(hint: Any) -> bool:
        origin = typing.get_origin(hint)
        if origin in (typing.Union, types.UnionType):
            return all(plain(a) for a in typing.get_args(hint))
        if origin is tuple:
            return all(a is Ellipsis or plain(a) for a in typing.get_args(hint))
        return hint in _SCALARS or hint in held

    changed = True
    while changed:  # the largest set closed under "every field plain"
        changed = False
        for kind in list(held):
            if not all(plain(h) for h in fields[kind]):
                held.discard(kind)
                changed = True
    return frozenset(held)


# Scalars and the structs held as they are: what presenting copies without converting.
_KEPT = _SCALARS | _held_as_is(
    k
    for k in vars(model).values()
    if isinstance(k, type) and issubclass(k, msgspec.Struct) and k not in model.KIND_OF
)


def value(v: Any) -> Any:
    """A canonical value as the GraphQL layer holds it: scalars and the structs of ``_KEPT`` as
    they are, other structs and enums converted to the GraphQL class of their name, tuples as
    lists."""
    kind = type(v)
    if kind in _KEPT:
        return v
    if kind is tuple:
        return [x if type(x) in _KEPT else value(x) for x in v]
    convert = _CONVERT.get(kind)
    if convert is None:
        convert = _CONVERT[kind] = _converter(kind)
    return convert(v)


def _plain_fields(cls: type) -> list[Any]:
    definition = cls.__strawberry_definition__  # type: ignore[attr-defined]
    return [
        f
        for f in definition.fields
        if f.base_resolver is None
        and not is_private(f.type_annotation.resolve() if f.type_annotation else f.type)
    ]


def _converter(kind: type) -> Callable[[Any], Any]:
    target = getattr(t, kind.__name__, None)
    if target is None:
        raise TypeError(f"no GraphQL type named {kind.__name__} for canonical {kind!r}")
    if issubclass(kind, enum.Enum):
        return lambda v: target(v.value)
    if issubclass(kind, msgspec.Struct):
        names = tuple(f.python_name for f in _plain_fields(target))
        convert: Callable[[Any], Any] = _generated(
            f"convert_{kind.__name__}",
            "v",
            _construction(target, _arguments(names, lambda n: f"v.{n}")),
            {"_target": target},
        )
        if kind in _SHARED:
            return _remembered(convert)
        return convert
    raise TypeError(f"cannot present a {kind!r}")


# Values that many records share (every record of a source has the same agency and system):
# converted once, then the same GraphQL object is handed out (nothing writes to them).
_SHARED = frozenset({model.Agency, model.SourceSystem})
MAX_SHARED = 4096


def _remembered(convert: Callable[[Any], Any]) -> Callable[[Any], Any]:
    known: dict[Any, Any] = {}

    def remembered(v: Any) -> Any:
        found = known.get(v)
        if found is None:
            if len(known) >= MAX_SHARED:
                known.clear()
            found = known[v] = convert(v)
        return found

    return remembered


def _arguments(names: Iterable[str], read: Callable[[str], str]) -> list[tuple[str, str]]:
    """(name, expression) per field: the expression copies the value read as it is when it is
    a scalar (most are), else converts it with ``value``: what ``value`` would do, without a
    call per scalar."""
    for name in names:
        if not name.isidentifier():
            raise TypeError(f"not a field name: {name!r}")
    return [(n, f"(_x if type(_x := {read(n)}) in _KEPT else _value(_x))") for n in names]


def _by_dict(cls: type) -> frozenset[str] | None:
    """The names an instance of ``cls`` holds after its ``__init__``, when that ``__init__`` is
    a plain dataclass's that does nothing but set each of them: no ``__post_init__``, no slots,
    and no field it sets other than those it takes. Then an instance may be made by setting its
    ``__dict__`` at once (half the time of the keyword call, which is most of presenting a
    record). None when that does not hold: the class is called."""
    if not dataclasses.is_dataclass(cls) or hasattr(cls, "__post_init__"):
        return None
    if any("__slots__" in vars(k) for k in cls.__mro__[:-1]):
        return None
    names: set[str] = set()
    for f in dataclasses.fields(cls):
        if f.init:
            names.add(f.name)
        elif f.default is not dataclasses.MISSING or f.default_factory is not dataclasses.MISSING:
            return None  # __init__ sets it too
    return frozenset(names)


def _construction(cls: type, arguments: list[tuple[str, str]]) -> str:
    """An expression making a ``_target`` (``cls``) of the (name, expression) pairs: its
    ``__dict__`` set at once where ``_by_dict`` allows (every field it takes given), else its
    keyword call."""
    if _by_dict(cls) == frozenset(n for n, _ in arguments):
        entries = ", ".join(f"{n!r}: {e}" for n, e in arguments)
        return f"_made(_new(_target), {{{entries}}})"
    return "_target(" + ", ".join(f"{n}={e}" for n, e in arguments) + ")"


def _made(instance: Any, attributes: dict[str, Any]) -> Any:
    instance.__dict__ = attributes
    return instance


def _generated(name: str, parameters: str, body: str, scope: dict[str, Any]) -> Any:
    """A function ``name(parameters): return body``, made once per class: the fields of a type
    are known when the module loads, so the per-record work is one expression (a generic loop
    over the names cost 3 x a direct construction)."""
    namespace: dict[str, Any] = {
        "_KEPT": _KEPT,
        "_value": value,
        "_new": object.__new__,
        "_made": _made,
        **scope,
    }
    exec(f"def {name}({parameters}):\n    return {body}\n", namespace)  # noqa: S102
    return namespace[name]


def agency(a: model.Agency) -> t.Agency:
    return t.Agency(ori=a.ori, name=a.name, state=a.state)


def provenance(p: model.Provenance) -> t.Provenance:
    converted: t.Provenance = value(p)
    return converted


# -- records -----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Plain:
    graphql: str  # "dateOfBirth": what policy and masks speak of
    python: str  # "date_of_birth": the GraphQL class's attribute
    canonical: str  # the canonical record's attribute


@dataclass(frozen=True, slots=True)
class _Presenter:
    cls: type
    plain: tuple[_Plain, ...]


def _presenter(cls: type) -> _Presenter:
    names = NameConverter()
    plain = tuple(
        _Plain(
            names.get_graphql_name(f), f.python_name, (f.metadata or {}).get("model", f.python_name)
        )
        for f in _plain_fields(cls)
        if f.python_name not in ("id", "provenance")
    )
    return _Presenter(cls, plain)


# Each canonical record class to the GraphQL type of its kind's name (``TYPE_OF_KIND``).
PRESENTERS: Mapping[type, _Presenter] = {
    cls: _presenter(getattr(t, TYPE_OF_KIND[kind])) for cls, kind in model.KIND_OF.items()
}


def _present_function(spec: _Presenter) -> Callable[[Any, frozenset[str]], Any]:
    """``present`` for one class: each plain field filled when its GraphQL name is readable,
    else None (the mask), in one generated expression."""
    for f in spec.plain:
        if not f.canonical.isidentifier():
            raise TypeError(f"not a field name: {f.canonical!r}")
    masked = [
        (
            f.python,
            f"((_x if type(_x := r.{f.canonical}) in _KEPT else _value(_x))"
            f" if {f.graphql!r} in readable else None)",
        )
        for f in spec.plain
    ]
    arguments = [
        ("id", "r.id"),  # strawberry.ID is a NewType: the str itself
        ("provenance", "_provenance(r.provenance)"),
        *masked,
        ("_record", "r"),
        ("_readable", "readable"),
    ]
    present_one: Callable[[Any, frozenset[str]], Any] = _generated(
        f"present_{spec.cls.__name__}",
        "r, readable",
        _construction(spec.cls, arguments),
        {"_target": spec.cls, "_provenance": provenance},
    )
    return present_one


_PRESENT: Mapping[type, Callable[[Any, frozenset[str]], Any]] = {
    cls: _present_function(spec) for cls, spec in PRESENTERS.items()
}


def present(
    record: model.Record, readable: frozenset[str]
) -> t.Person | t.Vehicle | t.Incident | t.PlateRead:
    """The record as a GraphQL object: the ``readable`` fields filled, every other one null."""
    shown: t.Person | t.Vehicle | t.Incident | t.PlateRead = _PRESENT[type(record)](
        record, readable
    )
    return shown


def pointer(r: model.Record) -> t.RecordPointer:
    owner = r.provenance.agency
    return t.RecordPointer(
        kind=t.EntityKind(model.kind_of(r).value), owner=agency(owner), contact=owner.contact
    )


# -- matching on what the reader may read ------------------------------------------------------
#
# A vendor matched a record on all of its fields; the hub shows a hit only when the search text
# matches it on the fields this reader may search (``RecordDecision.searchable_fields``: readable
# for a record, the owner's consent for a pointer), and ranks it on those fields alone. A hit
# whose match lies only in a withheld field (a victim's name, a narrative) would confirm that
# field's content; a rank computed on it would hint at it.

_WORD = re.compile(r"[A-Za-z0-9]+")


def _names(names: Iterable[model.PersonName]) -> list[str | None]:
    return [x for n in names for x in (n.given, n.middle, n.surname, n.suffix)]


# What a search can match, per Type.field: the field's searchable strings.
SEARCHED: dict[type, dict[str, Callable[[Any], list[str | None]]]] = {
    model.Person: {
        "name": lambda r: _names([r.name]),
        "aliases": lambda r: _names(r.aliases),
    },
    model.Vehicle: {
        "plate": lambda r: [r.plate.number if r.plate else None],
        "vin": lambda r: [r.vin],
    },
    model.Incident: {
        "number": lambda r: [r.number],
        "narrative": lambda r: [r.narrative],
        "location": lambda r: [r.location.address if r.location else None],
        "offenses": lambda r: [f"{o.code} {o.description}" for o in r.offenses],
    },
    model.PlateRead: {
        "plate": lambda r: [r.plate.number],
    },
}


def words(text: str | None) -> set[str]:
    return set(_words(text))


def _words(text: str | None) -> frozenset[str]:
    """Lower-case words; letters with accents are read as their ASCII letters (``anyascii``:
    Muñoz is munoz, José is jose), so a search written without them matches and one written
    with them matches a vendor's record written without."""
    if not text:
        return frozenset()
    if not text.isascii():
        text = anyascii(text)
    return frozenset(w.lower() for w in _WORD.findall(text))


class Words(dict[str | None, frozenset[str]]):
    """The words of each string met in one search (a surname is in every hit, the search text
    is matched against all of them), and the search text as a plate is written: one per
    search, so nothing a search read outlives it."""

    def __init__(self) -> None:
        super().__init__()
        self._compact: dict[str, str] = {}

    def __missing__(self, text: str | None) -> frozenset[str]:
        found = self[text] = _words(text)
        return found

    def compact(self, text: str) -> str:
        """The text as a plate or VIN is written, lower case (a search matched whole)."""
        found = self._compact.get(text)
        if found is None:
            found = self._compact[text] = model.normalise_plate(text).lower()
        return found


def searchable_text(record: model.Record, fields: frozenset[str]) -> dict[str, list[str]]:
    """The strings a search may match, of the given fields of the record."""
    return {
        name: [v for v in get(record) if v]
        for name, get in SEARCHED[type(record)].items()
        if name in fields
    }


def matches(
    record: model.Record, fields: frozenset[str], text: str, also: Iterable[str] = ()
) -> bool:
    """Whether ``text`` matches the record on ``fields``: each word of the search must be a
    word of those fields, or the whole text a plate or VIN. ``also``: more strings the reader
    may search the record by (the names of the people an incident involves, where the reader
    may read them).

    Words match exactly, never "nearly": a vendor returns what its own search matched, perhaps
    on a field the reader may not read (a narrative's "weapons"); a looser test here (the
    readable offence's "weapon") would then show a hit that exists only because of the hidden
    text. Spelling variants of a person are the subjects' business (``resolvers.subjects``),
    among hits found exactly."""
    return _matches_found(searchable_text(record, fields), text, also, Words())


def _matches_found(
    found: Mapping[str, list[str]], text: str, also: Iterable[str], words_of: Words
) -> bool:
    asked = words_of[text]
    if not asked:
        return True
    readable: set[str] = set()
    for strings in (*found.values(), also):
        for string in strings:
            readable |= words_of[string]
    if not readable:
        return False
    if words_of.compact(text) in readable:
        return True
    return asked <= readable


def rank(
    record: model.Record,
    fields: frozenset[str],
    text: str,
    also: Iterable[str] = (),
    words_of: Words | None = None,
) -> float | None:
    """``score`` of a record that ``matches``, None for one that does not (the record's
    searchable strings read once for both). ``words_of``: the search's own memo of words."""
    if words_of is None:
        words_of = Words()
    if type(record) is model.Person:
        return _rank_person(record, fields, text, also, words_of)
    found = searchable_text(record, fields)
    if not _matches_found(found, text, also, words_of):
        return None
    return _score_found(record, found, text, also)


def _rank_person(
    record: model.Person, fields: frozenset[str], text: str, also: Iterable[str], words_of: Words
) -> float | None:
    """``rank`` of a person, the names read once, in place: what ``searchable_text``,
    ``_matches_found`` and ``_score_found`` do for a person, without the dict of lists between
    them (the most common hit, a thousand of them in a wide search)."""
    names = [record.name] if "name" in fields else []
    if "aliases" in fields and record.aliases:
        names += record.aliases
    asked = words_of[text]
    if asked:
        readable: set[str] = set()
        for n in names:
            for part in (n.given, n.middle, n.surname, n.suffix):
                if part:
                    readable |= words_of[part]
        for string in also:
            if string:
                readable |= words_of[string]
        if not readable:
            return None
        if words_of.compact(text) not in readable and not asked <= readable:
            return None
    return max(
        (
            fuzz.token_set_ratio(
                text, " ".join(filter(None, (n.given, n.middle, n.surname, n.suffix)))
            )
            for n in names
        ),
        default=0.0,
    )


def matches_readable(record: model.Record, denied: frozenset[str], text: str) -> bool:
    """``matches`` on every searchable field but the ``denied`` ones."""
    return matches(record, frozenset(SEARCHED[type(record)]) - denied, text)


def score(
    record: model.Record, fields: frozenset[str], text: str, also: Iterable[str] = ()
) -> float:
    """How well ``text`` matches the record on ``fields`` (and ``also``) (0-100), to rank hits
    across sources; nothing else counts."""
    return _score_found(record, searchable_text(record, fields), text, also)


def _score_found(
    record: model.Record, found: Mapping[str, list[str]], text: str, also: Iterable[str]
) -> float:
    if isinstance(record, model.Person):
        names = ([record.name] if "name" in found else []) + (
            list(record.aliases) if "aliases" in found else []
        )
        return max(
            (
                fuzz.token_set_ratio(
                    text, " ".join(x for x in (n.given, n.middle, n.surname, n.suffix) if x)
                )
                for n in names
            ),
            default=0.0,
        )
    if isinstance(record, model.Incident):
        # A word somewhere in a narrative is weaker evidence than a number that matches.
        numbers = [fuzz.ratio(text, v) for v in found.get("number", ())]
        narrative = [0.9 * fuzz.partial_ratio(text, v) for v in found.get("narrative", ())]
        # The people involved: weaker evidence than the incident's own number.
        people = [0.9 * fuzz.token_set_ratio(text, name) for name in also]
        return max([*numbers, *narrative, *people], default=0.0)
    key = model.normalise_plate(text) if isinstance(record, model.PlateRead) else text.upper()
    return max((fuzz.ratio(key, v) for vs in found.values() for v in vs), default=0.0)
