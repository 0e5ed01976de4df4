"""Fellegi-Sunter weights: how much each comparison level says for or against one person.

For every feature level, ``m`` is the probability of that level when two records are of one
person and ``u`` when they are of two; the level's weight is log2(m / u), in bits. A pair's
score is the prior log-odds plus the weights of its levels (``missing`` weighs 0); its match
probability is the logistic of that. The numbers are data, fitted offline on the demo world's
labelled truth (``python -m hub.linkage.fit``) and shipped in ``weights.json``: refitting on an
agency's own reviewed pairs needs no code change.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from hub.linkage.compare import LEVELS, MISSING

WEIGHTS_FILE = Path(__file__).with_name("weights.json")


@dataclass(frozen=True, slots=True)
class Weights:
    prior: float  # log2 odds that two records picked at random are of one person
    threshold: float  # a link needs at least this match probability
    levels: dict[str, dict[str, float]]  # feature -> level -> weight in bits
    fitted: dict[str, Any]  # where the numbers come from

    def weight(self, feature: str, level: str) -> float:
        return 0.0 if level == MISSING else self.levels[feature][level]

    @staticmethod
    def probability(bits: float) -> float:
        if bits > 60:
            return 1.0
        if bits < -60:
            return 0.0
        odds = 2.0**bits
        return float(odds / (1.0 + odds))

    @property
    def threshold_bits(self) -> float:
        return math.log2(self.threshold / (1.0 - self.threshold))

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Weights:
        levels: dict[str, dict[str, float]] = {}
        for feature, names in LEVELS.items():
            given = data["features"].get(feature)
            if given is None:
                raise ValueError(f"linkage weights: feature {feature!r} missing")
            unknown = set(given) - set(names)
            if unknown:
                raise ValueError(f"linkage weights: {feature} has unknown levels {unknown}")
            levels[feature] = {}
            for level in names:
                mu = given.get(level)
                if mu is None:
                    raise ValueError(f"linkage weights: {feature}.{level} missing")
                m, u = float(mu["m"]), float(mu["u"])
                if not (0 < m <= 1 and 0 < u <= 1):
                    raise ValueError(f"linkage weights: {feature}.{level} m and u in (0, 1]")
                levels[feature][level] = math.log2(m / u)
        threshold = float(data["threshold"])
        if not 0.5 <= threshold < 1:
            raise ValueError("linkage weights: threshold must be in [0.5, 1)")
        return cls(
            prior=float(data["prior_log2_odds"]),
            threshold=threshold,
            levels=levels,
            fitted=dict(data.get("fitted", {})),
        )


@cache
def shipped() -> Weights:
    """The weights that ship with the hub."""
    return Weights.from_json(json.loads(WEIGHTS_FILE.read_text()))
