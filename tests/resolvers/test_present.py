"""The presenters (resolvers.present): generated per class, they fill exactly the readable
fields, each converted as ``value`` converts it, and leave every other field null."""

from __future__ import annotations

import dataclasses
import enum
from datetime import date, datetime
from typing import Any

import msgspec
from hypothesis import given, settings
from hypothesis import strategies as st

from hub import model
from resolvers import present as p
from resolvers import types as t
from tests.adapters.conformance import small_world

RECORDS = [r for records in small_world().records.values() for r in records]
KINDS = sorted({type(r) for r in RECORDS}, key=lambda k: k.__name__)


def _expected(record: model.Record, readable: frozenset[str]) -> dict[str, Any]:
    """What a presenter must hold, written the plain way: each plain field's canonical value
    through ``value`` when readable, else None."""
    spec = p.PRESENTERS[type(record)]
    return {
        f.python: p.value(getattr(record, f.canonical)) if f.graphql in readable else None
        for f in spec.plain
    }


def _held(shown: Any) -> dict[str, Any]:
    spec = p.PRESENTERS[type(shown._record)]
    return {f.python: getattr(shown, f.python) for f in spec.plain}


def test_every_kind_of_record_is_in_the_world() -> None:
    assert set(KINDS) == set(p.PRESENTERS)


@settings(max_examples=200, deadline=None)
@given(st.data())
def test_a_presenter_fills_the_readable_fields_and_nothing_else(data: st.DataObject) -> None:
    record = data.draw(st.sampled_from(RECORDS))
    names = sorted(f.graphql for f in p.PRESENTERS[type(record)].plain)
    readable = frozenset(data.draw(st.sets(st.sampled_from([*names, "unknownField"]))))
    shown = p.present(record, readable)
    assert _held(shown) == _expected(record, readable)
    assert shown.id == record.id
    assert shown._readable is readable
    assert p.provenance(record.provenance) == shown.provenance
    for name in names:
        if name not in readable:
            python = next(f.python for f in p.PRESENTERS[type(record)].plain if f.graphql == name)
            assert getattr(shown, python) is None


def test_shared_values_are_converted_once_and_equal_a_fresh_conversion() -> None:
    system = RECORDS[0].provenance.system
    equal = msgspec.structs.replace(system)
    assert equal is not system
    first, again = p.value(system), p.value(equal)
    assert first is again
    fresh = p._converter(model.SourceSystem)(system)
    assert fresh == first


def _read(v: Any) -> Any:
    """A value as GraphQL completion reads it: objects by their fields, sequences as lists."""
    if isinstance(v, list | tuple):
        return [_read(x) for x in v]
    if isinstance(v, enum.Enum):
        return v.value
    definition = getattr(getattr(t, type(v).__name__, None), "__strawberry_definition__", None)
    if definition is None or isinstance(v, date | datetime):
        return v
    return {f.python_name: _read(getattr(v, f.python_name)) for f in definition.fields}


def test_structs_held_as_they_are_read_as_their_conversion_would() -> None:
    """A nested struct the GraphQL layer holds unconverted (``_KEPT``) answers every field of
    its GraphQL type as the converted object would; structs with an enum inside, or with
    resolvers, are converted."""
    held = {k for k in p._KEPT if k.__module__ == model.__name__}
    assert {model.PersonName, model.Address, model.DriverLicense, model.Agency} <= held
    assert model.SourceSystem not in held  # its kind is an enum
    assert model.Provenance not in held  # it holds a SourceSystem
    assert not held & set(p.PRESENTERS)  # records are always presented (their masks)
    seen: set[type] = set()

    def check(v: Any) -> None:
        if isinstance(v, tuple | list):
            for x in v:
                check(x)
        elif type(v) in held:
            seen.add(type(v))
            assert _read(v) == _read(p._converter(type(v))(v))
        elif isinstance(v, msgspec.Struct):
            for name in v.__struct_fields__:
                check(getattr(v, name))

    for record in RECORDS:
        check(record)
        readable = frozenset(f.graphql for f in p.PRESENTERS[type(record)].plain)
        shown = p.present(record, readable)
        for f in p.PRESENTERS[type(record)].plain:
            assert _read(getattr(shown, f.python)) == _read(getattr(record, f.canonical))
    assert seen == held  # each was met in the world's records


@settings(max_examples=300, deadline=None)
@given(st.data())
def test_rank_is_the_score_of_a_record_that_matches_and_none_otherwise(
    data: st.DataObject,
) -> None:
    record = data.draw(st.sampled_from(RECORDS))
    searched = sorted(p.SEARCHED[type(record)])
    fields = frozenset(data.draw(st.lists(st.sampled_from(searched), unique=True)))
    # A search text made of the record's own words (matching or not, by the fields drawn), or
    # of words it does not hold.
    own = sorted(
        {
            w
            for vs in p.searchable_text(record, frozenset(searched)).values()
            for v in vs
            for w in p.words(v)
        }
    )
    text = " ".join(
        data.draw(st.lists(st.sampled_from([*own, "zzqx", "Reyes"]), min_size=1, max_size=3))
    )
    also = data.draw(st.lists(st.sampled_from(["Jordan Reyes", "Ana Cruz"]), max_size=2))
    words_of = p.Words()
    expected = (
        p.score(record, fields, text, also) if p.matches(record, fields, text, also) else None
    )
    assert p.rank(record, fields, text, also, words_of) == expected
    # A memo shared with other records of the same search changes nothing.
    assert p.rank(record, fields, text, also, words_of) == expected


def _objects(value: Any) -> list[Any]:
    """Every GraphQL object in a presented value, itself included (depth first)."""
    if isinstance(value, list):
        return [o for v in value for o in _objects(v)]
    if not dataclasses.is_dataclass(value) or isinstance(value, type):
        return []
    return [value, *(o for k, v in vars(value).items() if k != "_record" for o in _objects(v))]


def test_objects_made_by_their_dict_are_what_their_constructors_make() -> None:
    """Presenters and converters set an object's ``__dict__`` at once (``_by_dict``): each
    object, nested ones too, holds exactly what its class's ``__init__`` would have set."""
    made = 0
    for record in RECORDS:
        readable = frozenset(f.graphql for f in p.PRESENTERS[type(record)].plain)
        for shown in _objects(p.present(record, readable)):
            given = {f.name: getattr(shown, f.name) for f in dataclasses.fields(shown) if f.init}
            constructed = type(shown)(**given)
            assert vars(shown) == vars(constructed)
            assert list(vars(shown)) == list(vars(constructed))  # in the same order
            made += 1
    assert made >= 3 * len(RECORDS)  # nested objects were checked, not only the records


def _named(given: str, surname: str) -> model.Person:
    person = next(r for r in RECORDS if isinstance(r, model.Person))
    return msgspec.structs.replace(
        person, name=model.PersonName(given=given, surname=surname), aliases=()
    )


def test_letters_with_accents_match_as_their_ascii_letters() -> None:
    """A search written without the accents finds the record written with them, and the other
    way round (vendors differ in how they keep names)."""
    fields = frozenset({"name"})
    accented, plain = _named("José", "Muñoz"), _named("Jose", "Munoz")
    for record in (accented, plain):
        for text in ("Munoz", "Muñoz", "MUÑOZ", "jose munoz", "José Muñoz"):
            assert p.matches(record, fields, text), (record.name, text)
            assert p.rank(record, fields, text) is not None
        assert not p.matches(record, fields, "Mu oz")  # the letter is a letter, not a gap
    assert not p.matches(accented, fields, "Nunez")
    assert p.words("Ñandú Çelik") == {"nandu", "celik"}
