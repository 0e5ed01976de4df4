"""The one reader of configuration: the environment and ``hub.toml``.

Every other module receives values from here. Secrets (API keys, the Redis URL, key material
paths are not secret but keys are) are wrapped in ``Secret`` so they never print.

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
    [hub]                            # this hub among partner hubs (docs/partner-hubs.md)
    id = "west-hub"
    [partners.east-hub]              # a partner hub that may call this hub for its users
    public_key = "keys/east-hub.pem" # or jwks_url = "https://east.example.org/.well-known/..."
    agencies = ["NY0990000", "PA0990100"]

With no config file the hub runs the demo world (``hub.demo``) on loopback; with
``[demo] enabled = true`` it runs it next to the configured sources.
"""

from __future__ import annotations

import os
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

from hub.adapters.base import Secret, SourceConfig
from hub.errors import ConfigError
from hub.model import Agency

Mode = Literal["demo", "dev", "production"]
MODES: tuple[Mode, ...] = ("demo", "dev", "production")

_ENV_REF = re.compile(r"\$\{([A-Z0-9_]+)\}")
_ORI = re.compile(r"^[A-Z]{2}[A-Z0-9]{7}$")


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
    # Where the audit trail is written: a directory (audit.jsonl in it) or a Redis URL with the
    # stream key as fragment ("redis://host:6379/0#hub:audit"). None: var_dir / "audit".
    audit_log: str | None = None
    audit_fsync: Literal["always", "never"] = "always"
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
    def demo_key_path(self) -> Path:
        return self.var_dir / "demo-signing-key.pem"

    def with_sources(
        self, sources: tuple[SourceConfig, ...], agencies: Mapping[str, Agency]
    ) -> Settings:
        # Configured sources (partner hubs next to the demo world) stay; the new ones join them.
        return replace(
            self, sources=(*self.sources, *sources), agencies={**self.agencies, **agencies}
        )


def _expand(value: str, env: Mapping[str, str], where: str) -> str:
    def sub(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in env:
            raise ConfigError(f"{where} refers to ${{{name}}}, which is not set")
        return env[name]

    return _ENV_REF.sub(sub, value)


def _table(data: Mapping[str, Any], key: str) -> Mapping[str, Any]:
    value = data.get(key, {})
    if not isinstance(value, dict):
        raise ConfigError(f"[{key}] must be a table")
    return value


def _int(data: Mapping[str, Any], key: str, default: int, where: str) -> int:
    value = data.get(key, default)
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise ConfigError(f"{where}.{key} must be a non-negative integer")
    return value


def _str(data: Mapping[str, Any], key: str, where: str, default: str | None = None) -> str:
    value = data.get(key, default)
    if not isinstance(value, str) or not value:
        raise ConfigError(f"{where}.{key} must be a non-empty string")
    return value


def _agencies(data: Mapping[str, Any]) -> dict[str, Agency]:
    out: dict[str, Agency] = {}
    for ori, spec in _table(data, "agencies").items():
        where = f"agencies.{ori}"
        if not _ORI.match(ori):
            raise ConfigError(f"{where}: an ORI is nine characters, two letters first")
        if not isinstance(spec, dict):
            raise ConfigError(f"[{where}] must be a table")
        out[ori] = Agency(
            ori=ori,
            name=_str(spec, "name", where),
            state=_str(spec, "state", where),
            contact=str(spec.get("contact", "")),
        )
    return out


def _sources(
    data: Mapping[str, Any], agencies: Mapping[str, Agency], env: Mapping[str, str]
) -> tuple[SourceConfig, ...]:
    out: list[SourceConfig] = []
    for name, spec in _table(data, "sources").items():
        where = f"sources.{name}"
        if not isinstance(spec, dict):
            raise ConfigError(f"[{where}] must be a table")
        ori = _str(spec, "agency", where)
        if ori not in agencies:
            raise ConfigError(f"{where}.agency {ori!r} has no [agencies.{ori}] table")
        known = {"kind", "agency", "url", "api_key", "timeout_ms"}
        options = {
            k: _expand(str(v), env, f"{where}.{k}") for k, v in spec.items() if k not in known
        }
        out.append(
            SourceConfig(
                name=name,
                kind=_str(spec, "kind", where),
                agency=agencies[ori],
                url=_expand(_str(spec, "url", where), env, f"{where}.url").rstrip("/"),
                api_key=Secret(_expand(str(spec.get("api_key", "")), env, f"{where}.api_key")),
                timeout_ms=_int(spec, "timeout_ms", 1500, where),
                options=options,
            )
        )
    return tuple(out)


_HUB_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$")


def _partners(data: Mapping[str, Any]) -> tuple[PartnerSettings, ...]:
    out: list[PartnerSettings] = []
    for hub_id, spec in _table(data, "partners").items():
        where = f"partners.{hub_id}"
        if not _HUB_ID.match(hub_id):
            raise ConfigError(f"{where}: a hub id is letters, digits, '.', '_' or '-'")
        if not isinstance(spec, dict):
            raise ConfigError(f"[{where}] must be a table")
        agencies = spec.get("agencies")
        if (
            not isinstance(agencies, list)
            or not agencies
            or not all(isinstance(a, str) and _ORI.match(a) for a in agencies)
        ):
            raise ConfigError(f"{where}.agencies must list the ORIs whose users it speaks for")
        public_key, jwks_url = spec.get("public_key"), spec.get("jwks_url")
        if (public_key is None) == (jwks_url is None):
            raise ConfigError(f"{where} needs exactly one of public_key or jwks_url")
        out.append(
            PartnerSettings(
                id=hub_id,
                agencies=frozenset(agencies),
                public_key=Path(_str(spec, "public_key", where)) if public_key else None,
                jwks_url=_str(spec, "jwks_url", where) if jwks_url else None,
            )
        )
    return tuple(out)


def _number(data: Mapping[str, Any], key: str, default: float, where: str) -> float:
    value = data.get(key, default)
    if not isinstance(value, int | float) or isinstance(value, bool) or value < 0:
        raise ConfigError(f"{where}.{key} must be a non-negative number")
    return float(value)


def _resilience(data: Mapping[str, Any], env: Mapping[str, str]) -> ResilienceSettings:
    """[cache], [rate_limits], [breaker] and [persisted_queries]."""
    cache, rates = _table(data, "cache"), _table(data, "rate_limits")
    breaker, persisted = _table(data, "breaker"), _table(data, "persisted_queries")
    d = ResilienceSettings()
    key = env.get("HUB_CACHE_KEY", cache.get("key"))
    mode = env.get("HUB_PERSISTED_QUERIES", persisted.get("mode", d.persisted_queries))
    if mode not in ("apq", "safelist", "off"):
        raise ConfigError("persisted_queries.mode must be apq, safelist or off")
    manifest = persisted.get("manifest")
    if mode == "safelist" and not manifest:
        raise ConfigError("persisted_queries.mode = 'safelist' needs persisted_queries.manifest")
    return ResilienceSettings(
        cache_ttl_s=_number(cache, "ttl_s", d.cache_ttl_s, "cache"),
        cache_key=Secret(_expand(str(key), env, "cache.key")) if key else None,
        user_per_minute=_int(rates, "user_per_minute", d.user_per_minute, "rate_limits"),
        agency_per_minute=_int(rates, "agency_per_minute", d.agency_per_minute, "rate_limits"),
        breaker_failures=_int(breaker, "failures", d.breaker_failures, "breaker"),
        breaker_cooldown_s=_number(breaker, "cooldown_s", d.breaker_cooldown_s, "breaker"),
        persisted_queries=mode,
        safelist_path=Path(manifest) if manifest else None,
        redis_prefix=str(env.get("HUB_REDIS_PREFIX", data.get("redis_prefix", d.redis_prefix))),
    )


def load_settings(
    config_path: Path | None = None, env: Mapping[str, str] | None = None
) -> Settings:
    """Settings from ``config_path`` (or ``$HUB_CONFIG``) and the environment.

    Environment variables override the file: HUB_MODE, HUB_HOST, HUB_PORT, HUB_VAR_DIR,
    HUB_POLICY_DIR, HUB_AUDIT_LOG, HUB_AUDIT_FSYNC, HUB_OTLP_ENDPOINT, REDIS_URL, HUB_DEMO_SIZE,
    HUB_DEMO_SEED, HUB_DEMO_REGION, HUB_ID.
    """
    env = os.environ if env is None else env
    if config_path is None and env.get("HUB_CONFIG"):
        config_path = Path(env["HUB_CONFIG"])
    data: dict[str, Any] = {}
    if config_path is not None:
        try:
            data = tomllib.loads(config_path.read_text(encoding="utf-8"))
        except OSError as exc:
            raise ConfigError(f"cannot read config {config_path}: {exc.strerror}") from exc
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"config {config_path} is not valid TOML: {exc}") from exc

    mode = env.get("HUB_MODE", data.get("mode", "demo" if config_path is None else "production"))
    if mode not in MODES:
        raise ConfigError(f"mode must be one of {', '.join(MODES)}, not {mode!r}")
    agencies = _agencies(data)
    sources = _sources(data, agencies, env)
    auth_data = _table(data, "auth")
    default_auth = AuthSettings()
    auth = AuthSettings(
        issuer=str(auth_data.get("issuer", default_auth.issuer)),
        audience=str(auth_data.get("audience", default_auth.audience)),
        jwks_url=auth_data.get("jwks_url"),
        algorithms=tuple(auth_data.get("algorithms", default_auth.algorithms)),
        leeway_s=_int(auth_data, "leeway_s", default_auth.leeway_s, "auth"),
        token_ttl_s=_int(auth_data, "token_ttl_s", default_auth.token_ttl_s, "auth"),
    )
    if mode == "production" and not auth.jwks_url:
        raise ConfigError("production mode needs auth.jwks_url (the identity provider's keys)")
    if "none" in (a.lower() for a in auth.algorithms):
        raise ConfigError("auth.algorithms may not include 'none'")
    limits_data = _table(data, "limits")
    limits = LimitSettings(
        **{
            k: _int(limits_data, k, getattr(LimitSettings(), k), "limits")
            for k in LimitSettings.__dataclass_fields__
        }
    )
    resilience = _resilience(data, env)
    demo_data = _table(data, "demo")
    default_demo = DemoSettings()
    try:
        enabled = demo_data.get("enabled")
        if enabled is not None and not isinstance(enabled, bool):
            raise ConfigError("demo.enabled must be true or false")
        demo = DemoSettings(
            enabled=enabled,
            size=int(env.get("HUB_DEMO_SIZE", demo_data.get("size", default_demo.size))),
            seed=int(env.get("HUB_DEMO_SEED", demo_data.get("seed", default_demo.seed))),
            region=str(env.get("HUB_DEMO_REGION", demo_data.get("region", default_demo.region))),
            latency_ms=float(demo_data.get("latency_ms", default_demo.latency_ms)),
        )
    except ValueError as exc:
        raise ConfigError(f"[demo] settings must be numbers: {exc}") from exc
    redis_url = env.get("REDIS_URL", data.get("redis_url"))
    policy_dir = env.get("HUB_POLICY_DIR", data.get("policy_dir"))
    audit_log = env.get("HUB_AUDIT_LOG", data.get("audit_log"))
    audit_fsync = env.get("HUB_AUDIT_FSYNC", data.get("audit_fsync", "always"))
    if audit_fsync not in ("always", "never"):
        raise ConfigError("audit_fsync must be 'always' or 'never'")
    otlp_endpoint = env.get("HUB_OTLP_ENDPOINT", data.get("otlp_endpoint"))
    try:
        otlp_sample_ratio = float(
            env.get("HUB_OTLP_SAMPLE_RATIO", data.get("otlp_sample_ratio", 1.0))
        )
    except ValueError as exc:
        raise ConfigError("otlp_sample_ratio must be a number between 0 and 1") from exc
    if not 0.0 <= otlp_sample_ratio <= 1.0:
        raise ConfigError("otlp_sample_ratio must be a number between 0 and 1")
    try:
        port = int(env.get("HUB_PORT", data.get("port", 8000)))
    except ValueError as exc:
        raise ConfigError("HUB_PORT must be a number") from exc
    hub_data = _table(data, "hub")
    hub_id = str(env.get("HUB_ID", hub_data.get("id", "hub")))
    if not _HUB_ID.match(hub_id):
        raise ConfigError("hub.id is letters, digits, '.', '_' or '-' (at most 63)")
    signing_key = hub_data.get("signing_key")
    partners = _partners(data)
    if any(p.id == hub_id for p in partners):
        raise ConfigError(f"[partners.{hub_id}] names this hub itself")
    return Settings(
        mode=mode,
        host=str(env.get("HUB_HOST", data.get("host", "127.0.0.1"))),
        port=port,
        sources=sources,
        agencies=agencies,
        auth=auth,
        limits=limits,
        demo=demo,
        var_dir=Path(env.get("HUB_VAR_DIR", data.get("var_dir", "var"))),
        policy_dir=Path(policy_dir) if policy_dir else None,
        audit_log=str(audit_log) if audit_log else None,
        audit_fsync=audit_fsync,
        otlp_endpoint=str(otlp_endpoint) if otlp_endpoint else None,
        otlp_sample_ratio=otlp_sample_ratio,
        redis_url=Secret(redis_url) if redis_url else None,
        resilience=resilience,
        config_path=config_path,
        hub_id=hub_id,
        hub_signing_key=Path(str(signing_key)) if signing_key else None,
        partners=partners,
    )
