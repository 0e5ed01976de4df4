"""The ``hub`` command: serve, token, schema (and policy, audit, bench as they land).

click does the parsing, help and errors; every command reads configuration through
``hub.settings`` only.
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
from pathlib import Path

import click

from hub.errors import ConfigError
from hub.settings import Settings, load_settings

CONFIG = click.option(
    "--config",
    "config_path",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="hub.toml (default: $HUB_CONFIG; none: the embedded demo world)",
)


def _settings(config_path: Path | None) -> Settings:
    try:
        return load_settings(config_path)
    except ConfigError as exc:
        raise click.ClickException(exc.message) from exc


@click.group()
@click.version_option(package_name="hub")
def main() -> None:
    """A GraphQL hub over many agencies' record systems, with policy and audit built in."""


@main.command()
@CONFIG
@click.option("--host", default=None, help="address to bind (default 127.0.0.1)")
@click.option("--port", default=None, type=int, help="port (default 8000)")
def serve(config_path: Path | None, host: str | None, port: int | None) -> None:
    """Run the hub. With no config: the demo world on loopback and GraphiQL."""
    import uvicorn

    from hub.app import create_app

    settings = _settings(config_path)
    host = host or settings.host
    port = port or settings.port
    app = create_app(settings)
    if settings.uses_demo_world:
        click.echo(
            "hub: demo mode — simulated vendor systems on loopback, GraphiQL at "
            f"http://{host}:{port}/graphql\n"
            "  get a token:   hub token --user analyst1 --agency CA0990000 --roles analyst\n"
            "  send it with:  Authorization: Bearer <token>   and   X-Purpose: C",
            err=True,
        )
    uvicorn.run(app, host=host, port=port, log_level="info", server_header=False)


@main.command()
@CONFIG
@click.option("--user", required=True, help="user id (the token's sub)")
@click.option("--agency", required=True, help="the user's agency ORI, e.g. CA0990000")
@click.option("--roles", required=True, help="comma-separated roles, e.g. analyst,detective")
@click.option("--name", default=None, help="display name (default: the user id)")
@click.option("--state", default=None, help="agency state (default: the ORI's first two letters)")
@click.option("--attrs", default="", help="comma-separated attributes, e.g. sworn,cfr28")
@click.option("--ttl", default=None, type=int, help="lifetime in seconds")
def token(
    config_path: Path | None,
    user: str,
    agency: str,
    roles: str,
    name: str | None,
    state: str | None,
    attrs: str,
    ttl: int | None,
) -> None:
    """Print a JWT that `hub serve` with the same configuration accepts (demo/dev only)."""
    from hub.identity import load_or_create_demo_key, mint_token

    settings = _settings(config_path)
    if settings.auth.jwks_url:
        raise click.ClickException(
            "this configuration trusts an identity provider (auth.jwks_url): get tokens from it"
        )
    agency = agency.upper()
    key = load_or_create_demo_key(settings.demo_key_path)
    click.echo(
        mint_token(
            key,
            settings.auth,
            user=user,
            name=name,
            agency=agency,
            state=(state or agency[:2]).upper(),
            roles=[r.strip() for r in roles.split(",") if r.strip()],
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


@audit.command("verify")
@CONFIG
@click.option("--log", "log_location", default=None, help="audit log: directory, file or redis URL")
def audit_verify(config_path: Path | None, log_location: str | None) -> None:
    """Check the whole hash chain; name the first entry changed, removed, inserted or reordered."""
    from hub.audit import open_audit_log, verify_log

    async def run() -> tuple[bool, str]:
        log = open_audit_log(_audit_location(config_path, log_location))
        try:
            report = await verify_log(log)
        finally:
            await log.close()
        return report.ok, report.describe()

    ok, text = asyncio.run(run())
    click.echo(text)
    if not ok:
        sys.exit(1)


@audit.command("tail")
@CONFIG
@click.option("--log", "log_location", default=None, help="audit log: directory, file or redis URL")
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


@main.command()
@click.argument("scenario")
@click.option("--quick", is_flag=True, help="fewer samples, smaller worlds: all in under a minute")
@click.option("--json", "as_json", is_flag=True, help="JSON on stdout (the tables go to stderr)")
def bench(scenario: str, quick: bool, as_json: bool) -> None:
    """Measure the hub against its floor: SCENARIO is fanout, overhead, wide, audit, cache,
    scale or all. Every figure is a ratio measured side by side in one run."""
    from hub.bench.runner import main as run_bench
    from hub.bench.runner import scenario_names

    try:
        scenario_names(scenario)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="SCENARIO") from exc
    sys.exit(run_bench(scenario, quick=quick, as_json=as_json))
