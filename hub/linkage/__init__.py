"""Entity resolution: which person records, across agencies, are one person (issue 13).

It runs after access decisions (step 7 of the design), on what a reader may read alone:

    from hub.linkage import view_of, resolve_people
    views = [view_of(person, readable_fields) for person, readable_fields in shown]
    clusters = resolve_people(views)          # list[Cluster], every view in exactly one
    cluster.members                           # indexes into views, ascending
    cluster.links[i]                          # Comparison: probability, evidence (features)

``view_of`` keeps only the readable fields; blocking, comparison and score see nothing else.
The weights are data (``weights.json``), fitted by ``tools/fit_linkage.py`` on a demo world of
``FIT_SEED`` with its labelled truth; measure on other seeds (``hub bench linkage``).
"""

from hub.linkage.compare import LEVELS, PersonView, view_of
from hub.linkage.resolve import Cluster, Comparison, Evidence, compare, resolve_people
from hub.linkage.weights import Weights, shipped

# The demo world seed the shipped weights were fitted on; evaluate on any other.
FIT_SEED = 97

__all__ = [
    "FIT_SEED",
    "LEVELS",
    "Cluster",
    "Comparison",
    "Evidence",
    "PersonView",
    "Weights",
    "compare",
    "resolve_people",
    "shipped",
    "view_of",
]
