"""The presenters (resolvers.present): generated per class, they fill exactly the readable
fields, each converted as ``value`` converts it, and leave every other field null."""

from __future__ import annotations

import dataclasses
from typing import Any

import msgspec
from hypothesis import given, settings
from hypothesis import strategies as st

from hub import model
from resolvers import present as p
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
    agency = RECORDS[0].provenance.agency
    equal = msgspec.structs.replace(agency)
    assert equal is not agency
    first, again = p.value(agency), p.value(equal)
    assert first is again
    fresh = p._converter(model.Agency)(agency)
    assert fresh == first


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
    assert made > 3 * len(RECORDS)  # nested objects were checked, not only the records


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
