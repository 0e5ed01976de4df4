"""The pattern functions policies/model.conf calls."""

from __future__ import annotations

from hub.access.matching import list_match, object_match, requester_match, tag_match


def test_list_patterns() -> None:
    assert list_match("C", "*")
    assert list_match("C", "C|X")
    assert not list_match("J", "C|X")
    assert list_match("patrol", "!records")
    assert not list_match("records", "!records")
    assert not list_match("records", "!records|auditor")


def test_object_globs() -> None:
    assert object_match("Person", "Person")
    assert not object_match("Person.ssn", "Person")  # the record, not its fields
    assert object_match("Person.ssn", "Person.*")
    assert not object_match("Person", "Person.*")
    assert object_match("Incident.narrative", "*.narrative")
    assert object_match("Vehicle.id", "*.id|*.provenance")
    assert not object_match("Vehicle.idx", "*.id")
    assert object_match("PlateRead", "*")


def test_tags() -> None:
    assert tag_match(frozenset(), "*")
    assert tag_match(frozenset({"sealed", "juvenile"}), "sealed")
    assert tag_match(frozenset({"juvenile"}), "sealed|juvenile")
    assert not tag_match(frozenset(), "sealed")
    assert tag_match(frozenset(), "!sealed")
    assert not tag_match(frozenset({"sealed"}), "!sealed")


def test_requester_relations() -> None:
    assert requester_match("CA0990000", "CA", "CA0990000", "CA", "self")
    assert not requester_match("CA0990000", "CA", "CA0990000", "CA", "other")
    assert requester_match("CA0990001", "CA", "CA0990000", "CA", "other|out-of-state")
    assert requester_match("CA0990001", "CA", "CA0990000", "CA", "in-state")
    assert requester_match("NV0990000", "NV", "CA0990000", "CA", "out-of-state")
    assert not requester_match("NV0990000", "NV", "CA0990000", "CA", "in-state")
    assert requester_match("WA0990100", "WA", "CA0990000", "CA", "WA0990100")
    assert not requester_match("WA0990100", "WA", "CA0990000", "CA", "!WA0990100|OR0990200")
