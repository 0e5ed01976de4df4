"""The error tree is one table: every HubError subclass anywhere in the package has its own code
and HTTP status, and stands in ``hub.errors``'s table under its parent, with both."""

from __future__ import annotations

import importlib
import pkgutil
import re
from dataclasses import dataclass

import pytest

import hub
from hub import errors
from hub.errors import HubError

# "    │   ├── InvalidPurpose             INVALID_PURPOSE                400  whatever the query"
_ROW = re.compile(
    r"^    (?P<tree>(?:[│ ]   )*(?:[├└]── )?)"
    r"(?P<name>[A-Z]\w+)\s+(?P<code>[A-Z_]+)\s+(?P<status>\d{3})\b"
)


@dataclass(frozen=True)
class Row:
    name: str
    code: str
    status: int
    parent: str | None


def _table() -> dict[str, Row]:
    """The class rows of the docstring's tree: each with its parent by indentation."""
    assert errors.__doc__ is not None
    rows: dict[str, Row] = {}
    lineage: list[str] = []
    for line in errors.__doc__.splitlines():
        if line.strip().startswith("codes with no class"):
            break
        found = _ROW.match(line)
        if found is None:
            continue
        depth = len(found["tree"]) // 4
        del lineage[depth:]
        parent = lineage[-1] if lineage else None
        rows[found["name"]] = Row(found["name"], found["code"], int(found["status"]), parent)
        lineage.append(found["name"])
    return rows


def _every_error_class() -> list[type[HubError]]:
    for module in pkgutil.walk_packages(hub.__path__, "hub."):
        importlib.import_module(module.name)
    found: list[type[HubError]] = []
    todo: list[type[HubError]] = [HubError]
    while todo:
        cls = todo.pop()
        found.append(cls)
        todo.extend(cls.__subclasses__())
    return sorted(set(found), key=lambda c: c.__name__)


def test_the_table_reads_as_a_tree() -> None:
    rows = _table()
    assert rows["HubError"] == Row("HubError", "INTERNAL", 500, None)
    assert rows["InvalidId"].parent == "InvalidInput"
    assert rows["ConfigError"].parent == "HubError"
    assert len(rows) >= 30


@pytest.mark.parametrize("cls", _every_error_class(), ids=lambda c: c.__name__)
def test_every_error_class_has_a_code_a_status_and_a_row(cls: type[HubError]) -> None:
    # Its own, not inherited: a new class decides both.
    assert isinstance(vars(cls).get("code"), str), f"{cls.__name__} sets no code"
    assert isinstance(vars(cls).get("http_status"), int), f"{cls.__name__} sets no http_status"
    assert 200 <= cls.http_status <= 599
    row = _table().get(cls.__name__)
    assert row is not None, f"{cls.__name__} ({cls.__module__}) is not in hub.errors's table"
    assert (row.code, row.status) == (cls.code, cls.http_status)
    if cls is not HubError:
        assert row.parent == cls.__bases__[0].__name__


def test_every_row_is_a_class() -> None:
    names = {cls.__name__ for cls in _every_error_class()}
    assert set(_table()) <= names


def test_a_refusal_before_execution_is_4xx_and_an_unforeseen_one_5xx() -> None:
    classes = {cls.__name__: cls for cls in _every_error_class()}
    assert {name: classes[name].http_status for name in (
        "AuthenticationError", "UnknownAgency", "HubLoop", "BodyTooLarge", "RateLimited",
        "AuditUnavailable", "HubError",
    )} == {
        "AuthenticationError": 401, "UnknownAgency": 403, "HubLoop": 409, "BodyTooLarge": 413,
        "RateLimited": 429, "AuditUnavailable": 503, "HubError": 500,
    }  # fmt: skip
