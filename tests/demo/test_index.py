"""The demo vendors' shared lookup (``hub.demo.index``)."""

from __future__ import annotations

import msgspec

from hub.demo.index import RecordIndex, words
from hub.model import EntityKind, Person, PersonName
from tests.adapters.conformance import small_world


def test_a_name_is_found_with_or_without_its_accents() -> None:
    template = next(r for rs in small_world().records.values() for r in rs if isinstance(r, Person))
    muñoz = msgspec.structs.replace(
        template, name=PersonName(given="José", surname="Muñoz"), aliases=()
    )
    index = RecordIndex([muñoz])
    for text in ("Munoz", "Muñoz", "jose MUNOZ", "José"):
        assert index.search(text, [EntityKind.PERSON]) == [muñoz], text
    assert index.search("Mu", [EntityKind.PERSON]) == []
    assert words("Muñoz-Peña") == {"munoz", "pena"}
