"""What live results are made of: watches, deliveries, hot-list entries and alerts.

msgspec structs, like the records they carry (``hub.model``): they are sealed into Redis as JSON
(``hub.live.store``) and read back by any worker.
"""

from __future__ import annotations

import enum
from datetime import UTC, datetime

import msgspec

from hub.context import RequestContext, Subject
from hub.model import PlateRead, Record, normalise_plate


class Target(enum.StrEnum):
    PERSON = "PERSON"  # a person record: watched by name (and date of birth)
    PLATE = "PLATE"  # a plate, optionally of one state
    TEXT = "TEXT"  # universal-search text


# NCIC-style hot-list reason codes (the NCIC files and alerts an ALPR hot list is built from).
REASONS: dict[str, str] = {
    "STOLEN_VEHICLE": "Stolen vehicle (NCIC Vehicle File)",
    "STOLEN_PLATE": "Stolen licence plate (NCIC License Plate File)",
    "WANTED_PERSON": "Vehicle associated with a wanted person (NCIC Wanted Person File)",
    "MISSING_PERSON": "Vehicle associated with a missing person (NCIC Missing Person File)",
    "AMBER_ALERT": "AMBER alert: vehicle associated with an abducted child",
    "PROTECTION_ORDER": "Subject of a protection order (NCIC Protection Order File)",
    "SEX_OFFENDER": "Registered sex offender (NCIC NSOR)",
    "GANG": "Gang member (NCIC Gang File)",
    "SUPERVISED_RELEASE": "On supervised release (NCIC Supervised Release File)",
    "KNOWN_OR_SUSPECTED_TERRORIST": "Known or suspected terrorist (NCIC KST File)",
}


class Watcher(msgspec.Struct, frozen=True, kw_only=True):
    """Who stands behind a watch: what of the token policy decides on, kept with the watch so
    that a delivery is decided for this user, with these roles, at delivery time."""

    user_id: str
    name: str
    ori: str
    state: str
    roles: tuple[str, ...]
    attributes: tuple[str, ...] = ()

    @classmethod
    def of(cls, subject: Subject) -> Watcher:
        return cls(
            user_id=subject.user_id,
            name=subject.name,
            ori=subject.ori,
            state=subject.state,
            roles=tuple(sorted(subject.roles)),
            attributes=tuple(sorted(subject.attributes)),
        )

    def subject(self) -> Subject:
        return Subject(
            user_id=self.user_id,
            name=self.name,
            ori=self.ori,
            state=self.state,
            roles=frozenset(self.roles),
            attributes=frozenset(self.attributes),
        )

    @property
    def key(self) -> str:
        return f"{self.ori}/{self.user_id}"


class Watch(msgspec.Struct, frozen=True, kw_only=True):
    """A standing query: new records matching it are delivered to its watcher until ``until``."""

    id: str
    watcher: Watcher
    purpose: str
    case_number: str
    target: Target
    text: str  # the name (PERSON), the normalised plate (PLATE) or the text (TEXT)
    plate_state: str | None = None
    date_of_birth: str | None = None  # PERSON: ISO date, when the watched record reads one
    person_id: str | None = None
    created: datetime
    until: datetime

    def context(self, request_id: str = "") -> RequestContext:
        """The request a delivery is decided and audited as: the watcher, the watch's purpose
        and case number."""
        return RequestContext(
            subject=self.watcher.subject(),
            purpose=self.purpose,
            case_number=self.case_number,
            request_id=request_id or f"watch:{self.id}",
            received_at=datetime.now(UTC),
        )

    @property
    def subject_key(self) -> str:
        """What two agencies watching the same subject share (deconfliction)."""
        if self.target is Target.PLATE:
            return f"plate:{self.text}:{self.plate_state or ''}"
        words = " ".join(sorted(self.text.casefold().split()))
        if self.target is Target.PERSON:
            return f"person:{words}:{self.date_of_birth or ''}"
        return f"text:{words}"

    def active(self, now: datetime) -> bool:
        return self.created <= now < self.until


class Interest(msgspec.Struct, frozen=True, kw_only=True):
    """Another agency watches the same subject: its ORI, name and contact, nothing else."""

    ori: str
    name: str
    contact: str


class Delivery(msgspec.Struct, frozen=True, kw_only=True):
    """One thing delivered to one watcher: a new matching record, or another agency's interest.
    ``id`` is derived from the watch and the record (or agency), so the same thing is never
    delivered twice whatever the number of workers or retries."""

    id: str
    watch_id: str
    at: datetime
    # The watch's purpose and case: an inbox read decides the record again under them.
    purpose: str
    case_number: str
    record: Record | None = None
    interest: Interest | None = None


class HotListEntry(msgspec.Struct, frozen=True, kw_only=True):
    agency: str  # the ORI whose list it is
    plate: str  # normalised
    state: str | None = None  # None: a plate of any state
    reason: str  # a key of REASONS
    reference: str | None = None  # the agency's own reference (NCIC number, case), if any

    def matches(self, read: PlateRead) -> bool:
        return self.plate == normalise_plate(read.plate.number) and (
            self.state is None or self.state == read.plate.state
        )


class Alert(msgspec.Struct, frozen=True, kw_only=True):
    """A plate on an agency's hot list was read: for that agency's subscribers only."""

    id: str
    agency: str
    at: datetime
    read: PlateRead
    entries: tuple[HotListEntry, ...]
