"""Reading the policy directory: files → checked rows → a Casbin enforcer.

The policy directory holds ``model.conf`` (the Casbin model), any number of ``*.csv`` rule files
(Casbin policy lines with ``#`` comments), ``agreements.yaml`` (data-sharing agreements and agency
groups, turned into ``p2`` / ``g`` rows here), ``agencies.yaml`` (the participants, their
retention limits and the legal tags each agency's systems attach) and ``legal-tags.yaml`` (the
vocabulary of legal tags, and vendor restriction codes read as one of them). ``README.md`` and
``cases.yaml`` are documentation and tests, not policy: editing them does not change the
policy's version.

Every row is checked against the catalogue (roles, purposes, the schema's objects, the tag
vocabulary, actions) and remembers
where it came from, so a typo fails the load with ``file:line`` and ``explain`` can cite the rule.
"""

from __future__ import annotations

import hashlib
import pathlib
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from datetime import date, datetime
from typing import Any

import casbin
import yaml
from casbin.persist import Adapter

from hub.access.catalogue import (
    ACTIONS,
    COMPUTED_TAGS,
    ROLES,
    TYPE_OF_KIND,
    Catalogue,
)
from hub.access.matching import ANY, MATCHER_FUNCTIONS, RELATIONS, object_match, split_pattern
from hub.access.purposes import PURPOSES
from hub.errors import ConfigError
from hub.model import EntityKind, SourceKind

MODEL_FILE = "model.conf"
AGREEMENTS_FILE = "agreements.yaml"
AGENCIES_FILE = "agencies.yaml"
TAGS_FILE = "legal-tags.yaml"

_ORI = re.compile(r"^[A-Z]{2}[A-Z0-9]{7}$")
_NAME = re.compile(r"^[a-z0-9][a-z0-9.-]*$")  # group names
_RULE_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")  # rule and agreement ids
# Columns of each row type, after the type itself (model.conf [policy_definition]).
_WIDTH = {"p": 6, "p2": 9, "g": 2}


@dataclass(frozen=True, slots=True)
class Rule:
    """One policy row as Casbin sees it, with where it was written."""

    ptype: str  # p (hub layer), p2 (owner layer), g (agency group)
    values: tuple[str, ...]
    origin: str  # "hub-rules.csv:17" or "agreements.yaml MVSO-CCPD-2024"
    # An agreement's last day (its `until:`): the row grants nothing after it.
    until: date | None = None

    @property
    def id(self) -> str:
        return self.values[-1] if self.ptype != "g" else f"group.{self.values[1]}"

    @property
    def text(self) -> str:
        return ", ".join((self.ptype, *self.values))


@dataclass(frozen=True, slots=True)
class AgencyFacts:
    ori: str
    name: str
    state: str
    retention_days: Mapping[EntityKind, int] = field(default_factory=dict)
    source_tags: Mapping[SourceKind, frozenset[str]] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class AgreementFacts:
    """An agreement as the audit review reads it: who shares with whom, why, until when.
    Groups are expanded to ORIs; ``roles`` is empty when any role may read."""

    id: str
    owners: frozenset[str]
    requesters: frozenset[str]
    purposes: frozenset[str]
    roles: frozenset[str]
    kinds: frozenset[EntityKind]
    until: date | None = None

    def covers(self, owner: str, requester: str, roles: Iterable[str]) -> bool:
        return (
            owner in self.owners
            and requester in self.requesters
            and (not self.roles or bool(self.roles & set(roles)))
        )


@dataclass(frozen=True, slots=True)
class PolicyData:
    """Everything the policy directory says, checked; ``version`` is its content hash."""

    directory: pathlib.Path
    version: str
    model_text: str
    rules: tuple[Rule, ...]
    groups: Mapping[str, frozenset[str]]
    agencies: Mapping[str, AgencyFacts]
    # Where each Casbin row came from, to cite it in explanations.
    origins: Mapping[tuple[str, tuple[str, ...]], Rule]
    # The schema's data-bearing types and fields (what rules may name).
    catalogue: Catalogue
    # The legal tags rules may name; and restriction codes sources send, read as one of them.
    tags: frozenset[str]
    tag_aliases: Mapping[str, str]
    agreements: tuple[AgreementFacts, ...] = ()

    def in_force(self, today: date) -> PolicyData:
        """This policy without the rows of agreements that ended before ``today``."""
        rules = tuple(r for r in self.rules if r.until is None or r.until >= today)
        if len(rules) == len(self.rules):
            return self
        return replace(self, rules=rules, origins={(r.ptype, r.values): r for r in rules})

    def next_end(self, today: date) -> date | None:
        """The last day of the first agreement still in force on ``today`` that has one."""
        ends = [r.until for r in self.rules if r.until is not None and r.until >= today]
        return min(ends) if ends else None


def policy_files(directory: pathlib.Path) -> list[pathlib.Path]:
    """The files whose content is the policy (and so its version), in a stable order."""
    names = [MODEL_FILE, AGREEMENTS_FILE, AGENCIES_FILE, TAGS_FILE]
    files = [directory / n for n in names if (directory / n).is_file()]
    files += sorted(p for p in directory.glob("*.csv") if p.is_file())
    return files


def fingerprint(directory: pathlib.Path) -> tuple[tuple[str, int, int], ...]:
    """A cheap stand-in for the content: names, sizes and modification times."""
    out = []
    for path in policy_files(directory):
        try:
            st = path.stat()
        except FileNotFoundError:
            continue
        out.append((path.name, st.st_size, st.st_mtime_ns))
    return tuple(out)


def _read_files(directory: pathlib.Path) -> tuple[str, dict[str, str]]:
    """(version, name -> text) read in one pass, so the version is the content that is loaded."""
    digest = hashlib.sha256()
    texts: dict[str, str] = {}
    for path in policy_files(directory):
        try:
            raw = path.read_bytes()
        except OSError as exc:
            raise ConfigError(f"{path.name}: cannot read: {exc.strerror}") from exc
        digest.update(path.name.encode() + b"\0" + raw + b"\0")
        try:
            texts[path.name] = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise ConfigError(f"{path.name}: not UTF-8 text") from exc
    return digest.hexdigest()[:16], texts


def content_version(directory: pathlib.Path) -> str:
    """The policy's version: a hash of the content of its files."""
    return _read_files(directory)[0]


def load_policy_data(directory: pathlib.Path, catalogue: Catalogue) -> PolicyData:
    """Read and check the policy directory against the schema's ``catalogue``; ``ConfigError``
    names the file and line at fault."""
    directory = directory.resolve()
    version, texts = _read_files(directory)
    if MODEL_FILE not in texts:
        raise ConfigError(f"policy directory {directory} has no {MODEL_FILE}")
    tags, aliases = _legal_tags(TAGS_FILE, texts.get(TAGS_FILE))

    rows: list[Rule] = []
    for name in sorted(n for n in texts if n.endswith(".csv")):
        rows.extend(_csv_rows(name, texts[name]))
    groups_data, agreement_rows, agreement_facts = _agreements(
        AGREEMENTS_FILE, texts.get(AGREEMENTS_FILE), catalogue
    )
    rows.extend(agreement_rows)
    agencies = _agencies(AGENCIES_FILE, texts.get(AGENCIES_FILE), tags)

    # Groups may be written in agreements.yaml or as g rows of a CSV file; Casbin gets both.
    groups: dict[str, set[str]] = {name: set(members) for name, members in groups_data.items()}
    for rule in rows:
        if rule.ptype == "g":
            member, group = rule.values
            if not _ORI.match(member) or not _NAME.match(group) or group in RELATIONS:
                raise ConfigError(f"{rule.origin}: a group row is `g, ORI, group-name`")
            groups.setdefault(group, set()).add(member)
    rows = [r for r in rows if r.ptype != "g"]
    rows.extend(
        Rule("g", (member, group), f"groups.{group}")
        for group, members in sorted(groups.items())
        for member in sorted(members)
    )
    frozen_groups = {g: frozenset(m) for g, m in groups.items()}
    objects = catalogue.objects
    for rule in rows:
        _check(rule, frozen_groups, objects, tags, catalogue.free_text)
    origins = {(r.ptype, r.values): r for r in rows}
    return PolicyData(
        directory=directory,
        version=version,
        model_text=texts[MODEL_FILE],
        rules=tuple(rows),
        groups=frozen_groups,
        agencies=agencies,
        origins=origins,
        catalogue=catalogue,
        tags=tags,
        tag_aliases=aliases,
        agreements=tuple(
            replace(
                a,
                owners=_expand(a.owners, frozen_groups),
                requesters=_expand(a.requesters, frozen_groups),
            )
            for a in agreement_facts
        ),
    )


def _expand(names: frozenset[str], groups: Mapping[str, frozenset[str]]) -> frozenset[str]:
    return frozenset(ori for n in names for ori in groups.get(n, frozenset({n})))


class _RowsAdapter(Adapter):  # type: ignore[misc]
    """Hands Casbin the rows already read and checked; the policy is never written back."""

    def __init__(self, rules: Iterable[Rule]) -> None:
        self._rules = tuple(rules)

    def load_policy(self, model: Any) -> None:
        for rule in self._rules:
            section = "g" if rule.ptype.startswith("g") else "p"
            model.model[section][rule.ptype].policy.append(list(rule.values))


def build_enforcer(data: PolicyData, enforcer_class: type[Any] = casbin.Enforcer) -> Any:
    """A Casbin enforcer holding the checked rows, with the model's matcher functions."""
    try:
        model = enforcer_class.new_model(text=data.model_text)
        enforcer = enforcer_class(model, _RowsAdapter(data.rules))
    except (RuntimeError, KeyError, ValueError, SyntaxError) as exc:
        raise ConfigError(f"{MODEL_FILE}: Casbin cannot load the policy: {exc}") from exc
    for name, fn in MATCHER_FUNCTIONS.items():
        enforcer.add_function(name, fn)
    return enforcer


# -- reading ---------------------------------------------------------------------------------


def _csv_rows(name: str, text: str) -> Iterator[Rule]:
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        origin = f"{name}:{number}"
        tokens = [t.strip() for t in line.split(",")]
        ptype, values = tokens[0], tuple(tokens[1:])
        if ptype not in _WIDTH:
            raise ConfigError(f"{origin}: unknown row type {ptype!r} (p, p2 or g)")
        if len(values) != _WIDTH[ptype]:
            raise ConfigError(
                f"{origin}: a {ptype} row has {_WIDTH[ptype]} columns after the type, "
                f"this one has {len(values)}"
            )
        if any(not v for v in values):
            raise ConfigError(f"{origin}: empty column")
        yield Rule(ptype, values, origin)


def _read_yaml(name: str, text: str | None) -> dict[str, Any]:
    if text is None:
        return {}
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"{name}: not valid YAML: {exc}") from exc
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{name}: expected a mapping at the top level")
    return data


def _str_list(value: Any, where: str) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return list(value)
    raise ConfigError(f"{where}: expected a name or a list of names")


def _agreements(
    name: str, text: str | None, catalogue: Catalogue
) -> tuple[dict[str, list[str]], list[Rule], list[AgreementFacts]]:
    data = _read_yaml(name, text)
    groups_raw = data.get("groups") or {}
    if not isinstance(groups_raw, dict):
        raise ConfigError(f"{name}: `groups` must map a group name to a list of ORIs")
    groups: dict[str, list[str]] = {}
    for group, members in groups_raw.items():
        where = f"{name} groups.{group}"
        if not isinstance(group, str) or not _NAME.match(group) or group in RELATIONS:
            raise ConfigError(f"{where}: a group name is lower case letters, digits, . and -")
        groups[group] = _str_list(members, where)
        for ori in groups[group]:
            if not _ORI.match(ori):
                raise ConfigError(f"{where}: {ori!r} is not an ORI")

    rows: list[Rule] = []
    facts: list[AgreementFacts] = []
    seen: set[str] = set()
    for index, agreement in enumerate(data.get("agreements") or []):
        if not isinstance(agreement, dict):
            raise ConfigError(f"{name} agreements[{index}]: expected a mapping")
        agreement_id = agreement.get("id")
        if not isinstance(agreement_id, str) or not _RULE_ID.match(agreement_id):
            raise ConfigError(f"{name} agreements[{index}]: needs an `id`")
        where = f"{name} {agreement_id}"
        if agreement_id in seen:
            raise ConfigError(f"{where}: the id is used twice")
        seen.add(agreement_id)
        unknown = set(agreement) - {
            "id",
            "title",
            "owner",
            "requesters",
            "purposes",
            "roles",
            "share",
            "signed",
            "until",
            "notes",
        }
        if unknown:
            raise ConfigError(f"{where}: unknown keys {sorted(unknown)}")
        for key in ("owner", "requesters", "purposes", "share"):
            if key not in agreement:
                raise ConfigError(f"{where}: `{key}` is required")
        owners = _str_list(agreement["owner"], f"{where} owner")
        requesters = _str_list(agreement["requesters"], f"{where} requesters")
        purposes = "|".join(_str_list(agreement["purposes"], f"{where} purposes"))
        roles = "|".join(_str_list(agreement.get("roles", ANY), f"{where} roles"))
        share = agreement["share"]
        if not isinstance(share, dict) or not share:
            raise ConfigError(f"{where}: `share` maps record kinds to fields")
        until = agreement.get("until")
        if until is not None and (not isinstance(until, date) or isinstance(until, datetime)):
            raise ConfigError(f"{where}: `until` is the agreement's last day, e.g. 2026-06-30")
        rule_id = f"agreement.{agreement_id}"
        shared_kinds: set[EntityKind] = set()
        for kind_name, fields in share.items():
            try:
                type_name = TYPE_OF_KIND[EntityKind(kind_name)]
                shared_kinds.add(EntityKind(kind_name))
            except (ValueError, KeyError):
                kinds = ", ".join(k.value for k in EntityKind)
                raise ConfigError(f"{where}: unknown record kind {kind_name!r} ({kinds})") from None
            if fields == ANY:
                objects = f"{type_name}|{type_name}.*"
            else:
                names = _str_list(fields, f"{where} share.{kind_name}")
                bad = [f for f in names if f not in catalogue.fields[type_name]]
                if bad:
                    raise ConfigError(f"{where}: {type_name} has no field(s) {bad}")
                objects = "|".join((type_name, *(f"{type_name}.{f}" for f in names)))
            for owner in owners:
                for requester in requesters:
                    values = (
                        owner,
                        requester,
                        roles,
                        purposes,
                        ANY,
                        objects,
                        "read",
                        "allow",
                        rule_id,
                    )
                    rows.append(Rule("p2", values, where, until))
        role_names = _str_list(agreement.get("roles", ANY), f"{where} roles")
        facts.append(
            AgreementFacts(
                id=agreement_id,
                owners=frozenset(owners),
                requesters=frozenset(requesters),
                purposes=frozenset(purposes.split("|")),
                roles=frozenset(r for r in role_names if r != ANY),
                kinds=frozenset(shared_kinds),
                until=until,
            )
        )
    return groups, rows, facts


def _legal_tags(name: str, text: str | None) -> tuple[frozenset[str], dict[str, str]]:
    """The tag vocabulary and the aliases of vendor restriction codes (``legal-tags.yaml``)."""
    if text is None:
        raise ConfigError(f"the policy directory has no {name}: the legal tags must be named")
    data = _read_yaml(name, text)
    unknown = set(data) - {"tags", "codes"}
    if unknown:
        raise ConfigError(f"{name}: unknown keys {sorted(unknown)} (tags, codes)")
    raw = data.get("tags")
    if not isinstance(raw, dict) or not raw:
        raise ConfigError(f"{name}: `tags` maps each legal tag to what it means")
    tags: set[str] = set()
    for tag, meaning in raw.items():
        if not isinstance(tag, str) or not _NAME.match(tag) or not isinstance(meaning, str):
            raise ConfigError(f"{name} tags.{tag}: a tag is lower case letters, digits, . and -, "
                              "with a sentence saying what it means")  # fmt: skip
        tags.add(tag)
    missing = COMPUTED_TAGS - tags
    if missing:
        raise ConfigError(f"{name}: the hub computes {sorted(missing)}; name them under `tags`")
    aliases: dict[str, str] = {}
    codes = data.get("codes") or {}
    if not isinstance(codes, dict):
        raise ConfigError(f"{name}: `codes` maps a source's restriction code to a legal tag")
    for code, tag in codes.items():
        if not isinstance(code, str) or not isinstance(tag, str) or tag not in tags:
            raise ConfigError(f"{name} codes.{code}: must name one of the tags above")
        aliases[code] = tag
    return frozenset(tags), aliases


def _agencies(name: str, text: str | None, known_tags: frozenset[str]) -> dict[str, AgencyFacts]:
    data = _read_yaml(name, text)
    out: dict[str, AgencyFacts] = {}
    for ori, facts in (data.get("agencies") or {}).items():
        where = f"{name} {ori}"
        if not isinstance(ori, str) or not _ORI.match(ori):
            raise ConfigError(f"{where}: not an ORI")
        if not isinstance(facts, dict) or not isinstance(facts.get("state"), str):
            raise ConfigError(f"{where}: needs at least `state`")
        retention: dict[EntityKind, int] = {}
        for kind_name, days in (facts.get("retention_days") or {}).items():
            try:
                kind = EntityKind(kind_name)
            except ValueError:
                raise ConfigError(f"{where}: unknown record kind {kind_name!r}") from None
            if not isinstance(days, int) or isinstance(days, bool) or days < 0:
                raise ConfigError(f"{where}: retention_days.{kind_name} must be whole days")
            retention[kind] = days
        source_tags: dict[SourceKind, frozenset[str]] = {}
        for source_kind, tags in (facts.get("source_tags") or {}).items():
            try:
                skind = SourceKind(source_kind)
            except ValueError:
                raise ConfigError(f"{where}: unknown source kind {source_kind!r}") from None
            tag_list = _str_list(tags, f"{where} source_tags.{source_kind}")
            bad = set(tag_list) - known_tags
            if bad:
                raise ConfigError(f"{where}: unknown legal tag(s) {sorted(bad)}")
            source_tags[skind] = frozenset(tag_list)
        out[ori] = AgencyFacts(
            ori=ori,
            name=str(facts.get("name", ori)),
            state=facts["state"],
            retention_days=retention,
            source_tags=source_tags,
        )
    return out


# -- checking --------------------------------------------------------------------------------


def _check_tokens(rule: Rule, column: str, pattern: str, known: Iterable[str]) -> None:
    if pattern == ANY:
        return
    _, tokens = split_pattern(pattern)
    bad = sorted(set(tokens) - set(known))
    if bad or not tokens:
        raise ConfigError(f"{rule.origin}: unknown {column} {bad or pattern!r} in `{rule.text}`")


def _check_objects(rule: Rule, pattern: str, objects: tuple[str, ...]) -> None:
    if pattern == ANY:
        return
    _, tokens = split_pattern(pattern)
    for token in tokens:
        if not any(object_match(obj, token) for obj in objects):
            raise ConfigError(
                f"{rule.origin}: {token!r} names no type or Type.field of the schema "
                f"in `{rule.text}`"
            )


def _check_agencies(
    rule: Rule, column: str, pattern: str, groups: Mapping[str, Any], relations: frozenset[str]
) -> None:
    if pattern == ANY:
        return
    if pattern in groups:
        return
    _, tokens = split_pattern(pattern)
    for token in tokens:
        if token in groups:
            raise ConfigError(
                f"{rule.origin}: a group can only stand alone in the {column} column "
                f"(one row per group) in `{rule.text}`"
            )
        if token not in relations and not _ORI.match(token):
            raise ConfigError(f"{rule.origin}: unknown {column} {token!r} in `{rule.text}`")


def _check(
    rule: Rule,
    groups: Mapping[str, frozenset[str]],
    objects: tuple[str, ...],
    tags: frozenset[str],
    free_text: frozenset[str],
) -> None:
    v = rule.values
    if rule.ptype == "g":
        return
    if not _RULE_ID.match(v[-1]):
        raise ConfigError(f"{rule.origin}: rule id {v[-1]!r}: letters, digits, . _ and -")
    if v[-2] not in ("allow", "deny"):
        raise ConfigError(f"{rule.origin}: effect must be allow or deny, not {v[-2]!r}")
    if rule.ptype == "p":
        role, purposes, objects_pattern, actions = v[:4]
    else:
        owner, requester, role, purposes, _, objects_pattern, actions = v[:7]
        _check_agencies(rule, "owner", owner, groups, frozenset())
        _check_agencies(rule, "requester", requester, groups, RELATIONS)
        _check_tokens(rule, "legal tag", v[4], tags)
    _check_tokens(rule, "role", role, ROLES)
    _check_tokens(rule, "purpose", purposes, PURPOSES)
    _check_tokens(rule, "action", actions, ACTIONS)
    _check_objects(rule, objects_pattern, objects)
    if v[-2] == "allow" and "find" in split_pattern(actions)[1]:
        # Free text is never a pointer's key: a report could be read back word by word.
        _, named = split_pattern(objects_pattern)
        text_fields = sorted(
            f for f in free_text for token in named if "*" not in token and object_match(f, token)
        )
        if text_fields:
            raise ConfigError(
                f"{rule.origin}: {', '.join(text_fields)} is free text, never matched for a "
                f"pointer (`find`), in `{rule.text}`"
            )
