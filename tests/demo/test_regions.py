"""The settings name the demo world's regions without loading it; they name the same ones."""

from __future__ import annotations

from hub.demo.regions import REGIONS
from hub.settings import DEMO_REGIONS


def test_the_settings_know_the_demo_worlds_regions() -> None:
    assert tuple(sorted(REGIONS)) == DEMO_REGIONS
