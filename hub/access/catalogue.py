"""What policy speaks of: the roles, the GraphQL types and fields, the legal tags.

Policy files name objects as the schema shows them (``Person`` for a whole person record,
``Person.ssn`` for one field, camelCase), so counsel reading a rule and a user reading the
schema see the same words. The loader checks every rule against this catalogue, so a typo in a
policy file is an error at load time, not a silent gap.
"""

from __future__ import annotations

from hub.model import EntityKind, LegalTag

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

FIELDS: dict[str, tuple[str, ...]] = {
    "Person": (
        "id",
        "provenance",
        "name",
        "aliases",
        "dateOfBirth",
        "sex",
        "race",
        "height",
        "weight",
        "ssn",
        "driverLicense",
        "addresses",
        "phones",
        "cautions",
        "vehicles",
        "incidents",
    ),
    "Vehicle": (
        "id",
        "provenance",
        "vin",
        "plate",
        "make",
        "model",
        "year",
        "color",
        "registeredOwner",
        "plateReads",
    ),
    "Incident": (
        "id",
        "provenance",
        "number",
        "kind",
        "offenses",
        "occurredAt",
        "reportedAt",
        "location",
        "status",
        "narrative",
        "involvedPersons",
        "involvedVehicles",
    ),
    "PlateRead": (
        "id",
        "provenance",
        "plate",
        "readAt",
        "location",
        "camera",
        "confidence",
        "imageUrl",
        "vehicle",
    ),
    INVOLVEMENT: ("role", "person", "incident"),
}

# Every object a rule may name: each type (the record as a whole) and each Type.field.
OBJECTS: tuple[str, ...] = tuple(
    obj for type_, fields in FIELDS.items() for obj in (type_, *(f"{type_}.{f}" for f in fields))
)

# The hub computes this tag itself when a record is older than its owner's retention limit.
RETENTION_EXPIRED = "retention-expired"
TAGS: frozenset[str] = frozenset({*(t.value for t in LegalTag), RETENTION_EXPIRED})

# Actions: `see` = learn that the record exists (a pointer); `read` on a type = the full record,
# on Type.field = that field's value.
ACTIONS: frozenset[str] = frozenset({"see", "read"})
