"""Fitting counts m on true pairs and u on random pairs of different people."""

from __future__ import annotations

import math
from datetime import date

import pytest

from hub.linkage import Weights, view_of
from hub.linkage.fit import fit
from tests.linkage.test_compare import EVERYTHING, person


def test_fit_learns_that_agreement_is_evidence_and_disagreement_is_not() -> None:
    people, identity = [], []
    for n in range(40):
        dob = date(1950 + n, 1 + n % 12, 1 + n % 28)
        ssn = f"{100 + n:03d}-22-{1000 + n:04d}"
        for variant in range(2):
            people.append(
                person(
                    f"Given{n}",
                    f"Surname{n}",
                    dob=dob,
                    ssn=ssn,
                    phones=(f"555-01{n:02d}",),
                    middle=None if variant else "X",
                )
            )
            identity.append(n)
    views = [view_of(p, EVERYTHING) for p in people]
    data = fit(views, identity, random_pairs=2000, seed=3)
    w = Weights.from_json(data)
    assert w.levels["ssn"]["exact"] > 5 > 0 > w.levels["ssn"]["different"]
    assert w.levels["dateOfBirth"]["exact"] > 0 > w.levels["dateOfBirth"]["different"]
    assert data["fitted"]["true_pairs"] == 40
    assert w.prior == pytest.approx(math.log2(40 / (80 * 79 // 2 - 40)), abs=1e-3)


def test_fit_refuses_what_it_cannot_fit() -> None:
    with pytest.raises(ValueError):
        fit([view_of(person(), EVERYTHING)], [1, 2])
