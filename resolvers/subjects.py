"""Search hits resolved into subjects: step 7 of the design, after access decisions.

Only records the reader may read (Person and Vehicle hits; never a pointer) take part, and each
only through its readable fields (``view_of`` takes the record's allow-list): what a policy
withholds from the reader cannot decide a link, weigh in its score or appear in its evidence.
The subjects are computed when a query selects them, from the hits already shown, so they call
no source and audit nothing new: every member is a hit, audited as one.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Iterable

import strawberry

from hub.linkage import resolve_people, view_of
from resolvers import types as t


def _subject_id(prefix: str, member_ids: Iterable[str]) -> strawberry.ID:
    digest = hashlib.sha256("\n".join(sorted(member_ids)).encode()).digest()[:15]
    return strawberry.ID(f"{prefix}:{base64.urlsafe_b64encode(digest).decode()}")


def person_subjects(people: list[t.Person]) -> list[t.Subject]:
    """``people`` (Person hits, best first) grouped into subjects, in the order of their best
    member."""
    views = [view_of(p._record, p._readable) for p in people]
    subjects = []
    for cluster in resolve_people(views):
        members = []
        for i in cluster.members:
            link = cluster.links.get(i)
            if link is None:
                members.append(
                    t.SubjectMember(person=people[i], score=None, linked_to=None, evidence=[])
                )
                continue
            other = link.b if link.a == i else link.a
            members.append(
                t.SubjectMember(
                    person=people[i],
                    score=round(link.probability, 4),
                    linked_to=strawberry.ID(people[other].id),
                    evidence=[
                        t.MatchEvidence(feature=e.feature, level=e.level, weight=round(e.weight, 2))
                        for e in link.evidence
                    ],
                )
            )
        scores = [m.score for m in members if m.score is not None]
        subjects.append(
            t.Subject(
                id=_subject_id("S", (m.person.id for m in members)),
                members=members,
                score=min(scores) if scores else None,
                _people=[m.person for m in members],
            )
        )
    return subjects


def vehicle_subjects(vehicles: list[t.Vehicle]) -> list[t.VehicleSubject]:
    """``vehicles`` (Vehicle hits, best first) grouped by a VIN or a plate that both records of
    a pair let the reader read."""
    parent = list(range(len(vehicles)))

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    first: dict[str, int] = {}
    for i, v in enumerate(vehicles):
        keys = []
        if "vin" in v._readable and v._record.vin:
            keys.append(f"vin:{v._record.vin.upper()}")
        if "plate" in v._readable and v._record.plate is not None:
            keys.append(f"plate:{v._record.plate.state}:{v._record.plate.number}")
        for key in keys:
            j = first.setdefault(key, i)
            a, b = root(i), root(j)
            if a != b:
                parent[max(a, b)] = min(a, b)
    groups: dict[int, list[t.Vehicle]] = {}
    for i, v in enumerate(vehicles):
        groups.setdefault(root(i), []).append(v)
    out = []
    for _, members in sorted(groups.items()):
        vins = {m.vin for m in members if m.vin}
        plate = next((m.plate for m in members if m.plate is not None), None)
        out.append(
            t.VehicleSubject(
                id=_subject_id("V", (m.id for m in members)),
                vin=vins.pop() if len(vins) == 1 else None,
                plate=plate,
                members=members,
            )
        )
    return out
