"""Fit the linkage weights on a demo world's labelled truth and write hub/linkage/weights.json.

    .venv/bin/python tools/fit_linkage.py [--size 40000] [--seed 7]

Every field of every person record is read (the fit is the hub's, not a reader's); the weights
are then applied to whatever each reader may read, a missing feature weighing nothing.
"""

from __future__ import annotations

import argparse
import json
import time

from hub import model
from hub.demo.world import generate_world
from hub.linkage import FIT_SEED
from hub.linkage.compare import view_of
from hub.linkage.fit import fit
from hub.linkage.weights import WEIGHTS_FILE

EVERYTHING = frozenset(
    {"name", "aliases", "dateOfBirth", "sex", "race", "ssn", "driverLicense", "phones", "addresses"}
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=40_000)
    parser.add_argument("--seed", type=int, default=FIT_SEED)
    parser.add_argument("--threshold", type=float, default=0.95)
    args = parser.parse_args()
    started = time.perf_counter()
    world = generate_world(args.size, args.seed)
    people = [r for rs in world.records.values() for r in rs if isinstance(r, model.Person)]
    views = [view_of(p, EVERYTHING) for p in people]
    identity = [world.identity_of[p.id] for p in people]
    data = fit(views, identity, seed=args.seed, threshold=args.threshold)
    data["fitted"].update(
        {"generator": "hub.demo.world", "size": args.size, "seed": args.seed, "region": "west"}
    )
    WEIGHTS_FILE.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")
    took = time.perf_counter() - started
    print(f"fitted on {len(views)} person records in {took:.1f} s -> {WEIGHTS_FILE}")


if __name__ == "__main__":
    main()
