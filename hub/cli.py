"""The ``hub`` command: serve, token, schema, policy, audit and bench.

click does the parsing, help and errors; every command reads configuration through
``hub.settings`` only.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import re
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit, urlunsplit

import click

from hub.access.catalogue import ROLES
from hub.errors import ConfigError, HubError
from hub.settings import Settings, load_settings, suggest

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric import ec
    from starlette.applications import Starlette
    from starlette.types import Message, Receive, Scope, Send

    from hub.access.policy import AccessPolicy
    from hub.edge.logging import LogFormat
    from hub.edge.runtime import Runtime

# What a token's ori and state must look like (hub.trust.identity checks the same).
_ORI = re.compile(r"^[A-Z]{2}[A-Z0-9]{7}$")
_STATE = re.compile(r"^[A-Z]{2}$")

CONFIG = click.option(
    "--config",
    "config_path",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="hub.toml (default: $HUB_CONFIG; none: the embedded demo world)",
)

log = logging.getLogger(__name__)


def _one_line(text: str) -> str:
    return " ".join(text.split())


def _settings(config_path: Path | None) -> Settings:
    try:
        return load_settings(config_path)
    except ConfigError as exc:
        raise click.ClickException(_one_line(exc.message)) from exc


@click.group()
@click.version_option(package_name="hub")
def main() -> None:
    """A GraphQL hub over many agencies' record systems, with policy and audit built in."""


# -- hub serve -------------------------------------------------------------------------------------


def _in_file(settings: Settings) -> str:
    return f"{settings.config_path}: " if settings.config_path is not None else ""


def _policy_dir(settings: Settings) -> Path:
    from hub.access.policy import default_policy_dir

    return settings.policy_dir or default_policy_dir()


def _load_policy(settings: Settings) -> AccessPolicy:
    """The access policy ``settings`` name; ConfigError naming the directory otherwise."""
    from resolvers.catalogue import load_policy

    directory = _policy_dir(settings)
    if not directory.is_dir():
        raise ConfigError(
            f"policy directory {directory} does not exist (policy_dir, $HUB_POLICY_DIR)"
        )
    try:
        return load_policy(settings.policy_dir)
    except ConfigError as exc:
        if str(directory) in exc.message:
            raise
        raise ConfigError(f"policy {directory}: {exc.message}") from exc


def _check_sources(settings: Settings) -> None:
    """Every configured source's adapter is installed and accepts the source's options."""
    import aiohttp

    from hub.adapters.registry import AdapterRegistry

    registry = AdapterRegistry.from_entry_points()
    where = _in_file(settings)
    for source in settings.sources:
        if source.kind not in registry.names():
            guess = suggest(source.kind, registry.names())
            hint = f" — did you mean {guess!r}?" if guess else ""
            raise ConfigError(
                f"{where}sources.{source.name}.kind: no adapter {source.kind!r} is installed "
                f"(installed: {', '.join(registry.names())}){hint}"
            )
        try:
            registry.get(source.kind)
        except ConfigError as exc:
            raise ConfigError(f"{where}sources.{source.name}.kind: {exc.message}") from exc

    async def construct() -> None:
        # Adapters read their options when constructed: a bad one is a ConfigError here.
        async with aiohttp.ClientSession() as session:
            for source in settings.sources:
                try:
                    adapter = registry.get(source.kind)(source, session)
                except ConfigError as exc:
                    raise ConfigError(f"{where}{exc.message}") from exc
                await adapter.close()

    if settings.sources:
        asyncio.run(construct())


def preflight(settings: Settings) -> AccessPolicy:
    """What the app's lifespan would otherwise trip over once uvicorn runs (where a failure is
    a traceback and the useful line comes last): every source's adapter is installed and takes
    the source's options, the policy loads, the partners' keys and this hub's token key can be
    read, the cache key and the safelist are well-formed. Returns the loaded policy (the app
    uses it); ConfigError, one line naming what is wrong, otherwise."""
    from hub.shared.cache import CacheCipher
    from hub.shared.persisted import read_manifest
    from hub.trust.federation import PartnerTrust
    from hub.trust.identity import load_or_create_demo_key

    try:
        _check_sources(settings)
        policy = _load_policy(settings)
        PartnerTrust.from_settings(settings)
        if not settings.auth.jwks_url:
            load_or_create_demo_key(settings.demo_key_path)
        if settings.resilience.cache_key:
            CacheCipher(settings.resilience.cache_key)
        if settings.resilience.safelist_path is not None:
            read_manifest(settings.resilience.safelist_path)
    except OSError as exc:
        raise ConfigError(_os_error(exc)) from exc
    return policy


def _os_error(exc: OSError) -> str:
    if exc.filename is not None:
        return f"{exc.filename}: {exc.strerror or exc}"
    return str(exc)


def _describe(exc: BaseException) -> str:
    if isinstance(exc, HubError):
        return exc.message
    if isinstance(exc, OSError):
        return _os_error(exc)
    return f"{type(exc).__name__}: {exc}"


def _location(location: str) -> str:
    """A path made absolute, or a URL without any user or password in it."""
    if "://" not in location:
        return str(Path(location).absolute())
    parts = urlsplit(location)
    if "@" not in parts.netloc:
        return location
    return urlunsplit(parts._replace(netloc=parts.netloc.rpartition("@")[2]))


def startup_fields(runtime: Runtime) -> dict[str, Any]:
    """What the hub loaded and runs with, as the fields of the start-up log line (no secret)."""
    s = runtime.settings
    return {
        "mode": s.mode,
        "sources": [adapter.name for adapter in runtime.services.adapters],
        "policy_dir": str(_policy_dir(s).absolute()),
        "policy_version": runtime.services.gate.version,
        "audit_log": _location(s.audit_location),
        "redis": _location(s.redis_url.reveal()) if s.redis_url else None,
        "tokens": s.auth.jwks_url or str(s.demo_key_path.absolute()),
    }


def startup_summary(runtime: Runtime) -> str:
    """One line: what the hub loaded and runs with (no secret in it)."""
    f = startup_fields(runtime)
    names = f["sources"]
    tokens = (
        f"from the identity provider {f['tokens']}"
        if runtime.settings.auth.jwks_url
        else f"signed with {f['tokens']}"
    )
    return (
        f"hub started: mode {f['mode']}; {len(names)} sources ({', '.join(names) or 'none'}); "
        f"policy {f['policy_dir']} version {f['policy_version']}; "
        f"audit log {f['audit_log']}; Redis {f['redis'] or 'no'}; tokens {tokens}"
    )


class StartupReport:
    """The app as ``hub serve`` runs it. Once the lifespan has started everything, logs
    ``startup_summary`` (INFO; in JSON its fields too, ``startup_fields``); if the lifespan
    fails, hands uvicorn one line instead of Starlette's traceback (uvicorn logs it and exits
    non-zero)."""

    def __init__(self, app: Starlette) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "lifespan":
            await self.app(scope, receive, send)
            return

        async def report(message: Message) -> None:
            if message["type"] == "lifespan.startup.complete":
                runtime = self.app.state.hub
                log.info("%s", startup_summary(runtime), extra=startup_fields(runtime))
            elif message["type"] == "lifespan.startup.failed":
                # Starlette sends this from its except block: the exception is the current one.
                failure = sys.exc_info()[1]
                if failure is not None:
                    message = {**message, "message": f"hub: {_one_line(_describe(failure))}"}
            await send(message)

        await self.app(scope, receive, report)


def log_config(fmt: LogFormat = "text") -> dict[str, Any]:
    """uvicorn's logging, and the hub's own loggers (``hub.*``) at INFO through its handler, in
    format ``fmt`` (``hub.edge.logging``)."""
    from hub.edge.logging import log_config as edge_log_config

    return edge_log_config(fmt)


def _notice(fmt: LogFormat, level: int, message: str) -> None:
    """One line on stderr before uvicorn has set logging up, in the format the hub logs in."""
    from hub.edge.logging import JsonFormatter, TextFormatter

    record = logging.LogRecord(log.name, level, __file__, 0, message, None, None)
    formatter = (
        JsonFormatter()
        if fmt == "json"
        else TextFormatter("%(levelprefix)s %(message)s", use_colors=False)
    )
    click.echo(formatter.format(record), err=True)


def worker_app() -> StartupReport:
    """The app of one ``hub serve --workers N`` worker: uvicorn imports this (``WORKER_APP``)
    and calls it in each worker process. The settings are the ones ``hub serve`` checked, read
    the same way (``HUB_CONFIG``, which it set, and the environment it passed on)."""
    from hub.edge.app import create_app

    settings = load_settings(None)
    return StartupReport(create_app(settings, gate=_load_policy(settings)))


WORKER_APP = "hub.cli:worker_app"


def _metrics_dir(settings: Settings) -> Path:
    """VAR_DIR/metrics, emptied: prometheus-client's multiprocess files of this run only."""
    directory = (settings.var_dir / "metrics").absolute()
    directory.mkdir(parents=True, exist_ok=True)
    for stale in directory.glob("*.db"):
        stale.unlink()
    return directory


def _several_workers(settings: Settings, workers: int, fmt: LogFormat) -> None:
    """What N worker processes need, set up in this (the supervising) process before uvicorn
    spawns them: one audit chain they all append to, the settings, one set of metrics."""
    from hub.edge.metrics import MULTIPROC_ENV

    if "://" not in settings.audit_location:
        raise ConfigError(
            f"--workers {workers} needs an audit log every worker appends to: a Redis stream "
            '(audit_log = "redis://host:6379/0#hub:audit", $HUB_AUDIT_LOG); the audit file '
            f"{_location(settings.audit_location)} has one writer"
        )
    if settings.config_path is not None:
        os.environ["HUB_CONFIG"] = str(settings.config_path.absolute())
    if not os.environ.get(MULTIPROC_ENV):
        os.environ[MULTIPROC_ENV] = str(_metrics_dir(settings))
    if settings.redis_url is None:
        _notice(
            fmt,
            logging.WARNING,
            f"{workers} workers without Redis (redis_url, $REDIS_URL): rate limits, the source "
            "cache, circuit breakers and persisted queries are each worker's own, not shared "
            f"(a rate limit lets {workers} times as much through)",
        )


@main.command()
@CONFIG
@click.option("--host", default=None, help="address to bind (default: host, else 127.0.0.1)")
@click.option(
    "--port", default=None, type=click.IntRange(1, 65535), help="port (default: port, else 8000)"
)
@click.option(
    "--workers",
    default=1,
    show_default=True,
    envvar="HUB_WORKERS",
    type=click.IntRange(1, 64),
    help="worker processes (uvicorn's supervisor restarts one that dies); more than one needs "
    "a Redis audit log, and Redis (redis_url) to share rate limits, cache and breakers "
    "[$HUB_WORKERS]",
)
@click.option(
    "--proxy-headers/--no-proxy-headers",
    default=False,
    envvar="HUB_PROXY_HEADERS",
    help="take the client's address (the one audited) from X-Forwarded-For when the peer is "
    "in --forwarded-allow-ips; off (default): the peer's address, whatever X-Forwarded-For "
    "says [$HUB_PROXY_HEADERS]",
)
@click.option(
    "--forwarded-allow-ips",
    default=None,
    envvar="FORWARDED_ALLOW_IPS",
    help="comma-separated proxies (addresses, networks, or *) whose X-Forwarded-For is "
    "believed, with --proxy-headers (default: 127.0.0.1) [$FORWARDED_ALLOW_IPS]",
)
@click.option(
    "--log-format",
    type=click.Choice(["json", "text"]),
    default=None,
    envvar="HUB_LOG_FORMAT",
    help="json: one JSON object per line; text: uvicorn's lines (default: json in production "
    "mode, else text) [$HUB_LOG_FORMAT]",
)
@click.pass_context
def serve(
    click_ctx: click.Context,
    config_path: Path | None,
    host: str | None,
    port: int | None,
    workers: int,
    proxy_headers: bool,
    forwarded_allow_ips: str | None,
    log_format: LogFormat | None,
) -> None:
    """Run the hub. With no config: the demo world on loopback and GraphiQL.

    Before it listens, everything it needs is checked: the configuration (an unknown key, a
    value of the wrong type or out of range, a missing ${VAR}), every source's adapter, the
    policy, the keys. A problem is one line on stderr and exit status 1. Once started it logs
    one line saying what it loaded (each worker does). Tokens of `hub token` are signed with
    VAR_DIR/demo-signing-key.pem, which it makes on first start (see `hub token --help`).

    Metrics: GET /metrics (Prometheus). With $HUB_METRICS_TOKEN set it needs
    Authorization: Bearer <that token>; without, it is open in demo and dev mode and refused
    in production mode.
    """
    import uvicorn

    from hub.edge.logging import default_log_format

    settings = _settings(config_path)
    host = host or settings.host
    port = port or settings.port
    fmt: LogFormat = log_format or default_log_format(settings.mode)
    if forwarded_allow_ips is not None and not proxy_headers:
        source = click_ctx.get_parameter_source("forwarded_allow_ips")
        if source is click.core.ParameterSource.COMMANDLINE:
            raise click.UsageError("--forwarded-allow-ips is only read with --proxy-headers")
        _notice(
            fmt,
            logging.WARNING,
            "FORWARDED_ALLOW_IPS is set but proxy headers are off: X-Forwarded-For is ignored "
            "and the audit records the proxy's address (--proxy-headers, $HUB_PROXY_HEADERS=1)",
        )
    try:
        policy = preflight(settings)
        if workers > 1:
            _several_workers(settings, workers, fmt)
            app: StartupReport | str = WORKER_APP
        else:
            from hub.edge.app import create_app

            app = StartupReport(create_app(settings, gate=policy))
    except ConfigError as exc:
        raise click.ClickException(_one_line(exc.message)) from exc
    if settings.uses_demo_world:
        demo = (
            "hub: demo mode — simulated vendor systems on loopback, GraphiQL at "
            f"http://{host}:{port}/graphql\n"
            "  get a token:   hub token --user analyst1 --agency CA0990000 --roles analyst\n"
            "  send it with:  Authorization: Bearer <token>   and   X-Purpose: C"
        )
        if fmt == "json":
            _notice(fmt, logging.INFO, demo)
        else:
            click.echo(demo, err=True)
    uvicorn.run(
        app,
        factory=workers > 1,
        workers=workers,
        host=host,
        port=port,
        log_level="info",
        log_config=log_config(fmt),
        server_header=False,
        # A WebSocket message over the hub's own limit is refused by the protocol layer (1009)
        # before it is read whole; uvicorn's default would buffer up to 16 MiB first.
        ws_max_size=settings.limits.ws_max_message_bytes,
        # uvloop and httptools, dependencies where they have wheels, else asyncio and h11.
        loop="auto",
        http="auto",
        # uvicorn believes X-Forwarded-For from 127.0.0.1 unless told otherwise: off unless
        # asked, so a client cannot choose the address the audit records.
        proxy_headers=proxy_headers,
        forwarded_allow_ips=(forwarded_allow_ips or "127.0.0.1") if proxy_headers else None,
    )


# -- hub token -------------------------------------------------------------------------------------


def _var_dir_origin(settings: Settings) -> str:
    if os.environ.get("HUB_VAR_DIR", "").strip():
        return f"$HUB_VAR_DIR = {settings.var_dir}"
    if settings.config_path is not None and settings.var_dir != Path("var"):
        return f"var_dir = {settings.var_dir} in {settings.config_path}"
    return "the default, var"


def _token_key(settings: Settings, create: bool) -> ec.EllipticCurvePrivateKey:
    """The key `hub serve` with these settings verifies tokens with. A new one is made only
    when asked: made anywhere else, it signs tokens the running hub rejects."""
    from hub.trust.identity import load_or_create_demo_key

    path = settings.demo_key_path
    exists = path.exists()
    if not exists and not create:
        raise click.ClickException(
            f"no signing key at {path.absolute()} ({_var_dir_origin(settings)}, from "
            f"{Path.cwd()}): `hub serve` makes it when it first starts. Run hub token from the "
            "directory hub serve runs in, with the same --config and HUB_VAR_DIR; or, before a "
            "hub's first start, --create-key makes the key it will use"
        )
    try:
        key = load_or_create_demo_key(path)
    except ConfigError as exc:
        raise click.ClickException(_one_line(exc.message)) from exc
    except OSError as exc:
        raise click.ClickException(_os_error(exc)) from exc
    if not exists:
        click.echo(
            f"hub token: made a new signing key {path.absolute()}; a hub serve with this "
            f"var_dir ({_var_dir_origin(settings)}) will accept its tokens",
            err=True,
        )
    return key


def _token_problems(settings: Settings, agency: str, roles: list[str]) -> list[str]:
    """Why the hub would refuse a token for this agency and these roles (empty: it would not)."""
    problems = []
    for role in roles:
        if role not in ROLES:
            guess = suggest(role, ROLES)
            hint = f" — did you mean {guess!r}?" if guess else ""
            problems.append(
                f"role {role!r} is not one the hub knows{hint} (roles: {', '.join(ROLES)})"
            )
    try:
        policy = _load_policy(settings)
    except ConfigError as exc:
        raise click.ClickException(_one_line(exc.message)) from exc
    if not policy.knows_agency(agency):
        problems.append(
            f"agency {agency} is not a participant of the policy in {_policy_dir(settings)} "
            "(agencies.yaml)"
        )
    return problems


@main.command()
@CONFIG
@click.option("--user", required=True, help="user id (the token's sub)")
@click.option(
    "--agency",
    required=True,
    help="the user's agency ORI, e.g. CA0990000: an agency of the policy (agencies.yaml)",
)
@click.option("--roles", required=True, help="comma-separated, of: " + ", ".join(ROLES))
@click.option("--name", default=None, help="display name (default: the user id)")
@click.option("--state", default=None, help="agency state (default: the ORI's first two letters)")
@click.option("--attrs", default="", help="comma-separated attributes, e.g. sworn,cfr28")
@click.option("--ttl", default=None, type=click.IntRange(min=1), help="lifetime in seconds")
@click.option(
    "--force",
    is_flag=True,
    help="mint it even for an agency or a role the hub does not know (to see how the hub "
    "answers such a token)",
)
@click.option(
    "--create-key",
    is_flag=True,
    help="make the signing key if there is none yet (before a hub's first start)",
)
def token(
    config_path: Path | None,
    user: str,
    agency: str,
    roles: str,
    name: str | None,
    state: str | None,
    attrs: str,
    ttl: int | None,
    force: bool,
    create_key: bool,
) -> None:
    """Print a JWT that `hub serve` with the same configuration accepts (demo/dev only).

    The agency must be one the policy names and every role one the hub knows (--force: mint
    it anyway).

    The token is signed with VAR_DIR/demo-signing-key.pem, the key `hub serve` makes when it
    first starts and verifies tokens with. VAR_DIR is $HUB_VAR_DIR, else var_dir in the config
    (--config or $HUB_CONFIG), else var; a relative one is taken from the current directory,
    by both commands. So run hub token from the directory hub serve runs in, with the same
    --config and HUB_VAR_DIR. Where there is no key it refuses (a key made there would sign
    tokens the running hub rejects), unless --create-key: to mint a token before a hub's
    first start, as two partner hubs need (README).
    """
    from hub.trust.identity import mint_token

    settings = _settings(config_path)
    if settings.auth.jwks_url:
        raise click.ClickException(
            "this configuration trusts an identity provider (auth.jwks_url): get tokens from it"
        )
    agency = agency.strip().upper()
    if not _ORI.match(agency):
        raise click.ClickException(
            f"--agency {agency!r} is not an ORI (nine characters, two letters first)"
        )
    state = (state or agency[:2]).strip().upper()
    if not _STATE.match(state):
        raise click.ClickException(f"--state {state!r} is not a two-letter state code")
    role_list = [r.strip() for r in roles.split(",") if r.strip()]
    if not role_list:
        raise click.ClickException("--roles names no role (roles: " + ", ".join(ROLES) + ")")
    problems = _token_problems(settings, agency, role_list)
    if problems and not force:
        raise click.ClickException(
            f"{problems[0]}; the hub would not honour this token (--force mints it anyway)"
        )
    for problem in problems:
        click.echo(f"hub token: {problem}; minted anyway (--force)", err=True)
    key = _token_key(settings, create_key)
    click.echo(
        mint_token(
            key,
            settings.auth,
            user=user,
            name=name,
            agency=agency,
            state=state,
            roles=role_list,
            attrs=[a.strip() for a in attrs.split(",") if a.strip()],
            ttl_s=ttl,
        )
    )


@main.command()
@CONFIG
def schema(config_path: Path | None) -> None:
    """Print the GraphQL schema (SDL)."""
    from resolvers.schema import build_schema

    click.echo(build_schema(_settings(config_path)).as_str())


@main.group()
def policy() -> None:
    """Inspect the access policy."""


@policy.command("explain")
@CONFIG
@click.option("--user", required=True, help="user id")
@click.option("--agency", required=True, help="the user's agency ORI")
@click.option("--roles", required=True, help="comma-separated roles")
@click.option("--purpose", default=None, help="purpose code (omit: no purpose stated)")
@click.option("--owner", required=True, help="the record owner's ORI")
@click.option("--field", "field_name", required=True, help="Type.field (e.g. Person.ssn) or Type")
@click.option("--state", default=None, help="the user's state (default: from the policy)")
@click.option("--owner-state", default=None, help="the owner's state (default: from the policy)")
@click.option("--tags", default="", help="comma-separated legal tags on the record")
@click.option("--source-kind", default=None, help="RMS, CAD or ALPR: the system holding it")
@click.option("--age-days", default=None, type=int, help="the record's age, for retention")
def policy_explain(
    config_path: Path | None,
    user: str,
    agency: str,
    roles: str,
    purpose: str | None,
    owner: str,
    field_name: str,
    state: str | None,
    owner_state: str | None,
    tags: str,
    source_kind: str | None,
    age_days: int | None,
) -> None:
    """Print the decision on one field for one subject, and the rule that made it."""
    from hub.access.explain import explain_text
    from resolvers.catalogue import load_policy

    settings = _settings(config_path)
    try:
        the_policy = load_policy(settings.policy_dir)
        text = explain_text(
            the_policy, user, agency.upper(), state, roles.split(","), purpose, owner.upper(),
            owner_state, field_name, [t.strip() for t in tags.split(",") if t.strip()],
            source_kind=source_kind, age_days=age_days,
        )  # fmt: skip
    except (ValueError, ConfigError) as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(text)


@main.group()
def audit() -> None:
    """Verify and read the audit trail (operators)."""


def _audit_location(config_path: Path | None, log_location: str | None) -> str:
    location = log_location or _settings(config_path).audit_location
    if "://" not in location and not Path(location).exists():
        # Reading must not create an empty log and call it intact.
        raise click.ClickException(f"no audit log at {location}")
    return location


LOG_HELP = "audit log: directory, file, redis:// or postgresql:// URL"


def _checkpoint_signer(settings: Settings) -> Any:
    """The hub's key (the one its partner assertions are signed with) as a checkpoint signer."""
    from hub.audit.checkpoint import CheckpointSigner
    from hub.trust.federation import key_id
    from hub.trust.identity import load_or_create_demo_key

    key = load_or_create_demo_key(settings.hub_signing_key_path)
    return CheckpointSigner(key, key_id(key.public_key()), settings.hub_id)


def _verify_key(settings: Settings, key_path: Path | None) -> Any:
    """The public key checkpoints are checked with: ``--key`` (a PEM public or private key),
    else this hub's own key if it has one; None otherwise."""
    from cryptography.hazmat.primitives import serialization

    path = key_path or settings.hub_signing_key_path
    if not path.exists():
        if key_path is not None:
            raise click.ClickException(f"no key at {path}")
        return None
    data = path.read_bytes()
    try:
        if b"PRIVATE KEY" in data:
            return serialization.load_pem_private_key(data, password=None).public_key()
        return serialization.load_pem_public_key(data)
    except ValueError as exc:
        raise click.ClickException(f"{path} does not hold a PEM key") from exc


def _checkpoints_from(source: str, key: Any, token: str | None) -> list[Any]:
    """The checkpoints a file or a URL (``GET /audit/checkpoints`` of a hub) holds, each checked
    against ``key``, or for a URL without one, against that hub's published JWKS."""
    import json
    import urllib.request

    import jwt

    from hub.audit.checkpoint import CheckpointInvalid, read_checkpoint
    from hub.trust.federation import JWKS_PATH

    if source.startswith(("http://", "https://")):
        request = urllib.request.Request(source, headers={"Accept": "application/json"})  # noqa: S310
        if token:
            request.add_header("Authorization", f"Bearer {token}")
        try:
            with urllib.request.urlopen(request, timeout=10) as answer:  # noqa: S310
                text = answer.read(4 * 1024 * 1024).decode()
        except OSError as exc:
            raise click.ClickException(f"cannot fetch checkpoints from {source}: {exc}") from exc
    else:
        try:
            text = Path(source).read_text()
        except OSError as exc:
            raise click.ClickException(_os_error(exc)) from exc
    stripped = text.strip()
    if stripped.startswith("{"):
        listed = json.loads(stripped).get("checkpoints", [])
        tokens = [t for t in listed if isinstance(t, str)]
    else:
        tokens = [line.strip() for line in stripped.splitlines() if line.strip()]
    if not tokens:
        raise click.ClickException(f"no checkpoint in {source}")
    jwks = None
    if key is None and source.startswith(("http://", "https://")):
        parts = urlsplit(source)
        jwks = jwt.PyJWKClient(urlunsplit((parts.scheme, parts.netloc, JWKS_PATH, "", "")))
    if key is None and jwks is None:
        raise click.ClickException("give --key: the PEM key the checkpoints were signed with")
    found = []
    for jws in tokens:
        try:
            signing = key if key is not None else jwks.get_signing_key_from_jwt(jws).key  # type: ignore[union-attr]
            found.append(read_checkpoint(jws, signing))
        except (CheckpointInvalid, jwt.PyJWKClientError) as exc:
            raise click.ClickException(f"checkpoint refused: {exc}") from exc
    return found


@audit.command("verify")
@CONFIG
@click.option(
    "--log",
    "log_locations",
    multiple=True,
    help=LOG_HELP + ". Several: one chain moved from log to log (e.g. a file, then the "
    "PostgreSQL log it was copied to); each must hold the one before's head.",
)
@click.option(
    "--checkpoint",
    "checkpoint_source",
    default=None,
    help="a file of signed checkpoints, or a hub's /audit/checkpoints URL: the log must hold "
    "the newest (truncation and rewriting are detected)",
)
@click.option(
    "--key",
    "key_path",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="PEM key the checkpoints were signed with (default: this hub's key; for a URL, the "
    "hub's published JWKS)",
)
@click.option("--token", default=None, help="bearer token for a checkpoint URL")
def audit_verify(
    config_path: Path | None,
    log_locations: tuple[str, ...],
    checkpoint_source: str | None,
    key_path: Path | None,
    token: str | None,
) -> None:
    """Check the whole hash chain; name the first entry changed, removed, inserted or reordered.
    A purged log is verified from its signed purge checkpoint onward."""
    from hub.audit import open_audit_log
    from hub.audit.checkpoint import verify_with_checkpoints

    settings = _settings(config_path)
    key = _verify_key(settings, key_path)
    checkpoints = _checkpoints_from(checkpoint_source, key, token) if checkpoint_source else []
    locations = [_audit_location(config_path, loc) for loc in log_locations or (None,)]

    async def run() -> tuple[bool, list[str]]:
        lines: list[str] = []
        before: tuple[int, str] | None = None
        for n, location in enumerate(locations):
            log = open_audit_log(location)
            try:
                last = n == len(locations) - 1
                checked = await verify_with_checkpoints(
                    log, checkpoints if last else (), key=key, head=before
                )
            except HubError as exc:
                return False, [*lines, f"{_location(location)}: {exc.message}"]
            finally:
                await log.close()
            prefix = f"{_location(location)}: " if len(locations) > 1 else ""
            lines.append(prefix + checked.describe())
            if not checked.ok:
                return False, lines
            before = (checked.report.head_seq, checked.report.head_hash)
        return True, lines

    ok, texts = asyncio.run(run())
    for text in texts:
        click.echo(text)
    if not ok:
        sys.exit(1)


@audit.command("copy")
@CONFIG
@click.option("--from", "source", required=True, help="the log to copy: " + LOG_HELP)
@click.option("--to", "target", required=True, help="a postgresql:// URL (#schema)")
def audit_copy(config_path: Path | None, source: str, target: str) -> None:
    """Copy a file or Redis audit log into PostgreSQL, verbatim: the PostgreSQL log then holds
    the same chain and new entries chain on after it. Run again to copy what was added since."""
    from hub.audit import open_audit_log
    from hub.audit.postgres_log import SCHEMES, ChainBroken, PostgresAuditLog

    if not target.startswith(SCHEMES):
        raise click.BadParameter("the target must be a postgresql:// URL", param_hint="--to")
    source_location = _audit_location(config_path, source)

    async def run() -> str:
        src = open_audit_log(source_location)
        dst = open_audit_log(target)
        assert isinstance(dst, PostgresAuditLog)
        try:
            copied, present = await dst.import_lines(src.scan())
            seq, _ = await dst.head()
        except ChainBroken as exc:
            raise click.ClickException(str(exc)) from exc
        except HubError as exc:
            raise click.ClickException(exc.message) from exc
        finally:
            await dst.close()
            await src.close()
        return f"copied {copied} entries ({present} already there); head seq {seq}"

    click.echo(asyncio.run(run()))


@audit.command("checkpoint")
@CONFIG
@click.option("--log", "log_location", default=None, help=LOG_HELP)
def audit_checkpoint(config_path: Path | None, log_location: str | None) -> None:
    """Sign the chain's head with the hub's key, keep it for partners, and print it (a JWS)."""
    from hub.audit import open_audit_log
    from hub.audit.checkpoint import checkpoint_store, write_checkpoint

    settings = _settings(config_path)
    location = _audit_location(config_path, log_location)
    signer = _checkpoint_signer(settings)

    async def run() -> Any:
        log = open_audit_log(location)
        try:
            store = checkpoint_store(log, settings.audit_checkpoint_path)
            return await write_checkpoint(log, signer, store)
        except HubError as exc:
            raise click.ClickException(exc.message) from exc
        finally:
            await log.close()

    checkpoint = asyncio.run(run())
    if checkpoint is None:
        raise click.ClickException("the audit log is empty: nothing to checkpoint")
    click.echo(checkpoint.jws)


@audit.command("purge")
@CONFIG
@click.option("--log", "log_location", default=None, help="a postgresql:// audit log")
@click.option(
    "--before",
    required=True,
    type=click.DateTime(formats=["%Y-%m-%d"]),
    help="remove entries written before this day (UTC); at least audit_retention_days ago",
)
@click.option("--yes", is_flag=True, help="do not ask for confirmation")
def audit_purge(config_path: Path | None, log_location: str | None, before: Any, yes: bool) -> None:
    """Remove audit entries older than the retention schedule, keeping the rest verifiable: a
    signed checkpoint at the boundary becomes where `hub audit verify` starts."""
    from datetime import UTC, datetime, timedelta

    from hub.audit import open_audit_log
    from hub.audit.postgres_log import PostgresAuditLog

    settings = _settings(config_path)
    cutoff = before.replace(tzinfo=UTC)
    days = settings.audit_retention_days
    newest_allowed = datetime.now(UTC) - timedelta(days=days)
    if cutoff > newest_allowed:
        raise click.ClickException(
            f"refused: audit entries are kept {days} days (audit_retention_days; the CJIS "
            f"minimum is one year); --before must be {newest_allowed:%Y-%m-%d} or earlier"
        )
    location = _audit_location(config_path, log_location)
    log = open_audit_log(location)
    if not isinstance(log, PostgresAuditLog):
        raise click.ClickException(
            "purge works on the PostgreSQL audit log (a file or Redis log is moved there with "
            "`hub audit copy`)"
        )
    if not yes:
        click.confirm(f"remove audit entries before {cutoff:%Y-%m-%d} from {_location(location)}?",
                      abort=True)  # fmt: skip
    signer = _checkpoint_signer(settings)

    async def run() -> Any:
        try:
            return await log.purge(cutoff, signer.sign)
        except HubError as exc:
            raise click.ClickException(exc.message) from exc
        finally:
            await log.close()

    result = asyncio.run(run())
    if result.base is None:
        click.echo("nothing to purge")
        return
    click.echo(
        f"purged {result.removed} entries up to seq {result.base.seq}; the log now verifies "
        "from the signed checkpoint there:"
    )
    click.echo(result.base.checkpoint)


@audit.command("tail")
@CONFIG
@click.option("--log", "log_location", default=None, help=LOG_HELP)
@click.option("-n", "count", default=20, show_default=True, help="how many of the last entries")
@click.option("--follow", "-f", is_flag=True, help="keep printing new entries")
def audit_tail(
    config_path: Path | None, log_location: str | None, count: int, follow: bool
) -> None:
    """Print the last entries, one line each, without CJI (no criteria, no record ids)."""
    from hub.audit import open_audit_log, summarize, tail

    async def run() -> None:
        log = open_audit_log(_audit_location(config_path, log_location))
        try:
            async for entry in tail(log, count, follow=follow):
                click.echo(summarize(entry))
        finally:
            await log.close()

    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(run())


def _source_kinds(settings: Settings) -> dict[str, Any]:
    """Source name -> kind of system: the configured sources, else the demo world's."""
    from hub.adapters.registry import AdapterRegistry

    registry = AdapterRegistry.from_entry_points()
    pairs = [(s.name, s.kind) for s in settings.sources]
    if not pairs:
        from hub.demo.regions import EAST, WEST

        pairs = [(s.name, s.kind) for region in (WEST, EAST) for s in region.systems]
    out: dict[str, Any] = {}
    for name, kind in pairs:
        with contextlib.suppress(ConfigError, ImportError, AttributeError):
            out[name] = registry.get(kind).source_kind
    return out


def _utc(value: datetime | None) -> datetime | None:
    return value if value is None or value.tzinfo else value.replace(tzinfo=UTC)


@audit.command("review")
@CONFIG
@click.option("--log", "log_location", default=None, help="audit log: directory, file or redis URL")
@click.option("--agency", required=True, help="review as this agency's auditor (its ORI)")
@click.option("--since", type=click.DateTime(), required=True, help="start of the window (UTC)")
@click.option(
    "--until", type=click.DateTime(), default=None, help="end of the window (default: now)"
)
@click.option("--json", "as_json", is_flag=True, help="the report as JSON")
def audit_review(
    config_path: Path | None,
    log_location: str | None,
    agency: str,
    since: datetime,
    until: datetime | None,
    as_json: bool,
) -> None:
    """Findings in the agency's part of the trail (what auditEvents shows its auditors):
    missing case numbers, purposes outside agreements, out-of-state ALPR searches, unusual
    volume, one subject searched by many users, access after an agreement ended."""
    import dataclasses
    import json

    from hub.audit import open_audit_log
    from hub.oversight import ReviewFacts, review_trail

    settings = _settings(config_path)
    agency = agency.upper()
    if not _ORI.match(agency):
        raise click.BadParameter(
            "an ORI: two letters and seven letters or digits", param_hint="--agency"
        )
    try:
        facts = ReviewFacts.of(_load_policy(settings).data, _source_kinds(settings))
    except ConfigError as exc:
        raise click.ClickException(_one_line(exc.message)) from exc

    async def run() -> Any:
        log = open_audit_log(_audit_location(config_path, log_location))
        try:
            start = _utc(since)
            assert start is not None
            return await review_trail(log, agency, facts, since=start, until=_utc(until))
        finally:
            await log.close()

    report = asyncio.run(run())
    if as_json:
        click.echo(json.dumps(dataclasses.asdict(report), default=str, indent=1))
        return
    click.echo(
        f"review of {report.reader}'s part of the trail, {report.since:%Y-%m-%d %H:%M} to "
        f"{report.until:%Y-%m-%d %H:%M} UTC: {report.entries_reviewed} operations, "
        f"{len(report.findings)} finding(s)"
    )
    for f in report.findings:
        seqs = ", ".join(f"#{r.seq}" for r in f.entries[:8])
        more = f" (+{len(f.entries) - 8} more)" if len(f.entries) > 8 else ""
        click.echo(f"{f.kind}: {f.summary}\n    entries {seqs}{more}")


@audit.command("demo-history")
@click.option("--log", "log_location", required=True, help="an audit log directory to write to")
@click.option("--days", default=56, show_default=True, help="days of history, ending yesterday")
@click.option("--clean", is_flag=True, help="no seeded misuse")
def audit_demo_history(log_location: str, days: int, clean: bool) -> None:
    """Write a demo history of the west region (with one seeded case of each misuse the review
    finds) to a new audit log, chained by the real writer."""
    from hub.audit import open_audit_log
    from hub.demo.history import write_history

    if "://" not in log_location and (Path(log_location) / "audit.jsonl").exists():
        raise click.ClickException(f"{log_location} already holds an audit log")

    async def run() -> Any:
        log = open_audit_log(log_location, fsync="never")
        try:
            return await write_history(
                log, end=datetime.now(UTC), days=days, window_days=days // 2, misuse=not clean
            )
        finally:
            await log.close()

    history = asyncio.run(run())
    click.echo(
        f"wrote {history.entries} entries, {history.start:%Y-%m-%d} to {history.end:%Y-%m-%d}; "
        f"review window from {history.window_start:%Y-%m-%d}; seeded: "
        + (", ".join(sorted(history.seeded)) or "none")
    )


@main.group()
def report() -> None:
    """Public reports."""


@report.command("transparency")
@CONFIG
@click.option("--log", "log_location", default=None, help="audit log: directory, file or redis URL")
@click.option("--year", type=click.IntRange(2000, 2100), required=True, help="calendar year")
@click.option(
    "--out",
    "out_dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("."),
    show_default=True,
    help="directory for the HTML, CSV and PDF",
)
@click.option(
    "--png",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="also render the PDF's first page to this PNG",
)
@click.option("--title", default="Records-sharing hub: transparency report", show_default=True)
def report_transparency(
    config_path: Path | None,
    log_location: str | None,
    year: int,
    out_dir: Path,
    png: Path | None,
    title: str,
) -> None:
    """The year's public report: operations by purpose, agency and kind of system, denials,
    pointers and alerts; small counts suppressed; no CJI. Writes HTML, CSV and PDF."""
    from hub.audit import open_audit_log
    from hub.oversight.transparency import count_year, read_year, write_report

    settings = _settings(config_path)
    try:
        data = _load_policy(settings).data
    except ConfigError as exc:
        raise click.ClickException(_one_line(exc.message)) from exc
    agencies = {ori: facts.name for ori, facts in data.agencies.items()}

    async def run() -> Any:
        log = open_audit_log(_audit_location(config_path, log_location))
        try:
            return await read_year(log, year)
        finally:
            await log.close()

    entries = asyncio.run(run())
    the_report = count_year(entries, year, agencies, _source_kinds(settings))
    for path in write_report(the_report, out_dir, title, png=png):
        click.echo(str(path))


@main.command()
@click.argument("scenario")
@click.option("--quick", is_flag=True, help="fewer samples, smaller worlds: all in under a minute")
@click.option("--json", "as_json", is_flag=True, help="JSON on stdout (the tables go to stderr)")
def bench(scenario: str, quick: bool, as_json: bool) -> None:
    """Measure the hub against its floor: SCENARIO is fanout, overhead, wide, audit, cache,
    scale or all (those six). Every figure is a ratio measured side by side in one run.
    `leaks` runs the outsider fuzzer instead: 10,000 cases (--quick: 1,000), leaks found;
    `linkage` scores entity resolution against the demo world's truth (10k and 100k records)."""
    # The benchmarks (bench/, beside hub/) are no part of what `hub serve` imports: only here.
    from bench.runner import main as run_bench
    from bench.runner import scenario_names

    try:
        scenario_names(scenario)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="SCENARIO") from exc
    sys.exit(run_bench(scenario, quick=quick, as_json=as_json))
