"""The fictional geography of the demo world: per region, its agencies and their systems.

Two regions never share an agency or a system name, so two hubs serving two regions can be
partners. Plate and driver-licence formats are each state's, roughly.
"""

from __future__ import annotations

from dataclasses import dataclass

from hub.model import Agency


@dataclass(frozen=True, slots=True)
class AgencyPlan:
    """One agency and the local colour of its records."""

    agency: Agency
    prefix: str  # of its report numbers and camera names
    center: tuple[float, float]  # latitude, longitude of its jurisdiction
    city: str  # where most of its people live and its incidents happen
    area_codes: tuple[str, ...]
    roads: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class SystemPlan:
    """One vendor system of an agency."""

    name: str
    kind: str
    ori: str
    weight: float  # share of the world's records


@dataclass(frozen=True, slots=True)
class RegionPlan:
    """The agencies and systems of one demo world."""

    name: str
    agencies: tuple[AgencyPlan, ...]
    systems: tuple[SystemPlan, ...]
    # States whose law forbids sharing their agencies' ALPR data out of state.
    in_state_only_alpr: frozenset[str]
    neighbour_states: tuple[str, ...]


def _agency(ori: str, name: str, state: str, phone: str, domain: str) -> Agency:
    return Agency(
        ori=ori, name=name, state=state, contact=f"Records Unit, {phone}, records@{domain}"
    )


WEST = RegionPlan(
    name="west",
    agencies=(
        AgencyPlan(
            _agency(
                "CA0990000",
                "Marin Valley Sheriff's Office",
                "CA",
                "(415) 555-0100",
                "marinvalleyso.example",
            ),
            "MVSO",
            (38.0512, -122.5521),
            "Marin Valley",
            ("415", "628"),
            ("Hwy 101", "Hwy 1", "Sir Francis Drake Blvd", "Lucas Valley Rd", "Hwy 37"),
        ),
        AgencyPlan(
            _agency(
                "WA0990100",
                "Cascade City Police Department",
                "WA",
                "(253) 555-0100",
                "cascadecitypd.example",
            ),
            "CCPD",
            (47.2529, -122.4443),
            "Cascade City",
            ("253", "206"),
            ("I-5", "SR-16", "Pacific Ave", "Puyallup Ave"),
        ),
        AgencyPlan(
            _agency(
                "OR0990200",
                "Harbor Falls Police Department",
                "OR",
                "(503) 555-0100",
                "harborfallspd.example",
            ),
            "HFPD",
            (45.6312, -122.9087),
            "Harbor Falls",
            ("503", "971"),
            ("US-30", "Harbor Blvd", "Columbia River Hwy"),
        ),
        AgencyPlan(
            _agency("NV0990000", "Sierra State Patrol", "NV", "(775) 555-0100", "sierrasp.example"),
            "SSP",
            (39.5296, -119.8138),
            "Reno",
            ("775",),
            ("I-80", "US-395", "US-50", "I-580"),
        ),
    ),
    systems=(
        SystemPlan("marin-rms", "northwind-rms", "CA0990000", 0.15),
        SystemPlan("marin-alpr", "sentinel-alpr", "CA0990000", 0.25),
        SystemPlan("cascade-rms", "keystone-rms", "WA0990100", 0.15),
        SystemPlan("cascade-cad", "beacon-cad", "WA0990100", 0.075),
        SystemPlan("harbor-rms", "northwind-rms", "OR0990200", 0.15),
        SystemPlan("harbor-cad", "beacon-cad", "OR0990200", 0.075),
        SystemPlan("sierra-alpr", "sentinel-alpr", "NV0990000", 0.15),
    ),
    in_state_only_alpr=frozenset({"CA"}),
    neighbour_states=("CA", "WA", "OR", "NV", "ID", "AZ"),
)

EAST = RegionPlan(
    name="east",
    agencies=(
        AgencyPlan(
            _agency(
                "NY0990000",
                "Hudson Ridge Sheriff's Office",
                "NY",
                "(845) 555-0100",
                "hudsonridgeso.example",
            ),
            "HRSO",
            (41.7004, -73.9210),
            "Hudson Ridge",
            ("845", "914"),
            ("I-87", "US-9", "Taconic Pkwy", "Route 55"),
        ),
        AgencyPlan(
            _agency(
                "PA0990100",
                "Allegheny Point Police Department",
                "PA",
                "(412) 555-0100",
                "alleghenypointpd.example",
            ),
            "APPD",
            (40.4406, -79.9959),
            "Allegheny Point",
            ("412", "724"),
            ("I-376", "I-279", "Liberty Ave", "Route 28"),
        ),
        AgencyPlan(
            _agency(
                "NJ0990200",
                "Bayshore Township Police Department",
                "NJ",
                "(732) 555-0100",
                "bayshoretwppd.example",
            ),
            "BTPD",
            (40.4162, -74.1140),
            "Bayshore",
            ("732", "848"),
            ("Garden State Pkwy", "Route 35", "Route 36"),
        ),
        AgencyPlan(
            _agency(
                "MA0990000",
                "Bay Colony State Police",
                "MA",
                "(617) 555-0100",
                "baycolonysp.example",
            ),
            "BCSP",
            (42.3601, -71.0589),
            "Boston",
            ("617", "508"),
            ("I-90", "I-93", "I-95", "Route 128"),
        ),
    ),
    systems=(
        SystemPlan("hudson-rms", "northwind-rms", "NY0990000", 0.15),
        SystemPlan("hudson-alpr", "sentinel-alpr", "NY0990000", 0.25),
        SystemPlan("allegheny-rms", "keystone-rms", "PA0990100", 0.15),
        SystemPlan("allegheny-cad", "beacon-cad", "PA0990100", 0.075),
        SystemPlan("bayshore-rms", "northwind-rms", "NJ0990200", 0.15),
        SystemPlan("bayshore-cad", "beacon-cad", "NJ0990200", 0.075),
        SystemPlan("baycolony-alpr", "sentinel-alpr", "MA0990000", 0.15),
    ),
    in_state_only_alpr=frozenset(),
    neighbour_states=("NY", "PA", "NJ", "MA", "CT", "DE"),
)

REGIONS: dict[str, RegionPlan] = {"west": WEST, "east": EAST}


PLATE_FORMATS: dict[str, str] = {
    "CA": "DLLLDDD",
    "WA": "LLLDDDD",
    "OR": "DDDLLL",
    "NV": "DDDLDD",
    "ID": "DLDDDDD",
    "AZ": "LLLDDDD",
    "NY": "LLLDDDD",
    "PA": "LLLDDDD",
    "NJ": "LDDLLL",
    "MA": "DLLLDD",
    "CT": "LLDDDDD",
    "DE": "DDDDDD",
}
LICENSE_FORMATS: dict[str, str] = {
    "CA": "LDDDDDDD",
    "WA": "WDLAAAAAAAAA",
    "OR": "DDDDDDD",
    "NV": "DDDDDDDDDD",
    "ID": "LLDDDDDDL",
    "AZ": "LDDDDDDDD",
    "NY": "DDDDDDDDD",
    "PA": "DDDDDDDD",
    "NJ": "LDDDDDDDDDDDDDD",
    "MA": "SDDDDDDDD",
    "CT": "DDDDDDDDD",
    "DE": "DDDDDDD",
}
