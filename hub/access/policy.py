"""The access policy the hub applies to every source and every record: ``AccessPolicy``.

Steps 3 and 6 of a query (ARCHITECTURE.md) are this one policy seen twice:

- before the fetch, ``check_source``: may this subject ask this owner's system for these kinds
  of record, for this purpose, at all? (A fetch is itself an access.)
- after the fetch, ``decide``: FULL, POINTER or INVISIBLE for each record, and which of its
  fields read null.

Both are cached per decision key (the subject's roles, agency and state, the purpose, the
owner's agency and state, the record kind, the source kind, the legal tags and whether the
record is past its owner's retention limit), so a query of a thousand records asks Casbin only
for the few keys it has not met since the policy was loaded; the hot path is a dict lookup.
``reload_if_changed`` swaps in a new policy (and an empty cache) when the files change.
"""

from __future__ import annotations

import logging
import pathlib
import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from hub.access.catalogue import (
    INVOLVEMENT,
    KIND_OF_TYPE,
    RETENTION_EXPIRED,
    ROLES,
    TYPE_OF_KIND,
    UNRECOGNISED_RESTRICTION,
    Catalogue,
)
from hub.access.decisions import (
    Explanation,
    RecordDecision,
    RoleTrace,
    SourceDecision,
    Verdict,
    Visibility,
)
from hub.access.enforcer import DEFAULT_RULES, LayeredEnforcer
from hub.access.loader import AgencyFacts, PolicyData, fingerprint, load_policy_data
from hub.access.purposes import PURPOSES
from hub.context import RequestContext
from hub.model import KIND_OF, Agency, EntityKind, InvolvementRef, Record, SourceKind

__all__ = [
    "AccessPolicy",
    "Explanation",
    "RecordDecision",
    "SourceDecision",
    "Visibility",
    "default_policy_dir",
]

log = logging.getLogger(__name__)

# Built-in rule ids for decisions made before any rule is consulted.
PURPOSE_REQUIRED = "purpose-required"
PURPOSE_UNKNOWN = "purpose-unknown"
NO_KNOWN_ROLE = "no-known-role"
UNKNOWN_AGENCY = "unknown-agency"
# A record shown as a record carries its id and owner; a reader who may not read those gets a
# pointer at most.
_IDENTITY = frozenset({"id", "provenance"})

_CACHE_LIMIT = 100_000
_EMPTY: frozenset[str] = frozenset()
_EXPIRED: frozenset[str] = frozenset({RETENTION_EXPIRED})
_RANK = {Visibility.INVISIBLE: 0, Visibility.POINTER: 1, Visibility.FULL: 2}


def default_policy_dir() -> pathlib.Path:
    """The policy shipped with the hub: the repository's ``policies/`` in a checkout (and in an
    editable install of one, so that an edit there takes effect at once), or, in an installed
    wheel, the copy of it the wheel carries as the package data ``hub/policies/`` (setup.py)."""
    import importlib.resources

    shipped = importlib.resources.files("hub") / "policies"
    if isinstance(shipped, pathlib.Path) and shipped.is_dir():
        return shipped
    return pathlib.Path(__file__).resolve().parents[2] / "policies"


@dataclass(frozen=True, slots=True)
class _Asker:
    """Who asks, as the policy sees it (a RequestContext reduced to what decides)."""

    roles: tuple[str, ...]  # known roles only, sorted
    ori: str
    state: str
    purpose: str


@dataclass(slots=True)
class _State:
    """One loaded policy and its caches; replaced whole on reload, never edited in place."""

    data: PolicyData
    enforcer: LayeredEnforcer
    retention: dict[tuple[str, EntityKind], int]
    source_tags: dict[tuple[str, SourceKind], frozenset[str]]
    all_fields: dict[str, frozenset[str]]
    decisions: dict[tuple[Any, ...], RecordDecision] = field(default_factory=dict)
    involvements: dict[tuple[Any, ...], RecordDecision] = field(default_factory=dict)
    sources: dict[tuple[Any, ...], SourceDecision] = field(default_factory=dict)
    # The last day this state's rows are right for: an agreement in force ends then
    # (agreements.yaml `until:`); after it the state is rebuilt without that agreement.
    valid_through: date | None = None

    @classmethod
    def of(cls, data: PolicyData, today: date | None = None) -> _State:
        today = today or datetime.now(UTC).date()
        return cls(
            data=data,
            enforcer=LayeredEnforcer(data.in_force(today)),
            valid_through=data.next_end(today),
            retention={
                (ori, kind): days
                for ori, facts in data.agencies.items()
                for kind, days in facts.retention_days.items()
            },
            source_tags={
                (ori, kind): tags
                for ori, facts in data.agencies.items()
                for kind, tags in facts.source_tags.items()
            },
            all_fields={t: frozenset(f) for t, f in data.catalogue.fields.items()},
        )

    def legal_tags(self, tags: frozenset[str], source: str) -> frozenset[str]:
        """A record's tags as the policy reads them: a restriction code the vocabulary does not
        name (nor read as one of its tags) is an unrecognised restriction, never no restriction."""
        vocabulary, aliases = self.data.tags, self.data.tag_aliases
        out: set[str] = set()
        for tag in tags:
            if tag in vocabulary:
                out.add(tag)
            elif tag in aliases:
                out.add(aliases[tag])
            else:
                out.add(UNRECOGNISED_RESTRICTION)
                _warn_unrecognised(source, tag)
        return frozenset(out)


_WARNED: set[tuple[str, str]] = set()


def _warn_unrecognised(source: str, tag: str) -> None:
    """Once per source and code, and only the code: never anything of the record."""
    if (source, tag) in _WARNED or len(_WARNED) > 10_000:
        return
    _WARNED.add((source, tag))
    log.warning(
        "source %s sent restriction code %r that no policy names (legal-tags.yaml): its "
        "records are shown as pointers at most until the policy names it",
        source,
        tag[:64],
    )


def _store(cache: dict[tuple[Any, ...], Any], key: tuple[Any, ...], value: Any) -> None:
    if len(cache) >= _CACHE_LIMIT:  # bounded: keys come from tokens and source data
        cache.clear()
    cache[key] = value


def _unique(items: Iterable[str]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(items))


class AccessPolicy:
    """The hub's access policy, loaded from a policy directory (``policies/`` by default)."""

    def __init__(self, data: PolicyData) -> None:
        self._catalogue = data.catalogue
        self._directory = data.directory
        self._state = _State.of(data)
        self._fingerprint = fingerprint(data.directory)
        self._reload_lock = threading.Lock()

    @classmethod
    def load(cls, policy_dir: pathlib.Path, catalogue: Catalogue) -> AccessPolicy:
        """Read and check the policy files against the schema's ``catalogue``
        (``resolvers.catalogue``); ``ConfigError`` (file:line) if they are wrong."""
        return cls(load_policy_data(pathlib.Path(policy_dir), catalogue))

    @property
    def version(self) -> str:
        """A hash of the policy files' content: changes whenever the policy changes."""
        return self._state.data.version

    @property
    def directory(self) -> pathlib.Path:
        return self._directory

    @property
    def data(self) -> PolicyData:
        return self._state.data

    def cache_sizes(self) -> Mapping[str, int]:
        """How many decisions are cached, by kind (for metrics and tests)."""
        state = self._state
        return {
            "records": len(state.decisions),
            "involvements": len(state.involvements),
            "sources": len(state.sources),
        }

    def agency(self, ori: str) -> AgencyFacts | None:
        """What the policy files say of an agency (name, state, retention), if anything."""
        return self._state.data.agencies.get(ori)

    def retention_ends(self, record: Record) -> datetime | None:
        """When ``record`` passes its owner's retention limit (the start of the first day it is
        over age, UTC), or None when no limit applies: what a cache may keep it until."""
        if record.created is None:
            return None
        kind = KIND_OF[type(record)]
        limit = self._state.retention.get((record.provenance.agency.ori, kind))
        if limit is None:
            return None
        last = record.created + timedelta(days=limit)
        return datetime.combine(last + timedelta(days=1), time(), UTC)

    def knows_agency(self, ori: str) -> bool:
        """Whether ``ori`` is a participant: an agency the policy files name. Nothing is shown
        to anyone else, not even a pointer."""
        return ori in self._state.data.agencies

    # -- the hot path --------------------------------------------------------------------------

    def decide(self, ctx: RequestContext, record: Record, now: datetime) -> RecordDecision:
        """FULL / POINTER / INVISIBLE and the denied fields of one record for this request.

        A record reached by traversal is decided on its own owner and tags, never its parent's.
        """
        state = self._current(now.date())
        provenance = record.provenance
        owner = provenance.agency
        kind = KIND_OF[type(record)]
        expired = False
        if record.created is not None:
            limit = state.retention.get((owner.ori, kind))
            if limit is not None:
                expired = (now.date() - record.created).days > limit
        subject = ctx.subject
        key = (
            subject.roles,
            subject.ori,
            subject.state,
            ctx.purpose,
            owner.ori,
            owner.state,
            kind,
            provenance.system.kind,
            record.tags,
            expired,
        )
        decision = state.decisions.get(key)
        if decision is None:
            tags = state.legal_tags(record.tags, provenance.system.name)
            tags |= state.source_tags.get((owner.ori, provenance.system.kind), _EMPTY)
            if expired:
                tags = tags | _EXPIRED
            decision = self._decide_type(state, ctx, owner, TYPE_OF_KIND[kind], tags)
            _store(state.decisions, key, decision)
        return decision

    def decide_involvement(
        self, ctx: RequestContext, owner: Agency, involvement: InvolvementRef
    ) -> RecordDecision:
        """The decision on one involvement (a person's role in an incident) of ``owner``'s record.

        Its fields are ``role``, ``person`` and ``incident``; e.g. the person of a sex-offence
        victim's involvement is denied to other agencies. Anything but FULL: leave it out.
        """
        state = self._current(datetime.now(UTC).date())
        subject = ctx.subject
        key = (
            subject.roles,
            subject.ori,
            subject.state,
            ctx.purpose,
            owner.ori,
            owner.state,
            involvement.tags,
        )
        decision = state.involvements.get(key)
        if decision is None:
            tags = state.legal_tags(involvement.tags, owner.ori)
            decision = self._decide_type(state, ctx, owner, INVOLVEMENT, tags)
            _store(state.involvements, key, decision)
        return decision

    def check_source(
        self,
        ctx: RequestContext,
        owner: Agency,
        source_kind: SourceKind,
        kinds: frozenset[EntityKind],
    ) -> SourceDecision:
        """May this subject ask ``owner``'s system of ``source_kind`` for ``kinds`` at all?

        Decided with the legal tags every record of that system carries (``agencies.yaml``
        ``source_tags``): if no record it could return may be shown, it is not contacted.
        """
        state = self._current(datetime.now(UTC).date())
        subject = ctx.subject
        key = (
            subject.roles,
            subject.ori,
            subject.state,
            ctx.purpose,
            owner.ori,
            owner.state,
            source_kind,
            kinds,
        )
        decision = state.sources.get(key)
        if decision is None:
            decision = self._check_source(state, ctx, owner, source_kind, kinds)
            _store(state.sources, key, decision)
        return decision

    def _current(self, today: date) -> _State:
        """The state in force on ``today``: rebuilt (decision caches emptied) once an agreement
        it holds has ended, so no cached decision outlives the agreement that granted it."""
        state = self._state
        if state.valid_through is None or today <= state.valid_through:
            return state
        with self._reload_lock:
            state = self._state
            if state.valid_through is not None and today > state.valid_through:
                state = self._state = _State.of(state.data, today)
        return state

    # -- reload --------------------------------------------------------------------------------

    def reload_if_changed(self) -> bool:
        """Re-read the policy files if they changed on disk; True when a new policy is in force.

        The decision caches go with the old policy. If the new files do not load, the policy in
        force stays and ``ConfigError`` says why; the same broken files are not re-read until
        they change again.
        """
        current = fingerprint(self._directory)
        if current == self._fingerprint:
            return False
        with self._reload_lock:
            if current == self._fingerprint:
                return False
            self._fingerprint = current
            data = load_policy_data(self._directory, self._catalogue)
            if data.version == self._state.data.version:
                return False
            self._state = _State.of(data)
            return True

    # -- explain -------------------------------------------------------------------------------

    def explain(
        self,
        ctx: RequestContext,
        owner: Agency,
        field: str,
        tags: frozenset[str] = frozenset(),
        *,
        source_kind: SourceKind | None = None,
        expired: bool = False,
    ) -> Explanation:
        """The decision on ``field`` ("Person.ssn", or "Person" for the record) and its rules."""
        if field not in self._catalogue.objects:
            raise ValueError(
                f"unknown field {field!r}: use Type or Type.field as the schema names them, "
                f"e.g. Person or Person.ssn"
            )
        state = self._state
        type_name, _, name = field.partition(".")
        effective = frozenset(tags)
        if source_kind is not None and type_name in KIND_OF_TYPE:
            effective |= state.source_tags.get((owner.ori, source_kind), _EMPTY)
        if expired:
            effective |= _EXPIRED
        record = self._decide_type(state, ctx, owner, type_name, effective)
        if name:
            allowed = record.visibility is Visibility.FULL and name not in record.denied_fields
        else:
            allowed = record.visibility is Visibility.FULL
        asker = self._asker(ctx)
        traces: list[RoleTrace] = []
        note = ""
        if isinstance(asker, _Asker):
            for role in asker.roles:
                steps = [(type_name, "see"), (type_name, "read")]
                if name:
                    steps.append((field, "read"))
                for obj, act in steps:
                    hub_v, owner_v = self._layers(state, asker, role, owner, effective, obj, act)
                    traces.append(RoleTrace(role, act, obj, hub_v, owner_v))
            if name and record.visibility is not Visibility.FULL:
                note = (
                    f"the record is {record.visibility.value} to this subject, so none of its "
                    "fields is read"
                )
        else:
            note = asker
        subject = ctx.subject
        return Explanation(
            subject=(
                f"{subject.user_id} ({subject.ori}, {subject.state}; roles "
                f"{', '.join(sorted(subject.roles)) or 'none'})"
            ),
            purpose=ctx.purpose,
            owner=f"{owner.ori} ({owner.state})",
            tags=effective,
            object=field,
            record=record,
            allowed=allowed,
            traces=tuple(traces),
            note=note,
        )

    # -- deciding ------------------------------------------------------------------------------

    def _asker(self, ctx: RequestContext) -> _Asker | str:
        """The asker, or the built-in rule id that makes everything invisible to it."""
        purpose = ctx.purpose
        if purpose is None:
            return PURPOSE_REQUIRED
        if purpose not in PURPOSES:
            return PURPOSE_UNKNOWN
        if ctx.subject.ori not in self._state.data.agencies:
            # The pointer index is for participants: an agency no policy names learns nothing.
            return UNKNOWN_AGENCY
        roles = tuple(sorted(r for r in ctx.subject.roles if r in ROLES))
        if not roles:
            return NO_KNOWN_ROLE
        return _Asker(roles, ctx.subject.ori, ctx.subject.state, purpose)

    @staticmethod
    def _layers(
        state: _State,
        asker: _Asker,
        role: str,
        owner: Agency,
        tags: frozenset[str],
        obj: str,
        act: str,
    ) -> tuple[Verdict, Verdict]:
        enforcer = state.enforcer
        hub_v = enforcer.hub(role, asker.purpose, obj, act)
        owner_v = enforcer.owner(
            role, asker.ori, asker.state, asker.purpose, owner.ori, owner.state, tags, obj, act
        )
        return hub_v, owner_v

    @staticmethod
    def _both(
        state: _State,
        asker: _Asker,
        role: str,
        owner: Agency,
        tags: frozenset[str],
        obj: str,
        act: str,
    ) -> tuple[bool, tuple[str, ...]]:
        """Allowed only if the hub layer and the owner layer both allow; with the deciding rules."""
        enforcer = state.enforcer
        hub_v = enforcer.hub(role, asker.purpose, obj, act)
        if not hub_v.allowed:
            return False, (hub_v.rule,)
        owner_v = enforcer.owner(
            role, asker.ori, asker.state, asker.purpose, owner.ori, owner.state, tags, obj, act
        )
        if not owner_v.allowed:
            return False, (owner_v.rule,)
        return True, (hub_v.rule, owner_v.rule)

    def _decide_type(
        self,
        state: _State,
        ctx: RequestContext,
        owner: Agency,
        type_name: str,
        tags: frozenset[str],
    ) -> RecordDecision:
        all_fields = state.all_fields[type_name]
        asker = self._asker(ctx)
        if not isinstance(asker, _Asker):
            return RecordDecision(Visibility.INVISIBLE, all_fields, (asker,))
        names = self._catalogue.fields[type_name]
        identity = _IDENTITY & all_fields  # a record's; an involvement has none of its own
        best = Visibility.INVISIBLE
        readable: set[str] = set()
        findable: set[str] = set()
        full_rules: list[str] = []
        field_rules: dict[str, list[str]] = {}
        pointer_rules: list[str] = []
        pointer_allow: list[str] = []
        invisible_rules: list[str] = []
        for role in asker.roles:
            seen, see_rules = self._both(state, asker, role, owner, tags, type_name, "see")
            if not seen:
                invisible_rules.extend(see_rules)
                continue
            read, read_rules = self._both(state, asker, role, owner, tags, type_name, "read")
            role_readable = (
                {
                    name
                    for name in names
                    if self._granted(state, asker, role, owner, tags, type_name, name, field_rules)
                }
                if read
                else set()
            )
            # A record without its id and owner cannot stand as a record: a pointer at most.
            if not read or not role_readable >= identity:
                pointer_rules.extend(read_rules)
                pointer_allow.extend(see_rules)
                if best is Visibility.INVISIBLE:
                    best = Visibility.POINTER
                findable |= self._findable(state, asker, role, owner, tags, type_name)
                continue
            best = Visibility.FULL
            full_rules.extend(read_rules)
            readable |= role_readable
        if best is Visibility.FULL:
            denied = all_fields - readable
            withheld = [r for name in names if name in denied for r in field_rules[name]]
            return RecordDecision(
                best, denied, _unique(full_rules + withheld), readable_fields=frozenset(readable)
            )
        if best is Visibility.POINTER:
            return RecordDecision(
                best,
                all_fields,
                _unique(pointer_rules + pointer_allow),
                findable_fields=frozenset(findable),
            )
        return RecordDecision(best, all_fields, _unique(invisible_rules))

    def _granted(
        self,
        state: _State,
        asker: _Asker,
        role: str,
        owner: Agency,
        tags: frozenset[str],
        type_name: str,
        name: str,
        field_rules: dict[str, list[str]],
    ) -> bool:
        """Whether a rule grants ``role`` to read ``Type.name`` (allow-list: nothing else is)."""
        ok, rules = self._both(state, asker, role, owner, tags, f"{type_name}.{name}", "read")
        if not ok:
            field_rules.setdefault(name, []).extend(rules)
        return ok

    def _findable(
        self,
        state: _State,
        asker: _Asker,
        role: str,
        owner: Agency,
        tags: frozenset[str],
        type_name: str,
    ) -> set[str]:
        """The fields a search may match a pointer on: both layers allow ``find`` on the field,
        no deny rule withholds the field's value from this reader (a victim's name, an SSN that
        never leaves its agency), and it is not free text."""
        out = set()
        for name in self._catalogue.fields[type_name]:
            obj = f"{type_name}.{name}"
            if obj in self._catalogue.free_text:
                continue
            if not self._both(state, asker, role, owner, tags, obj, "find")[0]:
                continue
            verdicts = self._layers(state, asker, role, owner, tags, obj, "read")
            if any(not v.allowed and v.rule not in DEFAULT_RULES for v in verdicts):
                continue
            out.add(name)
        return out

    def _check_source(
        self,
        state: _State,
        ctx: RequestContext,
        owner: Agency,
        source_kind: SourceKind,
        kinds: frozenset[EntityKind],
    ) -> SourceDecision:
        asker = self._asker(ctx)
        if not isinstance(asker, _Asker):
            reason = {
                PURPOSE_REQUIRED: "no purpose of use was stated",
                PURPOSE_UNKNOWN: "the purpose of use is not one the policy knows",
                NO_KNOWN_ROLE: "the subject holds no role the policy knows",
                UNKNOWN_AGENCY: "the subject's agency is not a participant",
            }[asker]
            return SourceDecision(False, "DENIED", f"{reason} ({asker})")
        if not kinds:
            return SourceDecision(
                False, "SKIPPED", "the query asks for no kind of record this source holds"
            )
        tags = state.source_tags.get((owner.ori, source_kind), _EMPTY)
        forbidden: list[str] = []
        not_shown: list[str] = []
        for kind in sorted(kinds):
            type_name = TYPE_OF_KIND[kind]
            for role in asker.roles:
                hub_v, owner_v = self._layers(state, asker, role, owner, tags, type_name, "see")
                if hub_v.allowed and owner_v.allowed:
                    return SourceDecision(True, None, "")
                if hub_v.allowed:
                    forbidden.append(owner_v.rule)
                else:
                    not_shown.append(hub_v.rule)
        what = f"{'/'.join(sorted(kinds))} of {owner.ori}'s {source_kind.value} system"
        if forbidden:
            return SourceDecision(
                False,
                "DENIED",
                f"policy forbids this subject's agency to ask for {what} "
                f"({', '.join(_unique(forbidden))})",
            )
        return SourceDecision(
            False,
            "SKIPPED",
            f"none of {what} may be shown to roles {', '.join(asker.roles)} for purpose "
            f"{asker.purpose} ({', '.join(_unique(not_shown))})",
        )
