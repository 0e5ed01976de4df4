"""The cost estimate (resolvers.cost): remembered per document, operation and integer variables,
never answered for another document or other variables."""

from __future__ import annotations

import gc
import weakref

from graphql import parse

from resolvers import cost
from resolvers.cost import estimate_cost

WIDE = """
query Wide($text: String!, $limit: Int) {
  search(text: $text, limit: $limit) { hits { ... on Person { id vehicles { id } } } }
}
query Narrow { search(text: "x", limit: 1) { hits { __typename } } }
"""


def test_the_estimate_follows_the_limit_variable_and_the_operation() -> None:
    document = parse(WIDE)
    small = estimate_cost(document, "Wide", {"text": "Reyes", "limit": 10})
    large = estimate_cost(document, "Wide", {"text": "Reyes", "limit": 1000})
    assert small < large
    # Asked again (remembered), the same answers; other text, same cost.
    assert estimate_cost(document, "Wide", {"text": "Reyes", "limit": 10}) == small
    assert estimate_cost(document, "Wide", {"text": "Smith", "limit": 1000}) == large
    assert estimate_cost(document, "Narrow", {"limit": 1000}) < small
    # Each equals a fresh computation.
    assert small == cost._estimate(document, "Wide", {"limit": 10})
    assert large == cost._estimate(document, "Wide", {"limit": 1000})


def test_a_document_that_reuses_a_dropped_ones_id_is_estimated_afresh() -> None:
    dropped = parse("{ __typename }")
    dead = weakref.ref(dropped)
    del dropped
    gc.collect()
    assert dead() is None
    document = parse('{ search(text: "x", limit: 1000) { hits { __typename } } }')
    # As if a dropped document had had this one's id, with another estimate.
    cost._ESTIMATES[(id(document), None, ())] = (dead, 1)
    assert estimate_cost(document, None, None) == cost._estimate(document, None, None) > 1
