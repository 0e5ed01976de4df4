"""The functions ``policies/model.conf`` calls to match a request against one policy row.

Patterns in policy rows are small and readable: ``*`` matches anything; ``a|b`` matches a or b;
``!a|b`` matches anything but a or b. Objects are shell-style globs (``Person.*``, ``*.narrative``),
so ``Person`` is the record as a whole and ``Person.*`` every field of it. Parsed patterns are
memoised: the set of patterns is the policy's, which is small and fixed until a reload.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Callable
from functools import lru_cache

ANY = "*"


@lru_cache(maxsize=4096)
def _tokens(pattern: str) -> tuple[bool, frozenset[str]]:
    negated = pattern.startswith("!")
    body = pattern[1:] if negated else pattern
    return negated, frozenset(t.strip() for t in body.split("|") if t.strip())


def split_pattern(pattern: str) -> tuple[bool, frozenset[str]]:
    """(negated, tokens) of a ``a|b`` / ``!a|b`` pattern; ``*`` is (False, {"*"})."""
    return _tokens(pattern)


def list_match(value: str, pattern: str) -> bool:
    if pattern == ANY:
        return True
    negated, tokens = _tokens(pattern)
    return (value in tokens) != negated


def tag_match(tags: frozenset[str], pattern: str) -> bool:
    """True when the record carries any of the pattern's tags (none of them, when negated)."""
    if pattern == ANY:
        return True
    negated, tokens = _tokens(pattern)
    return (not tokens.isdisjoint(tags)) != negated


@lru_cache(maxsize=256)
def _glob(pattern: str) -> re.Pattern[str]:
    _, tokens = _tokens(pattern)
    return re.compile("|".join(f"(?:{fnmatch.translate(t)})" for t in sorted(tokens)))


@lru_cache(maxsize=65536)
def object_match(obj: str, pattern: str) -> bool:
    if pattern == ANY:
        return True
    negated = pattern.startswith("!")
    return (_glob(pattern).match(obj) is not None) != negated


# Words a requester pattern may use for how the asking agency stands to the record's owner.
RELATIONS = frozenset({"self", "other", "in-state", "out-of-state"})


def requester_match(ori: str, state: str, owner: str, owner_state: str, pattern: str) -> bool:
    """Match the asking agency against a requester pattern.

    Tokens: ``self`` (the owner itself), ``other`` (any other agency), ``in-state`` /
    ``out-of-state`` (relative to the owner's state), or an ORI. Agency groups are matched by
    Casbin's ``g`` in the model, not here.
    """
    if pattern == ANY:
        return True
    negated, words = _tokens(pattern)
    hit = False
    for word in words:
        if word == "self":
            hit = ori == owner
        elif word == "other":
            hit = ori != owner
        elif word == "in-state":
            hit = state == owner_state
        elif word == "out-of-state":
            hit = state != owner_state
        else:
            hit = word == ori
        if hit:
            break
    return hit != negated


MATCHER_FUNCTIONS: dict[str, Callable[..., bool]] = {
    "listMatch": list_match,
    "tagMatch": tag_match,
    "objMatch": object_match,
    "requesterMatch": requester_match,
}
