"""``hub policy explain``: one decision and the rules that made it, as text for a person."""

from __future__ import annotations

from collections.abc import Iterable

from hub.access.catalogue import KIND_OF_TYPE
from hub.access.policy import AccessPolicy
from hub.context import RequestContext, Subject
from hub.model import Agency, SourceKind


def _state_of(policy: AccessPolicy, ori: str, given: str | None, what: str) -> str:
    if given:
        return given.upper()
    facts = policy.agency(ori)
    if facts is None:
        raise ValueError(
            f"the policy does not know the {what} agency {ori}: give its state explicitly"
        )
    return facts.state


def explain_text(
    policy: AccessPolicy,
    user: str,
    agency_ori: str,
    state: str | None,
    roles: Iterable[str],
    purpose: str | None,
    owner_ori: str,
    owner_state: str | None,
    field: str,
    tags: Iterable[str] = (),
    *,
    source_kind: str | None = None,
    age_days: int | None = None,
) -> str:
    """The decision on ``field`` for this subject and owner, and the rule(s) that made it.

    ``state`` / ``owner_state`` may be None for agencies listed in ``agencies.yaml``.
    ``source_kind`` (RMS, CAD, ALPR) adds the tags that owner's systems of that kind attach;
    ``age_days`` is the record's age, checked against the owner's retention limit.
    ``ValueError`` for an unknown field, tag, source kind or agency state.
    """
    tag_set = frozenset(tags)
    known_tags = policy.data.tags
    unknown = sorted(tag_set - known_tags)
    if unknown:
        raise ValueError(f"unknown legal tag(s) {unknown}; known: {', '.join(sorted(known_tags))}")
    kind: SourceKind | None = None
    if source_kind is not None:
        try:
            kind = SourceKind(source_kind.upper())
        except ValueError:
            known = ", ".join(k.value for k in SourceKind)
            raise ValueError(f"unknown source kind {source_kind!r}; known: {known}") from None
    subject = Subject(
        user_id=user,
        name=user,
        ori=agency_ori,
        state=_state_of(policy, agency_ori, state, "requesting"),
        roles=frozenset(r.strip() for r in roles if r.strip()),
    )
    ctx = RequestContext(subject=subject, purpose=purpose.strip().upper() if purpose else None)
    facts = policy.agency(owner_ori)
    owner = Agency(
        ori=owner_ori,
        name=facts.name if facts else owner_ori,
        state=_state_of(policy, owner_ori, owner_state, "owning"),
    )
    expired = False
    if age_days is not None and facts is not None:
        entity = KIND_OF_TYPE.get(field.partition(".")[0])
        limit = facts.retention_days.get(entity) if entity is not None else None
        expired = limit is not None and age_days > limit
    explanation = policy.explain(ctx, owner, field, tag_set, source_kind=kind, expired=expired)
    return f"{explanation.text()}\n  policy version: {policy.version}"
