"""NCIC code tables that more than one vendor protocol uses (NCIC 2000 Code Manual).

Vendor-specific tables stay in each adapter; these are the shared standard.
"""

from __future__ import annotations

# Vehicle colour codes (VCO) -> the colour words of the canonical model.
VEHICLE_COLORS: dict[str, str] = {
    "BGE": "BEIGE",
    "BLK": "BLACK",
    "BLU": "BLUE",
    "BRO": "BROWN",
    "GLD": "GOLD",
    "GRN": "GREEN",
    "GRY": "GRAY",
    "MAR": "MAROON",
    "ONG": "ORANGE",
    "PLE": "PURPLE",
    "RED": "RED",
    "SIL": "SILVER",
    "TAN": "TAN",
    "WHI": "WHITE",
    "YEL": "YELLOW",
}
