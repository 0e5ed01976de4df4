"""The weights are data: the shipped file loads, and a bad one is refused with a clear error."""

from __future__ import annotations

import copy
import json
import math
from typing import Any

import pytest

from hub.linkage import LEVELS, Weights, shipped
from hub.linkage.weights import WEIGHTS_FILE


def _data() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(WEIGHTS_FILE.read_text())
    return loaded


def test_the_shipped_weights_cover_every_level_and_say_where_they_come_from() -> None:
    w = shipped()
    assert set(w.levels) == set(LEVELS)
    for feature, levels in LEVELS.items():
        assert set(w.levels[feature]) == set(levels)
        # Agreement speaks for one person, disagreement against.
        assert w.levels[feature][levels[0]] > 0 > w.levels[feature]["different"]
    assert w.prior < 0
    assert w.fitted["seed"] != 1  # fitted on another world than the demo's
    assert w.weight("ssn", "missing") == 0.0


def test_probability_and_threshold_are_logistic_in_bits() -> None:
    assert Weights.probability(0.0) == 0.5
    assert Weights.probability(math.log2(99)) == pytest.approx(0.99)
    assert Weights.probability(1000) == 1.0
    assert Weights.probability(-1000) == 0.0
    assert Weights.probability(shipped().threshold_bits) == pytest.approx(shipped().threshold)


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda d: d["features"].pop("ssn"), "feature 'ssn' missing"),
        (lambda d: d["features"]["ssn"].pop("exact"), "ssn.exact missing"),
        (lambda d: d["features"]["ssn"].update(nearly={"m": 0.1, "u": 0.1}), "unknown levels"),
        (lambda d: d["features"]["sex"]["exact"].update(m=0), "m and u in (0, 1]"),
        (lambda d: d.update(threshold=1.5), "threshold"),
    ],
)
def test_a_bad_weights_file_is_refused(edit: Any, message: str) -> None:
    data = copy.deepcopy(_data())
    edit(data)
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        Weights.from_json(data)
