"""Person records to subjects: who is one person, with the evidence for each link.

``resolve_people`` compares the views that share a blocking key (``compare.blocking_keys``),
scores each pair with Fellegi-Sunter weights (``weights``), and joins records whose match
probability reaches the threshold, strongest links first. Two groups are not joined when any
pair across them was compared and contradicts (``Comparison.contradicts``: more likely two people
than one, or two identifiers that disagree outright): a chain of plausible links must not make
one person of two.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import NamedTuple

from hub.linkage.compare import MISSING, PersonView, blocking_keys, name_levels, other_levels
from hub.linkage.weights import Weights, shipped

# Up to this many records every pair is compared; beyond, only pairs that share a blocking key.
ALL_PAIRS_UP_TO = 64
# Features that name one person only: two of them disagreeing outright is a contradiction.
IDENTIFIERS = frozenset({"dateOfBirth", "ssn", "driverLicense"})


class Evidence(NamedTuple):
    """One feature of a comparison: its level and what it weighed, in bits."""

    feature: str
    level: str
    weight: float


@dataclass(frozen=True, slots=True)
class Comparison:
    a: int  # index of a view in the input
    b: int
    bits: float  # prior + the weights of the evidence
    probability: float
    evidence: tuple[Evidence, ...]  # the features both records had, strongest first
    # Two people, whatever else agrees: more likely two than one, or two identifiers that
    # disagree outright (a shared phone or address is a household's as often as a person's).
    contradicts: bool


@dataclass(frozen=True, slots=True)
class Cluster:
    """One subject: the indexes of its records in the input, in input order, and for each
    record of a subject of several its strongest link to another member."""

    members: tuple[int, ...]
    links: dict[int, Comparison]


def _by_weight(e: Evidence) -> float:
    return e.weight


class _Scored(NamedTuple):
    """A pair's score before anyone asks why: cheap, for every pair compared."""

    bits: float
    contradicts: bool
    levels: tuple[tuple[str, str], ...]  # (feature, level), the missing ones left out


def _score(a: PersonView, b: PersonView, weights: Weights) -> _Scored:
    table = weights.levels
    given_w, surname_w = table["given"], table["surname"]
    best = (MISSING, MISSING)
    best_weight = float("-inf")
    for given, surname in name_levels(a, b):
        w = (0.0 if given == MISSING else given_w[given]) + (
            0.0 if surname == MISSING else surname_w[surname]
        )
        if w > best_weight:
            best, best_weight = (given, surname), w
    bits = weights.prior
    disagreeing = 0
    levels = []
    for feature, level in (("given", best[0]), ("surname", best[1]), *other_levels(a, b).items()):
        if level != MISSING:
            bits += table[feature][level]
            levels.append((feature, level))
            if level == "different" and feature in IDENTIFIERS:
                disagreeing += 1
    return _Scored(bits, bits < 0 or disagreeing >= 2, tuple(levels))


def _explained(scored: _Scored, weights: Weights, ia: int, ib: int) -> Comparison:
    evidence = [Evidence(f, lv, weights.levels[f][lv]) for f, lv in scored.levels]
    evidence.sort(key=_by_weight, reverse=True)
    return Comparison(
        a=ia,
        b=ib,
        bits=scored.bits,
        probability=Weights.probability(scored.bits),
        evidence=tuple(evidence),
        contradicts=scored.contradicts,
    )


def compare(a: PersonView, b: PersonView, weights: Weights, ia: int = 0, ib: int = 1) -> Comparison:
    """The evidence that ``a`` and ``b`` are one person, on their views alone."""
    return _explained(_score(a, b, weights), weights, ia, ib)


def candidate_pairs(views: Sequence[PersonView]) -> set[tuple[int, int]]:
    """The pairs that share a blocking key, each once as (lower index, higher index); every
    pair of a set as small as one search's hits."""
    if len(views) <= ALL_PAIRS_UP_TO:
        return {(x, y) for x in range(len(views)) for y in range(x + 1, len(views))}
    blocks: dict[str, list[int]] = defaultdict(list)
    for i, v in enumerate(views):
        for key in blocking_keys(v):
            blocks[key].append(i)
    pairs: set[tuple[int, int]] = set()
    for members in blocks.values():
        for x in range(len(members)):
            for y in range(x + 1, len(members)):
                pairs.add((members[x], members[y]))
    return pairs


def resolve_people(views: Sequence[PersonView], weights: Weights | None = None) -> list[Cluster]:
    """Group ``views`` into subjects, each with the links that joined it; every view is in
    exactly one cluster. Clusters come in the order of their first member."""
    weights = weights or shipped()
    parent = list(range(len(views)))
    groups: dict[int, list[int]] = {i: [i] for i in range(len(views))}
    compared = {(a, b): _score(views[a], views[b], weights) for a, b in candidate_pairs(views)}

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    def contradicts(x: list[int], y: list[int]) -> bool:
        for i in x:
            for j in y:
                c = compared.get((i, j) if i < j else (j, i))
                if c is not None and c.contradicts:
                    return True
        return False

    threshold = weights.threshold_bits
    links = sorted(
        (pair for pair, c in compared.items() if c.bits >= threshold and not c.contradicts),
        key=lambda pair: (-compared[pair].bits, pair),
    )
    best: dict[int, tuple[int, int]] = {}
    for a, b in links:
        ra, rb = root(a), root(b)
        if ra == rb:
            continue
        if contradicts(groups[ra], groups[rb]):
            continue
        keep, drop = (ra, rb) if ra < rb else (rb, ra)
        parent[drop] = keep
        groups[keep].extend(groups.pop(drop))
        # Strongest first: a member's first link is its strongest.
        best.setdefault(a, (a, b))
        best.setdefault(b, (a, b))
    explained: dict[tuple[int, int], Comparison] = {}
    clusters = []
    for members in groups.values():
        ordered = tuple(sorted(members))
        links_of: dict[int, Comparison] = {}
        for m in ordered:
            pair = best.get(m)
            if pair is not None:
                if pair not in explained:
                    explained[pair] = _explained(compared[pair], weights, *pair)
                links_of[m] = explained[pair]
        clusters.append(Cluster(members=ordered, links=links_of))
    clusters.sort(key=lambda c: c.members[0])
    return clusters
