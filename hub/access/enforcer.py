"""The two Casbin layers, asked one object at a time, each answer with the rule that gave it.

``policies/model.conf`` defines layer 1 (``r``/``p``: hub rules) and layer 2 (``r2``/``p2``: the
owner's agreements, rules and the law on legal tags). This module is the only one that calls
Casbin. It is off the hot path: ``AccessPolicy`` caches whole record decisions, and asks here
only for a decision key it has not seen since the policy was loaded.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Mapping
from typing import Any

import casbin

from hub.access.decisions import Verdict
from hub.access.loader import PolicyData, Rule, build_enforcer
from hub.access.matching import object_match

# Built-in rule ids for "no rule matched" (nothing is allowed unless a rule allows it).
HUB_NO_RULE = "hub.no-rule"
OWNER_NO_AGREEMENT = "owner.no-agreement"
OWNER_NO_RULE = "owner.no-rule"
# A verdict with one of these is "no rule allowed it", as opposed to a rule that denies it.
DEFAULT_RULES = frozenset({HUB_NO_RULE, OWNER_NO_AGREEMENT, OWNER_NO_RULE})

_MEMO_LIMIT = 200_000

# pycasbin logs every denied request at WARNING (subject roles, agencies, fields): noise on
# stderr at best. Decisions are recorded where they belong, in the audit trail.
logging.getLogger("casbin").setLevel(logging.ERROR)


class _Enforcer(casbin.Enforcer):  # type: ignore[misc]
    """pycasbin parses the matcher on every call; ours parses each matcher once."""

    _expressions: dict[str, Any]

    def _get_expression(self, expr: str, functions: Mapping[str, Any] | None = None) -> Any:
        cache = self.__dict__.setdefault("_expressions", {})
        expression = cache.get(expr)
        if expression is None:
            expression = casbin.Enforcer._get_expression(expr, functions)
            cache[expr] = expression
        else:
            # g() is rebuilt per call around the same role manager; keep the current one.
            expression.functions = functions
        return expression


def _object_classes(casbin_enforcer: Any, ptype: str, objects: tuple[str, ...]) -> dict[str, str]:
    """Each object → a representative object that every request decides the same way.

    The model's matchers look at the object only through ``objMatch(r.obj, p.obj)``, so two
    objects matched by exactly the same rows get the same answer, with the same rule, to every
    request: Casbin is asked once per class (e.g. once for the dozen Person fields that no rule
    names one by one) instead of once per field. If a matcher used the object any other way,
    every object is its own class.
    """
    section = casbin_enforcer.model["p"][ptype]
    rtype = "r" if ptype == "p" else "r" + ptype[1:]
    escaped = casbin_enforcer.model["m"]["m" + ptype[1:]].value
    rest = escaped.replace(f"objMatch({rtype}_obj, {ptype}_obj)", "")
    if f"{rtype}_obj" in rest or f"{ptype}_obj" in rest:
        return {obj: obj for obj in objects}
    column = section.tokens.index(f"{ptype}_obj")
    patterns = [row[column] for row in section.policy]
    classes: dict[tuple[int, ...], str] = {}
    out: dict[str, str] = {}
    for obj in objects:
        signature = tuple(i for i, pattern in enumerate(patterns) if object_match(obj, pattern))
        out[obj] = classes.setdefault(signature, obj)
    return out


class LayeredEnforcer:
    """Asks the hub layer and the owner layer; memoises each layer's answers."""

    def __init__(self, data: PolicyData) -> None:
        self._casbin: Any = build_enforcer(data, enforcer_class=_Enforcer)
        self._owner_context = self._casbin.new_enforce_context("2")
        self._origins: Mapping[tuple[str, tuple[str, ...]], Rule] = data.origins
        objects = data.catalogue.objects
        self._hub_class = _object_classes(self._casbin, "p", objects)
        self._owner_class = _object_classes(self._casbin, "p2", objects)
        self._hub_memo: dict[tuple[str, ...], Verdict] = {}
        self._owner_memo: dict[tuple[Any, ...], Verdict] = {}
        # Casbin's expression objects hold per-call state; one caller at a time.
        self._lock = threading.Lock()

    def hub(self, role: str, purpose: str, obj: str, act: str) -> Verdict:
        obj = self._hub_class.get(obj, obj)
        key = (role, purpose, obj, act)
        verdict = self._hub_memo.get(key)
        if verdict is None:
            with self._lock:
                allowed, row = self._casbin.enforce_ex(role, purpose, obj, act)
            verdict = self._verdict("hub", "p", allowed, row, HUB_NO_RULE)
            self._remember(self._hub_memo, key, verdict)
        return verdict

    def owner(
        self,
        role: str,
        ori: str,
        state: str,
        purpose: str,
        owner: str,
        owner_state: str,
        tags: frozenset[str],
        obj: str,
        act: str,
    ) -> Verdict:
        obj = self._owner_class.get(obj, obj)
        key = (role, ori, state, purpose, owner, owner_state, tags, obj, act)
        verdict = self._owner_memo.get(key)
        if verdict is None:
            with self._lock:
                allowed, row = self._casbin.enforce_ex(
                    self._owner_context,
                    role,
                    ori,
                    state,
                    purpose,
                    owner,
                    owner_state,
                    tags,
                    obj,
                    act,
                )
            default = OWNER_NO_RULE if ori == owner else OWNER_NO_AGREEMENT
            verdict = self._verdict("owner", "p2", allowed, row, default)
            self._remember(self._owner_memo, key, verdict)
        return verdict

    def _verdict(
        self, layer: str, ptype: str, allowed: bool, row: list[str], default: str
    ) -> Verdict:
        if not row:
            return Verdict(layer, bool(allowed), default, "", "")
        rule = self._origins.get((ptype, tuple(row)))
        if rule is None:  # cannot happen: every row Casbin holds came from the loader
            return Verdict(layer, bool(allowed), row[-1], ", ".join(row), "")
        return Verdict(layer, bool(allowed), rule.id, rule.text, rule.origin)

    @staticmethod
    def _remember(memo: dict[Any, Verdict], key: Any, verdict: Verdict) -> None:
        if len(memo) >= _MEMO_LIMIT:
            memo.clear()
        memo[key] = verdict
