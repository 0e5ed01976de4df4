"""The ``hub`` command: serve, token, schema (and policy, audit, bench as they land).

click does the parsing, help and errors; every command reads configuration through
``hub.settings`` only.
"""

from __future__ import annotations

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
