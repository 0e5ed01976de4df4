"""A small case-management subgraph (Federation v2.9) that a partner gateway composes with the hub.

It owns cases; it knows people only by their hub id, and extends the hub's ``Person`` with
``cases``. A gateway resolves ``Case.subjects`` through the hub's ``_entities`` (the hub decides
what the user may see of each) and ``Person.cases`` through this subgraph's ``_entities``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import strawberry
import strawberry.federation
from strawberry import Info
from strawberry.asgi import GraphQL


@dataclass(frozen=True)
class CaseFile:
    number: str
    title: str
    subject_ids: tuple[str, ...]


@dataclass(frozen=True)
class CaseBook:
    cases: tuple[CaseFile, ...]

    def get(self, number: str) -> CaseFile | None:
        return next((c for c in self.cases if c.number == number), None)

    def naming(self, person_id: str) -> list[CaseFile]:
        return [c for c in self.cases if person_id in c.subject_ids]


@strawberry.federation.type(keys=["id"])
class Person:
    id: strawberry.ID

    @classmethod
    def resolve_reference(cls, info: Info[CaseBook, None], id: strawberry.ID) -> Person:
        return cls(id=id)

    @strawberry.field(description="Open cases naming this person.")
    def cases(self, info: Info[CaseBook, None]) -> list[Case]:
        return [Case.of(c) for c in info.context.naming(self.id)]


@strawberry.type
class Case:
    number: str
    title: str
    subject_ids: strawberry.Private[tuple[str, ...]]

    @classmethod
    def of(cls, case: CaseFile) -> Case:
        return cls(number=case.number, title=case.title, subject_ids=case.subject_ids)

    @strawberry.field(description="The people the case names; the hub says who they are.")
    def subjects(self) -> list[Person | None]:
        return [Person(id=strawberry.ID(i)) for i in self.subject_ids]


@strawberry.type
class Query:
    @strawberry.field
    def case(self, info: Info[CaseBook, None], number: str) -> Case | None:
        found = info.context.get(number)
        return Case.of(found) if found else None


SCHEMA = strawberry.federation.Schema(query=Query, federation_version="2.9")


class CasesApp(GraphQL[CaseBook, None]):
    def __init__(self, book: CaseBook) -> None:
        super().__init__(SCHEMA, graphql_ide=None)
        self.book = book

    async def get_context(self, request: Any, response: Any) -> CaseBook:
        return self.book
