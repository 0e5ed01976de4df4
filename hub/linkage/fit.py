"""Fitting the weights: m and u probabilities counted on records whose truth is known.

``m`` of a level is counted over every pair of records of one person, ``u`` over pairs of
records of different people drawn at random; both only where the feature is present on both
sides (a missing feature weighs nothing). Additive smoothing keeps a level never seen from
weighing infinitely. ``tools/fit_linkage.py`` runs this on a demo world with its labelled truth
and writes ``weights.json``.
"""

from __future__ import annotations

import math
import random
from collections import Counter, defaultdict
from collections.abc import Sequence
from typing import Any

from hub.linkage.compare import LEVELS, MISSING, PersonView, name_levels, other_levels

SMOOTHING = 0.5
# No level is impossible among true pairs: clerks mistype anything now and then. A level never
# seen among them still gets this much, so one slip weighs against a link, never forbids it.
M_FLOOR = 0.005


def _names_by_rank(a: PersonView, b: PersonView) -> tuple[str, str]:
    """The pairing of names that agrees best, by level order (fitting has no weights yet)."""

    def rank(pair: tuple[str, str]) -> int:
        given, surname = pair
        g = LEVELS["given"].index(given) if given != MISSING else 9
        s = LEVELS["surname"].index(surname) if surname != MISSING else 9
        return g + s

    return min(name_levels(a, b), key=rank)


def levels_of(a: PersonView, b: PersonView) -> dict[str, str]:
    given, surname = _names_by_rank(a, b)
    return {"given": given, "surname": surname, **other_levels(a, b)}


def fit(
    views: Sequence[PersonView],
    identity: Sequence[int],
    *,
    random_pairs: int = 200_000,
    seed: int = 0,
    threshold: float = 0.95,
) -> dict[str, Any]:
    """The weights file's contents, fitted on ``views`` whose true person is ``identity``."""
    if len(views) != len(identity) or len(views) < 2:
        raise ValueError("fit needs two or more views, each with its identity")
    by_identity: dict[int, list[int]] = defaultdict(list)
    for i, who in enumerate(identity):
        by_identity[who].append(i)
    matches: dict[str, Counter[str]] = {f: Counter() for f in LEVELS}
    true_pairs = 0
    for members in by_identity.values():
        for x in range(len(members)):
            for y in range(x + 1, len(members)):
                true_pairs += 1
                for feature, level in levels_of(views[members[x]], views[members[y]]).items():
                    matches[feature][level] += 1
    rng = random.Random(seed)  # noqa: S311 -- a reproducible sample, not a secret
    others: dict[str, Counter[str]] = {f: Counter() for f in LEVELS}
    drawn = 0
    while drawn < random_pairs:
        a, b = rng.randrange(len(views)), rng.randrange(len(views))
        if identity[a] == identity[b]:
            continue
        drawn += 1
        for feature, level in levels_of(views[a], views[b]).items():
            others[feature][level] += 1
    features: dict[str, dict[str, dict[str, float]]] = {}
    for feature, levels in LEVELS.items():
        m_total = sum(matches[feature][lv] for lv in levels) + SMOOTHING * len(levels)
        u_total = sum(others[feature][lv] for lv in levels) + SMOOTHING * len(levels)
        features[feature] = {
            lv: {
                "m": round(max(M_FLOOR, (matches[feature][lv] + SMOOTHING) / m_total), 8),
                "u": round((others[feature][lv] + SMOOTHING) / u_total, 8),
            }
            for lv in levels
        }
    for feature, levels in LEVELS.items():
        # Levels come strongest agreement first; a weaker level never weighs more than a
        # stronger one (a rare level, e.g. a lone initial, can look stronger than it is).
        ceiling = math.inf
        for lv in levels:
            mu = features[feature][lv]
            bits = min(math.log2(mu["m"] / mu["u"]), ceiling)
            mu["m"] = round(mu["u"] * 2.0**bits, 10)
            ceiling = bits
    n = len(views)
    all_pairs = n * (n - 1) // 2
    prior = math.log2(max(true_pairs, 1) / max(all_pairs - true_pairs, 1))
    return {
        "prior_log2_odds": round(prior, 4),
        "threshold": threshold,
        "features": features,
        "fitted": {"records": n, "true_pairs": true_pairs, "random_pairs": random_pairs},
    }
