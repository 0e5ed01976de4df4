"""Vendor answers of the wrong shape: a protocol error that says where, never what the value was
(it may be CJI)."""

from __future__ import annotations

import msgspec
import pytest

from hub.adapters.http import convert_wire, decode_wire
from hub.errors import SourceProtocolError


class _Person(msgspec.Struct):
    surname: str
    born: int


def test_a_value_of_the_wrong_shape_names_its_path_not_its_value() -> None:
    with pytest.raises(SourceProtocolError) as raised:
        convert_wire("marin-rms", {"surname": "Villanueva", "born": "1987"}, _Person)
    assert raised.value.message == "vendor answer has the wrong shape at `$.born`"
    assert isinstance(raised.value.__cause__, msgspec.ValidationError)
    with pytest.raises(SourceProtocolError, match=r"^vendor answer has the wrong shape at \$$"):
        convert_wire("marin-rms", ["Villanueva"], _Person)


def test_a_body_is_decoded_straight_into_its_wire_form() -> None:
    assert decode_wire("hub", b'{"surname": "Reyes", "born": 1990}', _Person) == _Person(
        "Reyes", 1990
    )
    with pytest.raises(SourceProtocolError) as raised:
        decode_wire("hub", b'{"surname": 7, "born": 1990}', _Person, "partner hub answer")
    assert raised.value.message == "partner hub answer has the wrong shape at `$.surname`"
    with pytest.raises(SourceProtocolError, match=r"^partner hub answer is not valid JSON$"):
        decode_wire("hub", b'{"surname": "Villanueva"', _Person, "partner hub answer")
