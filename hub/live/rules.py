"""Policy data and operational data of live results, read from files and re-read when they change.

- ``LiveRules`` (``policies/live.yaml``: policy, reviewed like the rest of the policy
  directory): how long a watch may stand, per purpose and per role; how many watches a user may
  keep; which agencies let which others learn of their interest in a subject (deconfliction).
  Deny by default: a purpose not listed cannot be watched for, an agency not listed tells no one.
- ``HotLists`` (a configured file, ``[live] hot_lists``): each agency's plates with NCIC-style
  reason codes. Operational data, not policy: it changes many times a day (an NCIC extract, an
  AMBER alert), is not something counsel reviews, and must not change the policy's version that
  every audit entry records.

A file that does not load is refused with its name and the key; on a reload the previous
content stays in force.
"""

from __future__ import annotations

import logging
import pathlib
from collections import defaultdict
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Generic, TypeVar

import yaml

from hub.access.catalogue import ROLES
from hub.access.purposes import PURPOSES
from hub.errors import AccessDenied, ConfigError, InvalidInput
from hub.live.model import REASONS, HotListEntry
from hub.model import normalise_plate

log = logging.getLogger(__name__)

RULES_FILE = "live.yaml"
DEFAULT_MAX_WATCHES = 20


def _yaml(path: pathlib.Path) -> dict[str, Any]:
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror}") from exc
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from exc
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping at the top level")
    return data


def _days(value: Any, where: str) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise ConfigError(f"{where}: a whole number of days, at least 1")
    return value


@dataclass(frozen=True, slots=True)
class Consent:
    share_with: frozenset[str]  # ORIs, or "*"
    contact: str

    def allows(self, ori: str) -> bool:
        return "*" in self.share_with or ori in self.share_with


@dataclass(frozen=True, slots=True)
class LiveRules:
    purpose_days: Mapping[str, int] = field(default_factory=dict)
    role_days: Mapping[str, int] = field(default_factory=dict)
    max_watches: int = DEFAULT_MAX_WATCHES
    consent: Mapping[str, Consent] = field(default_factory=dict)

    @classmethod
    def parse(
        cls, path: pathlib.Path, knows_agency: Callable[[str], bool] | None = None
    ) -> LiveRules:
        if not path.is_file():
            return cls()  # no file: nothing may be watched, no one is told of anyone
        data = _yaml(path)
        known = {"watch_expiry", "max_watches", "deconfliction"}
        for key in data:
            if key not in known:
                raise ConfigError(f"{path.name}: unknown key {key!r} (known: {sorted(known)})")
        expiry = data.get("watch_expiry") or {}
        if not isinstance(expiry, dict):
            raise ConfigError(f"{path.name}: watch_expiry must be a mapping")
        purposes = expiry.get("purposes") or {}
        roles = expiry.get("roles") or {}
        if not isinstance(purposes, dict) or not isinstance(roles, dict):
            raise ConfigError(f"{path.name}: watch_expiry.purposes and .roles are mappings")
        for code in purposes:
            if code not in PURPOSES:
                raise ConfigError(f"{path.name}: watch_expiry.purposes.{code}: unknown purpose")
        for role in roles:
            if role not in ROLES:
                raise ConfigError(f"{path.name}: watch_expiry.roles.{role}: unknown role")
        max_watches = data.get("max_watches", DEFAULT_MAX_WATCHES)
        consent: dict[str, Consent] = {}
        for ori, entry in (data.get("deconfliction") or {}).items():
            where = f"{path.name}: deconfliction.{ori}"
            if knows_agency is not None and not knows_agency(str(ori)):
                raise ConfigError(f"{where}: an agency the policy does not know")
            if not isinstance(entry, dict) or set(entry) - {"share_with", "contact"}:
                raise ConfigError(f"{where}: share_with and contact only")
            share = entry.get("share_with") or []
            if not isinstance(share, list) or not all(isinstance(s, str) for s in share):
                raise ConfigError(f"{where}.share_with: a list of ORIs or '*'")
            for other in share:
                if other != "*" and knows_agency is not None and not knows_agency(other):
                    raise ConfigError(f"{where}.share_with: {other} is not a known agency")
            contact = entry.get("contact")
            if not isinstance(contact, str) or not contact.strip():
                raise ConfigError(f"{where}.contact: the desk other agencies should call")
            consent[str(ori)] = Consent(frozenset(share), contact.strip())
        return cls(
            purpose_days={
                str(k): _days(v, f"{path.name}: watch_expiry.purposes.{k}")
                for k, v in purposes.items()
            },
            role_days={
                str(k): _days(v, f"{path.name}: watch_expiry.roles.{k}") for k, v in roles.items()
            },
            max_watches=_days(max_watches, f"{path.name}: max_watches"),
            consent=consent,
        )

    def latest_expiry(self, purpose: str, roles: frozenset[str], now: datetime) -> datetime:
        """The latest ``until`` a watch of ``purpose`` by a user of ``roles`` may have;
        AccessDenied when the purpose may not be watched for at all."""
        days = self.purpose_days.get(purpose)
        if days is None:
            raise AccessDenied(f"no watch may be made for purpose {purpose[:16]}")
        for role in roles:
            if role in self.role_days:
                days = min(days, self.role_days[role])
        return now + timedelta(days=days)

    def check_until(
        self, purpose: str, roles: frozenset[str], now: datetime, until: datetime
    ) -> None:
        latest = self.latest_expiry(purpose, roles, now)
        if until <= now:
            raise InvalidInput("until must be in the future")
        if until > latest:
            raise InvalidInput(
                f"until may be at most {latest.isoformat(timespec='seconds')} for this purpose "
                "and role (policies/live.yaml)"
            )

    def may_deconflict(self, a: str, b: str) -> bool:
        """Both agencies allow each other to learn of their interest (deny by default)."""
        ca, cb = self.consent.get(a), self.consent.get(b)
        return a != b and ca is not None and cb is not None and ca.allows(b) and cb.allows(a)

    def contact(self, ori: str) -> str:
        found = self.consent.get(ori)
        return found.contact if found is not None else ""


@dataclass(frozen=True, slots=True)
class HotLists:
    by_plate: Mapping[str, tuple[HotListEntry, ...]] = field(default_factory=dict)

    @classmethod
    def parse(
        cls, path: pathlib.Path | None, knows_agency: Callable[[str], bool] | None = None
    ) -> HotLists:
        """``path``: a YAML mapping of agency ORI to a list of entries
        ``{plate, state?, reason, reference?}``."""
        if path is None:
            return cls()
        if not path.is_file():
            raise ConfigError(f"{path}: no hot-list file there ([live] hot_lists)")
        data = _yaml(path)
        by_plate: dict[str, list[HotListEntry]] = defaultdict(list)
        for ori, entries in data.items():
            where = f"{path.name}: {ori}"
            if knows_agency is not None and not knows_agency(str(ori)):
                raise ConfigError(f"{where}: an agency the policy does not know")
            if not isinstance(entries, list):
                raise ConfigError(f"{where}: a list of entries")
            for n, entry in enumerate(entries):
                at = f"{where}[{n}]"
                if not isinstance(entry, dict) or set(entry) - {
                    "plate",
                    "state",
                    "reason",
                    "reference",
                }:
                    raise ConfigError(f"{at}: plate, state, reason and reference only")
                plate = normalise_plate(str(entry.get("plate") or ""))
                if not 1 <= len(plate) <= 10:
                    raise ConfigError(f"{at}.plate: 1 to 10 letters or digits")
                reason = entry.get("reason")
                if reason not in REASONS:
                    raise ConfigError(f"{at}.reason: one of {', '.join(REASONS)}")
                state = entry.get("state")
                if state is not None and (not isinstance(state, str) or len(state) != 2):
                    raise ConfigError(f"{at}.state: two letters")
                reference = entry.get("reference")
                by_plate[plate].append(
                    HotListEntry(
                        agency=str(ori),
                        plate=plate,
                        state=state.upper() if state else None,
                        reason=str(reason),
                        reference=str(reference) if reference is not None else None,
                    )
                )
        return cls({k: tuple(v) for k, v in by_plate.items()})

    def entries_for(self, plate: str) -> tuple[HotListEntry, ...]:
        return self.by_plate.get(normalise_plate(plate), ())


T = TypeVar("T")


class Reloading(Generic[T]):
    """The content of a file, parsed, re-read when the file changes; a file that no longer
    loads keeps the previous content in force (logged: the file's name, never its content)."""

    def __init__(self, path: pathlib.Path | None, parse: Callable[[], T]) -> None:
        self._path = path
        self._parse = parse
        self._stamp = self._stat()
        self.value: T = parse()

    def _stat(self) -> tuple[int, int] | None:
        if self._path is None:
            return None
        try:
            st = self._path.stat()
        except OSError:
            return None
        return (st.st_size, st.st_mtime_ns)

    def current(self) -> T:
        stamp = self._stat()
        if stamp != self._stamp:
            self._stamp = stamp
            try:
                self.value = self._parse()
            except ConfigError as exc:
                log.error("live data not reloaded, the previous stays in force: %s", exc.message)
        return self.value
