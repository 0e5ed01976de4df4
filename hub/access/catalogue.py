"""What policy speaks of: the roles, the GraphQL types and fields, the actions.

Policy files name objects as the schema shows them (``Person`` for a whole person record,
``Person.ssn`` for one field, camelCase), so counsel reading a rule and a user reading the
schema see the same words. The fields come from the schema itself (``Catalogue``, derived by
``resolvers.catalogue``); the legal tags from the policy's own vocabulary (legal-tags.yaml). The
loader checks every rule against both, so a typo in a policy file is an error at load time, not a
silent gap.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from hub.model import EntityKind

ROLES: dict[str, str] = {
    "patrol": "Patrol officer: field stops, calls for service, hot-list checks.",
    "detective": "Detective: investigations of specific cases.",
    "analyst": "Crime analyst: link analysis and case support.",
    "dispatcher": "Dispatcher: officer safety checks for calls in progress.",
    "records": "Records clerk: record maintenance, sealing, background checks.",
    "supervisor": "Supervisor: oversight of the agency's users and cases.",
    "auditor": "Auditor: reviews use of the system; reads no criminal-justice content.",
    "partner-hub": "Service account of a partner hub, scoped to its own agency (its ORI).",
}

# The record type of each entity kind, as the schema names it.
TYPE_OF_KIND: dict[EntityKind, str] = {
    EntityKind.PERSON: "Person",
    EntityKind.VEHICLE: "Vehicle",
    EntityKind.INCIDENT: "Incident",
    EntityKind.PLATE_READ: "PlateRead",
}
KIND_OF_TYPE: dict[str, EntityKind] = {v: k for k, v in TYPE_OF_KIND.items()}

# The part a person plays in an incident (Person.incidents, Incident.involvedPersons). It is not a
# record of its own: it is decided with the tags the source put on the involvement.
INVOLVEMENT = "Involvement"


@dataclass(frozen=True, slots=True)
class Catalogue:
    """The data-bearing types and fields, as the GraphQL schema names them.

    Never written by hand: ``resolvers.catalogue`` derives it from the schema's record types, so
    a field added to the schema is a field the policy decides on (and, until a rule grants it,
    withholds: masks are allow-lists). ``free_text`` fields (an incident's narrative) are never
    matched for a pointer, whatever a rule says.
    """

    fields: Mapping[str, tuple[str, ...]]  # Type -> its fields, in schema order
    free_text: frozenset[str] = frozenset()  # "Incident.narrative"

    @property
    def objects(self) -> tuple[str, ...]:
        """Every object a rule may name: each type (the record as a whole) and each Type.field."""
        return tuple(
            obj
            for type_, names in self.fields.items()
            for obj in (type_, *(f"{type_}.{f}" for f in names))
        )


# The hub computes this tag itself when a record is older than its owner's retention limit.
RETENTION_EXPIRED = "retention-expired"
# The hub gives this tag to a record whose source put a restriction on it that the policy's tag
# vocabulary (policies/legal-tags.yaml) does not name: restricted until a policy names it.
UNRECOGNISED_RESTRICTION = "unrecognised-restriction"
# Tags the hub itself computes: the vocabulary must name them, so rules can speak of them.
COMPUTED_TAGS = frozenset({RETENTION_EXPIRED, UNRECOGNISED_RESTRICTION})

# Actions: `see` = learn that the record exists (a pointer); `read` on a type = the full record,
# on Type.field = that field's value; `find` on Type.field = a search may match a pointer on
# that field (the owner's consent to its pointer index; never a field withheld by a deny rule).
ACTIONS: frozenset[str] = frozenset({"see", "read", "find"})
