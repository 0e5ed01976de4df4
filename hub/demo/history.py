"""A demo audit history: weeks of the west region's searches, chained through the real audit log.

``write_history`` appends, oldest first and through ``AuditLog.append`` (so the chain is the
writer's own, and ``hub audit verify`` passes), the entries of a realistic routine: each user of
the four west agencies works a caseload of their own, on working days, a few searches a day, for
the purposes their role has, with case numbers where the purpose needs one, reading partners'
records only as the agreements allow (``policies/agreements.yaml``), ALPR systems only in state
or under the ALPR agreement. With ``misuse=True`` it adds, in the review window (the last
``window_days``), one case of each misuse the audit review looks for (``hub.oversight.review``),
each by a user of its own; ``History.seeded`` names them. Everything is derived from ``seed``.

No real person is in it: record ids are hub ids of made-up vendor ids, criteria are plates and
surnames drawn from a fixed list.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from hub.audit import AuditEntry, AuditLog, RecordAccess, SourceCall
from hub.model import EntityKind, make_id

MARIN, CASCADE, HARBOR, SIERRA = "CA0990000", "WA0990100", "OR0990200", "NV0990000"
STATE = {MARIN: "CA", CASCADE: "WA", HARBOR: "OR", SIERRA: "NV"}
RMS = {MARIN: "marin-rms", CASCADE: "cascade-rms", HARBOR: "harbor-rms"}
ALPR = {MARIN: "marin-alpr", SIERRA: "sierra-alpr"}
# Whose records each agency reads in full for purpose C (policies/agreements.yaml).
PARTNERS = {MARIN: (CASCADE, HARBOR), CASCADE: (MARIN, HARBOR), HARBOR: (CASCADE,), SIERRA: ()}
# The ALPR systems each agency's users may search (in state, or SSP-ALPR-2024).
ALPR_OF = {
    MARIN: ("marin-alpr", "sierra-alpr"),
    CASCADE: ("sierra-alpr",),
    HARBOR: ("sierra-alpr",),
    SIERRA: ("sierra-alpr",),
}
# An agreement of policies/agreements.yaml that has ended: Harbor Falls' users read Marin's
# incidents under it until its last day.
ENDED_AGREEMENT = "MVSO-HFPD-PILOT-2024"
SURNAMES = (
    "Alvarez",
    "Brooks",
    "Chen",
    "Dubois",
    "Eriksen",
    "Farouk",
    "Garcia",
    "Haddad",
    "Ito",
    "Jensen",
    "Kowalski",
    "Lindqvist",
    "Moreau",
    "Nakamura",
    "Okafor",
    "Petrov",
)


@dataclass(frozen=True, slots=True)
class Seeded:
    """One seeded misuse: the finding kind it should produce, and who did it."""

    kind: str  # a hub.oversight.review.FindingKind value
    user: str | None
    agency: str
    record_id: str | None = None


@dataclass
class History:
    entries: int
    start: datetime  # the first day of the history
    window_start: datetime  # the review window: [window_start, end)
    end: datetime
    seeded: dict[str, Seeded] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class _User:
    id: str
    agency: str
    role: str


def demo_users() -> list[_User]:
    users: list[_User] = []
    staffing = {
        MARIN: (("analyst", 4), ("detective", 4), ("patrol", 5)),
        CASCADE: (("analyst", 3), ("detective", 4), ("patrol", 4)),
        HARBOR: (("analyst", 2), ("detective", 3), ("patrol", 4)),
        SIERRA: (("analyst", 2), ("patrol", 4)),
    }
    for agency, roles in staffing.items():
        prefix = agency[:2].lower()
        for role, count in roles:
            users.extend(_User(f"{prefix}-{role}{n}", agency, role) for n in range(1, count + 1))
    return users


class _Writer:
    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.entries: list[AuditEntry] = []

    def at(self, day: date, hour: int | None = None) -> str:
        moment = datetime.combine(day, time(hour if hour is not None else self.rng.randint(7, 18)))
        moment += timedelta(
            seconds=self.rng.randint(0, 3599), microseconds=self.rng.randint(0, 999_999)
        )
        return moment.replace(tzinfo=UTC).isoformat(timespec="microseconds")

    def add(
        self,
        user: _User,
        at: str,
        *,
        purpose: str,
        operation: str = "search",
        case: str | None = None,
        criteria: dict[str, Any],
        sources: list[tuple[str, str, str, int]],
        records: Sequence[tuple[str, str, str | None]],
    ) -> None:
        n = len(self.entries)
        self.entries.append(
            AuditEntry(
                at=at,
                trace_id=f"{self.rng.getrandbits(128):032x}",
                operation=operation,
                outcome="OK",
                user=user.id,
                agency=user.agency,
                roles=(user.role,),
                state=STATE[user.agency],
                purpose=purpose,
                case_number=case,
                document_hash=f"{n % 7:064x}",
                criteria=criteria,
                sources=tuple(
                    SourceCall(
                        source=s,
                        agency=a,
                        status=st,
                        count=c,
                        latency_ms=round(self.rng.uniform(4, 60), 1),
                    )
                    for s, a, st, c in sources
                ),
                records=tuple(RecordAccess(id=i, owner=o, visibility=v) for i, o, v in records),
                client_address=f"10.{list(STATE).index(user.agency)}.0.{self.rng.randint(2, 250)}",
                request_id=f"{self.rng.getrandbits(64):016x}",
                duration_ms=round(self.rng.uniform(8, 120), 1),
            )
        )


def _person(source: str, vendor_id: str) -> str:
    return make_id(source, EntityKind.PERSON, vendor_id)


def _case(rng: random.Random, day: date) -> str:
    return f"{day.year % 100:02d}-{rng.randint(1, 999_999):06d}"


def _routine_search(w: _Writer, user: _User, day: date, caseload: int) -> None:
    rng = w.rng
    if user.agency == SIERRA or (user.role != "patrol" and rng.random() < 0.2):
        _routine_alpr(w, user, day)
        return
    purpose = "C"
    owners = [user.agency, *PARTNERS[user.agency]]
    sources = [(RMS[o], o, "OK", 0) for o in owners]
    records: list[tuple[str, str, str | None]] = []
    # The user's own caseload: people of the user's cases, in the user's and partners' records.
    k = rng.randrange(caseload)
    for owner in owners:
        if rng.random() < (0.9 if owner == user.agency else 0.35):
            records.append((_person(RMS[owner], f"{user.id}-{k}"), owner, "FULL"))
    sources = [
        (s, a, "OK" if any(o == a for _, o, _ in records) else "NO_HIT", 0)
        for s, a, _, _ in sources
    ]
    w.add(
        user,
        w.at(day),
        purpose=purpose,
        case=_case(rng, day) if rng.random() < 0.7 else None,
        criteria={"text": rng.choice(SURNAMES), "limit": 50},
        sources=sources,
        records=records,
    )


def _routine_alpr(w: _Writer, user: _User, day: date) -> None:
    rng = w.rng
    source = rng.choice(ALPR_OF[user.agency])
    owner = MARIN if source == "marin-alpr" else SIERRA
    plate = (
        f"{rng.randint(1, 9)}{rng.choice('ABCDEFGH')}{rng.choice('KLMNP')}{rng.randint(100, 999)}"
    )
    reads = [
        (make_id(source, EntityKind.PLATE_READ, f"{user.id}-{plate}-{i}"), owner, "FULL")
        for i in range(rng.randint(0, 3))
    ]
    purpose = "ALPR-INV" if user.role != "patrol" else "ALPR-HOT"
    w.add(
        user,
        w.at(day),
        purpose=purpose,
        operation="plateReads",
        case=_case(rng, day) if purpose == "ALPR-INV" else None,
        criteria={"plate": plate, "limit": 100},
        sources=[(source, owner, "OK" if reads else "NO_HIT", len(reads))],
        records=reads,
    )


def _seed_misuse(w: _Writer, window: list[date], history: History) -> None:
    rng = w.rng
    day = window[len(window) // 2]

    # A detective searches plate reads for an investigation, with no case number, three times.
    u = _User("ca-detective-nocase", MARIN, "detective")
    for _ in range(3):
        read = make_id("marin-alpr", EntityKind.PLATE_READ, f"nocase-{rng.randint(1, 10**6)}")
        w.add(
            u,
            w.at(day),
            purpose="ALPR-INV",
            operation="plateReads",
            case=None,
            criteria={"plate": "8KLM442", "limit": 100},
            sources=[("marin-alpr", MARIN, "OK", 1)],
            records=[(read, MARIN, "FULL")],
        )
    history.seeded["MISSING_CASE_NUMBER"] = Seeded("MISSING_CASE_NUMBER", u.id, MARIN)

    # A Cascade City analyst reads a Marin person for an employment background check (J):
    # MVSO-CCPD-2024 shares for C and X only.
    u = _User("wa-analyst-bgcheck", CASCADE, "analyst")
    w.add(
        u,
        w.at(day),
        purpose="J",
        case=None,
        criteria={"text": "Moreau", "limit": 50},
        sources=[("marin-rms", MARIN, "OK", 1)],
        records=[(_person("marin-rms", "bgcheck-1"), MARIN, "FULL")],
    )
    history.seeded["PURPOSE_OUTSIDE_AGREEMENT"] = Seeded("PURPOSE_OUTSIDE_AGREEMENT", u.id, CASCADE)

    # A Cascade City patrol officer searches Marin's ALPR system (California: in state only).
    u = _User("wa-patrol-alpr", CASCADE, "patrol")
    read = make_id("marin-alpr", EntityKind.PLATE_READ, "oos-1")
    w.add(
        u,
        w.at(day),
        purpose="ALPR-HOT",
        operation="plateReads",
        criteria={"plate": "5MNP201", "limit": 100},
        sources=[("marin-alpr", MARIN, "OK", 1)],
        records=[(read, MARIN, "FULL")],
    )
    history.seeded["OUT_OF_STATE_ALPR"] = Seeded("OUT_OF_STATE_ALPR", u.id, CASCADE)

    # A Marin analyst with an ordinary history runs 60 searches in one afternoon.
    u = _User("ca-analyst1", MARIN, "analyst")
    for _ in range(60):
        name = rng.choice(SURNAMES)
        w.add(
            u,
            w.at(window[-3], hour=rng.randint(13, 16)),
            purpose="C",
            case=_case(rng, day),
            criteria={"text": name, "limit": 50},
            sources=[("marin-rms", MARIN, "NO_HIT", 0)],
            records=[],
        )
    history.seeded["UNUSUAL_VOLUME"] = Seeded("UNUSUAL_VOLUME", u.id, MARIN)

    # One Cascade City person looked up by seven users of Marin and Cascade City.
    subject = _person("cascade-rms", "P-440017")
    curious = [_User(f"ca-patrol{n}", MARIN, "patrol") for n in (1, 2, 3, 4)]
    curious += [_User(f"wa-patrol{n}", CASCADE, "patrol") for n in (1, 2, 3)]
    for u in curious:
        w.add(
            u,
            w.at(rng.choice(window)),
            purpose="C",
            case=None,
            criteria={"text": "Lindqvist", "limit": 50},
            sources=[("cascade-rms", CASCADE, "OK", 1)],
            records=[(subject, CASCADE, "FULL")],
        )
    history.seeded["MANY_USERS_ONE_SUBJECT"] = Seeded(
        "MANY_USERS_ONE_SUBJECT", None, CASCADE, record_id=subject
    )

    # A Harbor Falls detective still reads Marin's incidents after the pilot agreement ended.
    u = _User("or-detective-pilot", HARBOR, "detective")
    incident = make_id("marin-rms", EntityKind.INCIDENT, "I-2024-0917")
    w.add(
        u,
        w.at(day),
        purpose="C",
        case=_case(rng, day),
        criteria={"text": "24-0917"},
        sources=[("marin-rms", MARIN, "OK", 1)],
        records=[(incident, MARIN, "FULL")],
    )
    history.seeded["AFTER_AGREEMENT_ENDED"] = Seeded("AFTER_AGREEMENT_ENDED", u.id, HARBOR)


async def write_history(
    log: AuditLog,
    *,
    end: datetime,
    days: int = 56,
    window_days: int = 28,
    seed: int = 15,
    misuse: bool = True,
) -> History:
    """Append ``days`` of demo history ending the day before ``end`` (midnight UTC) to ``log``."""
    if not 0 < window_days < days:
        raise ValueError("window_days must be between 1 and days - 1")
    rng = random.Random(seed)
    last = end.astimezone(UTC).date() - timedelta(days=1)
    calendar = [last - timedelta(days=n) for n in range(days - 1, -1, -1)]
    window = calendar[-window_days:]
    start = datetime.combine(calendar[0], time(), UTC)
    history = History(
        0,
        start,
        datetime.combine(window[0], time(), UTC),
        datetime.combine(last + timedelta(days=1), time(), UTC),
    )
    w = _Writer(rng)
    users = demo_users()
    for day in calendar:
        if day.weekday() >= 5:
            continue
        for user in users:
            for _ in range(rng.randint(1, 6)):
                _routine_search(w, user, day, caseload=25)
    if misuse:
        _seed_misuse(w, window, history)
    entries = sorted(w.entries, key=lambda e: e.at)
    # Group commit: a chunk's appends are queued in order and written as one batch.
    for i in range(0, len(entries), 256):
        await asyncio.gather(*(log.append(e) for e in entries[i : i + 256]))
    history.entries = len(entries)
    return history
