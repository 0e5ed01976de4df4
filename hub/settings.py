"""The one reader of configuration: the environment and ``hub.toml``.

Every other module receives values from here. Secrets (API keys, the Redis URL, key material
paths are not secret but keys are) are wrapped in ``Secret`` (``hub.secret``) so they never print.

A config file looks like::

    mode = "production"              # demo | dev | production
    [auth]
    issuer = "https://idp.example.org"
    audience = "hub"
    jwks_url = "https://idp.example.org/.well-known/jwks.json"
    [agencies.CA0990000]
    name = "Marin Valley Sheriff's Office"
    state = "CA"
    contact = "Records Unit, (415) 555-0100"
    [sources.marin-rms]
    kind = "northwind-rms"
    agency = "CA0990000"
    url = "https://rms.example.org"
    api_key = "${MARIN_RMS_KEY}"
    timeout_ms = 1500
    page_size = "100"                # any other key: an option for the source's adapter
    [sources.marin-rms.options]      # the same, never taken for a misspelt common key
    timeout_s = "5"
    [hub]                            # this hub among partner hubs (docs/partner-hubs.md)
    id = "west-hub"
    [partners.east-hub]              # a partner hub that may call this hub for its users
    public_key = "keys/east-hub.pem" # or jwks_url = "https://east.example.org/.well-known/..."
    agencies = ["NY0990000", "PA0990100"]

With no config file the hub runs the demo world (``hub.demo``) on loopback; with
``[demo] enabled = true`` it runs it next to the configured sources.

Reading is strict (``load_settings``): a key the file may not have, a value of the wrong type or
out of range, is a ConfigError of one line naming the file and the key's path, with the key it
probably meant (``hub.toml: unknown key [limts] — did you mean [limits]?``).
"""

from __future__ import annotations

import difflib
import os
import re
import tomllib
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any, Literal, cast

from hub.errors import ConfigError
from hub.model import Agency
from hub.secret import Secret

Mode = Literal["demo", "dev", "production"]
MODES: tuple[Mode, ...] = ("demo", "dev", "production")
# The demo world's regions (``hub.demo.regions.REGIONS``, sorted), named here so that reading
# the settings never loads the demo world; a test holds the two equal.
DEMO_REGIONS: tuple[str, ...] = ("east", "west")

_ENV_REF = re.compile(r"\$\{([A-Z0-9_]+)\}")
_ORI = re.compile(r"^[A-Z]{2}[A-Z0-9]{7}$")
_STATE = re.compile(r"^[A-Z]{2}$")
_HUB_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$")


@dataclass(frozen=True, slots=True)
class SourceConfig:
    """One configured source, as read from ``[sources.NAME]``: what its adapter is made with
    (``hub.adapters.base``)."""

    name: str  # e.g. "marin-rms"
    kind: str  # adapter name in the registry, e.g. "northwind-rms"
    agency: Agency
    url: str
    api_key: Secret = Secret("")
    timeout_ms: int = 1500
    # Adapter-specific settings (page size, username, ...); values are strings from TOML.
    options: Mapping[str, str] = field(default_factory=dict)

    def int_option(self, name: str, default: int, high: int) -> int:
        """An adapter's whole-number option, 1..``high``; ConfigError naming it otherwise."""
        raw = self.options.get(name)
        if raw is None:
            return default
        try:
            value = int(raw)
        except ValueError:
            value = 0
        if not 1 <= value <= high:
            raise ConfigError(f"source {self.name}: {name} must be a whole number from 1 to {high}")
        return value


@dataclass(frozen=True, slots=True)
class AuthSettings:
    issuer: str = "hub-demo"
    audience: str = "hub"
    # Production: keys from the identity provider's JWKS. Demo/dev: a local key in var_dir.
    jwks_url: str | None = None
    algorithms: tuple[str, ...] = ("ES256", "RS256")
    leeway_s: int = 30
    token_ttl_s: int = 8 * 3600


@dataclass(frozen=True, slots=True)
class LimitSettings:
    max_body_bytes: int = 256 * 1024
    max_depth: int = 10
    max_aliases: int = 30
    max_tokens: int = 2000
    max_search_limit: int = 1000
    # Estimated records a query could return, counting list multipliers (resolvers.cost).
    max_cost: int = 250_000
    # GraphQL over WebSocket (hub.edge.websocket): one message's size, the operations running
    # at once on one connection, the seconds allowed for connection_init after the handshake,
    # and the seconds a connection may stay silent with no operation running.
    ws_max_message_bytes: int = 256 * 1024
    ws_max_operations: int = 16
    ws_init_timeout_s: int = 10
    ws_idle_timeout_s: int = 300


@dataclass(frozen=True, slots=True)
class ResilienceSettings:
    """What several workers share through Redis (each falls back to per-process memory)."""

    cache_ttl_s: float = 60.0  # per source: `cache_ttl_s` in [sources.NAME]; 0 = never cached
    cache_key: Secret | None = None  # encrypts cached vendor answers; demo/dev: made in var_dir
    user_per_minute: int = 600
    agency_per_minute: int = 6000
    breaker_failures: int = 5
    breaker_cooldown_s: float = 30.0
    persisted_queries: Literal["apq", "safelist", "off"] = "apq"
    safelist_path: Path | None = None  # an Apollo persisted-query manifest (safelist mode)
    # Every Redis key the hub writes starts with this (several hubs may share one Redis).
    redis_prefix: str = "hub"


@dataclass(frozen=True, slots=True)
class PartnerSettings:
    """A partner hub trusted to call this hub on behalf of its users (``[partners.ID]``)."""

    id: str  # the id the partner signs its requester assertions with (their ``iss``)
    # The agencies whose users the partner may speak for; an assertion naming any other is refused.
    agencies: frozenset[str]
    public_key: Path | None = None  # PEM file of the partner's assertion-signing key
    jwks_url: str | None = None  # or the partner's published keys


@dataclass(frozen=True, slots=True)
class DemoSettings:
    # None: run the demo world exactly when no source is configured.
    enabled: bool | None = None
    size: int = 2000
    seed: int = 1
    region: str = "west"
    latency_ms: float = 0.0


@dataclass(frozen=True, slots=True)
class LiveSettings:
    """Live results (``hub.live``): watches, hot-list alerts, deliveries across workers."""

    # A YAML file of the agencies' hot lists (operational data, not policy: it changes daily).
    hot_lists: Path | None = None
    requery_s: float = 60.0  # how often a watch re-asks the sources that cannot push
    claim_idle_ms: int = 5000  # a worker's event pending this long is claimed by another


@dataclass(frozen=True, slots=True)
class ExecutionSettings:
    """How a validated document is executed (``resolvers.compiled``)."""

    # True: selections of plain fields are completed by the compiled path (identical results,
    # proven by the differential tests); False: graphql-core completes everything.
    compiled: bool = True


@dataclass(frozen=True, slots=True)
class Settings:
    mode: Mode = "demo"
    host: str = "127.0.0.1"
    port: int = 8000
    # Empty: run the demo world and use its systems as the sources.
    sources: tuple[SourceConfig, ...] = ()
    agencies: Mapping[str, Agency] = field(default_factory=dict)
    auth: AuthSettings = field(default_factory=AuthSettings)
    limits: LimitSettings = field(default_factory=LimitSettings)
    demo: DemoSettings = field(default_factory=DemoSettings)
    var_dir: Path = Path("var")
    policy_dir: Path | None = None  # None: the policies/ shipped with the hub
    # Where the audit trail is written: a directory (audit.jsonl in it), a Redis URL with the
    # stream key as fragment ("redis://host:6379/0#hub:audit") or a PostgreSQL URL with the
    # schema as fragment ("postgresql://host/db#hub_audit"). None: var_dir / "audit".
    audit_log: str | None = None
    audit_fsync: Literal["always", "never"] = "always"
    # Signed checkpoints of the audit chain's head, every this many seconds (0: none).
    audit_checkpoint_s: float = 3600.0
    # How long audit entries are kept before `hub audit purge` may remove them: never less than
    # the CJIS minimum of one year (AUDIT_MIN_RETENTION_DAYS).
    audit_retention_days: int = 365
    # Operations telemetry (OTLP/HTTP), separate from audit: sampled, redacted of all CJI.
    otlp_endpoint: str | None = None
    otlp_sample_ratio: float = 1.0
    policy_reload_s: float = 2.0
    resilience: ResilienceSettings = field(default_factory=ResilienceSettings)
    redis_url: Secret | None = None
    config_path: Path | None = None
    # This hub among partner hubs: its id in hub chains, the key it signs requester assertions
    # with (None: var_dir / "hub-signing-key.pem", made on first use), the partners it trusts.
    hub_id: str = "hub"
    hub_signing_key: Path | None = None
    partners: tuple[PartnerSettings, ...] = ()
    live: LiveSettings = field(default_factory=LiveSettings)
    execution: ExecutionSettings = field(default_factory=ExecutionSettings)

    @property
    def uses_demo_world(self) -> bool:
        if self.demo.enabled is not None:
            return self.demo.enabled
        return not self.sources

    @property
    def hub_signing_key_path(self) -> Path:
        return self.hub_signing_key or self.var_dir / "hub-signing-key.pem"

    @property
    def introspection(self) -> bool:
        return self.mode != "production"

    @property
    def audit_location(self) -> str:
        return self.audit_log or str(self.var_dir / "audit")

    @property
    def audit_checkpoint_path(self) -> Path:
        """Where signed checkpoints are kept when the audit log has no table for them."""
        return self.var_dir / "audit-checkpoints.jsonl"

    @property
    def demo_key_path(self) -> Path:
        return self.var_dir / "demo-signing-key.pem"

    def with_sources(
        self, sources: tuple[SourceConfig, ...], agencies: Mapping[str, Agency]
    ) -> Settings:
        # Configured sources (partner hubs next to the demo world) stay; the new ones join them.
        return replace(
            self, sources=(*self.sources, *sources), agencies={**self.agencies, **agencies}
        )


# -- reading hub.toml and the environment ---------------------------------------------------------
#
# Every table of the file has a declared set of keys (the dataclasses above are the typed result;
# where a table maps one-to-one onto one of them, its keys are that dataclass's fields). A key the
# table does not declare is refused with the file, the key's path and the nearest known key, so a
# misspelt limit or timeout is an error at start rather than a silent default. Values are checked
# for type and range; an environment override is checked the same way and named in the error.
#
# [sources.NAME] is the one open table: its common keys (SOURCE_KEYS) are checked like any other,
# and every other key is an option for the source's adapter (``SourceConfig.options``: strings,
# ``${VAR}`` expanded), as is every key of an optional [sources.NAME.options] table. A plain key
# that is close to a common key (``tiemout_ms``) is refused as a misspelling; an adapter option
# that really is spelt like one goes in [sources.NAME.options], where it is not compared.

# CJIS Security Policy 5.4.7: audit records are kept at least one year.
AUDIT_MIN_RETENTION_DAYS = 365

# Unknown source keys at least this close (difflib ratio) to a common key are misspellings of it.
SOURCE_TYPO_CUTOFF = 0.75
# The keys of [sources.NAME] the hub itself reads (the rest go to the adapter).
SOURCE_KEYS = (
    "kind", "agency", "url", "api_key", "timeout_ms", "cache_ttl_s", "notice_key", "options",
)  # fmt: skip
_TOP_KEYS = (
    "mode", "host", "port", "var_dir", "policy_dir", "audit_log", "audit_fsync", "otlp_endpoint",
    "audit_checkpoint_s", "audit_retention_days",
    "otlp_sample_ratio", "redis_url", "redis_prefix",
)  # fmt: skip
_TOP_TABLES = (
    "auth", "limits", "demo", "hub", "agencies", "sources", "partners", "cache", "rate_limits",
    "breaker", "persisted_queries", "live", "execution",
)  # fmt: skip
_ASYMMETRIC = frozenset(
    {"ES256", "ES384", "ES512", "RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "EdDSA"}
)


def _field_names(cls: type) -> tuple[str, ...]:
    return tuple(f.name for f in fields(cls))


def suggest(word: str, known: Iterable[str], cutoff: float = 0.6) -> str | None:
    """The known word nearest to ``word`` (a misspelling of it), if any is near enough."""
    candidates = list(known)
    folded = {k.lower().replace("-", "_"): k for k in candidates}
    same = folded.get(word.lower().replace("-", "_"))
    if same is not None:
        return same
    matches = difflib.get_close_matches(word, candidates, n=1, cutoff=cutoff)
    return matches[0] if matches else None


def _expand(value: str, env: Mapping[str, str], where: str) -> str:
    def sub(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in env:
            raise ConfigError(f"{where} refers to ${{{name}}}, which is not set")
        return env[name]

    return _ENV_REF.sub(sub, value)


def _whole(low: int, high: int | None) -> str:
    if high is not None:
        return f"a whole number from {low} to {high}"
    return f"a whole number of at least {low}"


class _Table:
    """One table of the config file being read, with the environment that may override it.

    ``keys`` are its plain keys, ``tables`` its sub-tables; ``check`` refuses anything else.
    """

    def __init__(
        self,
        data: Mapping[str, Any],
        where: str,
        file: str,
        env: Mapping[str, str],
        keys: Iterable[str],
        tables: Iterable[str] = (),
    ) -> None:
        self.data = data
        self.where = where
        self.file = file
        self.env = env
        self.keys = tuple(keys)
        self.tables = tuple(tables)

    # -- names and errors ------------------------------------------------------------------

    def path(self, key: str) -> str:
        return f"{self.where}.{key}" if self.where else key

    def label(self, key: str) -> str:
        """How an error names a key of this table: the file, then the key's path."""
        return f"{self.file}: {self.path(key)}"

    def error(self, key: str, message: str) -> ConfigError:
        return ConfigError(f"{self.label(key)} {message}")

    def _shown(self, key: str, *, table: bool) -> str:
        return f"[{self.path(key)}]" if table and not self.where else key

    def unknown(self, key: str, known: Iterable[str] | None = None, cutoff: float = 0.6) -> str:
        """The message for a key this table does not have, with the nearest one it does."""
        known = tuple(known) if known is not None else (*self.keys, *self.tables)
        guess = suggest(key, known, cutoff)
        table = isinstance(self.data.get(key), dict)
        if self.where:
            head = f"{self.file}: {self.path(key)}: unknown key"
        else:
            head = f"{self.file}: unknown key {self._shown(key, table=table)}"
        if guess is None:
            listed = ", ".join(self._shown(k, table=k in self.tables) for k in known)
            return f"{head} (known: {listed})"
        return f"{head} — did you mean {self._shown(guess, table=guess in self.tables)}?"

    def check(self) -> None:
        """ConfigError naming the first key this table does not have."""
        for key in self.data:
            if key not in self.keys and key not in self.tables:
                raise ConfigError(self.unknown(key))

    # -- values ----------------------------------------------------------------------------

    def _get(self, key: str, env: str | None) -> tuple[Any, str, bool]:
        """(value, how an error names it, whether it came from the environment). An empty
        environment variable counts as unset."""
        assert key in self.keys, f"{self.path(key)} is not a declared key"
        if env is not None and self.env.get(env, "").strip():
            return self.env[env].strip(), env, True
        return self.data.get(key), self.label(key), False

    def has(self, key: str) -> bool:
        assert key in self.keys or key in self.tables
        return key in self.data

    def integer(
        self, key: str, default: int, *, low: int = 0, high: int | None = None,
        env: str | None = None,
    ) -> int:  # fmt: skip
        value, label, from_env = self._get(key, env)
        if value is None:
            return default
        number: object = value
        if from_env:
            try:
                number = int(value)
            except ValueError:
                number = None
        if (
            not isinstance(number, int)
            or isinstance(number, bool)
            or number < low
            or (high is not None and number > high)
        ):
            raise ConfigError(f"{label} must be {_whole(low, high)}, not {value!r}")
        return number

    def number(
        self, key: str, default: float, *, low: float = 0.0, high: float | None = None,
        above: bool = False, env: str | None = None,
    ) -> float:  # fmt: skip
        """A number ``>= low`` (``> low`` when ``above``), at most ``high``."""
        value, label, from_env = self._get(key, env)
        if value is None:
            return default
        number: object = value
        if from_env:
            try:
                number = float(value)
            except ValueError:
                number = None
        if high is not None:
            wanted = f"a number from {low:g} to {high:g}"
        else:
            wanted = f"a number {'above' if above else 'of at least'} {low:g}"
        if (
            not isinstance(number, int | float)
            or isinstance(number, bool)
            or number != number  # NaN
            or number < low
            or (above and number == low)
            or (high is not None and number > high)
        ):
            raise ConfigError(f"{label} must be {wanted}, not {value!r}")
        return float(number)

    def string(
        self, key: str, default: str | None = None, *, env: str | None = None,
        secret: bool = False, pattern: re.Pattern[str] | None = None, what: str = "",
    ) -> str | None:  # fmt: skip
        """A non-empty string, or ``default`` when absent. ``secret``: never echoed in an
        error. ``pattern``: it must match, ``what`` saying what it is then."""
        value, label, _ = self._get(key, env)
        if value is None:
            return default
        shown = "" if secret else f", not {value!r}"
        if not isinstance(value, str) or not value.strip():
            raise ConfigError(f"{label} must be a non-empty string{shown}")
        if pattern is not None and not pattern.match(value):
            raise ConfigError(f"{label} must be {what}{shown}")
        return value

    def required(self, key: str, **kwargs: Any) -> str:
        value = self.string(key, **kwargs)
        if value is None:
            raise self.missing(key)
        return value

    def missing(self, key: str) -> ConfigError:
        """A required key is absent: say so, and which key of the table may be it misspelt."""
        strays = [k for k in self.data if k not in self.keys and k not in self.tables]
        near = difflib.get_close_matches(key, strays, n=1, cutoff=0.6)
        hint = f" (is {near[0]} a misspelling of it?)" if near else ""
        return ConfigError(f"{self.label(key)} is required{hint}")

    def choice(
        self, key: str, choices: Iterable[str], default: str, *, env: str | None = None
    ) -> str:
        options = tuple(choices)
        value, label, _ = self._get(key, env)
        if value is None:
            return default
        if value not in options:
            guess = suggest(str(value), options) if isinstance(value, str) else None
            hint = f" — did you mean {guess!r}?" if guess else ""
            raise ConfigError(f"{label} must be one of {', '.join(options)}, not {value!r}{hint}")
        return str(value)

    def boolean(self, key: str, default: bool | None) -> bool | None:
        value, label, _ = self._get(key, None)
        if value is None:
            return default
        if not isinstance(value, bool):
            raise ConfigError(f"{label} must be true or false, not {value!r}")
        return value

    def strings(self, key: str, default: tuple[str, ...]) -> tuple[str, ...]:
        value, label, _ = self._get(key, None)
        if value is None:
            return default
        if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
            raise ConfigError(f"{label} must be a list of strings, not {value!r}")
        return tuple(value)

    # -- sub-tables ------------------------------------------------------------------------

    def _sub(self, key: str) -> dict[str, Any]:
        assert key in self.tables, f"{self.path(key)} is not a declared table"
        value = self.data.get(key, {})
        if not isinstance(value, dict):
            raise ConfigError(f"{self.file}: [{self.path(key)}] must be a table, not {value!r}")
        return value

    def table(self, key: str, keys: Iterable[str], tables: Iterable[str] = ()) -> _Table:
        """The sub-table ``key`` (empty if absent), its keys checked."""
        sub = _Table(self._sub(key), self.path(key), self.file, self.env, keys, tables)
        sub.check()
        return sub

    def tables_in(self, key: str) -> Iterator[tuple[str, dict[str, Any]]]:
        """(name, table) of each entry of a map of tables, like [sources.NAME]."""
        for name, spec in self._sub(key).items():
            if not isinstance(spec, dict):
                raise ConfigError(f"{self.file}: [{self.path(key)}.{name}] must be a table")
            yield name, spec


def _agencies(top: _Table) -> dict[str, Agency]:
    out: dict[str, Agency] = {}
    for ori, spec in top.tables_in("agencies"):
        t = _Table(spec, f"agencies.{ori}", top.file, top.env, ("name", "state", "contact"))
        if not _ORI.match(ori):
            raise ConfigError(
                f"{top.file}: agencies.{ori}: an ORI is nine characters, two letters first"
            )
        t.check()
        out[ori] = Agency(
            ori=ori,
            name=t.required("name"),
            state=t.required("state", pattern=_STATE, what="a two-letter state code"),
            contact=t.string("contact") or "",
        )
    return out


def _source_options(t: _Table, name: str) -> dict[str, str]:
    """The adapter's options of [sources.NAME]: its keys other than SOURCE_KEYS (a misspelt
    common key refused) and those of [sources.NAME.options]; strings, ``${VAR}`` expanded."""
    plain = {k: v for k, v in t.data.items() if k not in SOURCE_KEYS}
    for key in plain:
        near = suggest(key, SOURCE_KEYS, SOURCE_TYPO_CUTOFF)
        if near is not None:
            raise ConfigError(
                f"{t.unknown(key, SOURCE_KEYS, SOURCE_TYPO_CUTOFF)} (an adapter option spelt "
                f"{key} goes in [sources.{name}.options])"
            )
    nested = t.data.get("options", {})
    if not isinstance(nested, dict):
        raise ConfigError(f"{t.file}: [sources.{name}.options] must be a table, not {nested!r}")
    options: dict[str, str] = {}
    for where, entries in ((t.where, plain), (f"{t.where}.options", nested)):
        for key, value in entries.items():
            if isinstance(value, dict | list):
                raise ConfigError(
                    f"{t.file}: {where}.{key}: an adapter option is a single value "
                    "(a string or a number)"
                )
            if key in options:
                raise ConfigError(f"{t.file}: {where}.{key}: the option is given twice")
            text = str(value).lower() if isinstance(value, bool) else str(value)
            options[key] = _expand(text, t.env, f"{t.file}: {where}.{key}")
    return options


def _sources(top: _Table, agencies: Mapping[str, Agency]) -> tuple[SourceConfig, ...]:
    out: list[SourceConfig] = []
    for name, spec in top.tables_in("sources"):
        t = _Table(spec, f"sources.{name}", top.file, top.env, SOURCE_KEYS[:-1], ("options",))
        options = _source_options(t, name)
        kind = t.required("kind")
        ori = t.required("agency")
        if ori not in agencies:
            raise t.error("agency", f"{ori!r} has no [agencies.{ori}] table")
        url = _expand(t.required("url"), top.env, t.label("url"))
        if "://" not in url:
            raise t.error("url", f"must be a URL with its scheme (https://...), not {url!r}")
        api_key = _expand(t.string("api_key", "", secret=True) or "", top.env, t.label("api_key"))
        timeout_ms = t.integer("timeout_ms", 1500, low=1)
        # The hub reads these two from the options (hub.shared.state, hub.edge.app): checked here.
        if t.has("cache_ttl_s"):
            options["cache_ttl_s"] = str(t.number("cache_ttl_s", 0.0))
        notice_key = t.string("notice_key", secret=True)
        if notice_key is not None:
            options["notice_key"] = _expand(notice_key, top.env, t.label("notice_key"))
        out.append(
            SourceConfig(
                name=name,
                kind=kind,
                agency=agencies[ori],
                url=url.rstrip("/"),
                api_key=Secret(api_key),
                timeout_ms=timeout_ms,
                options=options,
            )
        )
    return tuple(out)


def _partners(top: _Table) -> tuple[PartnerSettings, ...]:
    out: list[PartnerSettings] = []
    for hub_id, spec in top.tables_in("partners"):
        where = f"partners.{hub_id}"
        if not _HUB_ID.match(hub_id):
            raise ConfigError(f"{top.file}: {where}: a hub id is letters, digits, '.', '_' or '-'")
        t = _Table(spec, where, top.file, top.env, ("agencies", "public_key", "jwks_url"))
        t.check()
        agencies = spec.get("agencies")
        if (
            not isinstance(agencies, list)
            or not agencies
            or not all(isinstance(a, str) and _ORI.match(a) for a in agencies)
        ):
            raise t.error("agencies", "must list the ORIs whose users it speaks for")
        public_key, jwks_url = t.string("public_key"), t.string("jwks_url")
        if (public_key is None) == (jwks_url is None):
            raise ConfigError(f"{top.file}: {where} needs exactly one of public_key or jwks_url")
        out.append(
            PartnerSettings(
                id=hub_id,
                agencies=frozenset(agencies),
                public_key=Path(public_key) if public_key else None,
                jwks_url=jwks_url,
            )
        )
    return tuple(out)


def _resilience(top: _Table) -> ResilienceSettings:
    """[cache], [rate_limits], [breaker], [persisted_queries] and redis_prefix."""
    cache = top.table("cache", ("ttl_s", "key"))
    rates = top.table("rate_limits", ("user_per_minute", "agency_per_minute"))
    breaker = top.table("breaker", ("failures", "cooldown_s"))
    persisted = top.table("persisted_queries", ("mode", "manifest"))
    d = ResilienceSettings()
    key = cache.string("key", env="HUB_CACHE_KEY", secret=True)
    mode = persisted.choice(
        "mode", ("apq", "safelist", "off"), d.persisted_queries, env="HUB_PERSISTED_QUERIES"
    )
    manifest = persisted.string("manifest")
    if mode == "safelist" and not manifest:
        raise ConfigError(
            f"{top.file}: persisted_queries.mode = 'safelist' needs persisted_queries.manifest"
        )
    return ResilienceSettings(
        cache_ttl_s=cache.number("ttl_s", d.cache_ttl_s),
        cache_key=Secret(_expand(key, top.env, cache.label("key"))) if key else None,
        user_per_minute=rates.integer("user_per_minute", d.user_per_minute, low=1),
        agency_per_minute=rates.integer("agency_per_minute", d.agency_per_minute, low=1),
        breaker_failures=breaker.integer("failures", d.breaker_failures, low=1),
        breaker_cooldown_s=breaker.number("cooldown_s", d.breaker_cooldown_s, above=True),
        persisted_queries=cast(Literal["apq", "safelist", "off"], mode),
        safelist_path=Path(manifest) if manifest else None,
        redis_prefix=top.string("redis_prefix", d.redis_prefix, env="HUB_REDIS_PREFIX")
        or d.redis_prefix,
    )


def _live(top: _Table) -> LiveSettings:
    t = top.table("live", _field_names(LiveSettings))
    d = LiveSettings()
    hot_lists = t.string("hot_lists", env="HUB_HOT_LISTS")
    return LiveSettings(
        hot_lists=Path(hot_lists) if hot_lists else None,
        requery_s=t.number("requery_s", d.requery_s, above=True),
        claim_idle_ms=t.integer("claim_idle_ms", d.claim_idle_ms, low=100),
    )


def _execution(top: _Table) -> ExecutionSettings:
    t = top.table("execution", _field_names(ExecutionSettings))
    d = ExecutionSettings()
    compiled = t.boolean("compiled", d.compiled)
    return ExecutionSettings(compiled=d.compiled if compiled is None else compiled)


def _auth(top: _Table) -> AuthSettings:
    t = top.table("auth", _field_names(AuthSettings))
    d = AuthSettings()
    algorithms = t.strings("algorithms", d.algorithms)
    if "none" in (a.lower() for a in algorithms):
        raise t.error("algorithms", "may not include 'none'")
    weak = [a for a in algorithms if a not in _ASYMMETRIC]
    if weak or not algorithms:
        raise t.error(
            "algorithms",
            f"must list asymmetric algorithms ({', '.join(sorted(_ASYMMETRIC))}), not {weak!r}",
        )
    jwks_url = t.string("jwks_url")
    if jwks_url is not None and "://" not in jwks_url:
        raise t.error("jwks_url", f"must be a URL (https://...), not {jwks_url!r}")
    return AuthSettings(
        issuer=t.string("issuer", d.issuer) or d.issuer,
        audience=t.string("audience", d.audience) or d.audience,
        jwks_url=jwks_url,
        algorithms=algorithms,
        leeway_s=t.integer("leeway_s", d.leeway_s),
        token_ttl_s=t.integer("token_ttl_s", d.token_ttl_s, low=1),
    )


def _limits(top: _Table) -> LimitSettings:
    t = top.table("limits", _field_names(LimitSettings))
    d = LimitSettings()
    # A query may use no alias at all (0); every other limit of 0 would refuse every query.
    return LimitSettings(
        **{
            k: t.integer(k, getattr(d, k), low=0 if k == "max_aliases" else 1)
            for k in _field_names(LimitSettings)
        }
    )


def _demo(top: _Table) -> DemoSettings:
    t = top.table("demo", _field_names(DemoSettings))
    d = DemoSettings()
    return DemoSettings(
        enabled=t.boolean("enabled", d.enabled),
        size=t.integer("size", d.size, low=1, env="HUB_DEMO_SIZE"),
        seed=t.integer("seed", d.seed, env="HUB_DEMO_SEED"),
        region=t.choice("region", DEMO_REGIONS, d.region, env="HUB_DEMO_REGION"),
        latency_ms=t.number("latency_ms", d.latency_ms),
    )


def _read_file(config_path: Path) -> dict[str, Any]:
    try:
        return tomllib.loads(config_path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"{config_path}: cannot read the config: {exc.strerror}") from exc
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{config_path}: not UTF-8 text") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{config_path}: not valid TOML: {exc}") from exc


def load_settings(
    config_path: Path | None = None, env: Mapping[str, str] | None = None
) -> Settings:
    """Settings from ``config_path`` (or ``$HUB_CONFIG``) and the environment.

    Environment variables override the file: HUB_MODE, HUB_HOST, HUB_PORT, HUB_VAR_DIR,
    HUB_POLICY_DIR, HUB_AUDIT_LOG, HUB_AUDIT_FSYNC, HUB_OTLP_ENDPOINT, HUB_OTLP_SAMPLE_RATIO,
    REDIS_URL, HUB_REDIS_PREFIX, HUB_CACHE_KEY, HUB_PERSISTED_QUERIES, HUB_DEMO_SIZE,
    HUB_DEMO_SEED, HUB_DEMO_REGION, HUB_ID, HUB_HOT_LISTS; an empty one counts as unset.
    ConfigError, one line naming the file and the key (or the variable), for a key the file
    may not have (with the nearest one it may), a value of the wrong type or out of range, or
    a missing ``${VAR}``.
    """
    env = os.environ if env is None else env
    if config_path is None and env.get("HUB_CONFIG"):
        config_path = Path(env["HUB_CONFIG"])
    data = _read_file(config_path) if config_path is not None else {}
    top = _Table(data, "", str(config_path), env, _TOP_KEYS, _TOP_TABLES)
    top.check()

    mode = top.choice(
        "mode", MODES, "demo" if config_path is None else "production", env="HUB_MODE"
    )
    agencies = _agencies(top)
    sources = _sources(top, agencies)
    auth = _auth(top)
    limits = _limits(top)
    resilience = _resilience(top)
    demo = _demo(top)
    hub = top.table("hub", ("id", "signing_key"))
    hub_id = hub.string("id", "hub", env="HUB_ID", pattern=_HUB_ID,
                        what="letters, digits, '.', '_' or '-' (at most 63)") or "hub"  # fmt: skip
    signing_key = hub.string("signing_key")
    partners = _partners(top)
    if any(p.id == hub_id for p in partners):
        raise ConfigError(f"{top.file}: [partners.{hub_id}] names this hub itself")
    if mode == "production" and not auth.jwks_url:
        where = f"{top.file}: " if config_path is not None else ""
        raise ConfigError(
            f"{where}production mode needs auth.jwks_url (the identity provider's keys)"
        )
    policy_dir = top.string("policy_dir", env="HUB_POLICY_DIR")
    audit_log = top.string("audit_log", env="HUB_AUDIT_LOG")
    redis_url = top.string("redis_url", env="REDIS_URL", secret=True)
    otlp_endpoint = top.string("otlp_endpoint", env="HUB_OTLP_ENDPOINT")
    return Settings(
        mode=cast(Mode, mode),
        host=top.string("host", "127.0.0.1", env="HUB_HOST") or "127.0.0.1",
        port=top.integer("port", 8000, low=1, high=65535, env="HUB_PORT"),
        sources=sources,
        agencies=agencies,
        auth=auth,
        limits=limits,
        demo=demo,
        var_dir=Path(top.string("var_dir", "var", env="HUB_VAR_DIR") or "var"),
        policy_dir=Path(policy_dir) if policy_dir else None,
        audit_log=audit_log,
        audit_fsync=cast(
            Literal["always", "never"],
            top.choice("audit_fsync", ("always", "never"), "always", env="HUB_AUDIT_FSYNC"),
        ),
        audit_checkpoint_s=top.number(
            "audit_checkpoint_s", 3600.0, high=7 * 86400.0, env="HUB_AUDIT_CHECKPOINT_S"
        ),
        audit_retention_days=top.integer(
            "audit_retention_days",
            AUDIT_MIN_RETENTION_DAYS,
            low=AUDIT_MIN_RETENTION_DAYS,
            high=100 * 366,
            env="HUB_AUDIT_RETENTION_DAYS",
        ),
        otlp_endpoint=otlp_endpoint,
        otlp_sample_ratio=top.number(
            "otlp_sample_ratio", 1.0, high=1.0, env="HUB_OTLP_SAMPLE_RATIO"
        ),
        redis_url=Secret(redis_url) if redis_url else None,
        resilience=resilience,
        config_path=config_path,
        hub_id=hub_id,
        hub_signing_key=Path(signing_key) if signing_key else None,
        partners=partners,
        live=_live(top),
        execution=_execution(top),
    )
