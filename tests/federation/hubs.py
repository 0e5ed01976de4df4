"""Two partner hubs on one machine: a west hub and an east hub, each the other's source.

``write_pair`` lays out, under one directory, everything two hub processes need: a var dir
each (own demo key, own assertion key, own audit log), each hub's public assertion key for the
other, the service-account tokens each holds at the other (minted with the other's demo key,
role ``partner-hub``), and one ``hub.toml`` each. The same files serve in-process hubs
(``load_settings``) and ``hub serve --config`` subprocesses.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from hub.settings import AuthSettings, Settings, load_settings
from hub.trust.federation import public_pem
from hub.trust.identity import load_or_create_demo_key, mint_token
from tests.ports import free_port

WEST_ORIS = ("CA0990000", "WA0990100", "OR0990200", "NV0990000")
EAST_ORIS = ("NY0990000", "PA0990100", "NJ0990200", "MA0990000")


@dataclass(frozen=True)
class HubPlan:
    id: str
    region: str
    # The agency that runs the hub: its service account's agency at the partner, and the
    # owner the partner's configuration names for this hub as a source.
    operator: str
    operator_name: str
    operator_state: str
    oris: tuple[str, ...]


WEST = HubPlan("west-hub", "west", "WA0990100", "Cascade City Police Department", "WA", WEST_ORIS)
EAST = HubPlan("east-hub", "east", "NY0990000", "Hudson Ridge Sheriff's Office", "NY", EAST_ORIS)


@dataclass
class HubFiles:
    plan: HubPlan
    port: int
    var_dir: Path
    config: Path
    # Environment for this hub: the token it presents at its partner.
    env: dict[str, str] = field(default_factory=dict)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def audit_file(self) -> Path:
        return self.var_dir / "audit" / "audit.jsonl"

    def settings(self) -> Settings:
        return load_settings(self.config, env=self.env)

    def token(self, user: str, agency: str, roles: tuple[str, ...]) -> str:
        """A user token this hub accepts (signed with its demo key)."""
        key = load_or_create_demo_key(self.var_dir / "demo-signing-key.pem")
        return mint_token(
            key, AuthSettings(), user=user, agency=agency, state=agency[:2], roles=roles
        )


def _config(me: HubFiles, partner: HubFiles, size: int, token_var: str) -> str:
    plan, other = me.plan, partner.plan
    agencies = ", ".join(f'"{ori}"' for ori in other.oris)
    return f"""\
mode = "demo"
port = {me.port}
var_dir = "{me.var_dir}"

[hub]
id = "{plan.id}"

[demo]
enabled = true
region = "{plan.region}"
size = {size}

[agencies.{other.operator}]
name = "{other.operator_name}"
state = "{other.operator_state}"
contact = "Records Unit, through {other.id}"

[sources.{other.id}]
kind = "hub"
agency = "{other.operator}"
url = "{partner.url}"
api_key = "${{{token_var}}}"
timeout_ms = 6000

[partners.{other.id}]
public_key = "{partner.var_dir.parent.parent / "keys" / f"{other.id}.pem"}"
agencies = [{agencies}]
"""


def write_pair(root: Path, size: int = 600) -> tuple[HubFiles, HubFiles]:
    """(west, east): configured as each other's partner and source, ready to start."""
    (root / "keys").mkdir(parents=True, exist_ok=True)
    hubs = []
    for plan in (WEST, EAST):
        var_dir = root / plan.id / "var"
        var_dir.mkdir(parents=True)
        key = load_or_create_demo_key(var_dir / "hub-signing-key.pem")
        (root / "keys" / f"{plan.id}.pem").write_bytes(public_pem(key.public_key()))
        hubs.append(HubFiles(plan, free_port(), var_dir, root / plan.id / "hub.toml"))
    west, east = hubs
    for me, partner in ((west, east), (east, west)):
        token_var = f"{partner.plan.id.upper().replace('-', '_')}_TOKEN"
        me.env[token_var] = partner.token(f"svc-{me.plan.id}", me.plan.operator, ("partner-hub",))
        me.config.write_text(_config(me, partner, size, token_var))
    return west, east
